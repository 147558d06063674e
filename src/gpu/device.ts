/**
 * Adapter and device acquisition. We ask for the adapter's own limits (Deno's defaults cap storage
 * bindings at 128 MiB, far below a 7B model's embedding table) and every feature the kernels can use.
 */
import { Gpu, type GpuInfo } from "./gpu.ts";

export interface GpuOptions {
  /** Name the failing kernel on WebGPU validation errors (one submit per launch: slow). */
  debug?: boolean;
  /** Pretend shader-f16 is missing (tests the f32 path that browsers without f16 take). */
  disableF16?: boolean;
  powerPreference?: GPUPowerPreference;
}

/** Thrown when there is no WebGPU adapter at all; its message says how to get one. */
export class NoAdapterError extends Error {
  constructor() {
    super(
      "No WebGPU adapter found. On a machine with a GPU, install its Vulkan/Metal/D3D12 driver. " +
        "On Linux without a GPU, install Mesa's CPU Vulkan driver: `sudo apt-get install -y mesa-vulkan-drivers` " +
        "(lavapipe). In a browser, use a WebGPU-enabled one (Chromium: --enable-unsafe-webgpu).",
    );
    this.name = "NoAdapterError";
  }
}

const LIMITS: (keyof GPUSupportedLimits)[] = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
];

/**
 * Opens the GPU.
 *
 * @example
 * const gpu = await createGpu();
 * console.log(gpu.info.description, gpu.info.f16);
 */
export async function createGpu(opts: GpuOptions = {}): Promise<Gpu> {
  // Typed structurally: `Navigator` is not declared in Worker scopes, where the engine also runs.
  const gpuApi = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  const adapter = await gpuApi?.requestAdapter({
    powerPreference: opts.powerPreference ?? "high-performance",
  });
  if (!adapter) throw new NoAdapterError();

  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) requiredLimits[k] = adapter.limits[k] as number;

  const wanted: string[] = [];
  if (adapter.features.has("shader-f16") && !opts.disableF16) wanted.push("shader-f16");
  if (adapter.features.has("timestamp-query")) wanted.push("timestamp-query");
  // Deno does not list "subgroups" among the adapter's features even where it works, so ask for it
  // and fall back when the request is refused.
  let device: GPUDevice | null = null;
  let subgroups = false;
  try {
    device = await adapter.requestDevice({
      requiredFeatures: [...wanted, "subgroups"] as GPUFeatureName[],
      requiredLimits,
    });
    subgroups = true;
  } catch {
    device = await adapter.requestDevice({ requiredFeatures: wanted as GPUFeatureName[], requiredLimits });
  }
  const info: GpuInfo = {
    description: adapter.info.description || adapter.info.device || "unknown adapter",
    vendor: adapter.info.vendor,
    isFallbackAdapter: (adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      false,
    f16: device.features.has("shader-f16"),
    subgroups,
    subgroupMinSize: (adapter.info as { subgroupMinSize?: number }).subgroupMinSize ?? 0,
    subgroupMaxSize: (adapter.info as { subgroupMaxSize?: number }).subgroupMaxSize ?? 0,
    timestampQuery: device.features.has("timestamp-query"),
  };
  device.lost.then((l) => {
    if (l.reason !== "destroyed") console.error(`webtune: GPU device lost: ${l.message}`);
  });
  return new Gpu(device, info, { debug: opts.debug });
}
