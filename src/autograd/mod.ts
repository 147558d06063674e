export {
  accumulate,
  backward,
  type BackwardFn,
  grid1d,
  isGradEnabled,
  type Node,
  noGrad,
  record,
  withGrad,
} from "./tape.ts";
export { checkpoint, releasingBelow } from "./checkpoint.ts";
