"""Shared by the Python test scripts that CTest runs: the skip rule, the PASS/FAIL bookkeeping, and
reading checkpoints and measuring the default model's perplexity.

A script imports its oracle packages through require(); when they are missing it exits 77, which
CTest reports as skipped, unless FP4FORGE_REQUIRE_ORACLES=1 (as in CI), where missing is failure.
It ends with finish(), which prints the "N passed, N failed" line and sets the exit status.
"""
import importlib
import os
import sys

os.environ.update(HF_HUB_DISABLE_PROGRESS_BARS="1", TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
_results = {"passed": 0, "failed": 0}


def require(*modules):
    """Imports and returns the modules, or exits as skipped (77) / failed when one is missing."""
    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError as e:
        print(f"oracle packages missing ({e}); install with: pip install -r tests/oracle/requirements.txt")
        sys.exit(1 if os.environ.get("FP4FORGE_REQUIRE_ORACLES") == "1" else 77)


def check(name, ok, detail=""):
    _results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {name} {detail}", flush=True)


def finish():
    print(f"{_results['passed']} passed, {_results['failed']} failed")
    sys.exit(1 if _results["failed"] else 0)


# Fused layers, which share their per-tensor scales (FORMATS.md §5.7 item 5).
FUSED = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"), ("w1", "w3"), ("q_a_proj", "kv_a_proj_with_mqa"))


def group_of(module):
    """The fused group a Linear module belongs to ("parent/q_proj+k_proj+v_proj"), or the module itself."""
    parent, leaf = module.rsplit(".", 1)
    for members in FUSED:
        if leaf in members:
            return parent + "/" + "+".join(members)
    return module


def load_dir(directory):
    """Every tensor of a checkpoint directory (single or sharded), read by the official reader."""
    from safetensors.torch import load_file
    tensors = {}
    for f in sorted(os.listdir(directory)):
        if f.startswith("model") and f.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(directory, f)))
    return tensors


def perplexity(model):
    """Perplexity of a causal LM on models/eval/kjv-test.txt with the default model's tokenizer, in
    windows of 256 tokens (as scripts/models/default_model.py evaluate)."""
    import math
    import torch
    import transformers
    tokenizer = transformers.AutoTokenizer.from_pretrained(os.path.join(ROOT, "models", "default"))
    text = open(os.path.join(ROOT, "models", "eval", "kjv-test.txt")).read()
    ids = torch.tensor(tokenizer(text)["input_ids"])
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(ids) - 1, 256):
            w = ids[i:i + 257].unsqueeze(0)
            logits = model(input_ids=w[:, :-1]).logits
            total += torch.nn.functional.cross_entropy(logits[0].float(), w[0, 1:], reduction="sum").item()
            count += w.shape[1] - 1
    return math.exp(total / count)
