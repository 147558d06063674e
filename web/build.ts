/**
 * `deno task build:web [--no-check] [--dev] [--out DIR]`: type-checks the browser code against the DOM
 * lib and @webgpu/types (web/deno.json), then bundles it with esbuild into web/dist/: page.js (the
 * page), worker.js (the engine: src/ engine, model, kernels, tokenizer — the same files Deno runs,
 * nothing forked), index.html and style.css.
 *
 * @example
 * await buildWeb({ outDir: "out/web/dist", check: false });
 */
import * as esbuild from "esbuild";
import { parseArgs } from "node:util";

const WEB = new URL(".", import.meta.url).pathname.replace(/\/$/, "");
const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Options of {@link buildWeb}. */
export interface BuildOptions {
  /** Output folder (default web/dist). */
  outDir?: string;
  /** Type-check first (default true). */
  check?: boolean;
  /** Minify (default true; false keeps names readable for debugging). */
  minify?: boolean;
}

/** Files of the build and their sizes in bytes. */
export interface BuildResult {
  outDir: string;
  files: Record<string, number>;
}

/** The browser entry points; the type-check covers everything they import (src/ included). */
export const ENTRIES = { page: `${WEB}/page.ts`, worker: `${WEB}/worker.ts` };

/**
 * Type-checks the browser code with web/deno.json (lib dom + @webgpu/types instead of Deno's types).
 * Rejects with the compiler's output.
 */
export async function checkWeb(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", "--config", `${WEB}/deno.json`, ...Object.values(ENTRIES)],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`type-check of the browser code failed (web/deno.json):\n${text}`);
  }
}

/** Type-checks (unless `check: false`) and bundles the demo. */
export async function buildWeb(opts: BuildOptions = {}): Promise<BuildResult> {
  const outDir = opts.outDir ?? `${WEB}/dist`;
  if (opts.check ?? true) await checkWeb();
  try {
    const result = await esbuild.build({
      entryPoints: ENTRIES,
      absWorkingDir: ROOT,
      bundle: true,
      format: "esm",
      platform: "browser",
      // WebGPU browsers all take ES2022 (top-level await, class fields, private methods).
      target: "es2022",
      outdir: outDir,
      minify: opts.minify ?? true,
      sourcemap: "linked",
      metafile: true,
      logLevel: "silent",
      legalComments: "linked",
    });
    if (result.warnings.length) {
      const msgs = await esbuild.formatMessages(result.warnings, { kind: "warning" });
      console.error(msgs.join(""));
    }
    await Deno.copyFile(`${WEB}/index.html`, `${outDir}/index.html`);
    await Deno.copyFile(`${WEB}/style.css`, `${outDir}/style.css`);
    const files: Record<string, number> = {};
    for await (const e of Deno.readDir(outDir)) {
      if (e.isFile) files[e.name] = (await Deno.stat(`${outDir}/${e.name}`)).size;
    }
    return { outDir, files };
  } finally {
    await esbuild.stop();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "no-check": { type: "boolean" },
      dev: { type: "boolean" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log("usage: deno task build:web [--no-check] [--dev] [--out DIR]");
    Deno.exit(0);
  }
  try {
    const t0 = performance.now();
    const r = await buildWeb({ outDir: values.out, check: !values["no-check"], minify: !values.dev });
    for (const [name, size] of Object.entries(r.files).sort()) {
      console.log(`${r.outDir}/${name}  ${(size / 1024).toFixed(1)} KiB`);
    }
    console.log(`built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
