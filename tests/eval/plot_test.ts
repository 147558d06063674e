/**
 * The comparison figure (src/eval/plot.ts): the spec carries the metrics' exact numbers, vega draws one
 * bar and one interval rule per (model, metric) at the right heights, resvg gives a PNG of the asked
 * width with the SVG's aspect ratio, and text is drawn only when a font is given.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import { comparisonSpec, initPlotRenderer, plotData, pngSize, renderPlot } from "../../src/eval/plot.ts";
import { parse, View } from "vega";
import { compile } from "vega-lite";

const FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const ci = (value: number, low: number, high: number) => ({ value, low, high, level: 0.95, resamples: 100 });
const models = [
  {
    name: "ours",
    metrics: { accuracy: ci(0.5, 0.3, 0.7), "bleu-4": ci(40, 30, 50) },
    latency_ms: ci(120, 100, 140),
  },
  {
    name: "base",
    metrics: { accuracy: ci(0.25, 0.1, 0.4), "bleu-4": ci(10, 5, 15) },
    latency_ms: ci(100, 90, 110),
  },
];

Deno.test("plotData/comparisonSpec: exact numbers, unit metrics shown in %", () => {
  const { scores, latency } = plotData(models);
  assertEquals(scores.length, 4);
  const acc = scores.find((d) => d.model === "ours" && d.metric === "accuracy")!;
  assertEquals([acc.value, acc.low, acc.high, acc.shown, acc.shownLow, acc.shownHigh], [
    0.5,
    0.3,
    0.7,
    50,
    30,
    70,
  ]);
  const bleu = scores.find((d) => d.model === "base" && d.metric === "bleu-4")!;
  assertEquals([bleu.shown, bleu.shownLow, bleu.shownHigh], [10, 5, 15]);
  assertEquals(latency.map((d) => [d.model, d.value]), [["ours", 120], ["base", 100]]);
  const spec = comparisonSpec(models) as unknown as { hconcat: { data: { values: unknown[] } }[] };
  assertEquals(spec.hconcat[0].data.values, scores);
  assertEquals(spec.hconcat[1].data.values, latency);
  assertThrows(() => comparisonSpec([]), /no models/);
});

Deno.test("vega scenegraph: bar and rule heights follow the numbers", async () => {
  const view = new View(parse(compile(comparisonSpec(models)).spec), { renderer: "none" });
  await view.runAsync();
  /** The part of vega's scenegraph that this test reads. */
  interface SceneNode {
    marktype?: string;
    items?: SceneNode[];
    height?: number;
    datum?: { model?: string; metric?: string; shown?: number };
  }
  const marks: SceneNode[] = [];
  const walk = (n: SceneNode | undefined) => {
    if (!n) return;
    if (n.marktype && n.items) marks.push(n);
    for (const c of n.items ?? []) walk(c);
  };
  walk((view.scenegraph() as unknown as { root: SceneNode }).root);
  const items = (type: string) =>
    marks.filter((m) => m.marktype === type).flatMap((m) => m.items ?? []).filter((i) => i.datum?.model);
  const bars = items("rect"), rules = items("rule");
  assertEquals(bars.length, 6, "4 metric bars + 2 latency bars");
  assertEquals(rules.length, 6);
  // Within the score panel, bar height is proportional to `shown` (same scale for all four bars).
  const k = bars.filter((b) => b.datum!.metric !== "latency_ms").map((b) => b.height! / b.datum!.shown!);
  assertEquals(k.length, 4);
  for (const x of k) assert(Math.abs(x - k[0]) < 1e-6 * k[0], `heights ∝ values: ${k}`);
  view.finalize();
});

Deno.test("renderPlot: PNG of the asked width, SVG aspect ratio, text only with a font", async () => {
  await assertRejects(() => renderPlot(comparisonSpec(models)), /initPlotRenderer/);
  await initPlotRenderer(Deno.readFileSync(new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm"))));
  const font = Deno.readFileSync(FONT);
  const a = await renderPlot(comparisonSpec(models), { fonts: [font], width: 900 });
  const svgW = Number(/<svg[^>]*width="([\d.]+)"/.exec(a.svg)![1]);
  const svgH = Number(/<svg[^>]*height="([\d.]+)"/.exec(a.svg)![1]);
  assertEquals(pngSize(a.png), { width: 900, height: a.height });
  assert(Math.abs(a.height - svgH * 900 / svgW) <= 1, `aspect: ${a.height} vs ${svgH * 900 / svgW}`);
  for (const label of ["accuracy", "bleu-4", "ours", "base"]) assert(a.svg.includes(`>${label}<`), label);
  const noText = await renderPlot(comparisonSpec(models), { width: 900 });
  assertEquals([noText.width, noText.height], [a.width, a.height]);
  assert(noText.png.length < a.png.length, "text adds pixels when a font is given");
  assertThrows(() => pngSize(new Uint8Array(30)), /not a PNG/);
});
