#!/usr/bin/env bash
# Measurements on the H200 (shared/device), ours and the PyTorch/HF/PEFT peers at the same shapes, in
# groups that each fit one device call (≤ 10 minutes):
#   run (carry .gpu): source .gpu/env.sh && bash bench/device_run.sh [kernels] [models] [train] [serve] [hf] [tests]
# or single steps by name: … device_run.sh model_qwen serve_mistral
# Every step has its own time limit and writes its full log; logs.tar.gz and summary.txt come back.
# Prepare .gpu first with bench/device_pack.sh. The device has no registry: .gpu/env.sh copies a trimmed
# node_modules from .gpu/nm and points DENO_DIR at .gpu/denodir (the npm packuments), hence --cached-only.
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
BENCH="deno run -A --cached-only bench/main.ts" # a variable, not a function: `timeout` runs programs
groups=${*:-kernels models}
deno run -A .gpu/adapter_check.ts >"$OUT/adapter.json" 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv >"$OUT/nvidia-smi.txt" 2>&1
one() { # one measurement by name
  case $1 in
  dispatch) step dispatch 30 deno run -A --cached-only bench/dispatch.ts --json ;;
  kernels) step kernels 170 $BENCH kernels --json ;;
  torch_matmul) step torch_matmul 45 python3 bench/peers/torch_matmul.py ;;
  torch_kernels) step torch_kernels 45 python3 bench/peers/torch_kernels.py --json "$OUT/torch_kernels.json" ;;
  model_qwen) step model_qwen 60 $BENCH --shape qwen2.5-0.5b --seq-len 1024 --batch-size 1 --gen 128 --profile --json ;;
  model_mistral) step model_mistral 90 $BENCH --shape mistral-7b --seq-len 1024 --batch-size 1 --gen 128 --profile --json ;;
  model_tests) step model_tests 60 deno test -A --cached-only tests/model tests/engine ;;
  ops_tests) step ops_tests 150 deno test -A --cached-only tests/ops tests/gpu ;; # the 48 KiB tile paths lavapipe never takes
  hf_decode) step hf_decode 90 python3 .gpu/hf_decode.py ;; # shared/peers script, shipped in .gpu (slow)
  train_mistral)
    step train_mistral 240 $BENCH train --shape mistral-7b --seq-len 2048 --rank 64 --alpha 128 --steps 3 \
      --checkpoint false --profile --json
    ;;
  peft_step) step peft_step 120 python3 bench/peers/peft_step.py --checkpoint false ;;
  peft_step_fp32) step peft_step_fp32 120 python3 bench/peers/peft_step.py --dtype fp32 --checkpoint false ;;
  serve_mistral)
    step serve_mistral 300 $BENCH serve --shape mistral-7b --dtype f16 --clients 1,16 --requests 4 --gen 128 \
      --slots 16 --json
    ;;
  kernels_group) for n in dispatch kernels torch_matmul torch_kernels; do one $n; done ;;
  models_group) for n in model_qwen model_mistral model_tests; do one $n; done ;;
  tests_group) for n in ops_tests model_tests; do one $n; done ;;
  train_group) for n in train_mistral peft_step peft_step_fp32; do one $n; done ;;
  serve_group) one serve_mistral ;;
  hf_group) one hf_decode ;;
  *) echo "unknown measurement $1" | tee -a "$OUT/steps.txt" ;;
  esac
}
for g in $groups; do
  case $g in
  kernels | models | train | serve | hf | tests) one "${g}_group" ;;
  *) one "$g" ;;
  esac
done
{
  echo "--- summary"
  cat "$OUT/steps.txt"
  for f in "$OUT"/model_*.out "$OUT"/train_*.out "$OUT"/serve_*.out "$OUT"/peft_step*.out "$OUT"/dispatch.out; do
    [ -f "$f" ] && { echo "$f"; tail -c 900 "$f"; echo; }
  done
  for f in "$OUT"/*_tests.out; do [ -f "$f" ] && { echo "$f"; grep -E "FAILED|^error" "$f" | head -20; tail -3 "$f"; }; done
} >"$OUT/summary.txt" 2>&1
tar -czf "$FINAL/logs.tar.gz" -C "$OUT" .
cp "$OUT/summary.txt" "$FINAL/summary.txt"
cat "$FINAL/summary.txt"
