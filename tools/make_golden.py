#!/usr/bin/env python3
"""Golden outputs of Hugging Face transformers / tokenizers / PEFT for webtune's model tests.

Runs on the GPU machine's python (torch, transformers, peft, tokenizers, safetensors), on the CPU (tiny
models; CPU float32 is deterministic and free of TF32). Everything is seeded. Writes, under --out:

  testdata/tok_bytelevel/        tokenizer.json + tokenizer_config.json (Llama-3 style byte-level BPE)
  testdata/tok_sentencepiece/    the same for a Llama-2/Mistral style BPE with byte fallback and ▁
  testdata/llama/                tiny Llama (llama3 rope_scaling, untied), config + safetensors + tokenizer
  testdata/mistral/              tiny Mistral (sliding_window 6 < the prompts), SentencePiece-style tokenizer
  testdata/qwen2/                tiny Qwen2 (q/k/v bias, tied embeddings, two EOS ids)
  testdata/llama_lora/           PEFT LoRA on the tiny Llama, every projection, NON-ZERO lora_B
  testdata/qwen2_rslora/         PEFT rsLoRA on the tiny Qwen2, q_proj + v_proj
  testdata/llama_bf16/           the tiny Llama saved in BF16 (logits only)
  testdata/golden.json           tokenizer ids, logits, greedy and batch generations (see below)
and packs testdata/ into testdata.tgz next to golden.json (the device tool returns plain files only).

Every section runs in its own try block: a failure is logged into golden.json["errors"] and the other
sections still run (the device run is made exactly once).

Usage: python3 tools/make_golden.py --out OUTDIR
"""
import argparse
import json
import math
import os
import shutil
import tarfile
import traceback

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A patient presents with fever, cough and shortness of breath for three days.",
    "Rare diseases affect fewer than 1 in 2000 people; many are genetic.",
    "Hello world! Hello again, world. 12345 67890",
    "患者出现发热、咳嗽和呼吸困难三天。",
    "罕见病是指发病率很低的疾病，很多是遗传性的。",
    "机器学习模型可以帮助医生诊断疾病。",
    "今天天气很好，我们去公园散步吧。",
    "Emoji test: 😀 😃 🎉 🚀 ❤️ 👍🏽 🇨🇳",
    "Mixed 中文 and English 文本 with emoji 🎉 and numbers 42.",
    "def main():\n    print('hello')\n    return 0\n",
    "  leading spaces, trailing spaces   \n\n\ttabs\tand newlines\r\n",
    "Question: what is the diagnosis? Answer: Fabry disease (法布雷病).",
    "The mitochondria is the powerhouse of the cell. 线粒体是细胞的动力工厂。",
    "Symptoms include fatigue, muscle weakness, and joint pain over several months.",
    "Translation: 你好，世界！ means Hello, world!",
] * 4

TOKENIZER_TEXTS = [
    "Hello world!",
    "The patient has a fever of 39.5°C and a cough.",
    "患者出现发热、咳嗽和呼吸困难。",
    "emoji 😀🎉🚀 and 👍🏽 skin tone, flags 🇨🇳",
    "  two leading spaces\tand a tab\nnew line\r\n",
    "mixed 中文English混合 text 123456789",
    "unseen: Zürich naïve café ß Ωμέγα",
    "",
    " ",
    "罕见病 rare disease 🧬",
]

PROMPTS = [
    "Hello world! The quick brown fox",
    "患者出现发热和咳嗽，",
    "Rare diseases affect fewer than 1 in 2000 people. A patient presents with fever 😀 and",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHAT_MESSAGES = [
    {"role": "system", "content": "You are a helpful medical assistant."},
    {"role": "user", "content": "患者发热三天，咳嗽。What is the diagnosis?"},
]

LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)

GEN_TOKENS = 32


def bytelevel_tokenizer():
    """Llama-3 style: Split(regex) + ByteLevel(use_regex=False), BOS added by TemplateProcessing."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=500, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
            special_tokens=[("<|begin_of_text|>", bos)],
        ),
    ])
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
        "eos_token": "<|end_of_text|>", "pad_token": "<|pad|>", "chat_template": CHAT_TEMPLATE,
        "model_max_length": 256, "clean_up_tokenization_spaces": False,
    }
    return tok, config


def sentencepiece_tokenizer():
    """Llama-2 / Mistral style: ▁ normalizer, BPE with byte_fallback, <0xNN> tokens at ids 3..258."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(
        vocab_size=420, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=120, show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    j = json.loads(tok.to_str())
    old = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {}
    for name in ["<unk>", "<s>", "</s>"]:
        vocab[name] = len(vocab)
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for name, _ in old:
        if name not in vocab:
            vocab[name] = len(vocab)
    j["model"]["vocab"] = vocab
    for t in j["added_tokens"]:
        t["id"] = vocab[t["content"]]
    tok = Tokenizer.from_str(json.dumps(j))
    tok.decoder = decoders.Sequence([
        decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0),
    ])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])],
    )
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "model_max_length": 256, "clean_up_tokenization_spaces": False,
        "add_bos_token": True, "add_eos_token": False,
    }
    return tok, config


def save_tokenizer(tok, config, d):
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)


def tokenizer_golden(tok, d):
    out = {"dir": os.path.basename(d), "vocab_size": tok.get_vocab_size(), "cases": []}
    for text in TOKENIZER_TEXTS:
        plain = tok.encode(text, add_special_tokens=False).ids
        special = tok.encode(text, add_special_tokens=True).ids
        out["cases"].append({
            "text": text, "ids": plain, "ids_special": special,
            "decoded": tok.decode(plain, skip_special_tokens=True),
        })
    return out


def randomize(model, seed):
    """Weights with O(1) activations and peaked logits, so greedy choices are far from ties."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or "lm_head" in name:
                p.copy_(0.4 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))


def legacy_rope_keys(d):
    """transformers v5 writes rope_parameters; keep the v4 keys (rope_theta, rope_scaling) too."""
    path = os.path.join(d, "config.json")
    with open(path) as f:
        c = json.load(f)
    rp = c.get("rope_parameters")
    if isinstance(rp, dict):
        if "rope_theta" not in c and "rope_theta" in rp:
            c["rope_theta"] = rp["rope_theta"]
        if c.get("rope_scaling") is None and rp.get("rope_type", "default") != "default":
            c["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
    with open(path, "w") as f:
        json.dump(c, f, indent=2)


def build_model(kind, d, vocab, bos, eos, pad, seed):
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    common = dict(
        vocab_size=vocab, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5,
        bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, torch_dtype="float32",
    )
    if kind == "llama":
        scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 64}
        cfg = tf.LlamaConfig(**common, head_dim=16, rope_theta=500000.0, tie_word_embeddings=False,
                             rope_scaling=scaling)
        if "llama3" not in json.dumps(cfg.to_dict()):  # transformers v5 spells it rope_parameters
            cfg = tf.LlamaConfig(**common, head_dim=16, tie_word_embeddings=False,
                                 rope_parameters={**scaling, "rope_theta": 500000.0})
        if "llama3" not in json.dumps(cfg.to_dict()):
            raise RuntimeError("could not set llama3 rope scaling: " + json.dumps(cfg.to_dict()))
        model = tf.LlamaForCausalLM(cfg)
    elif kind == "mistral":
        cfg = tf.MistralConfig(**common, head_dim=16, rope_theta=10000.0, sliding_window=6,
                               tie_word_embeddings=False)
        model = tf.MistralForCausalLM(cfg)
    else:
        cfg = tf.Qwen2Config(**common, rope_theta=1000000.0, tie_word_embeddings=True,
                             use_sliding_window=False)
        model = tf.Qwen2ForCausalLM(cfg)
    randomize(model, seed)
    model.save_pretrained(d, safe_serialization=True)
    legacy_rope_keys(d)
    return load(kind, d)


def load(kind, d):
    import torch
    import transformers as tf

    cls = {"llama": tf.LlamaForCausalLM, "mistral": tf.MistralForCausalLM, "qwen2": tf.Qwen2ForCausalLM}[kind]
    m = cls.from_pretrained(d, attn_implementation="eager")
    return m.to(torch.float32).eval()


def round_list(t, digits=6):
    return [float("%.*g" % (digits, x)) for x in t.reshape(-1).tolist()]


def logits_golden(model, prompts):
    import torch

    out = []
    with torch.no_grad():
        for ids in prompts:
            logits = model(torch.tensor([ids])).logits[0]  # [T, V]
            out.append({
                "prompt_ids": ids, "last": round_list(logits[-1], 7),
                "rows_first32": [round_list(r[:32], 7) for r in logits],
                "argmax": logits.argmax(-1).tolist(),
            })
    return out


def greedy_manual(model, ids, n):
    """Full recomputation per token, no cache, no EOS stop: the model's own definition of greedy."""
    import torch

    seq = list(ids)
    with torch.no_grad():
        for _ in range(n):
            seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    return seq[len(ids):]


def generations(model, prompts, pad):
    import torch

    res = []
    with torch.no_grad():
        for ids in prompts:
            out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=GEN_TOKENS, do_sample=False, pad_token_id=pad)
            res.append({
                "prompt_ids": ids, "greedy_no_eos": greedy_manual(model, ids, GEN_TOKENS),
                "generate": out[0, len(ids):].tolist(),
            })
        # Batch: left padding with an attention mask, prompts of different lengths.
        T = max(len(p) for p in prompts)
        batch = torch.tensor([[pad] * (T - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in prompts])
        out = model.generate(input_ids=batch, attention_mask=mask, max_new_tokens=GEN_TOKENS, do_sample=False,
                             pad_token_id=pad)
    return res, {"prompts": prompts, "generate": out[:, T:].tolist()}


def add_lora(kind, base_dir, d, targets, r, alpha, rslora, seed):
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    base = load(kind, base_dir)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, bias="none",
                     task_type="CAUSAL_LM", use_rslora=rslora)
    pm = get_peft_model(base, cfg)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    pm.save_pretrained(d, safe_serialization=True)
    return pm.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    root = os.path.join(args.out, "testdata")
    os.makedirs(root, exist_ok=True)
    golden = {"errors": [], "versions": {}, "gen_tokens": GEN_TOKENS}

    def section(name, fn):
        try:
            fn()
            print("ok:", name, flush=True)
        except Exception:
            golden["errors"].append({"section": name, "trace": traceback.format_exc()})
            print("FAILED:", name, traceback.format_exc(), flush=True)

    def versions():
        import peft
        import tokenizers
        import torch
        import transformers
        golden["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                              "peft": peft.__version__, "tokenizers": tokenizers.__version__}
    section("versions", versions)

    toks = {}

    def tokenizers_section():
        for name, build in [("tok_bytelevel", bytelevel_tokenizer), ("tok_sentencepiece", sentencepiece_tokenizer)]:
            tok, config = build()
            d = os.path.join(root, name)
            save_tokenizer(tok, config, d)
            toks[name] = (tok, config)
            golden[name] = tokenizer_golden(tok, d)
    section("tokenizers", tokenizers_section)

    def chat_section():
        from transformers import AutoTokenizer
        t = AutoTokenizer.from_pretrained(os.path.join(root, "tok_bytelevel"))
        text = t.apply_chat_template(CHAT_MESSAGES, add_generation_prompt=True, tokenize=False)
        golden["chat"] = {"messages": CHAT_MESSAGES, "text": text,
                          "ids": t(text, add_special_tokens=False)["input_ids"]}
    section("chat template", chat_section)

    specs = [("llama", "tok_bytelevel", 11), ("mistral", "tok_sentencepiece", 22), ("qwen2", "tok_bytelevel", 33)]
    models = {}
    for kind, tname, seed in specs:
        def model_section(kind=kind, tname=tname, seed=seed):
            tok, config = toks[tname]
            d = os.path.join(root, kind)
            bos = tok.token_to_id(config["bos_token"])
            eos = tok.token_to_id(config["eos_token"])
            if kind == "qwen2":
                eos = [tok.token_to_id("<|im_end|>"), eos]
            pad = tok.token_to_id(config.get("pad_token", config["eos_token"]))
            model = build_model(kind, d, tok.get_vocab_size(), bos, eos, pad, seed)
            save_tokenizer(tok, config, d)
            prompts = [tok.encode(p, add_special_tokens=True).ids for p in PROMPTS]
            gens, batch = generations(model, prompts, pad)
            models[kind] = (model, prompts, pad)
            golden[kind] = {"dir": kind, "pad": pad, "logits": logits_golden(model, prompts),
                            "generations": gens, "batch": batch}
        section(f"model {kind}", model_section)

    adapters = [("llama_lora", "llama", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                         "down_proj"], 4, 8, False, 44),
                ("qwen2_rslora", "qwen2", ["q_proj", "v_proj"], 8, 16, True, 55)]
    for name, kind, targets, r, alpha, rs, seed in adapters:
        def adapter_section(name=name, kind=kind, targets=targets, r=r, alpha=alpha, rs=rs, seed=seed):
            _, prompts, pad = models[kind]
            pm = add_lora(kind, os.path.join(root, kind), os.path.join(root, name), targets, r, alpha, rs, seed)
            gens, batch = generations(pm, prompts, pad)
            golden[name] = {"dir": name, "base": kind, "pad": pad, "logits": logits_golden(pm, prompts),
                            "generations": gens, "batch": batch}
        section(f"adapter {name}", adapter_section)

    def bf16_section():
        import torch
        _, prompts, _ = models["llama"]
        d = os.path.join(root, "llama_bf16")
        load("llama", os.path.join(root, "llama")).to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
        legacy_rope_keys(d)
        tok, config = toks["tok_bytelevel"]
        save_tokenizer(tok, config, d)
        # HF computes in f32 on the bf16-rounded weights: our f16 path (BF16 → f16 is exact here) must agree.
        golden["llama_bf16"] = {"dir": "llama_bf16", "logits": logits_golden(load("llama", d), prompts)}
    section("llama bf16 checkpoint", bf16_section)

    with open(os.path.join(root, "golden.json"), "w") as f:
        json.dump(golden, f, ensure_ascii=False)
    shutil.copy(os.path.join(root, "golden.json"), os.path.join(args.out, "golden.json"))
    with tarfile.open(os.path.join(args.out, "testdata.tgz"), "w:gz") as tar:
        tar.add(root, arcname="testdata")
    shutil.rmtree(root)
    print("errors:", len(golden["errors"]))


if __name__ == "__main__":
    main()
