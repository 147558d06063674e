"""Cross-check src/io against the Hugging Face libraries (run on the GPU machine, from the repo root):

    python3 tests/io/crosscheck/hf_crosscheck.py   # $OUT/hf/ receives everything below

1. tokenizers + transformers on tests/io/fixtures/{bytelevel_bpe,sentencepiece_bpe}: ids with and without
   special tokens, decodes, chat templates (texts.json, chats.json) -> hf/tokenizer_golden.json
2. safetensors written by torch (F32/F16/BF16/I64, 0-d and empty tensors) -> hf/torch.safetensors + values,
   and a sharded save by huggingface_hub -> hf/torch_sharded/
3. our writers' files (tests/io/crosscheck/ours, from make_inputs.ts) opened by safetensors and PEFT
4. an adapter saved by PEFT (rsLoRA, all 7 projections, non-zero B) -> hf/peft_adapter/ + values
5. variants of the SentencePiece-style fixture (Metaspace split=true; legacy Llama 2 normalizer Prepend +
   Replace with no pre-tokenizer) -> hf/variants/<name>/tokenizer.json + golden ids
Prints one line per check and writes hf/report.json.
"""
import json, os, traceback
import torch
from safetensors.torch import save_file, load_file
from safetensors import safe_open

OUT = os.path.join(os.environ.get("OUT", "/tmp/out"), "hf")
os.makedirs(OUT, exist_ok=True)
HERE = "tests/io/crosscheck"
FIX = "tests/io/fixtures"
report = {}


def check(name, fn):
    try:
        report[name] = {"ok": True, "detail": fn()}
        print(f"OK   {name}: {report[name]['detail']}")
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the others
        report[name] = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def tokenizers_golden():
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    import transformers, tokenizers
    texts = json.load(open(f"{HERE}/texts.json"))
    chats = json.load(open(f"{HERE}/chats.json"))
    out = {"versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__}}
    for name in ["bytelevel_bpe", "sentencepiece_bpe"]:
        d = f"{FIX}/{name}"
        raw = Tokenizer.from_file(f"{d}/tokenizer.json")
        entry = {"encode": [], "chat": []}
        try:
            hf = AutoTokenizer.from_pretrained(d)
            entry["transformers_class"] = type(hf).__name__
        except Exception as e:  # noqa: BLE001
            hf = None
            entry["transformers_error"] = str(e)
        for t in texts:
            ids = raw.encode(t, add_special_tokens=True).ids
            e = {
                "text": t,
                "ids": ids,
                "ids_no_special": raw.encode(t, add_special_tokens=False).ids,
                "decode": raw.decode(ids, skip_special_tokens=False),
                "decode_skip": raw.decode(ids, skip_special_tokens=True),
            }
            if hf is not None:
                e["transformers_ids"] = hf(t)["input_ids"]
                e["transformers_decode"] = hf.decode(ids)
                e["transformers_decode_skip"] = hf.decode(ids, skip_special_tokens=True)
            entry["encode"].append(e)
        if hf is not None:
            for m in chats:
                for gen in (False, True):
                    text = hf.apply_chat_template(m, tokenize=False, add_generation_prompt=gen)
                    entry["chat"].append({"messages": m, "add_generation_prompt": gen, "text": text,
                                          "ids": hf(text, add_special_tokens=False)["input_ids"]})
        out[name] = entry
    json.dump(out, open(f"{OUT}/tokenizer_golden.json", "w"), ensure_ascii=False, indent=1)
    return {k: len(v["encode"]) for k, v in out.items() if k != "versions"} | out["versions"]


def torch_files():
    g = torch.Generator().manual_seed(0)
    ts = {
        "f32": torch.randn(3, 5, generator=g),
        "f16": (torch.randn(7, generator=g) * 10).half(),
        "bf16": (torch.randn(2, 3, 4, generator=g) * 100).bfloat16(),
        "i64": torch.arange(-3, 3, dtype=torch.int64),
        "empty": torch.zeros(0, 4),
        "scalar": torch.tensor(2.5),
    }
    save_file(ts, f"{OUT}/torch.safetensors", metadata={"format": "pt", "note": "made by torch"})
    json.dump({k: v.float().flatten().tolist() for k, v in ts.items()}, open(f"{OUT}/torch_values.json", "w"))
    shard_note = "skipped"
    try:
        from huggingface_hub import save_torch_state_dict
        os.makedirs(f"{OUT}/torch_sharded", exist_ok=True)
        big = {f"layers.{i}.w": torch.randn(16, 16, generator=g) for i in range(4)}
        save_torch_state_dict(big, f"{OUT}/torch_sharded", max_shard_size="2KB")
        json.dump({k: v.flatten().tolist() for k, v in big.items()}, open(f"{OUT}/torch_sharded_values.json", "w"))
        shard_note = sorted(os.listdir(f"{OUT}/torch_sharded"))
    except Exception as e:  # noqa: BLE001
        shard_note = f"huggingface_hub sharding unavailable: {e}"
    return {"single": list(ts), "sharded": shard_note}


def ours_safetensors():
    want = json.load(open(f"{HERE}/ours/values.json"))
    got = load_file(f"{HERE}/ours/model.safetensors")
    with safe_open(f"{HERE}/ours/model.safetensors", "pt") as f:
        meta = f.metadata()
    dtypes = {k: str(v.dtype) for k, v in got.items()}
    for k, v in want.items():
        assert got[k].float().flatten().tolist() == v, f"{k} values differ"
    idx = json.load(open(f"{HERE}/ours/sharded/model.safetensors.index.json"))
    merged = {}
    for shard in sorted(set(idx["weight_map"].values())):
        merged.update(load_file(f"{HERE}/ours/sharded/{shard}"))
    for k, v in want.items():
        assert merged[k].float().flatten().tolist() == v, f"sharded {k} values differ"
    return {"dtypes": dtypes, "metadata": meta, "shards": sorted(set(idx["weight_map"].values()))}


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    return LlamaForCausalLM(cfg)


def ours_peft():
    from peft import PeftModel
    pm = PeftModel.from_pretrained(tiny_llama(), f"{HERE}/ours/adapter")
    ours = load_file(f"{HERE}/ours/adapter/adapter_model.safetensors")
    q = pm.base_model.model.model.layers[1].self_attn.q_proj
    v = pm.base_model.model.model.layers[0].self_attn.v_proj
    assert torch.equal(q.lora_A["default"].weight, ours["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"])
    assert torch.equal(v.lora_B["default"].weight, ours["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"])
    return {"scaling": q.scaling["default"], "A": list(q.lora_A["default"].weight.shape),
            "B_v": list(v.lora_B["default"].weight.shape), "tensors": len(ours)}


def peft_adapter():
    from peft import LoraConfig, get_peft_model
    pm = get_peft_model(tiny_llama(), LoraConfig(
        r=4, lora_alpha=16, lora_dropout=0.0, use_rslora=True, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    pm.save_pretrained(f"{OUT}/peft_adapter")
    sd = load_file(f"{OUT}/peft_adapter/adapter_model.safetensors")
    json.dump({k: {"shape": list(v.shape), "values": v.float().flatten().tolist()} for k, v in sd.items()},
              open(f"{OUT}/peft_adapter_values.json", "w"))
    return {"tensors": len(sd), "files": sorted(os.listdir(f"{OUT}/peft_adapter"))}


def tokenizer_variants():
    from tokenizers import Tokenizer
    texts = json.load(open(f"{HERE}/texts.json")) + ["Hello  x", "a   b    c", "  two leading", "x\n  y"]
    base = json.load(open(f"{FIX}/sentencepiece_bpe/tokenizer.json"))
    metaspace = dict(base["pre_tokenizer"])
    variants = {
        "metaspace_split": dict(base, pre_tokenizer=dict(metaspace, split=True)),
        "legacy_llama2": dict(base, pre_tokenizer=None, normalizer={"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}),
    }
    out = {}
    for name, tj in variants.items():
        d = f"{OUT}/variants/{name}"
        os.makedirs(d, exist_ok=True)
        json.dump(tj, open(f"{d}/tokenizer.json", "w"), ensure_ascii=False, indent=2)
        tok = Tokenizer.from_file(f"{d}/tokenizer.json")
        out[name] = [{"text": t, "ids": tok.encode(t).ids, "ids_no_special": tok.encode(t, add_special_tokens=False).ids,
                      "decode_skip": tok.decode(tok.encode(t).ids, skip_special_tokens=True)} for t in texts]
    json.dump(out, open(f"{OUT}/variants/golden.json", "w"), ensure_ascii=False, indent=1)
    return {k: len(v) for k, v in out.items()}


check("tokenizers", tokenizers_golden)
check("tokenizer_variants", tokenizer_variants)
check("torch_safetensors", torch_files)
check("ours_safetensors_in_torch", ours_safetensors)
check("ours_adapter_in_peft", ours_peft)
check("peft_adapter", peft_adapter)
json.dump(report, open(f"{OUT}/report.json", "w"), indent=1, default=str)
