#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/ (committed; rerun after a format
change), keeping the crash-* inputs, each of which once crashed a target. Standard library only;
the configs come from fp4forge's own output for the llama3 fixture.

Usage: make_corpus.py PATH/TO/fp4forge
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def seed(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] laid out in order."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def small_tokenizer(path, keep=300):
    """A tokenizer.json cut to its first `keep` ids and the merges among them: small seeds fuzz faster."""
    j = json.load(open(path, encoding="utf-8"))
    model = j["model"]
    model["vocab"] = {t: i for t, i in model["vocab"].items() if i < keep}
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    model["merges"] = [m for m in merges if all(p in model["vocab"] for p in m.split(" ")) and m.replace(" ", "") in model["vocab"]]
    j["added_tokens"] = [t for t in j["added_tokens"]][:4]
    return json.dumps(j, ensure_ascii=False)


def main():
    fp4forge = sys.argv[1]
    for d, _, files in os.walk(os.path.join(HERE, "corpus")):  # the crash-* regression seeds stay
        for f in files:
            if not f.startswith("crash-"):
                os.remove(os.path.join(d, f))

    bf16 = struct.pack("<32H", *([0x3F80, 0xBF00] * 16))
    seed("safetensors", "bf16-f32", safetensors([("a.weight", "BF16", [2, 16], bf16), ("a.scale", "F32", [], struct.pack("<f", 0.5))],
                                                {"format": "pt"}))
    seed("safetensors", "nvfp4", safetensors([("m.weight", "U8", [4, 8], bytes(range(32))),
                                              ("m.weight_scale", "F8_E4M3", [4, 1], b"\x38\x40\x7e\x00"),
                                              ("m.weight_scale_2", "F32", [1], struct.pack("<f", 1e-3))]))
    seed("safetensors", "f16-i64", safetensors([("x", "F16", [3], struct.pack("<3e", 1, -2, 0.5)), ("y", "I64", [1, 1], struct.pack("<q", 7))]))
    seed("safetensors", "empty", safetensors([]))

    index = open(os.path.join(FIXTURES, "qwen3_moe", "model.safetensors.index.json")).read()
    seed("index", "qwen3_moe", index)
    j = json.loads(index)
    j["weight_map"] = dict(list(j["weight_map"].items())[:3])
    seed("index", "partial", json.dumps(j))
    seed("index", "metadata-only", json.dumps({"metadata": {"total_size": 0}, "weight_map": {}}))

    with tempfile.TemporaryDirectory() as tmp:
        for dialect in ("modelopt", "compressed-tensors"):
            out = os.path.join(tmp, dialect)
            subprocess.run([fp4forge, "quantize", os.path.join(FIXTURES, "llama3"), out, "--format", dialect, "--quiet"], check=True)
            config = open(os.path.join(out, "config.json")).read()
            hf_quant = os.path.join(out, "hf_quant_config.json")
            seed("config", dialect, config + ("\0" + open(hf_quant).read() if os.path.exists(hf_quant) else ""))
    for arch in sorted(a for a in os.listdir(FIXTURES) if os.path.isdir(os.path.join(FIXTURES, a))):
        seed("config", "unquantized-" + arch, open(os.path.join(FIXTURES, arch, "config.json")).read())

    tokenizers = os.path.join(ROOT, "tests", "tokenizers")
    for name in sorted(os.listdir(tokenizers)):
        d = os.path.join(tokenizers, name)
        if os.path.exists(os.path.join(d, "tokenizer.json")):  # tokenizer.model is not fuzzed (tokenizer_fuzz.cc)
            seed("tokenizer", name, small_tokenizer(os.path.join(d, "tokenizer.json")))


if __name__ == "__main__":
    main()
