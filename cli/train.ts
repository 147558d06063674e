/**
 * `deno task train [CONFIG.yaml] [key=value ...]` — supervised fine-tuning (LoRA or full) on WebGPU, the
 * counterpart of `llamafactory-cli train CONFIG.yaml`. With no arguments it runs config/default.yaml:
 * the embedded toy model (models/default-config) trained on the bundled synthetic diagnosis cases.
 *
 * `deno task train --write-default-model-files` rebuilds models/default-config (tokenizer learned from
 * data/default/train.json; sizes below) — the committed files were made this way.
 *
 * Output (output_dir): adapter_model.safetensors + adapter_config.json (PEFT) or model.safetensors +
 * config.json (full), tokenizer files, trainer_log.jsonl, all_results.json, training_args.yaml,
 * training_loss.png, checkpoint-<step>/ every save_steps. Errors a user can cause are one line.
 */
import cliProgress from "cli-progress";
import { createGpu, measuredCeiling } from "../src/gpu/mod.ts";
import { loadConfig } from "../src/train/config.ts";
import { Trainer } from "../src/train/trainer.ts";
import { defaultModelFiles } from "../src/train/default_model.ts";
import { lossPlotPng } from "../src/train/loss_plot.ts";
import type { LogEntry } from "../src/train/trainer_io.ts";
import { denoFs } from "../platform/deno_fs.ts";
import { fail } from "./args.ts";
import { defaultFont, initPlots } from "./plot_fonts.ts";

const USAGE = "usage: deno task train [CONFIG.yaml] [key=value ...]   (no arguments: config/default.yaml)";
async function plotter(history: LogEntry[]): Promise<Uint8Array> {
  await initPlots();
  const font = await defaultFont();
  return await lossPlotPng(history, { fonts: font ? [font.data] : [], fontFamily: font?.family });
}

async function writeDefaultModelFiles(): Promise<void> {
  const recs = JSON.parse(await Deno.readTextFile("data/default/train.json")) as Record<string, string>[];
  const files = defaultModelFiles(recs.flatMap((r) => [r.instruction, r.diagnosis]), {
    vocabSize: 2048,
    hidden: 64,
    layers: 2,
  });
  await Deno.mkdir("models/default-config", { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`models/default-config/${name}`, text);
  }
  // Committed as `deno fmt` leaves them (the task's fmt --check covers models/).
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", "models/default-config"] }).output();
  console.error(`wrote models/default-config/{${Object.keys(files).join(",")}}`);
}

let barOpen = false;

async function main(): Promise<void> {
  const args = Deno.args;
  if (args.includes("--help") || args.includes("-h")) return void console.log(USAGE);
  if (args[0] === "--write-default-model-files") return await writeDefaultModelFiles();
  const bad = args.find((a) => a.startsWith("-"));
  if (bad) throw new Error(`unknown option ${bad}\n${USAGE}`);
  const [file, ...overrides] = args.length && !args[0].includes("=")
    ? args
    : ["config/default.yaml", ...args];
  const cfg = await loadConfig(denoFs, file, overrides);
  const gpu = await createGpu();
  const tty = Deno.stderr.isTerminal();
  const bar = new cliProgress.SingleBar({
    format: "{bar} {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | ETA {eta_formatted}",
    stream: process.stderr,
    noTTYOutput: false,
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  let last = { loss: "-", lr: "-", tps: "-" };
  const trainer = await Trainer.create(gpu, cfg, {
    fs: denoFs,
    info: (line) => console.error((barOpen ? "\n" : "") + line),
    onStep: (step, total) => {
      if (!tty) return;
      if (!barOpen) bar.start(total, step, last), barOpen = true;
      bar.update(step, last);
    },
    onLog: (e) => {
      if (e.loss !== undefined) {
        last = {
          loss: e.loss.toFixed(4),
          lr: e.lr!.toExponential(2),
          tps: String(Math.round(e.tokens_per_second ?? 0)),
        };
      }
      if (!tty || e.eval_loss !== undefined) console.error((barOpen ? "\n" : "") + JSON.stringify(e));
    },
    plot: plotter,
    // fp32 FMA ceiling for the log's fraction: WEBTUNE_PEAK_TFLOPS, else our measurement of this
    // adapter (src/gpu/ceilings.ts; H200: 51), else none.
    peakTflops: Number(Deno.env.get("WEBTUNE_PEAK_TFLOPS") ?? "") ||
      measuredCeiling(gpu.info.description)?.fp32Tflops,
  });
  const c = trainer.model.config;
  console.error(
    `${c.modelType} ${c.numLayers} layers, hidden ${c.hiddenSize}, ${trainer.model.dtype} base; ` +
      `${cfg.finetuning_type}: ${[...trainer.trainable.params.values()].reduce((n, t) => n + t.size, 0)} ` +
      `trainable parameters; ${trainer.schedule.total} steps`,
  );
  const t0 = performance.now();
  const { eval: ev } = await trainer.train();
  if (barOpen) bar.stop(), barOpen = false;
  const secs = (performance.now() - t0) / 1000;
  const metrics = ev
    ? Object.entries(ev.metrics).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(", ")
    : "no eval";
  console.error(`done in ${secs.toFixed(1)} s: ${metrics}; wrote ${cfg.output_dir}`);
  for (const s of ev?.samples ?? []) {
    console.error(`  reference: ${s.reference}\n  predicted: ${s.prediction}`);
  }
  trainer.dispose();
}

try {
  await main();
} catch (e) {
  fail((e as Error).message, barOpen);
}
