#!/usr/bin/env bash
# One call on the H200 (shared/device): kernel benches, model benches and golden tests of ours, and the
# PyTorch/HF peers at the same shapes, in this order of priority. Every step has its own time limit and
# writes its full log under $OUT; a short summary prints last.
#   run: source .gpu/env.sh && bash bench/device_run.sh
set -u
FINAL=${OUT:-/tmp/out}
OUT=$(mktemp -d)  # logs gather here; only two files go back (the device returns few files)
# The device has no registry: node_modules is carried, and Deno also needs the npm packuments, which
# ship in .gpu/denodir (copy the registry.json files of ~/.cache/deno/npm there; < 1 MB).
export DENO_DIR="$(pwd)/.gpu/denodir"
step() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  local t0=$(date +%s)
  timeout "$secs" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
  echo "$name: rc=$? $(( $(date +%s) - t0 ))s" | tee -a "$OUT/steps.txt"
}
deno run -A .gpu/adapter_check.ts > "$OUT/adapter.json" 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$OUT/nvidia-smi.txt" 2>&1
step dispatch 30 deno run -A --cached-only bench/dispatch.ts --json
step kernels 150 deno run -A --cached-only bench/main.ts kernels --json
step torch_matmul 45 python3 bench/peers/torch_matmul.py
step torch_kernels 45 python3 bench/peers/torch_kernels.py --json "$OUT/torch_kernels.json"
step model_qwen 50 deno run -A --cached-only bench/main.ts --shape qwen2.5-0.5b --seq-len 1024 --batch-size 1 --gen 128 --json
step model_qwen_chunk 35 deno run -A --cached-only bench/main.ts --shape qwen2.5-0.5b --seq-len 1024 --gen 128 --submit chunk --json
step model_mistral 60 deno run -A --cached-only bench/main.ts --shape mistral-7b --seq-len 1024 --batch-size 1 --gen 128 --json
step model_tests 50 deno test -A --cached-only tests/model tests/engine
step hf_decode 45 python3 .gpu/hf_decode.py  # shared/peers script, shipped in .gpu
{
echo "--- summary"
cat "$OUT/steps.txt"
for f in "$OUT"/model_*.out; do echo "$f"; tail -c 600 "$f"; done
tail -3 "$OUT/model_tests.out"
} > "$OUT/summary.txt" 2>&1
tar -czf "$FINAL/logs.tar.gz" -C "$OUT" .
cp "$OUT/summary.txt" "$FINAL/summary.txt"
cat "$FINAL/summary.txt"
