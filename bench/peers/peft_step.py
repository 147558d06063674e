"""PEFT peer of `deno task bench train`: one LoRA training step on a random-weight model, timed.

Same configuration as bench/train.ts: the architecture of a public checkpoint built from its config
(random init, no download), LoRA on the chosen projections (f32 adapter weights, base frozen), AdamW
(betas 0.9/0.999, eps 1e-8, no weight decay, gradient clipping at 1.0), one seeded batch of random token
ids with labels = ids, reused every step. Each step is forward + backward + clip + update + zero_grad and
ends with a device synchronisation; warm-up steps come first and are not timed.

Run on the GPU machine (python3 with torch, transformers, peft; no network needed):
    python3 bench/peers/peft_step.py [--shape mistral-7b] [--seq-len 2048] [--batch-size 1]
        [--rank 64] [--alpha 128] [--targets q_proj,k_proj,v_proj,o_proj] [--steps 3] [--warmup 1]
        [--checkpoint true|false] [--dtype bf16|fp32] [--lr 1e-4] [--attn sdpa|eager]
--dtype bf16 (default) runs the base in bf16 on tensor cores; --dtype fp32 runs everything in fp32 with
TF32 off (what WGSL can use). Gradient checkpointing defaults to on for seq ≥ 1024, as ours does.
Prints one JSON line; peak memory is torch.cuda.max_memory_allocated over the run (weights included).
"""
import argparse
import json
import time

import torch

# Dimensions of the public config.json files; the same numbers as src/model/random.ts SHAPES.
SHAPES = {
    "mistral-7b": ("mistral", dict(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-5,
        rope_theta=10000.0, max_position_embeddings=32768, sliding_window=4096,
        tie_word_embeddings=False)),
    "qwen2.5-0.5b": ("qwen2", dict(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0,
        max_position_embeddings=32768, tie_word_embeddings=True)),
    "llama-3.2-1b": ("llama", dict(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, head_dim=64, rms_norm_eps=1e-5,
        rope_theta=500000.0, max_position_embeddings=131072, tie_word_embeddings=True,
        rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=8192))),
    "tiny": ("llama", dict(
        vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
        rope_theta=10000.0, max_position_embeddings=4096, tie_word_embeddings=False)),
}


def flag_bool(text):
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"want true or false, got {text}")
    return text == "true"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="mistral-7b", choices=sorted(SHAPES))
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--alpha", type=float, default=128.0)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--checkpoint", type=flag_bool, default=None)
    ap.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda", help="cpu only for a smoke run of this script")
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.seq_len < 2 or a.batch_size < 1:
        ap.error("want --steps ≥ 1, --warmup ≥ 0, --seq-len ≥ 2, --batch-size ≥ 1")
    return a


def build_model(args, dtype):
    """The random-weight base model, made directly on the GPU in `dtype` (no f32 copy first)."""
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, dims = SHAPES[args.shape]
    config = AutoConfig.for_model(model_type, **dims)
    config.use_cache = False
    torch.manual_seed(args.seed)
    # transformers 5 renamed torch_dtype to dtype (the old name still works there, with a warning).
    key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(config, attn_implementation=args.attn, **{key: dtype})
    return model.to(dtype)


def attach_lora(model, args):
    """LoRA on the target projections; the base stays frozen, the adapter weights become f32."""
    from peft import LoraConfig, get_peft_model

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    lora = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, bias="none",
                      target_modules="all-linear" if targets == ["all"] else targets,
                      task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    for p in trainable:
        p.data = p.data.float()
    return peft_model, trainable


def main():
    args = parse_args()
    fp32 = args.dtype == "fp32"
    if fp32:
        # fp32 means fp32: no TF32 tensor-core shortcut in matmuls or convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    dtype = torch.float32 if fp32 else torch.bfloat16
    checkpoint = args.checkpoint if args.checkpoint is not None else args.seq_len >= 1024

    model = build_model(args, dtype)
    frozen = sum(p.numel() for p in model.parameters())
    if checkpoint:
        # Non-reentrant checkpointing needs no requires_grad on the (frozen) embedding output.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if not model.is_gradient_checkpointing:
            raise SystemExit("gradient checkpointing did not switch on")
    model, trainable = attach_lora(model, args)
    model.train()
    opt = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    gen = torch.Generator(device=args.device).manual_seed(args.seed + 2)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch_size, args.seq_len), device=args.device, generator=gen)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = step()
        losses.append(loss.item())  # the readback is the step's synchronisation
        sync()
        times.append(time.perf_counter() - t0)
    timed = times[args.warmup:]
    mean = sum(timed) / len(timed)
    tokens = args.batch_size * args.seq_len

    import peft
    import transformers

    print(json.dumps({
        "peer": "peft",
        "model": f"shape {args.shape}",
        "device": torch.cuda.get_device_name() if cuda else args.device,
        "weights": args.dtype,
        "attn": args.attn,
        "params": frozen,
        "trainable_params": sum(p.numel() for p in trainable),
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "tokens_per_step": tokens,
        "lora_rank": args.rank,
        "lora_alpha": args.alpha,
        "lora_targets": args.targets.split(","),
        "checkpoint": checkpoint,
        "warmup": args.warmup,
        "steps": args.steps,
        "warmup_s": sum(times[:args.warmup]),
        "step_s_mean": mean,
        "step_s_min": min(timed),
        "tokens_per_s": tokens / mean,
        "max_memory_allocated_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "max_memory_reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
        "losses": losses,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__},
    }), flush=True)


if __name__ == "__main__":
    main()
