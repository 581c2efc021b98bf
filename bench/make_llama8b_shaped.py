#!/usr/bin/env python3
"""Writes a checkpoint with Llama-3-8B's real dimensions (hidden 4096, FFN 14336, 32 query and 8
key/value heads of 128, vocabulary 128256, untied LM head) and random BF16 weights, cut to a few
layers so that it fits this machine: what decode and prefill speed are measured on
(docs/BENCHMARKS.md). The default model's tokenizer is copied beside it (its 4096 ids fit the
vocabulary), so `fp4forge run` takes a text prompt.

    python3 bench/make_llama8b_shaped.py OUT_DIR [--layers 4]     # 28 layers: 14.3 GB, larger than half of 24 GiB
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..")
HIDDEN, FFN, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 4096, 14336, 32, 8, 128, 128256


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    g = torch.Generator().manual_seed(8)
    randn = lambda *shape: (torch.randn(*shape, generator=g) * 0.02).to(torch.bfloat16)
    # One shard per layer (and one for the embedding and head), written as it is made, so that a
    # checkpoint larger than memory can be made (the calibration memory benchmark, issue 15).
    weight_map, count, size = {}, 0, 0

    def write(name, tensors):
        nonlocal count, size
        save_file(tensors, os.path.join(args.out, name), metadata={"format": "pt"})
        weight_map.update({k: name for k in tensors})
        count += sum(t.numel() for t in tensors.values())
        size += os.path.getsize(os.path.join(args.out, name))

    write("model-embed.safetensors", {"model.embed_tokens.weight": randn(VOCAB, HIDDEN), "lm_head.weight": randn(VOCAB, HIDDEN),
                                      "model.norm.weight": torch.ones(HIDDEN, dtype=torch.bfloat16)})
    for i in range(args.layers):
        p = f"model.layers.{i}."
        write(f"model-layer-{i:03d}.safetensors", {
            p + "input_layernorm.weight": torch.ones(HIDDEN, dtype=torch.bfloat16),
            p + "post_attention_layernorm.weight": torch.ones(HIDDEN, dtype=torch.bfloat16),
            p + "self_attn.q_proj.weight": randn(HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.k_proj.weight": randn(KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.v_proj.weight": randn(KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.o_proj.weight": randn(HIDDEN, HEADS * HEAD_DIM),
            p + "mlp.gate_proj.weight": randn(FFN, HIDDEN),
            p + "mlp.up_proj.weight": randn(FFN, HIDDEN),
            p + "mlp.down_proj.weight": randn(HIDDEN, FFN),
        })
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": size}, "weight_map": weight_map}, f, indent=2)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB, "hidden_size": HIDDEN,
              "intermediate_size": FFN, "num_hidden_layers": args.layers, "num_attention_heads": HEADS,
              "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM, "max_position_embeddings": 8192,
              "rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": False, "bos_token_id": 0,
              "eos_token_id": 1, "rope_theta": 500000.0, "torch_dtype": "bfloat16",
              "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 8192}}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(ROOT, "models", "default", name), args.out)
    print(f"{args.out}: {args.layers} layers, {count / 1e9:.2f} B parameters, {size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
