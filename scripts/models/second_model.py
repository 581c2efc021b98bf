#!/usr/bin/env python3
"""Builds the project's second model: a Qwen3-architecture LM (q/k RMSNorm, tied embeddings) trained
on Debian's fortune cookies, independent of the default model in corpus, tokenizer, architecture
and seed. It is the second witness of docs/QUALITY.md: a quantization rule that only helps the
default model shows up here.

  prepare   (Debian's `fortunes` package): fortunes split by position into train / validation /
            test (every 20th from the 5th / the 15th), a byte-level BPE tokenizer with Llama 3's
            pre-tokenizer regex trained on train. Writes models/second/tokenizer*.json,
            models/eval/fortunes-test.txt and the splits to --work.
  train     (GPU when available): default_model.py's schedule on this model; writes
            models/second/{config.json, model.safetensors, generation_config.json, training_report.json}.

    python3 scripts/models/second_model.py prepare --work .corpus-second
    python3 scripts/models/second_model.py train --work .corpus-second
"""
import argparse
import glob
import json
import math
import os
import shutil

import default_model as base

ROOT = base.ROOT
MODEL_DIR = os.path.join(ROOT, "models", "second")
TEST_TEXT = os.path.join(ROOT, "models", "eval", "fortunes-test.txt")
SEED = 2718
MODEL_CONFIG = dict(vocab_size=base.VOCAB_SIZE, hidden_size=256, intermediate_size=768, num_hidden_layers=6,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=1024,
                    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu",
                    attention_dropout=0.1)
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def fortunes():
    """Every fortune of the package's English text files (not the offensive set), in file order."""
    result = []
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if os.path.isdir(path) or os.path.islink(path) or path.endswith((".dat", ".u8")):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            result += [t.strip("\n") for t in f.read().split("\n%\n") if t.strip()]
    return result


def prepare(args):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    splits = {"train": [], "validation": [], "test": []}
    for i, text in enumerate(fortunes()):
        splits["test" if i % 20 == 4 else "validation" if i % 20 == 14 else "train"].append(text + "\n")
    os.makedirs(args.work, exist_ok=True)
    for name, parts in splits.items():
        with open(os.path.join(args.work, f"{name}.txt"), "w") as f:
            f.write("\n".join(parts))
    shutil.copy(os.path.join(args.work, "test.txt"), TEST_TEXT)
    # Calibration text for quantize --calib (docs/QUALITY.md): the validation split, disjoint from the test text.
    shutil.copy(os.path.join(args.work, "validation.txt"), TEST_TEXT.replace("-test.txt", "-calib.txt"))
    tokenizer = Tokenizer(models.BPE(ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=base.VOCAB_SIZE, special_tokens=[base.BOS, base.EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train([os.path.join(args.work, "train.txt")], trainer)
    base.save_tokenizer(tokenizer, MODEL_DIR, MODEL_CONFIG["max_position_embeddings"])
    for name, parts in splits.items():
        print(f"{name}: {len(parts)} fortunes, {sum(map(len, parts))} characters")


def train(args):
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(SEED)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    # Fortunes are short: load_tokens' "\n\n" split gives one document per fortune or paragraph.
    train_tokens = base.load_tokens(tokenizer, os.path.join(args.work, "train.txt"))
    val_tokens = base.load_tokens(tokenizer, os.path.join(args.work, "validation.txt"))
    config = Qwen3Config(**MODEL_CONFIG, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = Qwen3ForCausalLM(config).to(device)
    best_state, best, log = base.fit(model, train_tokens, val_tokens, args.steps, device, seed=SEED)
    model.load_state_dict(best_state)
    model = model.to(torch.bfloat16).cpu()
    model.save_pretrained(MODEL_DIR)
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, do_sample=False,
                     max_new_tokens=64).save_pretrained(MODEL_DIR)
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
              "seed": SEED, "model": MODEL_CONFIG, "train": {**base.TRAIN, "steps": args.steps},
              "train_tokens": len(train_tokens), "validation_tokens": len(val_tokens),
              "best_val_loss": round(best, 4), "best_val_ppl": round(math.exp(best), 3), "log": log}
    with open(os.path.join(MODEL_DIR, "training_report.json"), "w") as f:
        json.dump(report, f, indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare").add_argument("--work", default=".corpus-second")
    p = sub.add_parser("train")
    p.add_argument("--work", default=".corpus-second")
    p.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    {"prepare": prepare, "train": train}[args.command](args)


if __name__ == "__main__":
    main()
