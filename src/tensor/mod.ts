export { type GradNode, keep, sharesStorage, Tensor, tidy } from "./tensor.ts";
export { Rng } from "./random.ts";
