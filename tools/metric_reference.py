#!/usr/bin/env python3
"""Reference values for webtune's evaluation metrics, computed with the real Python libraries.

Reads tests/eval/fixtures/pairs.jsonl ({"id", "lang", "prediction", "reference"} per line) and writes
a JSON file that tests/eval/metrics_test.ts compares our TypeScript metrics against (to 1e-6).

Libraries (each optional: a missing one is recorded under "missing" and its values are skipped):
  sacrebleu      corpus_bleu / sentence_bleu with tokenize="13a" and "zh", and its tokenizers
  torchmetrics   SacreBLEUScore (13a, zh) as a second opinion on corpus BLEU
  nltk           sentence_bleu(..., SmoothingFunction().method3) on characters (LLaMA-Factory bleu-4)
  jieba          jieba.cut (LLaMA-Factory's segmentation for ROUGE)
  rouge_chinese  Rouge().get_scores (LLaMA-Factory's ROUGE)
The LLaMA-Factory block repeats ComputeSimilarity.__call__ (src/llamafactory/train/sft/metric.py)
on already decoded strings. Token F1 has no standard library for mixed zh/en text: it is
recomputed here from its written definition (src/eval/metrics/f1.ts) with the standard library only,
as an independent second implementation.

Each section is computed independently; a section whose library is missing or fails is recorded
under "missing" with the error, and "provenance" says where and with which versions each section
was computed. --merge fills the sections this run could not compute from an earlier output (e.g.
sacrebleu/torchmetrics from the GPU machine, NLTK from a machine whose Python it still supports).

Usage: python3 tools/metric_reference.py [--pairs FILE] [--out FILE] [--lib-path DIR ...]
                                         [--where TEXT] [--merge FILE]

How the committed reference_values.json was made (2026-11-29): .pyref/ (git-ignored) held Debian's
python3-jieba 0.42.1 and python3-nltk 3.8 (`apt-get download`, `dpkg -x`) and rouge_chinese 1.0.3
from its source repository. On the H200 machine (Python 3.12.3, sacrebleu 2.6.0, torchmetrics
1.9.0): `python3 tools/metric_reference.py --lib-path .pyref --out $OUT/reference_values.json`
(NLTK 3.8 fails there: Python 3.12's Fraction has no `_normalize`). Then on a dev machine (Python
3.11): `python3 tools/metric_reference.py --lib-path .pyref --merge <H200 output>`.
  --lib-path appends directories to sys.path (pure-Python copies of jieba, nltk, rouge_chinese, for
  machines where they are not installed; an installed copy wins).
"""
import argparse
import collections
import json
import os
import sys
import unicodedata


def load_pairs(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def is_cjk(cp):
    return (0x3400 <= cp <= 0x4DBF or 0x4E00 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF
            or 0x20000 <= cp <= 0x2FFFF or 0x3040 <= cp <= 0x30FF or 0xAC00 <= cp <= 0xD7AF)


def f1_tokens(text):
    tokens, word = [], ""
    for ch in unicodedata.normalize("NFKC", text).lower():
        if is_cjk(ord(ch)):
            if word:
                tokens.append(word)
                word = ""
            tokens.append(ch)
        elif unicodedata.category(ch)[0] in "LN":
            word += ch
        elif word:
            tokens.append(word)
            word = ""
    if word:
        tokens.append(word)
    return tokens


def token_f1(pred, ref):
    p, r = f1_tokens(pred), f1_tokens(ref)
    if not p or not r:
        return float(len(p) == len(r))
    common = sum((collections.Counter(p) & collections.Counter(r)).values())
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(r)
    return 2 * prec * rec / (prec + rec)


ASCII_BITS = ["4-6", "COVID-19", "a-1.5%", "C++11", "c#", "AT&T", "3.5mg", "IL-6", "HbA1c", "50%", "x_y",
              "1,000", "v2.0.1", "--", "A+B", "#3", "e.g.", "T2DM", "β-2", "10%-20%", "ALS", "10.5%", " ", "\n"]


def fuzz_texts(corpus, count):
    """Deterministic mixed strings: slices of the fixture texts glued to awkward ASCII fragments."""
    import random
    rng = random.Random(1234)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.5:
                src = rng.choice(corpus) or "空"
                a = rng.randrange(len(src))
                parts.append(src[a:a + rng.randint(1, 12)])
            else:
                parts.append(rng.choice(ASCII_BITS))
        texts.append("".join(parts))
    return texts


def bleu_dict(b):
    return {"score": b.score, "counts": list(b.counts), "totals": list(b.totals),
            "precisions": list(b.precisions), "bp": b.bp, "sys_len": b.sys_len, "ref_len": b.ref_len}


def section_sacrebleu(preds, refs, versions):
    import sacrebleu
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh
    versions["sacrebleu"] = sacrebleu.__version__
    sb = {}
    for name, tok in {"13a": Tokenizer13a(), "zh": TokenizerZh()}.items():
        sb[name] = {
            "corpus": bleu_dict(sacrebleu.corpus_bleu(preds, [refs], tokenize=name)),
            "sentence": [sacrebleu.sentence_bleu(p, [r], tokenize=name).score for p, r in zip(preds, refs)],
            "tokens_pred": [tok(p.rstrip()) for p in preds],
            "tokens_ref": [tok(r.rstrip()) for r in refs],
        }
    return sb


def section_torchmetrics(preds, refs, versions):
    import torchmetrics
    from torchmetrics.text import SacreBLEUScore
    versions["torchmetrics"] = torchmetrics.__version__
    return {f"sacrebleu_{name}": float(SacreBLEUScore(tokenize=name)(preds, [[r] for r in refs])) * 100
            for name in ("13a", "zh")}


def nltk_bleu(versions):
    import nltk
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    versions["nltk"] = nltk.__version__
    return lambda label, pred: sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)


def section_nltk_char_bleu(preds, refs, versions):
    bleu = nltk_bleu(versions)
    return [bleu(r, p) for p, r in zip(preds, refs)]


def load_jieba(versions):
    import jieba
    jieba.setLogLevel(60)
    versions["jieba"] = jieba.__version__
    return jieba


def section_jieba(preds, refs, versions):
    jieba = load_jieba(versions)
    return {"pred": [list(jieba.cut(p)) for p in preds], "ref": [list(jieba.cut(r)) for r in refs]}


def section_jieba_fuzz(preds, refs, versions):
    jieba = load_jieba(versions)
    texts = fuzz_texts(preds + refs, 400)
    return {"texts": texts, "tokens": [list(jieba.cut(t)) for t in texts]}


def section_llamafactory(preds, refs, versions):
    """ComputeSimilarity.__call__ from LLaMA-Factory, after batch_decode."""
    jieba = load_jieba(versions)
    import rouge_chinese
    versions["rouge_chinese"] = rouge_chinese.__version__
    bleu = nltk_bleu(versions)
    score_dict = {"rouge-1": [], "rouge-2": [], "rouge-l": [], "bleu-4": []}
    raw = {"rouge-1": [], "rouge-2": [], "rouge-l": []}
    for pred, label in zip(preds, refs):
        hypothesis = list(jieba.cut(pred))
        reference = list(jieba.cut(label))
        if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
            result = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
        else:
            rouge = rouge_chinese.Rouge()
            scores = rouge.get_scores(" ".join(hypothesis), " ".join(reference))
            result = scores[0]
        for k, v in result.items():
            score_dict[k].append(round(v["f"] * 100, 4))
            raw[k].append(v["f"])
        score_dict["bleu-4"].append(round(bleu(label, pred) * 100, 4))
    try:
        import numpy as np
        means = {k: float(np.mean(v)) for k, v in score_dict.items()}
    except ImportError:
        means = {k: sum(v) / len(v) for k, v in score_dict.items()}
    return {"per_sample": score_dict, "mean": means, "rouge_f_unrounded": raw}


def section_token_f1(preds, refs, versions):
    per_sample = [token_f1(p, r) for p, r in zip(preds, refs)]
    return {"source": "independent stdlib implementation of the definition in src/eval/metrics/f1.ts",
            "per_sample": per_sample, "mean": sum(per_sample) / len(per_sample)}


SECTIONS = {
    "token_f1": section_token_f1,
    "sacrebleu": section_sacrebleu,
    "torchmetrics": section_torchmetrics,
    "nltk_char_bleu": section_nltk_char_bleu,
    "jieba": section_jieba,
    "jieba_fuzz": section_jieba_fuzz,
    "llamafactory": section_llamafactory,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", default="tests/eval/fixtures/pairs.jsonl")
    ap.add_argument("--out", default="tests/eval/fixtures/reference_values.json")
    ap.add_argument("--lib-path", action="append", default=[])
    ap.add_argument("--where", default="", help="where this run happens, recorded with each section")
    ap.add_argument("--merge", help="an earlier output: its sections fill in the ones this run could not compute")
    args = ap.parse_args()
    # Appended, so an installed copy of a library wins over a carried one.
    sys.path.extend(os.path.abspath(p) for p in args.lib_path)

    pairs = load_pairs(args.pairs)
    preds = [p["prediction"] for p in pairs]
    refs = [p["reference"] for p in pairs]
    out = {"pairs": len(pairs), "provenance": {}, "missing": {}}
    for name, fn in SECTIONS.items():
        versions = {"python": sys.version.split()[0]}
        try:
            out[name] = fn(preds, refs, versions)
            out["provenance"][name] = {"where": args.where, **versions}
        except Exception as e:  # noqa: BLE001 - a missing or broken library skips its section
            out["missing"][name] = f"{type(e).__name__}: {e}"

    if args.merge:
        with open(args.merge, encoding="utf-8") as f:
            old = json.load(f)
        if old.get("pairs") != len(pairs):
            sys.exit(f"--merge {args.merge}: computed on {old.get('pairs')} pairs, not {len(pairs)}")
        for name in SECTIONS:
            if name not in out and name in old:
                out[name] = old[name]
                out["provenance"][name] = old["provenance"][name]
                out["missing"].pop(name, None)

    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print(f"wrote {args.out}: {len(pairs)} pairs; sections {sorted(out['provenance'])}; missing {out['missing']}")


if __name__ == "__main__":
    main()
