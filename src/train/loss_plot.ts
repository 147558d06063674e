/**
 * The loss curve at the end of a run (LLaMA-Factory's training_loss.png): training loss per logged
 * step and, when evaluated, eval loss, as a vega-lite line chart rendered to PNG through
 * src/eval/plot.ts (vega → SVG → resvg). Call initPlotRenderer(wasm bytes) first.
 */
import type { TopLevelSpec } from "vega-lite";
import { renderPlot } from "../eval/plot.ts";
import type { LogEntry } from "./trainer_io.ts";

/** The plotted rows: { step, loss, series } for train and eval losses. */
export function lossRows(history: LogEntry[]): { step: number; loss: number; series: string }[] {
  const rows: { step: number; loss: number; series: string }[] = [];
  for (const e of history) {
    if (e.loss !== undefined) rows.push({ step: e.current_steps, loss: e.loss, series: "train" });
    if (e.eval_loss !== undefined) rows.push({ step: e.current_steps, loss: e.eval_loss, series: "eval" });
  }
  return rows;
}

/** The vega-lite spec of the loss curve. */
export function lossSpec(history: LogEntry[], title = "training loss"): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: 560,
    height: 320,
    data: { values: lossRows(history) },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "step", type: "quantitative", title: "step" },
      y: { field: "loss", type: "quantitative", title: "loss" },
      color: { field: "series", type: "nominal", title: null },
    },
  } as TopLevelSpec;
}

/**
 * PNG bytes of the loss curve.
 *
 * @example
 * await initPlotRenderer(wasm); const png = await lossPlotPng(history, { fonts: [ttf] });
 */
export async function lossPlotPng(
  history: LogEntry[],
  o: { fonts?: Uint8Array[]; fontFamily?: string; title?: string } = {},
): Promise<Uint8Array> {
  const { png } = await renderPlot(lossSpec(history, o.title), { ...o, width: 800 });
  return png;
}
