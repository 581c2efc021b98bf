#!/usr/bin/env python3
"""Hostile input over the CLI (issue 17's classes fixed so far): paths that are not regular files,
huge tensor names against the regex filters, unlisted shards, huge weights against the scale-direction check, a checkpoint of 100k tensors, temporary directories of killed runs, size mismatches. Each case
asserts the exit status, the message and that nothing is left behind. Needs no oracle packages: the
safetensors files here are written byte by byte.

Usage: hostile_test.py PATH/TO/fp4forge
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from harness import ROOT, check, finish

FP4FORGE = sys.argv[1]
DEFAULT = os.path.join(ROOT, "models", "default")


def run(*args, timeout=60):
    try:
        return subprocess.run([FP4FORGE, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, "timeout", "", f"no answer within {timeout} s")


def clean_error(name, r, words):
    """A clean error: exit status 1 or 2 (not a signal, not a hang) and a message with `words`."""
    ok = r.returncode in (1, 2) and words in r.stderr
    check(name, ok, f"(exit {r.returncode}: {r.stderr.strip()[-200:]!r})")


def safetensors_bytes(header, data=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def copy_default(tmp, label):
    d = os.path.join(tmp, label)
    shutil.copytree(DEFAULT, d)
    return d


def edit_tensors(path, edit):
    """Rewrites a single-file checkpoint's tensors in place: edit(name, dtype, bytearray) changes the bytes."""
    raw = bytearray(open(path, "rb").read())
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    for name, t in header.items():
        if name != "__metadata__":
            begin, end = (8 + n + o for o in t["data_offsets"])
            raw[begin:end] = edit(name, t["dtype"], bytearray(raw[begin:end]))
    open(path, "wb").write(raw)


def scaled_bf16(data, exponent):
    """BF16 values times 2**exponent, exactly: the exponent field of every nonzero value moves."""
    for i in range(0, len(data), 2):
        bits = int.from_bytes(data[i:i + 2], "little")
        if bits & 0x7FFF:
            data[i:i + 2] = (bits + (exponent << 7)).to_bytes(2, "little")
    return data


def leftovers(parent):
    return [n for n in os.listdir(parent) if ".tmp-" in n]


with tempfile.TemporaryDirectory() as tmp:
    # Class 2: paths that are not regular files.
    d = copy_default(tmp, "config-dir")
    os.remove(os.path.join(d, "config.json"))
    os.mkdir(os.path.join(d, "config.json"))
    clean_error("inspect: config.json is a directory", run("inspect", d), "config.json' is a directory")
    out = os.path.join(tmp, "out-config-dir")
    clean_error("quantize: config.json is a directory", run("quantize", d, out), "is a directory")
    check("quantize: nothing left behind", not os.path.exists(out) and not leftovers(tmp), str(os.listdir(tmp)))

    d = copy_default(tmp, "fifo-shard")
    os.remove(os.path.join(d, "model.safetensors"))
    os.mkfifo(os.path.join(d, "model.safetensors"))
    clean_error("inspect: a FIFO shard is refused, not read forever", run("inspect", d, timeout=30), "is a FIFO")

    d = copy_default(tmp, "link-loop")
    os.remove(os.path.join(d, "model.safetensors"))
    os.symlink("loop-b", os.path.join(d, "loop-a"))
    os.symlink("loop-a", os.path.join(d, "loop-b"))
    os.symlink("loop-a", os.path.join(d, "model.safetensors"))
    clean_error("inspect: a loop of symbolic links", run("inspect", d), "loop of symbolic links")

    d = copy_default(tmp, "linked-elsewhere")  # a link out of the directory is followed (HF cache layout)
    shard = os.path.join(tmp, "blob")
    shutil.move(os.path.join(d, "model.safetensors"), shard)
    os.symlink(shard, os.path.join(d, "model.safetensors"))
    r = run("inspect", d)
    check("inspect: a shard linked from outside the directory is read", r.returncode == 0, r.stderr[-200:])

    fifo = os.path.join(tmp, "text.fifo")
    os.mkfifo(fifo)
    clean_error("eval: a FIFO as --text", run("eval", DEFAULT, "--text", fifo, timeout=30), "is a FIFO")
    clean_error("eval: a directory as --text", run("eval", DEFAULT, "--text", tmp), "is a directory")

    # Class 6: cost linear in the number of tensors (was over 120 s for 100k; now well under 1 s).
    d = os.path.join(tmp, "many")
    os.mkdir(d)
    n = 100_000
    header = {f"model.layers.{i}.mlp.w": {"dtype": "BF16", "shape": [2], "data_offsets": [4 * i, 4 * i + 4]}
              for i in range(n)}
    open(os.path.join(d, "model.safetensors"), "wb").write(safetensors_bytes(header, bytes(4 * n)))
    json.dump({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, open(os.path.join(d, "config.json"), "w"))
    r = run("inspect", d, timeout=60)
    check("inspect: 100k tensors answered within 60 s", r.returncode == 0 and "valid" in r.stdout, r.stderr[-200:])

    # Class 1: a name long enough to overflow a recursive regex engine's stack (std::regex did).
    d = os.path.join(tmp, "long-name")
    os.mkdir(d)
    name = "model.layers.0.mlp." + "x" * 1_000_000 + ".weight"
    open(os.path.join(d, "model.safetensors"), "wb").write(
        safetensors_bytes({name: {"dtype": "BF16", "shape": [4, 16], "data_offsets": [0, 128]}}, bytes(128)))
    json.dump({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, open(os.path.join(d, "config.json"), "w"))
    r = run("compare-formats", "--file", os.path.join(d, "model.safetensors"))
    check("compare-formats: a 1 MB tensor name under --tensor '.*'", r.returncode == 0, r.stderr[-200:])
    out = os.path.join(tmp, "out-long-name")
    r = run("quantize", d, out, "--exclude", "(x|y)*z")
    check("quantize: --exclude over a 1 MB tensor name", r.returncode == 0 and os.path.isdir(out), r.stderr[-200:])
    clean_error("quantize: an --exclude that does not compile", run("quantize", d, out + "2", "--exclude", "(a"),
                "does not compile")
    check("quantize: nothing left behind by a refused run", not os.path.exists(out + "2") and not leftovers(tmp))

    # Class 5: safetensors files the checkpoint does not list.
    sharded = next(os.path.join(ROOT, "tests", "fixtures", f) for f in sorted(os.listdir(os.path.join(ROOT, "tests", "fixtures")))
                   if os.path.exists(os.path.join(ROOT, "tests", "fixtures", f, "model.safetensors.index.json")))
    d = os.path.join(tmp, "unlisted")
    shutil.copytree(sharded, d)
    index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    some = sorted(index["weight_map"])[0]
    extra = os.path.join(d, "model-00003-of-00002.safetensors")
    open(extra, "wb").write(safetensors_bytes({"stray.weight": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}},
                                              bytes(4)))
    r = run("inspect", d, "--json")
    report = json.loads(r.stdout) if r.stdout.startswith("{") else {}
    check("inspect: an unlisted shard is a warning", r.returncode == 0 and "does not list" in r.stdout, r.stdout[-300:])
    open(extra, "wb").write(safetensors_bytes({some: {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)))
    r = run("inspect", d)
    check("inspect: a tensor stored in a listed and an unlisted shard is an error",
          r.returncode == 1 and f"holds tensor '{some}'" in r.stdout, r.stdout[-300:])

    # Class 4b: packed NVFP4 tensors under a config naming another algorithm.
    d = os.path.join(tmp, "wrong-algo")
    r = run("quantize", DEFAULT, d)
    for f, key in (("hf_quant_config.json", "quantization"), ("config.json", "quantization_config")):
        j = json.load(open(os.path.join(d, f)))
        j[key]["quant_algo"] = "FP8"
        json.dump(j, open(os.path.join(d, f), "w"))
    r = run("inspect", d)
    check("inspect: packed NVFP4 under quant_algo FP8 is invalid",
          r.returncode == 1 and "stored as packed 4-bit codes, but the config declares modelopt FP8" in r.stdout,
          r.stdout[-300:])

    # Class 4a: the direction of the global scale is judged against the rest of the checkpoint, not by
    # magnitude alone. Weights of 1e4 and more are valid NVFP4 (a warning), a reciprocal is an error.
    for label, linears in (("one-huge", "model.layers.1.mlp.down_proj."), ("all-huge", "model.layers.")):
        d = copy_default(tmp, label)
        edit_tensors(os.path.join(d, "model.safetensors"), lambda name, dtype, data: scaled_bf16(data, 17)
                     if name.startswith(linears) and name.endswith("proj.weight") else data)
        out = os.path.join(tmp, label + "-nvfp4")
        run("quantize", d, out, "--quiet")
        r = run("inspect", out, "--json")
        report = json.loads(r.stdout) if r.stdout.startswith("{") else {}
        check(f"inspect: weights ×2^17 ({label}) are valid NVFP4, with a warning", r.returncode == 0 and report.get("valid")
              and "if the weights are not that large" in " ".join(report.get("warnings", [])), r.stdout[-300:])
    d = os.path.join(tmp, "all-reciprocal")
    run("quantize", DEFAULT, d, "--quiet")
    edit_tensors(os.path.join(d, "model.safetensors"), lambda name, dtype, data: bytearray(struct.pack(
        "<f", 1 / struct.unpack("<f", data)[0])) if name.endswith("weight_scale_2") else data)
    r = run("inspect", d, "--json")
    report = json.loads(r.stdout) if r.stdout.startswith("{") else {}
    flagged = [e for e in report.get("errors", []) if "looks like 2688/amax" in e and "unquantized weights" in e]
    check("inspect: every global scale stored reciprocal is an error (judged against the unquantized weights)",
          r.returncode == 1 and len(flagged) == report.get("quantized_modules"), r.stdout[-300:])

    # Found by the fuzzers (tests/fuzz/corpus/*/crash-*), kept here over the CLI too.
    d = os.path.join(tmp, "no-hf-quant")
    run("quantize", DEFAULT, d, "--quiet")
    os.remove(os.path.join(d, "hf_quant_config.json"))
    r = run("inspect", d)
    check("inspect: a ModelOpt config.json without hf_quant_config.json is invalid (it had aborted)",
          r.returncode == 1 and "hf_quant_config.json: missing" in r.stdout, r.stdout[-300:] + r.stderr[-300:])
    d = os.path.join(tmp, "tokenizer-no-pattern")
    os.mkdir(d)
    json.dump({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Replace", "content": "x"}},
              open(os.path.join(d, "tokenizer.json"), "w"))
    clean_error("tokenize: a Replace normalizer without a pattern (it had read freed memory)",
                run("tokenize", d, "--prompt", "a"), "normalizer Replace without a pattern")
    json.dump({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": "yes"}},
              open(os.path.join(d, "tokenizer.json"), "w"))
    clean_error("tokenize: a setting of the wrong type is named", run("tokenize", d, "--prompt", "a"), 'byte_fallback "yes"')

    # Class 3: nesting depth is bounded (a 100k-deep config.json had crashed quantize).
    d = copy_default(tmp, "deep-config")
    open(os.path.join(d, "config.json"), "w").write('{"a":' * 100_000 + "1" + "}" * 100_000)
    out = os.path.join(tmp, "out-deep")
    for command in (["inspect", d], ["quantize", d, out]):
        clean_error(f"{command[0]}: a 100k-deep config.json", run(*command), "nests deeper than 64 levels")
    check("quantize: nothing left behind by the deep config", not os.path.exists(out) and not leftovers(tmp))
    # Class 3: config values of the wrong type or range, named by key.
    for key, value, expected in [("hidden_size", "256", "a positive integer"), ("num_hidden_layers", -1, "a positive integer"),
                                 ("model_type", 5, "a string"), ("rms_norm_eps", "1e-6", "a positive number"),
                                 ("tie_word_embeddings", "no", "true or false")]:
        d = copy_default(tmp, f"config-{key}")
        config = json.load(open(os.path.join(d, "config.json")))
        config[key] = value
        json.dump(config, open(os.path.join(d, "config.json"), "w"))
        r = run("inspect", d)
        check(f"inspect: {key} = {json.dumps(value)} is invalid", r.returncode == 1 and
              f"{key} is {json.dumps(value)}, expected {expected}" in r.stdout, r.stdout[-200:])
    d = os.path.join(tmp, "deep-header")
    os.mkdir(d)
    text = ('{"__metadata__":' + '{"a":' * 100_000 + '"x"' + "}" * 100_001).encode()
    open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(text)) + text)
    json.dump({"model_type": "llama"}, open(os.path.join(d, "config.json"), "w"))
    clean_error("inspect: a 100k-deep safetensors header", run("inspect", d), "nests deeper than 64 levels")

    # Class 8: a size mismatch names bytes.
    d = copy_default(tmp, "short-tensor")
    open(os.path.join(d, "model.safetensors"), "wb").write(
        safetensors_bytes({"w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}, bytes(16)))
    clean_error("inspect: a size mismatch in bytes", run("inspect", d), "16 bytes of data; shape × F32 needs 20 bytes")

    # Class 7: temporary directories of killed runs.
    parent = os.path.join(tmp, "outputs")
    os.mkdir(parent)
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid names no process now
    os.mkdir(os.path.join(parent, f".q.tmp-{dead.pid}"))
    os.mkdir(os.path.join(parent, f".q.tmp-{os.getpid()}"))  # alive: this test
    os.mkdir(os.path.join(parent, f".q.old-{dead.pid}"))     # maybe the only copy of an earlier output
    r = run("quantize", DEFAULT, os.path.join(parent, "q"))
    names = sorted(os.listdir(parent))
    check("quantize: a dead run's temporary directory is removed",
          r.returncode == 0 and f".q.tmp-{dead.pid}" not in names and "removed" in r.stderr, str(names))
    check("quantize: a live process's temporary directory is kept", f".q.tmp-{os.getpid()}" in names, str(names))
    check("quantize: a dead run's moved-aside output is kept, with how to restore it",
          f".q.old-{dead.pid}" in names and "mv" in r.stderr, r.stderr[-300:])

finish()
