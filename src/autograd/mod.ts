export {
  accumulate,
  backward,
  type BackwardFn,
  grid1d,
  isGradEnabled,
  type Node,
  noGrad,
  record,
} from "./tape.ts";
