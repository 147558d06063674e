/**
 * The shapes the GPU runtime (gpu.ts) and its bind-group cache share: what a kernel launch names, what
 * a binding is, what the device supports, and a compiled pipeline.
 */
import type { DType } from "./dtype.ts";

/** Which kernel to run: a file in kernels/ (or inline source), its entry point, type aliases, overrides. */
export interface KernelSpec {
  /** Name of `kernels/<file>.wgsl`, without the extension. */
  file?: string;
  /** Inline WGSL (workbenches and tests); takes precedence over `file`. */
  source?: string;
  /**
   * Library files of kernels/ appended after the body (functions and declarations several kernels
   * share, or device-specific variants of them: WGSL has no includes).
   */
  libs?: string[];
  /** Entry point; defaults to "main". */
  entry?: string;
  /** Type aliases prepended to the source, e.g. `{ ST: "f16" }` → `alias ST = f16;`. */
  types?: Record<string, DType>;
  /** Pipeline-overridable constants (`override` declarations in the WGSL). */
  overrides?: Record<string, number>;
}

/** A storage binding: a whole buffer, or a range of one. */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** What the adapter and device turned out to support. */
export interface GpuInfo {
  description: string;
  vendor: string;
  isFallbackAdapter: boolean;
  f16: boolean;
  subgroups: boolean;
  subgroupMinSize: number;
  subgroupMaxSize: number;
  timestampQuery: boolean;
}

/** A compiled kernel: its pipeline, bind group layout and the name errors use. */
export interface Pipe {
  id: number;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  name: string;
}
