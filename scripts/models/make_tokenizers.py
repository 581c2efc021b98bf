#!/usr/bin/env python3
"""Trains small tokenizers of each kind the engine reads, with the `tokenizers` library, into
tests/tokenizers/<name>/tokenizer.json (vocabulary 1200, trained on the default model's evaluation
text plus a multilingual paragraph):

  gpt2       byte-level BPE, GPT-2's pre-tokenizer (ByteLevel with its regex, add_prefix_space)
  llama3     byte-level BPE, Llama 3's Split regex + ByteLevel without regex, ignore_merges
  qwen2      byte-level BPE, Qwen2's Split regex (single digits) and its NFC normalizer
  llama2     BPE with byte fallback, "▁" words by normalizer (Prepend + Replace), Llama 2's decoder
  mistral    BPE with byte fallback, Metaspace pre-tokenizer and decoder (prepend_scheme first)
  sp_unigram SentencePiece tokenizer.model, unigram with byte fallback (Llama 2 / Gemma style)
  sp_bpe     SentencePiece tokenizer.model, BPE with byte fallback

Deterministic: re-running writes the same files (tokenizers 0.23.3, sentencepiece 0.2.3, one thread).

    python3 scripts/models/make_tokenizers.py [--out tests/tokenizers]
"""
import argparse
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>"]
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# Seen in training so that merges exist for them; the tests use other sentences of the same scripts.
MULTILINGUAL = """Grüße aus Köln! Ça va très bien, merci. ¿Dónde está la biblioteca?
日本語のテキストと漢字、中文句子，以及한국어 문장입니다。
Emoji: 🙂🚀👍🏽 and flags 🇫🇷. Combining: é (e + U+0301), ñ, Å.
Numbers 1234567 3.14159 2026-12-06, code: def f(x): return x**2  # comment
    indented    with    runs of spaces


and blank lines.
"""


def corpus():
    with open(os.path.join(ROOT, "models", "eval", "kjv-test.txt"), encoding="utf-8") as f:
        return [f.read(), MULTILINGUAL * 20]


def byte_level(pre_tokenizer, normalizer=None, **bpe):
    tok = Tokenizer(models.BPE(**bpe))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    return tok


def byte_fallback(metaspace):
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    if metaspace:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    else:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    bytes_ = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<unk>"] + SPECIAL + bytes_, show_progress=False,
                                  limit_alphabet=200)
    tok.train_from_iterator(corpus(), trainer)
    return tok


def make_all():
    split = lambda pattern: pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    return {
        "gpt2": byte_level(pre_tokenizers.ByteLevel(add_prefix_space=True)),
        "llama3": byte_level(split(LLAMA3_PATTERN), ignore_merges=True),
        "qwen2": byte_level(split(QWEN2_PATTERN), normalizers.NFC()),
        "llama2": byte_fallback(metaspace=False),
        "mistral": byte_fallback(metaspace=True),
    }


def sentencepiece_model(kind, out):
    import io
    import sentencepiece
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter("\n".join(corpus()).splitlines()), model_writer=model,
                                            model_type=kind, vocab_size=1200, byte_fallback=True, num_threads=1,
                                            character_coverage=0.9995, user_defined_symbols=SPECIAL, minloglevel=2,
                                            shuffle_input_sentence=False)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.model"), "wb") as f:
        f.write(model.getvalue())
    print(f"sp_{kind:6s} vocabulary 1200")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "tokenizers"))
    args = parser.parse_args()
    for name, tok in make_all().items():
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
        tok.save(os.path.join(args.out, name, "tokenizer.json"))
        print(f"{name:8s} vocabulary {tok.get_vocab_size()}")
    for kind in ["unigram", "bpe"]:
        sentencepiece_model(kind, os.path.join(args.out, f"sp_{kind}"))


if __name__ == "__main__":
    main()
