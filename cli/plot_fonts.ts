/**
 * Plot set-up shared by `deno task train` (training_loss.png) and `deno task eval compare`
 * (comparison.png): the resvg renderer's wasm and a system font, since resvg draws no text without one.
 *
 * @example
 * await initPlots();
 * const font = await defaultFont(); // { data, family } or null
 */
import { initPlotRenderer } from "../src/eval/plot.ts";

/** Fonts tried in order (Debian's fonts-dejavu-core, fonts-liberation): path and family name. */
export const FONT_CANDIDATES: [string, string][] = [
  ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVu Sans"],
  ["/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", "Liberation Sans"],
];

/** Loaded too when present, so Chinese text is drawn (resvg falls back per glyph). */
export const CJK_FALLBACKS = [
  "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
  "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
  "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];

/** True when `path` is an existing regular file. */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The first installed font of {@link FONT_CANDIDATES}, read, with its family name; null when none is. */
export async function defaultFont(): Promise<{ data: Uint8Array; family: string } | null> {
  const found = FONT_CANDIDATES.find(([p]) => isFile(p));
  return found ? { data: await Deno.readFile(found[0]), family: found[1] } : null;
}

/** Loads the resvg wasm from the npm package (once per process is enough; again is harmless). */
export async function initPlots(): Promise<void> {
  await initPlotRenderer(
    await Deno.readFile(new URL(import.meta.resolve("@resvg/resvg-wasm/index_bg.wasm"))),
  );
}
