export { add, axpy, cast, fill, invCount, mul, mulScalar, reshape, scale } from "./elementwise.ts";
