#!/usr/bin/env python3
"""llama.cpp on the same checkpoints and machine as `fp4forge run`: writes the BF16 Llama checkpoint
as a GGUF file with the `gguf` package and quantizes it with llama.cpp's own quantizer to Q4_0
(every tensor, as --pure); writes fp4forge's ModelOpt NVFP4 output of it as GGUF NVFP4 (llama.cpp
quantizes to NVFP4 only by converting such a checkpoint: FORMATS.md §4d, codes and block scales
regrouped, weight_scale_2 as a `.scale` tensor); times prefill and decode of each through
llama-cpp-python, the PyPI package that builds llama.cpp from source. One JSON line per variant.

    pip install llama-cpp-python gguf     # builds llama.cpp (CMAKE_ARGS="-DGGML_NATIVE=ON")
    python3 bench/llama_cpp_baseline.py BF16_DIR [--nvfp4 NVFP4_DIR] [--threads 2] [--prompt-tokens 128]

Only speed is compared: RoPE is written as llama.cpp's default (no llama3 frequency scaling), which
changes no cost.
"""
import argparse
import json
import os
import tempfile
import time

import gguf
import llama_cpp
import numpy as np


def load_bits(path):
    """name -> numpy array of a safetensors file; 16-bit floats as their uint16 bit patterns."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    n = int(np.frombuffer(data[:8].tobytes(), dtype="<u8")[0])
    header = json.loads(data[8:8 + n].tobytes())
    dtypes = {"BF16": np.uint16, "F16": np.uint16, "F32": np.float32, "U8": np.uint8, "F8_E4M3": np.uint8}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = data[8 + n + begin:8 + n + end].view(dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def permute_rope(w, n_head):
    """transformers' rotate-half q/k rows to GGML's adjacent pairs (convert_hf_to_gguf's LlamaModel.permute)."""
    rows, cols = w.shape
    return w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def nvfp4_blocks(codes, scales):
    """ModelOpt NVFP4 (codes [N, K/2] element 2k low, E4M3 scales [N, K/16]) as block_nvfp4 bytes
    [N, K/64 * 36]: per 64 elements 4 UE4M3 scales, then 32 bytes holding element 16s+j low and
    16s+j+8 high in byte 8s+j."""
    n, half = codes.shape
    nibbles = np.stack([codes & 0xF, codes >> 4], axis=-1).reshape(n, half * 2 // 16, 16)
    qs = (nibbles[..., :8] | (nibbles[..., 8:] << 4)).reshape(n, -1, 32)
    d = (scales & 0x7F).reshape(n, -1, 4)
    return np.concatenate([d, qs], axis=-1).reshape(n, -1)


def write_gguf(src, path):
    config = json.load(open(os.path.join(src, "config.json")))
    tokenizer = json.load(open(os.path.join(src, "tokenizer.json")))
    w = gguf.GGUFWriter(path, "llama")
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(config["hidden_size"] // heads)
    w.add_rope_freq_base(config.get("rope_theta", 10000.0))
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    nvfp4 = any(k.endswith(".weight_scale_2") for f in os.listdir(src) if f.endswith(".safetensors")
                for k in load_bits(os.path.join(src, f)))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_NVFP4 if nvfp4 else gguf.LlamaFileType.MOSTLY_BF16)
    vocab = tokenizer["model"]["vocab"]
    for added in tokenizer.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [f"[PAD{i}]" for i in range(config["vocab_size"])]
    types = [gguf.TokenType.UNUSED] * config["vocab_size"]
    for token, i in vocab.items():
        tokens[i], types[i] = token, gguf.TokenType.NORMAL
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in tokenizer["model"]["merges"]])
    w.add_bos_token_id(config.get("bos_token_id", 0))
    w.add_eos_token_id(config.get("eos_token_id", 1))

    raw = {}
    for f in sorted(os.listdir(src)):
        if f.endswith(".safetensors"):
            raw.update(load_bits(os.path.join(src, f)))
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
                 "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                 "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(config["num_hidden_layers"]):
        for hf, gg in per_layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for hf, gg in names.items():
        bits = raw[hf]  # BF16 bit patterns, or NVFP4 codes
        base = hf[:-len(".weight")]
        permute = (lambda a: permute_rope(a, heads if "attn_q" in gg else kv_heads)) if "attn_q" in gg or "attn_k" in gg \
            else (lambda a: a)
        if base + ".weight_scale_2" in raw:
            blocks = nvfp4_blocks(permute(bits), permute(raw[base + ".weight_scale"]))
            w.add_tensor(gg, np.ascontiguousarray(blocks), raw_dtype=gguf.GGMLQuantizationType.NVFP4)
            w.add_tensor(gg[:-len("weight")] + "scale", np.asarray(raw[base + ".weight_scale_2"], dtype=np.float32).reshape(1))
        elif bits.ndim == 1:  # norms in F32
            w.add_tensor(gg, (bits.astype(np.uint32) << 16).view(np.float32))
        else:
            w.add_tensor(gg, np.ascontiguousarray(permute(bits)), raw_dtype=gguf.GGMLQuantizationType.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def quantize(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.pure = True
    params.nthread = 2
    assert llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params) == 0, dst


def time_model(path, threads, prompt_tokens, decode_tokens):
    llm = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=1024,
                          n_batch=512, verbose=False)
    prompt = [int(t) for t in np.random.default_rng(0).integers(2, 4000, prompt_tokens)]
    llm.eval(prompt[:8])  # warm-up: mapping and first-touch of the weights
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    prefill = time.perf_counter() - start
    token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    start = time.perf_counter()
    for _ in range(decode_tokens):
        llm.eval([token])
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    decode = time.perf_counter() - start
    return {"prefill_tok_s": prompt_tokens / prefill, "decode_tok_s": decode_tokens / decode,
            "file_bytes": os.path.getsize(path)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="BF16 checkpoint")
    parser.add_argument("--nvfp4", help="fp4forge's ModelOpt NVFP4 output of it (quantize --quantize-lm-head)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--work", default=None, help="where the GGUF files go (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        bf16 = os.path.join(tmp, "bf16.gguf")
        write_gguf(args.checkpoint, bf16)
        variants = {"BF16": bf16, "Q4_0": os.path.join(tmp, "q4_0.gguf")}
        quantize(bf16, variants["Q4_0"], llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0)
        if args.nvfp4:
            variants["NVFP4"] = os.path.join(tmp, "nvfp4.gguf")
            write_gguf(args.nvfp4, variants["NVFP4"])
        for name, path in variants.items():
            result = time_model(path, args.threads, args.prompt_tokens, args.decode_tokens)
            print(json.dumps({"llama.cpp": llama_cpp.__version__, "weights": name, **result}), flush=True)


if __name__ == "__main__":
    main()
