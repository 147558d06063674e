/**
 * The comparison figure: a vega-lite spec (grouped bars per metric with bootstrap-interval error bars,
 * and a latency panel) compiled by vega-lite, rendered to SVG by vega (headless, no canvas) and
 * rasterised to PNG by resvg (WebAssembly). The numbers are embedded in the spec's data (`value`,
 * `low`, `high` exactly as in metrics.json), so the figure can be checked against the metrics.
 *
 * resvg-wasm has no system fonts: pass font files (TTF/OTF bytes); without any, text is not drawn.
 * @module
 */
import { compile, type TopLevelSpec } from "vega-lite";
import { parse, View } from "vega";
import { initWasm, Resvg } from "@resvg/resvg-wasm";
import type { ConfidenceInterval } from "./metrics/bootstrap.ts";

/** One model's scores, as {@link scoreRows} gives them. */
export interface ModelScores {
  name: string;
  metrics: Record<string, ConfidenceInterval>;
  latency_ms: ConfidenceInterval;
}

/** One row of the plotted data. */
export interface PlotDatum {
  model: string;
  metric: string;
  /** The metric as in metrics.json. */
  value: number;
  low: number;
  high: number;
  /** What the bar shows: ×100 for metrics in [0, 1] (accuracy, f1), else `value`. */
  shown: number;
  shownLow: number;
  shownHigh: number;
}

/** Metrics reported in [0, 1]; drawn as percentages next to BLEU/ROUGE (already 0–100). */
const UNIT_METRICS = new Set(["accuracy", "f1"]);

/**
 * The plotted rows: one per (model, metric), and one per model for latency (metric "latency_ms").
 * @example plotData(models).scores.find((d) => d.metric === "accuracy")?.shown // accuracy × 100
 */
export function plotData(models: ModelScores[]): { scores: PlotDatum[]; latency: PlotDatum[] } {
  const row = (model: string, metric: string, ci: ConfidenceInterval, scale: number): PlotDatum => ({
    model,
    metric,
    value: ci.value,
    low: ci.low,
    high: ci.high,
    shown: ci.value * scale,
    shownLow: ci.low * scale,
    shownHigh: ci.high * scale,
  });
  const scores = models.flatMap((m) =>
    Object.entries(m.metrics).map(([k, ci]) => row(m.name, k, ci, UNIT_METRICS.has(k) ? 100 : 1))
  );
  const latency = models.map((m) => row(m.name, "latency_ms", m.latency_ms, 1));
  return { scores, latency };
}

/**
 * The vega-lite spec of the comparison figure.
 * @example const spec = comparisonSpec([{ name: "ours", metrics, latency_ms }], { title: "medical test, 72 samples" });
 */
export function comparisonSpec(models: ModelScores[], opts: { title?: string } = {}): TopLevelSpec {
  if (models.length === 0) throw new Error("comparisonSpec: no models");
  const { scores, latency } = plotData(models);
  const order = models.map((m) => m.name);
  const metricOrder = [...new Set(scores.map((d) => d.metric))];
  const color = { field: "model", type: "nominal", sort: order, title: "model" } as const;
  // The y axis starts at 0 and is never empty (all-zero scores would give a degenerate scale).
  const top = (ds: PlotDatum[]) => Math.max(1, ...ds.map((d) => Math.max(d.shown, d.shownHigh)));
  const bars = (
    x: string,
    xTitle: string,
    yTitle: string,
    width: number,
    yMax: number,
    extra: object = {},
  ) => ({
    width,
    height: 260,
    encoding: { x: { field: x, type: "nominal", title: xTitle, ...extra, axis: { labelAngle: 0 } } },
    layer: [
      {
        mark: { type: "bar", tooltip: true },
        encoding: {
          ...(x === "metric" ? { xOffset: { field: "model", sort: order } } : {}),
          y: {
            field: "shown",
            type: "quantitative",
            title: yTitle,
            scale: { domain: [0, yMax], nice: true },
          },
          color,
        },
      },
      {
        mark: { type: "rule", color: "black" },
        encoding: {
          ...(x === "metric" ? { xOffset: { field: "model", sort: order } } : {}),
          y: { field: "shownLow", type: "quantitative" },
          y2: { field: "shownHigh" },
        },
      },
    ],
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: opts.title ?? "Model comparison (bars: value; lines: bootstrap 95% interval)",
    background: "white",
    padding: 10,
    config: { font: "sans-serif" },
    resolve: { scale: { color: "shared" } },
    hconcat: [
      {
        data: { name: "scores", values: scores },
        ...bars(
          "metric",
          "metric",
          "score (0-100; accuracy, F1 in %)",
          Math.max(240, 26 * models.length * metricOrder.length),
          top(scores),
          { sort: metricOrder },
        ),
      },
      {
        data: { name: "latency", values: latency },
        ...bars(
          "model",
          "model",
          "mean latency per request (ms)",
          Math.max(120, 40 * models.length),
          top(latency),
          {
            sort: order,
          },
        ),
      },
    ],
  } as TopLevelSpec;
}

let wasmReady: Promise<void> | null = null;

/**
 * Loads resvg's WebAssembly once (later calls reuse it). Deno: the bytes of
 * `import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm")`; the browser: `fetch` of that file.
 * @example await initPlotRenderer(await Deno.readFile(new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm"))));
 */
export function initPlotRenderer(wasm: BufferSource | Response | Promise<Response>): Promise<void> {
  return wasmReady ??= initWasm(wasm).catch((e) => {
    wasmReady = null;
    throw new Error(`cannot start resvg (SVG → PNG): ${(e as Error).message}`);
  });
}

/** A rendered figure. */
export interface RenderedPlot {
  svg: string;
  png: Uint8Array;
  width: number;
  height: number;
}

/**
 * Spec → SVG (vega) → PNG (resvg), scaled to `width` pixels (default 1200; height keeps the aspect).
 * `fontFamily` is the family name inside the font files (default "DejaVu Sans"). Call
 * {@link initPlotRenderer} first.
 * @example const { png } = await renderPlot(spec, { fonts: [await Deno.readFile("DejaVuSans.ttf")] });
 */
export async function renderPlot(
  spec: TopLevelSpec,
  opts: { fonts?: Uint8Array[]; fontFamily?: string; width?: number } = {},
): Promise<RenderedPlot> {
  if (!wasmReady) throw new Error("renderPlot: call initPlotRenderer(wasmBytes) first");
  await wasmReady;
  const view = new View(parse(compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  const resvg = new Resvg(svg, {
    fitTo: { mode: "width", value: opts.width ?? 1200 },
    background: "white",
    font: {
      fontBuffers: opts.fonts ?? [],
      loadSystemFonts: false,
      // The spec asks for "sans-serif": map that generic family to the font given.
      sansSerifFamily: opts.fontFamily ?? "DejaVu Sans",
      defaultFontFamily: opts.fontFamily ?? "DejaVu Sans",
    },
  });
  const img = resvg.render();
  const out = { svg, png: img.asPng(), width: img.width, height: img.height };
  img.free();
  resvg.free();
  return out;
}

/**
 * Width and height from a PNG's IHDR chunk (throws when the bytes are not a PNG).
 * @example pngSize(await Deno.readFile("output/compare/comparison.png")) // { width: 1200, height: … }
 */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.length < 24 || sig.some((b, i) => png[i] !== b)) throw new Error("not a PNG file");
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: dv.getUint32(16), height: dv.getUint32(20) };
}
