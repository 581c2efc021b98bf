#!/usr/bin/env python3
"""Writes a synthetic Llama-shaped BF16 checkpoint of a given size (default 8 GB: 5 layers, 8.56 GB) for the
streaming benchmark of `fp4forge quantize`: hidden 8192, MLP 28672 (Llama-3-70B shapes), as many
layers as fit, in shards of ~2 GB with an index. Values are Gaussian (σ 0.02), generated per tensor.

    python3 bench/make_large_checkpoint.py /tmp/big
"""
import argparse
import json
import math
import os

import numpy as np
import ml_dtypes
from safetensors.numpy import save_file


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--gigabytes", type=float, default=8.0)
    args = parser.parse_args()
    hidden, mlp, kv = 8192, 28672, 1024
    shapes = {"self_attn.q_proj": (hidden, hidden), "self_attn.k_proj": (kv, hidden), "self_attn.v_proj": (kv, hidden),
              "self_attn.o_proj": (hidden, hidden), "mlp.gate_proj": (mlp, hidden), "mlp.up_proj": (mlp, hidden),
              "mlp.down_proj": (hidden, mlp)}
    layer_bytes = 2 * sum(a * b for a, b in shapes.values())
    layers = max(1, math.ceil(args.gigabytes * 1e9 / layer_bytes))  # at least the size asked for
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(0)
    weight_map, total, shard, tensors = {}, 0, 0, {}

    def flush():
        nonlocal shard, tensors
        if tensors:
            shard += 1
            name = f"model-{shard:05d}.safetensors"
            save_file(tensors, os.path.join(args.out, name), metadata={"format": "pt"})
            for k in tensors:
                weight_map[k] = name
            tensors = {}

    for layer in range(layers):
        for module, shape in shapes.items():
            w = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16)
            tensors[f"model.layers.{layer}.{module}.weight"] = w
            total += w.nbytes
        tensors[f"model.layers.{layer}.input_layernorm.weight"] = np.ones(hidden, dtype=ml_dtypes.bfloat16)
        if sum(t.nbytes for t in tensors.values()) > 2e9:
            flush()
    flush()
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
              open(os.path.join(args.out, "model.safetensors.index.json"), "w"))
    json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
               "intermediate_size": mlp, "num_hidden_layers": layers, "num_attention_heads": 64,
               "num_key_value_heads": 8, "vocab_size": 128256}, open(os.path.join(args.out, "config.json"), "w"))
    print(f"{layers} layers, {total / 1e9:.2f} GB in {shard} shards")


if __name__ == "__main__":
    main()
