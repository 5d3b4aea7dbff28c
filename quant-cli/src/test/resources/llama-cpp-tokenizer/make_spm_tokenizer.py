#!/usr/bin/env python3
"""Writes spm/tokenizer.json and spm/tokenizer_config.json: a small tokenizer in the layout transformers gives Llama 2's
SentencePiece model (BPE with byte_fallback, spaces as U+2581 with one prepended, <s> added by the template).

Ids: <unk>, <s>, </s>, the 256 byte pieces <0x00>..<0xFF>, one piece per merge, then the single characters of the
text below, as SentencePiece orders a BPE vocabulary. The merges are learned greedily (the most frequent adjacent pair
within a word, ties to the first seen) from that text. Run: python3 make_spm_tokenizer.py (no packages needed).
"""
import json
import os
from collections import Counter

TEXT = """Once upon a time, there was a little girl named Lily. She loved to play in the park with her dog.
One day, the sun was shining and the birds were singing. Lily and her dog ran to the big tree.
"I like the tree," said Lily. The dog was happy too. They played there all day until it was time to go home.
"""
MERGES = 150
SPACE = "\u2581"


def main():
    words = Counter()
    for line in TEXT.splitlines():
        for w in line.split(" "):
            if w:
                words[tuple(SPACE + w)] += 1
    merges = []
    for _ in range(MERGES):
        pairs = Counter()
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: kv[1])
        merges.append(a + " " + b)
        merged = Counter()
        for w, n in words.items():
            out = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for m in merges:
        vocab[m.replace(" ", "")] = len(vocab)
    for c in sorted(set(SPACE + TEXT.replace(" ", "").replace("\n", ""))):
        vocab.setdefault(c, len(vocab))

    def added(i, content):
        return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True}

    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "vocab": vocab,
                  "merges": merges},
    }
    os.makedirs("spm", exist_ok=True)
    with open("spm/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open("spm/tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
                   "add_eos_token": False, "tokenizer_class": "LlamaTokenizer"}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
