/**
 * Headless Chromium for the browser tests: Debian's package (`apt-get install -y chromium`), launched
 * with WebGPU on (SwiftShader on machines without a GPU: subgroups yes, shader-f16 no).
 */

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM = Deno.env.get("WEBTUNE_CHROMIUM") ?? "/usr/bin/chromium";

/**
 * Launch flags (playwright adds --headless and a fresh profile directory). `--no-sandbox`: CI runs as
 * root, where Chromium refuses its sandbox. `--enable-unsafe-webgpu`: WebGPU on Linux. The rest keep a
 * test run quiet and offline.
 */
export function chromiumArgs(opts: { webgpu?: boolean } = {}): string[] {
  const args = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
  ];
  if (opts.webgpu ?? true) args.push("--enable-unsafe-webgpu");
  else args.push("--disable-features=WebGPU");
  return args;
}
