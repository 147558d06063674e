#!/usr/bin/env bash
# One call on the H200 (shared/device): kernel benches, model benches and golden tests of ours, and the
# PyTorch/HF peers at the same shapes, in this order of priority. Every step has its own time limit and
# writes its full log under $OUT; a short summary prints last.
#   run: source .gpu/env.sh && bash bench/device_run.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# jieba-wasm (metrics only) is left out of the shipped node_modules to stay under the 64 MiB carry limit.
sed -i '/jieba-wasm/d' deno.json
step() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  local t0=$(date +%s)
  timeout "$secs" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
  echo "$name: rc=$? $(( $(date +%s) - t0 ))s" | tee -a "$OUT/steps.txt"
}
deno run -A .gpu/adapter_check.ts > "$OUT/adapter.json" 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$OUT/nvidia-smi.txt" 2>&1
step kernels 150 deno run -A bench/main.ts kernels --json
step torch_matmul 45 python3 bench/peers/torch_matmul.py
step torch_kernels 45 python3 bench/peers/torch_kernels.py --json "$OUT/torch_kernels.json"
step model_qwen 50 deno run -A bench/main.ts --shape qwen2.5-0.5b --seq-len 1024 --batch-size 1 --gen 128 --json
step model_qwen_chunk 35 deno run -A bench/main.ts --shape qwen2.5-0.5b --seq-len 1024 --gen 128 --submit chunk --json
step model_mistral 60 deno run -A bench/main.ts --shape mistral-7b --seq-len 1024 --batch-size 1 --gen 128 --json
step model_tests 50 deno test -A tests/model tests/engine
step hf_decode 45 python3 .gpu/hf_decode.py  # shared/peers script, shipped in .gpu
echo "--- summary"
cat "$OUT/steps.txt"
for f in "$OUT"/model_*.out; do echo "$f"; tail -c 600 "$f"; done
tail -3 "$OUT/model_tests.out"
