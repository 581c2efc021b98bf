#!/usr/bin/env python3
"""llm-compressor's own GPTQ (and round-to-nearest) on CPU, on the same model and calibration windows
as `fp4forge quantize --calib` (BOS + the tokenized calibration text, windows of --ctx tokens), for the
peer column of docs/QUALITY.md. Writes compressed-tensors NVFP4 checkpoints that `fp4forge eval`
then runs:

    python3 -m venv --system-site-packages /tmp/llmc && /tmp/llmc/bin/pip install llmcompressor
    /tmp/llmc/bin/python bench/llmcompressor_gptq.py models/default models/eval/kjv-calib.txt /tmp/llmc-default
    build/bin/fp4forge eval /tmp/llmc-default/gptq-w4a16 --text models/eval/kjv-test.txt --ref models/default

Outputs under OUT: gptq-w4a16 (NVFP4A16 with GPTQModifier), gptq-w4a4 (NVFP4), rtn-w4a4
(QuantizationModifier NVFP4: its observers' activation scales, no GPTQ).
"""
import argparse
import os

import torch
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("calib")
    parser.add_argument("out")
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--ctx", type=int, default=512)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids = (bos + tokenizer(open(args.calib).read(), add_special_tokens=False)["input_ids"])[:args.tokens]
    windows = [ids[i:i + args.ctx] for i in range(0, len(ids), args.ctx)]
    data = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]})
    recipes = {
        "gptq-w4a16": GPTQModifier(targets="Linear", scheme="NVFP4A16", ignore=["lm_head"]),
        "gptq-w4a4": GPTQModifier(targets="Linear", scheme="NVFP4", ignore=["lm_head"]),
        "rtn-w4a4": QuantizationModifier(targets="Linear", scheme="NVFP4", ignore=["lm_head"]),
    }
    for name, recipe in recipes.items():
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
        oneshot(model=model, dataset=data, recipe=recipe, max_seq_length=args.ctx, num_calibration_samples=len(windows))
        out = os.path.join(args.out, name)
        model.save_pretrained(out, save_compressed=True)
        tokenizer.save_pretrained(out)
        print(f"{out}: {len(windows)} windows of up to {args.ctx} tokens", flush=True)


if __name__ == "__main__":
    main()
