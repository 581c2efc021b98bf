#!/usr/bin/env python3
"""fp4forge's tokenizers equal the `tokenizers` and `sentencepiece` libraries: the same ids for a
multilingual text (CJK, emoji, combining marks, runs of spaces and newlines, digits, special tokens),
and the same decoded text, for every tokenizer fixture (tests/tokenizers/, made by
scripts/models/make_tokenizers.py: tokenizer.json of five kinds, SentencePiece unigram and BPE
tokenizer.model) and the default model's.

Usage: tokenizers_test.py FP4FORGE   (exit 77 = skipped: tokenizers missing, unless FP4FORGE_REQUIRE_ORACLES=1)
"""
import json
import os
import subprocess
import sys
import tempfile
import unicodedata

from harness import ROOT, check, finish, require

tokenizers, sentencepiece = require("tokenizers", "sentencepiece")


class SentencePieceReference:
    """The sentencepiece library behind the interface of tokenizers.Tokenizer that the checks use."""

    def __init__(self, path):
        self.sp = sentencepiece.SentencePieceProcessor(model_file=path)

    def encode(self, text, add_special_tokens):
        return type("Encoding", (), {"ids": self.sp.encode(text)})

    def decode(self, ids, skip_special_tokens):
        return self.sp.decode(ids)

fp4forge = sys.argv[1]

# Sentences the tokenizers were not trained on, in the scripts they were.
TEXTS = {
    "multilingual": "Grüß Gott, München! Où est la gare ? ¿Qué tal?\n東京タワーは高い。我们今天去北京。서울은 크다.\n"
                    "Emoji 😀🎉👩‍💻 👍🏻 and 🇯🇵; combining: ë (e\u0308), A\u030a vs Å.\n"
                    "Digits 9876543210, 0.5, 1e-3 and 12,345.67.\n\n\n   Spaces    inside   and trailing   \n"
                    "\ttabs\tand\r\nCRLF line ends\n<|begin_of_text|>special<|end_of_text|> tokens <|im_start|>x",
    "leading space and newline": " \nAnd God said, Let there be light: and there was light.",
    "only spaces": "     ",
    "unknown script": "Ελληνικά και русский текст, עברית, हिन्दी",
}

tokenizer_dirs = {name: os.path.join(ROOT, "tests", "tokenizers", name)
                  for name in sorted(os.listdir(os.path.join(ROOT, "tests", "tokenizers")))}
tokenizer_dirs["default model"] = os.path.join(ROOT, "models", "default")

with tempfile.TemporaryDirectory() as tmp:
    for name, directory in tokenizer_dirs.items():
        json_file = os.path.join(directory, "tokenizer.json")
        reference = tokenizers.Tokenizer.from_file(json_file) if os.path.exists(json_file) else \
            SentencePieceReference(os.path.join(directory, "tokenizer.model"))
        for label, text in TEXTS.items():
            path = os.path.join(tmp, "text.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            run = subprocess.run([fp4forge, "tokenize", directory, "--text", path, "--json"], capture_output=True, text=True)
            ours = json.loads(run.stdout) if run.returncode == 0 else {"ids": None, "decoded": None}
            want = reference.encode(text, add_special_tokens=False).ids
            first = next((i for i, (a, b) in enumerate(zip(ours["ids"] or [], want)) if a != b), None)
            check(f"{name}: {label}: ids equal tokenizers' ({len(want)} tokens)", ours["ids"] == want,
                  run.stderr.strip()[-300:] or f"first difference at {first}: ours {ours['ids'][:40] if ours['ids'] else None}")
            check(f"{name}: {label}: decoded text equals tokenizers' decode", ours["decoded"] == reference.decode(want, skip_special_tokens=False),
                  repr(ours["decoded"])[:120])
    # Byte-level tokenizers round-trip any text exactly (up to their normalizer).
    for name in ["gpt2", "llama3", "qwen2", "default model"]:
        directory = tokenizer_dirs[name]
        text = TEXTS["multilingual"].split("<|")[0]  # no added tokens: gpt2 would add a prefix space after each
        run = subprocess.run([fp4forge, "tokenize", directory, "-p", text, "--json"], capture_output=True, text=True)
        decoded = json.loads(run.stdout)["decoded"] if run.returncode == 0 else None
        # gpt2 adds a prefix space; qwen2's NFC normalizer composes e + U+0308 and A + U+030A.
        expected = " " + text if name == "gpt2" else unicodedata.normalize("NFC", text) if name == "qwen2" else text
        check(f"{name}: decode(encode(text)) == text", decoded == expected, repr(decoded)[:80])
    bad = os.path.join(tmp, "bad.txt")
    with open(bad, "wb") as f:
        f.write(b"valid \xff\xfe invalid")
    run = subprocess.run([fp4forge, "tokenize", tokenizer_dirs["llama3"], "--text", bad], capture_output=True, text=True)
    check("text that is not UTF-8: exit 1 and says so", run.returncode == 1 and "UTF-8" in run.stderr, run.stderr.strip())

finish()
