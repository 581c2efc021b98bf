#!/usr/bin/env python3
"""fp4forge quantize end to end, checked with other people's code: the official safetensors reader
reads every file, every NVFP4 weight equals the PyTorch restatement of ModelOpt's algorithm
(scripts/torch_nvfp4.py) with the fused group's joint amax, siblings share weight_scale_2, configs
carry the keys vLLM/SGLang read, failures leave no output, and the dequantized default model still
models its corpus.

Usage: quantize_checkpoint_test.py PATH/TO/fp4forge   (exit 77 = skipped without torch/transformers)
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import ROOT, check, finish, load_dir, perplexity, require

safetensors_torch, torch, transformers = require("safetensors.torch", "torch", "transformers")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import torch_nvfp4  # noqa: E402

try:  # NVIDIA's own quantizer, when installed (it runs on CPU)
    from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor
except ImportError:
    NVFP4QTensor = None
    if os.environ.get("FP4FORGE_REQUIRE_ORACLES") == "1":
        print("nvidia-modelopt missing; install with: pip install -r tests/oracle/requirements.txt")
        sys.exit(1)

FP4FORGE = sys.argv[1]
E2M1 = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6])
def group_of(name):
    parent, leaf = name[:-len(".weight")].rsplit(".", 1)
    for members in (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"), ("w1", "w3"), ("q_a_proj", "kv_a_proj_with_mqa")):
        if leaf in members:
            return parent + "/" + "+".join(members)
    return None


def dequantize(packed, scale, scale_2):
    codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(packed.shape[0], -1).long()
    values = E2M1[codes].view(packed.shape[0], -1, 16)
    return (values * (scale.view(torch.float8_e4m3fn).float() * scale_2).unsqueeze(-1)).reshape(packed.shape[0], -1)


def modelopt_export_equal(src, out):
    """Whether `out` holds exactly the tensors nvidia-modelopt exports for the model in `src`,
    weight-only NVFP4: its path for 3-D (BMM-style) experts transposes them around the quantizer."""
    import modelopt.torch.quantization as mtq
    from modelopt.torch.export import export_hf_checkpoint
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16)
    model = mtq.quantize(model, mtq.W4A16_NVFP4_CFG, lambda m: m(torch.arange(8).unsqueeze(0)))
    with tempfile.TemporaryDirectory() as export_dir:
        export_hf_checkpoint(model, export_dir=export_dir)
        exported = load_dir(export_dir)
    as_bytes = lambda t: t.view(torch.uint8) if t.element_size() == 1 else t
    return set(exported) == set(out) and all(exported[k].shape == out[k].shape and exported[k].dtype == out[k].dtype
                                             and torch.equal(as_bytes(exported[k]), as_bytes(out[k])) for k in out)


def quantize(src, dst, *extra):
    return subprocess.run([FP4FORGE, "quantize", src, dst, "--quiet", *extra], capture_output=True, text=True)


with tempfile.TemporaryDirectory() as tmp:
    sources = [os.path.join(ROOT, "tests", "fixtures", f) for f in sorted(os.listdir(os.path.join(ROOT, "tests", "fixtures")))
               if os.path.isdir(os.path.join(ROOT, "tests", "fixtures", f))] + [os.path.join(ROOT, "models", "default")]
    for src in sources:
        name = os.path.basename(src)
        dst = os.path.join(tmp, name)
        run = quantize(src, dst)
        if run.returncode != 0:
            check(f"{name}: quantize runs", False, run.stderr)
            continue
        original, out = load_dir(src), load_dir(dst)
        quantized = [k[:-len(".weight_scale_2")] for k in out if k.endswith(".weight_scale_2")]
        amax = {}
        for m in quantized:
            g = group_of(m + ".weight") or m
            amax[g] = max(amax.get(g, 0.0), original[m + ".weight"].float().abs().max().item())
        exact, shared, modelopt_exact = True, True, True
        for m in quantized:
            g = group_of(m + ".weight") or m
            codes, scales, s2 = torch_nvfp4.quantize_nvfp4(original[m + ".weight"], amax[g])
            if NVFP4QTensor is not None:
                # ModelOpt's export path: the group's weight_scale_2, then NVFP4QTensor.quantize.
                mo_s2 = torch.tensor(amax[g], dtype=torch.float32) / (6.0 * 448.0)
                mo_q, mo_scale, _ = NVFP4QTensor.quantize(original[m + ".weight"].clone(), 16, weights_scaling_factor_2=mo_s2)
                modelopt_exact &= torch.equal(out[m + ".weight"], mo_q._quantized_data) and \
                    torch.equal(out[m + ".weight_scale"].view(torch.uint8), mo_scale.view(torch.uint8)) and \
                    out[m + ".weight_scale_2"].item() == mo_s2.item()
            exact &= torch.equal(out[m + ".weight"], codes) and torch.equal(out[m + ".weight_scale"].view(torch.uint8), scales) \
                and out[m + ".weight_scale_2"].shape == () and out[m + ".weight_scale_2"].item() == s2.item()
            shared &= out[m + ".weight_scale_2"].item() == torch.tensor(amax[g] / 2688.0, dtype=torch.float32).item()
        experts = [k[:-len("_weight_scale_2")] for k in out if k.endswith("_weight_scale_2")]  # 3-D [E, K, N]
        kept = [k for k in original if not any(k == m + ".weight" for m in quantized) and k not in experts]
        check(f"{name}: {len(quantized)} weights equal the ModelOpt restatement, dtypes U8/F8_E4M3/F32[]", exact and len(quantized) > 0)
        check(f"{name}: fused siblings share weight_scale_2 = joint amax / 2688", shared)
        if NVFP4QTensor is not None:
            check(f"{name}: weight, weight_scale, weight_scale_2 bytes equal nvidia-modelopt's NVFP4QTensor.quantize",
                  modelopt_exact)
        check(f"{name}: the {len(kept)} other tensors are copied bit for bit",
              all(torch.equal(out[k].view(torch.uint8) if out[k].dtype != torch.bool else out[k],
                              original[k].view(torch.uint8) if original[k].dtype != torch.bool else original[k]) for k in kept))
        hf = json.load(open(os.path.join(dst, "hf_quant_config.json")))["quantization"]
        config = json.load(open(os.path.join(dst, "config.json")))["quantization_config"]
        check(f"{name}: hf_quant_config.json and config.json carry what vLLM/SGLang read",
              {"quant_algo", "kv_cache_quant_algo", "group_size", "exclude_modules"} <= set(hf) and hf["group_size"] == 16
              and "lm_head" in hf["exclude_modules"] and config["quant_method"] == "modelopt"
              and config["quant_algo"] == hf["quant_algo"] == "W4A16_NVFP4" and config["ignore"] == hf["exclude_modules"])
        if experts and NVFP4QTensor is not None:
            check(f"{name}: {len(experts)} 3-D expert weights and every other tensor equal nvidia-modelopt's own "
                  "export (W4A16_NVFP4_CFG, export_hf_checkpoint)", modelopt_export_equal(src, out))
        if os.path.exists(os.path.join(src, "model.safetensors.index.json")):  # sharded input, small output
            check(f"{name}: a sharded input under --max-shard-size becomes one model.safetensors",
                  sorted(f for f in os.listdir(dst) if f.startswith("model")) == ["model.safetensors"])

    # --max-shard-size: the same tensors, spread over shards named as Hugging Face names them.
    sharded = os.path.join(tmp, "default-sharded")
    run = quantize(os.path.join(ROOT, "models", "default"), sharded, "--max-shard-size", "2MB")
    files = sorted(f for f in os.listdir(sharded) if f.endswith(".safetensors")) if run.returncode == 0 else []
    index = json.load(open(os.path.join(sharded, "model.safetensors.index.json"))) if files else {}
    whole, parts = load_dir(os.path.join(tmp, "default")), load_dir(sharded) if files else {}
    check("--max-shard-size 2MB: shards model-0000i-of-0000N of at most 2 MB (or one tensor), same tensors, index",
          len(files) > 3 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
          and all(os.path.getsize(os.path.join(sharded, f)) <= 2_000_000 + 2_100_000 for f in files)
          and set(index.get("weight_map", {})) == set(whole) and all(torch.equal(whole[k], parts[k]) for k in whole))

    # Weights that cannot be quantized (input dimension not a multiple of 16, empty) are kept with a
    # warning and listed as excluded; the output stays valid.
    odd = os.path.join(tmp, "odd")
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "llama3"), odd)
    weights = safetensors_torch.load_file(os.path.join(odd, "model.safetensors"))
    odd_modules = {"model.layers.1.mlp.down_proj": torch.randn(64, 40).to(torch.bfloat16),
                   "model.layers.1.self_attn.o_proj": torch.zeros(0, 64, dtype=torch.bfloat16)}
    weights.update({m + ".weight": w for m, w in odd_modules.items()})
    safetensors_torch.save_file(weights, os.path.join(odd, "model.safetensors"), metadata={"format": "pt"})
    run = quantize(odd, os.path.join(tmp, "odd-out"))
    out = safetensors_torch.load_file(os.path.join(tmp, "odd-out", "model.safetensors")) if run.returncode == 0 else {}
    excluded = json.load(open(os.path.join(tmp, "odd-out", "hf_quant_config.json")))["quantization"]["exclude_modules"] \
        if run.returncode == 0 else []
    inspected = subprocess.run([FP4FORGE, "inspect", os.path.join(tmp, "odd-out")], capture_output=True, text=True)
    check("a [64, 40] and an empty weight are kept bit for bit with a warning each, listed as excluded; inspect: valid",
          run.returncode == 0 and all(m + ".weight" in run.stderr for m in odd_modules)
          and all(torch.equal(out.get(m + ".weight", torch.empty(1)), w) for m, w in odd_modules.items())
          and all(m in excluded for m in odd_modules) and inspected.returncode == 0, run.stderr.strip()[-300:])

    # --quantize-lm-head: nothing is excluded, and the list that must not be empty does not name lm_head.
    for fmt in ["modelopt", "compressed-tensors"]:
        head = os.path.join(tmp, "lm-head-" + fmt)
        run = quantize(os.path.join(ROOT, "tests", "fixtures", "llama3"), head, "--quantize-lm-head", "--format", fmt)
        config = json.load(open(os.path.join(head, "config.json")))["quantization_config"] if run.returncode == 0 else {}
        inspected = subprocess.run([FP4FORGE, "inspect", head], capture_output=True, text=True)
        check(f"--quantize-lm-head ({fmt}): lm_head quantized and not listed as excluded; inspect: valid",
              run.returncode == 0 and "lm_head" not in config.get("ignore", ["lm_head"]) and inspected.returncode == 0,
              inspected.stdout.strip()[-300:])

    # Failures leave nothing behind.
    dst = os.path.join(tmp, "default")
    run = quantize(os.path.join(ROOT, "models", "default"), dst)
    check("an existing OUT_DIR is refused without --force (exit 2), and kept", run.returncode == 2 and "--force" in run.stderr
          and os.path.exists(os.path.join(dst, "model.safetensors")))
    broken = os.path.join(tmp, "broken")
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "llama3"), broken)
    weights = safetensors_torch.load_file(os.path.join(broken, "model.safetensors"))
    weights["model.layers.1.mlp.up_proj.weight"][3, 5] = float("nan")
    safetensors_torch.save_file(weights, os.path.join(broken, "model.safetensors"), metadata={"format": "pt"})
    run = quantize(broken, os.path.join(tmp, "broken-out"))
    check("a NaN weight: error names tensor, row and column; no output and no temporary directory left",
          run.returncode == 1 and "model.layers.1.mlp.up_proj.weight" in run.stderr and "row 3, column 5" in run.stderr
          and not any(f.startswith("broken-out") or f.startswith(".broken-out") for f in os.listdir(tmp)), run.stderr.strip())

    before = os.path.getmtime(os.path.join(dst, "model.safetensors"))
    run = subprocess.run([FP4FORGE, "quantize", broken, dst, "--force", "--quiet"], capture_output=True, text=True)
    check("--force with a failing run keeps the existing OUT_DIR untouched, and leaves nothing beside it",
          run.returncode == 1 and os.path.getmtime(os.path.join(dst, "model.safetensors")) == before
          and not any(f.startswith("." + os.path.basename(dst)) for f in os.listdir(os.path.dirname(dst))), run.stderr.strip())
    run = quantize(os.path.join(ROOT, "models", "default"), dst, "--force")
    check("--force replaces OUT_DIR and deletes the previous one (nothing left beside it)",
          run.returncode == 0 and os.path.getmtime(os.path.join(dst, "model.safetensors")) > before
          and not any(f.startswith("." + os.path.basename(dst)) for f in os.listdir(os.path.dirname(dst))), run.stderr.strip())

    def full_disk():  # files may not grow past 1 MB: writes then fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    run = subprocess.run([FP4FORGE, "quantize", os.path.join(ROOT, "models", "default"), os.path.join(tmp, "full-out"),
                          "--quiet"], capture_output=True, text=True, preexec_fn=full_disk)
    check("a full disk: error names the file being written; no output and no temporary directory left",
          run.returncode == 1 and "model.safetensors" in run.stderr
          and not any(f.startswith("full-out") or f.startswith(".full-out") for f in os.listdir(tmp)), run.stderr.strip())

    run = quantize(os.path.join(ROOT, "models", "default"), os.path.join(tmp, "slash-out") + "/")
    check("OUT_DIR/ with a trailing slash is OUT_DIR", run.returncode == 0 and os.path.exists(
        os.path.join(tmp, "slash-out", "model.safetensors")) and not any(".slash-out" in f for f in os.listdir(tmp)),
          run.stderr.strip())
    a_file = os.path.join(tmp, "a-file")
    open(a_file, "w").write("keep me")
    run = quantize(os.path.join(ROOT, "models", "default"), a_file, "--force")
    check("an OUT_DIR that is a file is refused even with --force (exit 2), and kept", run.returncode == 2
          and "not a directory" in run.stderr and open(a_file).read() == "keep me", run.stderr.strip())

    # Ctrl-C or SIGTERM while quantizing: exit 130 and nothing left behind, not even the hidden temporary.
    big = os.path.join(tmp, "interrupted-in")
    os.makedirs(big)
    shutil.copy(os.path.join(ROOT, "tests", "fixtures", "llama3", "config.json"), big)
    gen = torch.Generator().manual_seed(0)
    safetensors_torch.save_file({f"model.layers.{i}.mlp.down_proj.weight": torch.randn(2048, 2048, generator=gen).to(torch.bfloat16)
                                 for i in range(24)}, os.path.join(big, "model.safetensors"))  # 200 MB: ~0.2 s or more
    for sig in (signal.SIGINT, signal.SIGTERM):
        out = os.path.join(tmp, "interrupted-out")
        proc = subprocess.Popen([FP4FORGE, "quantize", big, out, "--quiet"], stderr=subprocess.PIPE, text=True)
        partial = os.path.join(tmp, f".interrupted-out.tmp-{proc.pid}")
        while proc.poll() is None and not os.path.exists(partial):
            time.sleep(0.001)
        proc.send_signal(sig)
        stderr = proc.communicate()[1]
        check(f"{sig.name} while quantizing: exit 130, says so, no output and no temporary directory left",
              proc.returncode == 130 and "stopped by" in stderr and not os.path.exists(out) and not os.path.exists(partial),
              f"rc={proc.returncode} {stderr.strip()}")

    # An output directory that is, or contains, the input would delete it: refused even with --force.
    inside = os.path.join(tmp, "nest", "model")
    shutil.copytree(os.path.join(ROOT, "models", "default"), inside)
    for out in (inside, inside + "/", os.path.dirname(inside)):
        run = quantize(inside, out, "--force")
        check(f"quantize into {os.path.relpath(out, tmp)} with --force is refused (exit 2), the input untouched",
              run.returncode == 2 and "would delete the input" in run.stderr
              and os.path.exists(os.path.join(inside, "model.safetensors")), run.stderr.strip())
    run = subprocess.run([FP4FORGE, "convert", dst, dst, "--to", "compressed-tensors", "--force"], capture_output=True, text=True)
    check("convert into its own input with --force is refused (exit 2), the input untouched", run.returncode == 2
          and "would delete the input" in run.stderr and os.path.exists(os.path.join(dst, "hf_quant_config.json")),
          run.stderr.strip())

    # Already quantized input: our own NVFP4 output, and a DeepSeek-style FP8 config.
    fp8 = os.path.join(tmp, "fp8")
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "llama3"), fp8)
    with open(os.path.join(fp8, "config.json")) as f:
        config = json.load(f)
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}
    with open(os.path.join(fp8, "config.json"), "w") as f:
        json.dump(config, f)
    for src, method in ((dst, '"modelopt"'), (fp8, '"fp8"')):
        run = quantize(src, os.path.join(tmp, "requantized"))
        check(f"a checkpoint already quantized ({method}) is refused, pointing to convert; nothing written",
              run.returncode == 1 and "already quantized" in run.stderr and method in run.stderr and "convert" in run.stderr
              and not any("requantized" in f for f in os.listdir(tmp)), run.stderr.strip())

    # inspect: a good checkpoint is valid; each classic way of breaking one is caught by name.
    def inspect(d):
        run = subprocess.run([FP4FORGE, "inspect", d, "--json"], capture_output=True, text=True)
        return run.returncode, (json.loads(run.stdout) if run.stdout.strip().startswith("{") else {})

    rc, report = inspect(dst)
    check("inspect: fp4forge's own output is valid ModelOpt W4A16_NVFP4 with 42 NVFP4 modules",
          rc == 0 and report.get("valid") and report.get("dialect") == "modelopt W4A16_NVFP4"
          and report.get("quantized_modules") == 42 and report.get("num_params") == 6819072, str(report.get("errors")))

    def broken_copy(label, edit_tensors=None, edit_config=None, source=dst):
        d = os.path.join(tmp, "inspect-" + label)
        shutil.copytree(source, d)
        if edit_tensors:
            files = [f for f in os.listdir(d) if f.startswith("model") and f.endswith(".safetensors")]
            weight_map = {}
            for f in files:
                t = safetensors_torch.load_file(os.path.join(d, f))
                if edit_tensors(t):
                    safetensors_torch.save_file(t, os.path.join(d, f), metadata={"format": "pt"})
                weight_map.update({k: f for k in t})
            index = os.path.join(d, "model.safetensors.index.json")
            if os.path.exists(index):  # keep the index truthful: only the edit itself is under test
                json.dump({"metadata": {}, "weight_map": weight_map}, open(index, "w"))
        if edit_config:
            path = os.path.join(d, "hf_quant_config.json")
            config = json.load(open(path))
            edit_config(config)
            json.dump(config, open(path, "w"))
        return inspect(d)

    q = "model.layers.2.self_attn.q_proj"

    def reciprocal(t):
        t[q + ".weight_scale_2"] = 1.0 / t[q + ".weight_scale_2"]
        return True

    def nan_scale(t):
        t[q + ".weight_scale"].view(torch.uint8)[3, 1] = 0x7F
        return True

    def unshared(t):
        t[q.replace("q_proj", "k_proj") + ".weight_scale_2"] = t[q + ".weight_scale_2"] * 1.01
        return True

    def kept_unlisted(t):  # o_proj back in BF16, but still not among the excluded modules
        o = q.replace("q_proj", "o_proj")
        packed = t.pop(o + ".weight")
        del t[o + ".weight_scale"], t[o + ".weight_scale_2"]
        t[o + ".weight"] = torch.zeros(packed.shape[0], 2 * packed.shape[1], dtype=torch.bfloat16)
        return True

    for label, edit_tensors, edit_config, fragment in [
            ("reciprocal", reciprocal, None, "2688/amax"),
            ("excluded-but-quantized", None, lambda c: c["quantization"]["exclude_modules"].append(q), "listed as excluded"),
            ("kept-but-not-excluded", kept_unlisted, None, "not listed as excluded"),
            ("nan-scale", nan_scale, None, "row 3, block 1"),
            ("unshared", unshared, None, "different weight_scale_2"),
            ("no-kv-key", None, lambda c: c["quantization"].pop("kv_cache_quant_algo"), "kv_cache_quant_algo"),
            ("group-size", None, lambda c: c["quantization"].update(group_size=32), "group_size")]:
        rc, report = broken_copy(label, edit_tensors, edit_config)
        errors = " ".join(report.get("errors", []))
        check(f"inspect flags '{label}' (exit 1, finding names it)", rc == 1 and report.get("valid") is False
              and fragment in errors and (edit_tensors is None or "layers.2.self_attn" in errors), errors[:200])

    moe = os.path.join(tmp, "qwen3_moe")

    def drop_expert_scale(t):
        key = "model.layers.1.mlp.experts.2.down_proj.weight_scale_2"
        return t.pop(key, None) is not None

    rc, report = broken_copy("expert", drop_expert_scale, None, source=moe)
    check("inspect flags an expert without weight_scale_2", rc == 1 and any("experts.2.down_proj" in e for e in report.get("errors", [])))

    # 3-D experts (gpt-oss): scales in the 2-D orientation, a reciprocal scale_2, a NaN scale byte.
    oss, gate_up = os.path.join(tmp, "gpt_oss"), "model.layers.1.mlp.experts.gate_up_proj"
    rc, report = inspect(oss)
    check("inspect: fp4forge's gpt-oss output is valid: 4 3-D expert and 8 attention NVFP4 modules",
          rc == 0 and report.get("quantized_modules") == 12, str(report.get("errors")))

    def untransposed(t):
        t[gate_up + "_weight_scale"] = t[gate_up + "_weight_scale"].transpose(1, 2).contiguous()
        return True

    def expert_reciprocal(t):
        t[gate_up + "_weight_scale_2"] = 1.0 / t[gate_up + "_weight_scale_2"]
        return True

    def expert_nan(t):
        t[gate_up + "_weight_scale"].view(torch.uint8)[2, 1, 5] = 0x7F
        return True

    for label, edit, fragment in [("untransposed", untransposed, "[E, K/16, N]"), ("expert-reciprocal", expert_reciprocal, "2688/amax"),
                                  ("expert-nan", expert_nan, "expert 2, block 1, column 5")]:
        rc, report = broken_copy(label, edit, None, source=oss)
        errors = " ".join(report.get("errors", []))
        check(f"inspect flags 3-D experts '{label}' (exit 1, finding names the tensor)",
              rc == 1 and fragment in errors and gate_up in errors, errors[:200])
    truncated = os.path.join(tmp, "inspect-truncated")
    shutil.copytree(dst, truncated)
    with open(os.path.join(truncated, "model.safetensors"), "r+b") as f:
        f.truncate(1000)
    rc, _ = inspect(truncated)
    check("inspect: a truncated file is unreadable (exit 2)", rc == 2)

    # The dequantized default model still models its corpus.
    model = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, "models", "default"), dtype=torch.float32).eval()
    out = load_dir(dst)
    state = model.state_dict()
    for k in [k for k in out if k.endswith(".weight_scale_2")]:
        m = k[:-len(".weight_scale_2")]
        state[m + ".weight"].copy_(dequantize(out[m + ".weight"], out[m + ".weight_scale"], out[k]))
    ppl = perplexity(model)
    # BF16 model: 22.58 (docs/MODELS.md); ANCHORS.md §1 has NVFP4 W4A16 RTN at +6% perplexity on
    # Llama-3.1-8B; a 6.8M-parameter model is more sensitive, so up to +25% is accepted.
    check("dequantized NVFP4 default model: held-out perplexity within [22.58, 28.2]", 22.58 <= ppl <= 28.2, f"ppl={ppl:.3f}")

finish()
