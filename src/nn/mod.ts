/** Modules built from ops: the Linear layer with its LoRA hook. */
export { Linear } from "./linear.ts";
