#!/usr/bin/env python3
"""Writes tiny, randomly initialised checkpoints of every architecture family fp4forge supports,
with the tensor names, shapes and configs that real checkpoints of those families have, plus golden
outputs computed by transformers in float32, into tests/fixtures/<name>/:

  config.json, generation_config.json, model.safetensors (BF16; qwen3_moe is sharded with an index)
  golden.safetensors: input_ids [1, 8] (I64), logits [8, vocab] (F32), greedy [1, 16] (I64: the
                      prompt and 8 greedy tokens)

Seeded; with the pinned torch and transformers (tests/fixtures/README.md) re-running reproduces the
files byte for byte, except the logits' last float32 bits on a CPU of another SIMD width. Tests
never need PyTorch: they read the goldens.

    python3 scripts/models/make_fixtures.py [--out tests/fixtures]
"""
import argparse
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file

PROMPT = [1, 17, 42, 99, 7, 250, 3, 64]
NEW_TOKENS = 8
SEED = 20261122

# Shared tiny dimensions: every Linear input a multiple of 16 (NVFP4 blocks), hidden 64.
BASE = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=256, tie_word_embeddings=False)
MOE = dict(num_experts_per_tok=2, moe_intermediate_size=64)

FIXTURES = {
    # Llama 3.x: GQA, llama3 RoPE scaling.
    "llama3": (transformers.LlamaConfig, transformers.LlamaForCausalLM,
               dict(BASE, rope_theta=500000.0, max_position_embeddings=131072,
                    rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                      original_max_position_embeddings=8192))),
    "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM, dict(BASE, sliding_window=None)),
    # Qwen2.5: biases on q/k/v.
    "qwen2_5": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM, dict(BASE)),
    # Qwen3: RMS norms on q and k.
    "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM, dict(BASE)),
    # Qwen3-MoE: per-expert tensors, router mlp.gate; written in several shards with an index.
    "qwen3_moe": (transformers.Qwen3MoeConfig, transformers.Qwen3MoeForCausalLM,
                  dict(BASE, **MOE, num_experts=4, decoder_sparse_step=1, norm_topk_prob=True)),
    # Mixtral: block_sparse_moe.experts.N.w1/w2/w3 and block_sparse_moe.gate.
    "mixtral": (transformers.MixtralConfig, transformers.MixtralForCausalLM,
                dict(BASE, num_local_experts=4, num_experts_per_tok=2)),
    # DeepSeek-V3: MLA (q_a_proj, kv_a_proj_with_mqa, ...), one dense layer then MoE with a shared expert.
    "deepseek_v3": (transformers.DeepseekV3Config, transformers.DeepseekV3ForCausalLM,
                    dict(BASE, **MOE, n_routed_experts=4, n_shared_experts=1, first_k_dense_replace=1, n_group=1,
                         topk_group=1, q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=16,
                         v_head_dim=16, num_key_value_heads=4, rope_scaling=None)),
    # Phi-3: fused qkv_proj and gate_up_proj.
    "phi3": (transformers.Phi3Config, transformers.Phi3ForCausalLM, dict(BASE, bos_token_id=1, eos_token_id=2,
                                                                        pad_token_id=0)),
    # gpt-oss: fused 3-D experts (gate_up_proj [E, H, 2I], down_proj [E, I, H]), router, attention sinks.
    "gpt_oss": (transformers.GptOssConfig, transformers.GptOssForCausalLM,
                dict(BASE, num_local_experts=4, num_experts_per_tok=2, intermediate_size=64, sliding_window=32,
                     layer_types=["sliding_attention", "full_attention"], max_position_embeddings=131072)),
}
SHARDED = {"qwen3_moe": "200KB"}


def make(name, out_root):
    config_cls, model_cls, kwargs = FIXTURES[name]
    config = config_cls(**kwargs)
    torch.manual_seed(SEED)
    model = model_cls(config).eval()
    out = os.path.join(out_root, name)
    shutil.rmtree(out, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(out, max_shard_size=SHARDED.get(name, "50MB"))
    # Goldens from the saved BF16 weights, computed in float32.
    reloaded = model_cls.from_pretrained(out, dtype=torch.float32).eval()
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        logits = reloaded(input_ids=ids).logits[0].contiguous()
        greedy = reloaded.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, min_new_tokens=NEW_TOKENS,
                                   pad_token_id=0)
    save_file({"input_ids": ids, "logits": logits, "greedy": greedy.contiguous()},
              os.path.join(out, "golden.safetensors"), metadata={"format": "pt"})
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{name:12s} {sum(p.numel() for p in model.parameters()):8d} parameters  {size / 1024:7.1f} KiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures"))
    parser.add_argument("names", nargs="*", default=list(FIXTURES))
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    for name in args.names:
        make(name, args.out)


if __name__ == "__main__":
    main()
