/**
 * Moved to platform/deno_fs.ts (server/ needs it too, and server/ must not import cli/). This
 * re-export keeps the older import path working for tests and benches that still use it.
 *
 * @example
 * import { denoFs } from "../platform/deno_fs.ts"; // prefer the new path
 */
export { denoFs } from "../platform/deno_fs.ts";
