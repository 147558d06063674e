#!/usr/bin/env python3
"""PEFT oracle for webtune's trainer (issue 4). Run on the GPU machine (torch + transformers + peft):

    python tools/peft_reference.py            # from the repository root

Inputs (committed, written by `deno test -A tests/train/trainer_peft_test.ts -- --write-inputs`):
  tests/train/fixtures/trainer_peft_inputs.json   hyper-parameters, the exact token batches of 20 steps,
                                                  our per-step losses, a probe and our logits on it
  tests/train/fixtures/trainer_peft_init/         the step-0 adapter webtune drew (PEFT folder)
  tests/train/fixtures/trainer_peft_trained/      the adapter webtune trained (PEFT folder)
  tests/testdata/llama/                           the tiny base model (f32)

It trains the step-0 adapter with HF PEFT + torch.optim.AdamW on the same batches, in float32, with the
same loss normalisation (sum of token losses over the step / trained tokens of the step; labels shifted
inside, -100 ignored), clip_grad_norm_ and a constant learning rate, and loads OUR trained adapter in PEFT
to compute the probe's logits. Output: tests/train/fixtures/trainer_peft_reference.json
  { peft_losses: [...20], peft_grad_norms: [...], peft_probe_logits_of_our_adapter: [...],
    versions: {...}, max_rel_loss_diff: x, probe_logits_rel_l2: y }
which tests/train/trainer_peft_test.ts then compares (losses within 1e-3 relative, logits 1e-4 rel L2).
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
import transformers
import peft
from peft import PeftModel
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "train", "fixtures")


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False  # the comparison is in plain float32
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with open(os.path.join(FIX, "trainer_peft_inputs.json")) as f:
        inp = json.load(f)
    h = inp["hyper"]
    base_dir = os.path.join(ROOT, inp["base_model"])

    def base():
        return AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32).to(device)

    model = PeftModel.from_pretrained(base(), os.path.join(FIX, "trainer_peft_init"), is_trainable=True)
    model.train()  # lora_dropout is 0: train mode changes nothing else for Llama
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params,
        lr=h["learning_rate"],
        betas=(h["adam_beta1"], h["adam_beta2"]),
        eps=h["adam_epsilon"],
        weight_decay=h["weight_decay"],
    )
    losses, norms = [], []
    for b in inp["batches"][: h["max_steps"]]:
        ids = torch.tensor(b["input_ids"], device=device)
        labels = torch.tensor(b["labels"], device=device)
        # Right padding with causal attention: real tokens never see the pads, so no mask is needed and
        # positions are 0..T-1 per row, as in webtune.
        logits = model(input_ids=ids).logits.float()
        shifted = torch.full_like(labels, -100)
        shifted[:, :-1] = labels[:, 1:]
        tok = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=-100,
                              reduction="sum")
        n = (shifted != -100).sum()
        loss = tok / n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, h["max_grad_norm"])
        opt.step()
        losses.append(loss.item())
        norms.append(norm.item())

    ours = inp["our_losses"]
    rel = max(abs(a - b) / abs(b) for a, b in zip(ours, losses))

    # Our trained adapter, loaded by PEFT: logits of the probe.
    trained = PeftModel.from_pretrained(base(), os.path.join(FIX, "trainer_peft_trained")).eval()
    with torch.no_grad():
        probe = torch.tensor([inp["probe_ids"]], device=device)
        logits = trained(input_ids=probe).logits.float().reshape(-1).cpu()
    want = torch.tensor(inp["our_probe_logits"])
    l2 = (torch.linalg.vector_norm(want - logits) / torch.linalg.vector_norm(logits)).item()

    out = {
        "peft_losses": losses,
        "peft_grad_norms": norms,
        "peft_probe_logits_of_our_adapter": logits.tolist(),
        "max_rel_loss_diff": rel,
        "probe_logits_rel_l2": l2,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                     "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"},
    }
    with open(os.path.join(FIX, "trainer_peft_reference.json"), "w") as f:
        json.dump(out, f)
    print(f"max relative loss difference {rel:.3e} (want <= 1e-3); probe logits rel L2 {l2:.3e} (want <= 1e-4)")
    for i, (a, b) in enumerate(zip(ours, losses)):
        print(f"step {i + 1:2d}: webtune {a:.6f}  peft {b:.6f}")
    sys.exit(0 if rel <= 1e-3 and l2 <= 1e-4 and all(math.isfinite(x) for x in losses) else 1)


if __name__ == "__main__":
    main()
