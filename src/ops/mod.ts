export { add, axpy, cast, fill, mul, reshape, scale } from "./elementwise.ts";
