#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for the H200 device machine, which has no registry and no Deno:
#   1. ../shared/device/pack.sh: the Deno binary, the Vulkan loader, env.sh, adapter_check.ts;
#   2. .gpu/nm: node_modules without what the device never runs (Playwright, esbuild, jieba's wasm,
#      sources and type files), so that everything carried stays under the 64 MiB limit;
#   3. .gpu/denodir: the npm packuments Deno reads even with --cached-only;
#   4. env.sh additions: copy .gpu/nm into place and point DENO_DIR at .gpu/denodir;
#   5. the HF decode peer script from ../shared/peers.
# Then: run with carry [".gpu"] and `source .gpu/env.sh && bash bench/device_run.sh …`.
set -eu
cd "$(dirname "$0")/.."
[ -d node_modules ] || { echo "device_pack: run 'deno install' first (node_modules is missing)" >&2; exit 1; }
bash ../shared/device/pack.sh
rm -rf .gpu/nm
cp -a node_modules .gpu/nm
(
  cd .gpu/nm/.deno
  rm -rf playwright-core@*/node_modules/playwright-core/* @esbuild+linux-x64@*/node_modules/@esbuild/linux-x64/bin/*
  rm -rf zod@*/node_modules/zod/src vega-lite@*/node_modules/vega-lite/src hono@*/node_modules/hono/dist/cjs
  find . \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
  find . -path '*zod*' -name '*.cjs' -delete
  find . -path '*jieba-wasm*' -name '*.wasm' -exec sh -c ': > "$1"' _ {} \; # not used on the device
)
registry="${DENO_DIR:-$HOME/.cache/deno}/npm/registry.npmjs.org"
rm -rf .gpu/denodir # only the packuments: caches a local run left there would eat the 64 MiB
(cd "$registry" && find . -name registry.json) | while read -r f; do
  mkdir -p ".gpu/denodir/npm/registry.npmjs.org/$(dirname "$f")"
  cp "$registry/$f" ".gpu/denodir/npm/registry.npmjs.org/$f"
done
if ! grep -q 'nm" node_modules' .gpu/env.sh; then
  cat >>.gpu/env.sh <<'EOF'
# node_modules travels trimmed inside .gpu (carry only .gpu): copy it into place when absent.
[ -d node_modules ] || cp -a "$(dirname "${BASH_SOURCE[0]}")/nm" node_modules
export DENO_DIR="$(pwd)/.gpu/denodir"
EOF
fi
cp ../shared/peers/hf_decode.py .gpu/
kib=$(du -sk .gpu | cut -f1)
echo "device_pack: .gpu holds $((kib / 1024)) MiB (the carry limit is 64 MiB)"
[ "$kib" -le $((64 * 1024)) ] || { echo "device_pack: over the limit: trim more in .gpu/nm" >&2; exit 1; }
