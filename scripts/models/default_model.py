#!/usr/bin/env python3
"""Builds fp4forge's default model: a small Llama-architecture LM trained on the King James Bible.

Three steps, each reproducible from a seed (docs/MODELS.md has the settings and the results):

  prepare   (any machine with Debian's bible-kjv): dump the KJV text, split it by chapter into
            train / validation / test, train a byte-level BPE tokenizer on train. Writes
            models/default/{tokenizer.json, tokenizer_config.json, special_tokens_map.json},
            models/eval/kjv-test.txt (the held-out evaluation text) and the splits to --work.
  train     (GPU when available, else CPU, slowly): trains the model on the train split, keeps the
            checkpoint with the best validation loss, writes config.json, model.safetensors (BF16),
            generation_config.json and training_report.json to --out.
  evaluate  perplexity of a checkpoint on the test text, against a unigram model of the train split.

    python3 scripts/models/default_model.py prepare --work .corpus
    python3 scripts/models/default_model.py train --work .corpus --out models/default
    python3 scripts/models/default_model.py evaluate --model models/default
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_DIR = os.path.join(ROOT, "models", "default")
TEST_TEXT = os.path.join(ROOT, "models", "eval", "kjv-test.txt")
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
VOCAB_SIZE = 4096
SEED = 1611

# Llama with grouped-query attention (4 query heads share 2 key/value heads); every Linear's input
# dimension (256, 768) is a multiple of 64; the LM head is not tied to the embedding.
MODEL_CONFIG = dict(vocab_size=VOCAB_SIZE, hidden_size=256, intermediate_size=768, num_hidden_layers=6,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=1024,
                    rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, hidden_act="silu",
                    attention_dropout=0.1)
# ~1M training tokens: the model memorizes them after a few epochs (lr 2e-3 for 4000 steps: best
# validation loss 3.32 at step 400; lr 1e-3 for 1600 steps: 3.25 at step 500), so the whole cosine
# schedule fits into ~10 epochs.
TRAIN = dict(seq_len=256, batch_size=64, steps=700, lr=1e-3, min_lr=5e-5, warmup=50, weight_decay=0.1,
             eval_every=50)


def chapters():
    """(book, chapter, text) for every chapter of the KJV, verses joined one per line."""
    raw = subprocess.run(["bible", "gen1:1-rev22:21"], capture_output=True, text=True, check=True).stdout
    result, verses, heading = [], [], None
    for line in raw.splitlines():
        if re.fullmatch(r"[1-3]? ?[A-Z][A-Za-z ]+ \d+", line.strip()):  # "Genesis 1", "1 Kings 3"
            if heading:
                result.append((heading, "\n".join(verses)))
            heading, verses = line.strip(), []
        elif m := re.match(r"\s+\d+ (.*)", line):
            verses.append(m.group(1).strip())
        elif line.strip():
            verses[-1] += " " + line.strip()  # a verse wrapped onto the next line
    result.append((heading, "\n".join(verses)))
    return result


def prepare(args):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    splits = {"train": [], "validation": [], "test": []}
    for i, (heading, text) in enumerate(chapters()):
        split = "test" if i % 40 == 7 else "validation" if i % 40 == 27 else "train"
        splits[split].append(f"{heading}\n{text}\n")
    os.makedirs(args.work, exist_ok=True)
    for name, parts in splits.items():
        with open(os.path.join(args.work, f"{name}.txt"), "w") as f:
            f.write("\n".join(parts))
    os.makedirs(os.path.dirname(TEST_TEXT), exist_ok=True)
    shutil.copy(os.path.join(args.work, "test.txt"), TEST_TEXT)
    # Calibration text for quantize --calib (docs/QUALITY.md): the validation split, disjoint from the test text.
    shutil.copy(os.path.join(args.work, "validation.txt"), TEST_TEXT.replace("-test.txt", "-calib.txt"))

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=[BOS, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train([os.path.join(args.work, "train.txt")], trainer)
    save_tokenizer(tokenizer, MODEL_DIR, MODEL_CONFIG["max_position_embeddings"])
    for name, parts in splits.items():
        print(f"{name}: {len(parts)} chapters, {sum(map(len, parts))} characters")


def save_tokenizer(tokenizer, directory, max_length):
    """tokenizer.json and tokenizer_config.json of a trained `tokenizers` BPE, as transformers loads them."""
    from transformers import PreTrainedTokenizerFast
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, model_max_length=max_length)
    os.makedirs(directory, exist_ok=True)
    fast.save_pretrained(directory)
    # The class name every runtime knows (transformers 5 writes its internal "TokenizersBackend").
    config_path = os.path.join(directory, "tokenizer_config.json")
    with open(config_path) as f:
        tokenizer_config = json.load(f)
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    with open(config_path, "w") as f:
        json.dump(tokenizer_config, f, indent=2, sort_keys=True)
        f.write("\n")


def load_tokens(tokenizer, path):
    import torch
    with open(path) as f:
        chapters_text = f.read().split("\n\n")
    ids = []
    for text in chapters_text:
        ids += [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return torch.tensor(ids, dtype=torch.long)


def mean_loss(model, tokens, seq_len, device, batch_size=64):
    """Mean next-token cross-entropy over non-overlapping windows covering all of `tokens`."""
    import torch
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    windows = [tokens[i:i + seq_len + 1] for i in range(0, len(tokens) - 1, seq_len)]
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            for w in windows[i:i + batch_size]:
                x = w.unsqueeze(0).to(device)
                logits = model(input_ids=x[:, :-1]).logits.float()
                loss = torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction="sum")
                total += loss.item()
                count += x.shape[1] - 1
    model.train(was_training)
    return total / count


def fit(model, train_tokens, val_tokens, steps, device, seed=SEED):
    """AdamW with warm-up and cosine decay (TRAIN); returns the state with the best validation loss,
    that loss and the log."""
    import torch
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": TRAIN["weight_decay"]},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=TRAIN["lr"], betas=(0.9, 0.95))

    def lr_at(step):
        if step < TRAIN["warmup"]:
            return TRAIN["lr"] * (step + 1) / TRAIN["warmup"]
        progress = (step - TRAIN["warmup"]) / max(1, steps - TRAIN["warmup"])
        return TRAIN["min_lr"] + 0.5 * (TRAIN["lr"] - TRAIN["min_lr"]) * (1 + math.cos(math.pi * progress))

    generator = torch.Generator().manual_seed(seed)
    seq, best, best_state, log = TRAIN["seq_len"], float("inf"), None, []
    start = time.time()
    for step in range(steps):
        offsets = torch.randint(0, len(train_tokens) - seq - 1, (TRAIN["batch_size"],), generator=generator)
        batch = torch.stack([train_tokens[o:o + seq + 1] for o in offsets]).to(device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            logits = model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % TRAIN["eval_every"] == 0 or step + 1 == steps:
            val = mean_loss(model, val_tokens, seq, device)
            log.append({"step": step + 1, "train_loss": round(loss.item(), 4), "val_loss": round(val, 4),
                        "seconds": round(time.time() - start, 1)})
            print(json.dumps(log[-1]), flush=True)
            if val < best:
                best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
    return best_state, best, log


def train(args):
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    train_tokens = load_tokens(tokenizer, os.path.join(args.work, "train.txt"))
    val_tokens = load_tokens(tokenizer, os.path.join(args.work, "validation.txt"))
    config = LlamaConfig(**MODEL_CONFIG, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config).to(device)
    steps = args.steps or TRAIN["steps"]
    best_state, best, log = fit(model, train_tokens, val_tokens, steps, device)

    model.load_state_dict(best_state)
    model = model.to(torch.bfloat16).cpu()
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out)
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, do_sample=False,
                     max_new_tokens=64).save_pretrained(args.out)
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
              "seed": SEED, "model": MODEL_CONFIG, "train": {**TRAIN, "steps": steps},
              "train_tokens": len(train_tokens), "validation_tokens": len(val_tokens),
              "best_val_loss": round(best, 4), "best_val_ppl": round(math.exp(best), 3), "log": log}
    with open(os.path.join(args.out, "training_report.json"), "w") as f:
        json.dump(report, f, indent=1)


def evaluate(args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    test = load_tokens(tokenizer, TEST_TEXT)
    loss = mean_loss(model, test, 256, "cpu")
    with open(TEST_TEXT) as f:
        test_bytes = len(f.read().encode())
    counts = torch.ones(tokenizer.vocab_size + 2)  # unigram model of the train split, add-one smoothed
    if args.work and os.path.exists(os.path.join(args.work, "train.txt")):
        train_ids = load_tokens(tokenizer, os.path.join(args.work, "train.txt"))
        counts += torch.bincount(train_ids, minlength=len(counts))[:len(counts)]
    probs = counts / counts.sum()
    unigram = -torch.log(probs[test[1:]]).mean().item()
    result = {"test_tokens": len(test), "test_ppl": round(math.exp(loss), 3),
              "test_bits_per_byte": round(loss * (len(test) - 1) / test_bytes / math.log(2), 4),
              "unigram_ppl": round(math.exp(unigram), 1), "samples": {}}
    for prompt in ["In the beginning", "And the LORD said unto Moses,", "Blessed are the", "Jesus answered and said"]:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        ids = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), ids], dim=1)
        out = model.generate(ids, max_new_tokens=32, do_sample=False)
        result["samples"][prompt] = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    print(json.dumps(result, indent=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--work", default=".corpus")
    p = sub.add_parser("train")
    p.add_argument("--work", default=".corpus")
    p.add_argument("--out", default=MODEL_DIR)
    p.add_argument("--steps", type=int, default=0, help="override the number of steps (e.g. a short CPU run)")
    p.add_argument("--cpu", action="store_true")
    p = sub.add_parser("evaluate")
    p.add_argument("--model", default=MODEL_DIR)
    p.add_argument("--work", default=".corpus")
    args = parser.parse_args()
    {"prepare": prepare, "train": train, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    main()
