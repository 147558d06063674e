#!/usr/bin/env bash
# Measurements on the H200 (shared/device), ours and the PyTorch/HF/PEFT peers at the same shapes, in
# groups that each fit one device call (≤ 10 minutes):
#   run (carry .gpu): source .gpu/env.sh && bash bench/device_run.sh [kernels] [models] [train] [serve]
# Every step has its own time limit and writes its full log; logs.tar.gz and summary.txt come back.
# The device has no registry: .gpu/env.sh copies a trimmed node_modules from .gpu/nm and points
# DENO_DIR at .gpu/denodir (the npm packuments), hence --cached-only everywhere.
set -u
FINAL=${OUT:-/tmp/out}
OUT=$(mktemp -d) # logs gather here; only two files go back (the device returns few files)
export DENO_DIR=${DENO_DIR:-"$(pwd)/.gpu/denodir"}
step() { # name, seconds, command...
  local name=$1 secs=$2
  shift 2
  local t0=$(date +%s)
  timeout "$secs" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  echo "$name: rc=$? $(($(date +%s) - t0))s" | tee -a "$OUT/steps.txt"
}
bench() { deno run -A --cached-only bench/main.ts "$@"; }
groups=${*:-kernels models}
deno run -A .gpu/adapter_check.ts >"$OUT/adapter.json" 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >"$OUT/nvidia-smi.txt" 2>&1
for g in $groups; do
  case $g in
  kernels)
    step dispatch 30 deno run -A --cached-only bench/dispatch.ts --json
    step kernels 170 bench kernels --json
    step torch_matmul 45 python3 bench/peers/torch_matmul.py
    step torch_kernels 45 python3 bench/peers/torch_kernels.py --json "$OUT/torch_kernels.json"
    ;;
  models)
    step model_qwen 60 bench --shape qwen2.5-0.5b --seq-len 1024 --batch-size 1 --gen 128 --json
    step model_mistral 90 bench --shape mistral-7b --seq-len 1024 --batch-size 1 --gen 128 --json
    step model_tests 60 deno test -A --cached-only tests/model tests/engine
    step hf_decode 60 python3 .gpu/hf_decode.py # shared/peers script, shipped in .gpu
    ;;
  train)
    step train_mistral 240 bench train --shape mistral-7b --seq-len 2048 --rank 64 --alpha 128 --steps 3 --checkpoint false --json
    step peft_step 120 python3 bench/peers/peft_step.py --checkpoint false
    step peft_step_fp32 120 python3 bench/peers/peft_step.py --dtype fp32 --checkpoint false
    ;;
  serve)
    step serve_mistral 300 bench serve --shape mistral-7b --dtype f16 --clients 1,16 --requests 4 --gen 128 --slots 16 --json
    ;;
  *) echo "unknown group $g (kernels, models, train, serve)" | tee -a "$OUT/steps.txt" ;;
  esac
done
{
  echo "--- summary"
  cat "$OUT/steps.txt"
  for f in "$OUT"/model_*.out "$OUT"/train_*.out "$OUT"/serve_*.out "$OUT"/peft_step*.out "$OUT"/dispatch.out; do
    [ -f "$f" ] && { echo "$f"; tail -c 900 "$f"; echo; }
  done
  [ -f "$OUT/model_tests.out" ] && tail -3 "$OUT/model_tests.out"
} >"$OUT/summary.txt" 2>&1
tar -czf "$FINAL/logs.tar.gz" -C "$OUT" .
cp "$OUT/summary.txt" "$FINAL/summary.txt"
cat "$FINAL/summary.txt"
