#!/usr/bin/env python3
"""fp4forge inspect on every dialect it validates, and fp4forge convert between the NVFP4 dialects:
valid checkpoints pass; each classic fault, planted by hand, is reported by name; convert keeps FP4
bytes and block scales, reciprocates global scales, agrees with compressed-tensors' own ModelOpt
converter, round-trips, and refuses invalid input.

Usage: dialects_test.py PATH/TO/fp4forge   (exit 77 = skipped without the oracle packages)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from harness import ROOT, check, finish, load_dir, require

safetensors_torch, torch, transformers, _ = require("safetensors.torch", "torch", "transformers", "compressed_tensors")
from compressed_tensors.entrypoints.convert.converters.modelopt_nvfp4 import ModelOptNvfp4Converter  # noqa: E402

FP4FORGE = sys.argv[1]
E2M1 = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6])
DEFAULT = os.path.join(ROOT, "models", "default")


def run(*args):
    return subprocess.run([FP4FORGE, *args], capture_output=True, text=True)


def inspect(d):
    r = run("inspect", d, "--json")
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip().startswith("{") else {})


def save_all(d, tensors):
    """Rewrites a single-file checkpoint's tensors."""
    safetensors_torch.save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})


def edited(tmp, source, label, edit_tensors=None, edit_config=None):
    d = os.path.join(tmp, label)
    shutil.copytree(source, d)
    if edit_tensors:
        tensors = load_dir(d)
        edit_tensors(tensors)
        save_all(d, tensors)
    if edit_config:
        path = os.path.join(d, "config.json")
        config = json.load(open(path))
        edit_config(config["quantization_config"])
        json.dump(config, open(path, "w"))
    return d


def expect_finding(label, d, fragment, where=None):
    rc, report = inspect(d)
    errors = " ".join(report.get("errors", []))
    check(f"inspect flags '{label}' (exit 1, the finding names it)", rc == 1 and report.get("valid") is False
          and fragment in errors and (where is None or where in errors), errors[:240])


with tempfile.TemporaryDirectory() as tmp:
    modelopt, ct, mxfp4 = (os.path.join(tmp, n) for n in ("modelopt", "ct", "mxfp4"))
    run("quantize", DEFAULT, modelopt, "--quiet")
    run("quantize", DEFAULT, ct, "--quiet", "--format", "compressed-tensors")
    run("quantize", DEFAULT, mxfp4, "--quiet", "--format", "compressed-tensors", "--scheme", "mxfp4")

    # ---- inspect: compressed-tensors NVFP4 and MXFP4 ----
    for d, dialect in ((ct, "compressed-tensors nvfp4-pack-quantized"), (mxfp4, "compressed-tensors mxfp4-pack-quantized")):
        rc, report = inspect(d)
        check(f"inspect: fp4forge's {dialect} output is valid with 42 quantized modules", rc == 0 and report.get("valid")
              and report.get("dialect") == dialect and report.get("quantized_modules") == 42, str(report.get("errors")))

    q = "model.layers.2.self_attn.q_proj"

    def reciprocal(t):
        t[q + ".weight_global_scale"] = 1.0 / t[q + ".weight_global_scale"]

    def unshared(t):
        k = q.replace("q_proj", "k_proj") + ".weight_global_scale"
        t[k] = t[k] * 1.01

    def nan_scale(t):
        t[q + ".weight_scale"].view(torch.uint8)[3, 1] = 0x7F

    def no_strategy(c):
        del c["config_groups"]["group_0"]["weights"]["strategy"]

    expect_finding("ct reciprocal weight_global_scale", edited(tmp, ct, "ct-reciprocal", reciprocal), "amax/2688", q)
    expect_finding("ct unshared q/k/v global scales", edited(tmp, ct, "ct-unshared", unshared), "different", "layers.2.self_attn")
    expect_finding("ct NaN block scale", edited(tmp, ct, "ct-nan", nan_scale), "row 3, block 1", q)
    expect_finding("ct strategy missing (vLLM infers 'group')", edited(tmp, ct, "ct-strategy", None, no_strategy), "strategy")
    expect_finding("ct not compressed", edited(tmp, ct, "ct-status", None, lambda c: c.update(quantization_status="frozen")),
                   "quantization_status")
    # Settings of the wrong JSON type are findings naming the key, never a crash (convert refuses them too).
    for label, edit, key in [("format-number", lambda c: c.update(format=7), "quantization_config.format"),
                             ("ignore-string", lambda c: c.update(ignore="lm_head"), "quantization_config.ignore"),
                             ("ignore-number", lambda c: c["ignore"].append(5), "quantization_config.ignore"),
                             ("group-list", lambda c: c["config_groups"].update(group_0=[1]), "config_groups.group_0"),
                             ("weights-number", lambda c: c["config_groups"]["group_0"].update(weights=4), "group_0.weights")]:
        d = edited(tmp, ct, "ct-type-" + label, None, edit)
        expect_finding(f"ct {label}", d, key)
        converted = run("convert", d, os.path.join(tmp, "ct-type-out"), "--to", "modelopt")
        check(f"convert refuses ct {label} with the finding (exit 1)", converted.returncode == 1 and key in converted.stderr,
              converted.stderr.strip()[-200:])
    expect_finding("ct invalid re: pattern in ignore", edited(tmp, ct, "ct-bad-regex", None, lambda c: c["ignore"].append("re:((")),
                   "not a valid regular expression")

    def mx_nan(t):
        t[q + ".weight_scale"][0, 0] = 0xFF

    expect_finding("mxfp4 NaN E8M0 scale", edited(tmp, mxfp4, "mx-nan", mx_nan), "NaN", q)

    # ---- inspect: gpt-oss MXFP4 (FORMATS.md §4c) and FP8, built by hand ----
    oss = os.path.join(tmp, "gpt-oss-mxfp4")
    shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "gpt_oss"), oss)
    tensors = load_dir(oss)
    for k in [k for k in tensors if k.endswith(("experts.gate_up_proj", "experts.down_proj"))]:
        e, k_in, n = tensors.pop(k).shape  # BMM layout [E, in, out] -> blocks [E, out, in/32, 16]
        tensors[k + "_blocks"] = torch.randint(0, 256, (e, n, k_in // 32, 16), dtype=torch.uint8)
        tensors[k + "_scales"] = torch.randint(118, 130, (e, n, k_in // 32), dtype=torch.uint8)
    save_all(oss, tensors)
    config = json.load(open(os.path.join(oss, "config.json")))
    config["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": ["lm_head"]}
    json.dump(config, open(os.path.join(oss, "config.json"), "w"))
    rc, report = inspect(oss)
    check("inspect: a gpt-oss MXFP4 checkpoint is valid", rc == 0 and report.get("dialect") == "gpt-oss mxfp4"
          and report.get("quantized_modules") == 4, str(report))
    scales = "model.layers.0.mlp.experts.down_proj_scales"
    expect_finding("gpt-oss NaN scale", edited(tmp, oss, "oss-nan", lambda t: t[scales].view(-1).__setitem__(5, 0xFF)), "NaN",
                   "down_proj")
    expect_finding("gpt-oss scales of the wrong shape", edited(tmp, oss, "oss-shape", lambda t: t.update({scales: t[scales][:, :-1].contiguous()})),
                   "expected U8", "down_proj")

    fp8 = os.path.join(tmp, "fp8")
    shutil.copytree(DEFAULT, fp8)
    tensors = load_dir(fp8)
    for k in [k for k in tensors if k.endswith("proj.weight")]:
        w = tensors[k].float()
        scale = w.abs().max() / 448
        tensors[k] = (w / scale).to(torch.float8_e4m3fn)
        tensors[k[:-len("weight")] + "weight_scale"] = scale.reshape(())
    save_all(fp8, tensors)
    json.dump({"producer": {"name": "test"}, "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": None,
                                                              "exclude_modules": ["lm_head"]}},
              open(os.path.join(fp8, "hf_quant_config.json"), "w"))
    rc, report = inspect(fp8)
    check("inspect: a ModelOpt FP8 checkpoint is valid with 42 FP8 modules", rc == 0 and report.get("dialect") == "modelopt FP8"
          and report.get("quantized_modules") == 42, str(report.get("errors")))
    o_proj = "model.layers.1.self_attn.o_proj.weight_scale"
    expect_finding("FP8 negative weight scale", edited(tmp, fp8, "fp8-neg", lambda t: t.update({o_proj: -t[o_proj]})),
                   "finite positive", "o_proj")

    # ---- convert ----
    planted = os.path.join(tmp, "planted-zero-block")  # a weight with an all-zero block: 0x38 vs 0x20
    shutil.copytree(DEFAULT, planted)
    tensors = load_dir(planted)
    tensors["model.layers.0.mlp.up_proj.weight"][5, 32:48] = 0
    save_all(planted, tensors)
    mo = os.path.join(tmp, "planted-modelopt")
    run("quantize", planted, mo, "--quiet")
    mo_ct, mo_ct_mo = os.path.join(tmp, "mo-ct"), os.path.join(tmp, "mo-ct-mo")
    r1 = run("convert", mo, mo_ct, "--to", "compressed-tensors")
    r2 = run("convert", mo_ct, mo_ct_mo, "--to", "modelopt")
    a, b, c = load_dir(mo), load_dir(mo_ct), load_dir(mo_ct_mo)
    modules = [k[:-len(".weight_scale_2")] for k in a if k.endswith(".weight_scale_2")]

    def ulps(x, y):
        return abs(int(x.float().view(torch.int32).reshape(-1)[0]) - int(y.float().view(torch.int32).reshape(-1)[0]))

    up = "model.layers.0.mlp.up_proj"
    zero_block_ok = a[up + ".weight_scale"].view(torch.uint8)[5, 2] == 0x38 and \
        b[up + ".weight_scale"].view(torch.uint8)[5, 2] == 0x20
    same_scales = all(torch.equal(torch.where(a[m + ".weight_scale"].view(torch.uint8) == 0x38, 0x20,
                                              a[m + ".weight_scale"].view(torch.uint8)) if m == up else a[m + ".weight_scale"].view(torch.uint8),
                                  b[m + ".weight_scale"].view(torch.uint8)) for m in modules)
    check("convert modelopt -> compressed-tensors: weight bytes kept, block scales kept except the zero block "
          "(0x38 -> 0x20), weight_global_scale = float32(1/weight_scale_2) of shape [1]",
          r1.returncode == 0 and len(modules) == 42 and zero_block_ok and same_scales
          and all(torch.equal(a[m + ".weight"], b[m + ".weight_packed"]) for m in modules)
          and all(b[m + ".weight_global_scale"].shape == (1,)
                  and b[m + ".weight_global_scale"].item() == (1.0 / a[m + ".weight_scale_2"]).item() for m in modules),
          r1.stderr)
    check("convert back: modelopt -> compressed-tensors -> modelopt reproduces every tensor, global scales within 1 ulp",
          r2.returncode == 0 and set(a) == set(c)
          and all(torch.equal(a[k].view(torch.uint8), c[k].view(torch.uint8)) for k in a if not k.endswith("weight_scale_2"))
          and all(ulps(a[k], c[k]) <= 1 and c[k].shape == () for k in a if k.endswith("weight_scale_2")), r2.stderr)
    rc_ct, _ = inspect(mo_ct)
    rc_mo, report = inspect(mo_ct_mo)
    check("converted checkpoints are valid in both dialects, configs in the target's form",
          rc_ct == 0 and rc_mo == 0 and report.get("dialect") == "modelopt W4A16_NVFP4"
          and os.path.exists(os.path.join(mo_ct_mo, "hf_quant_config.json")) and not os.path.exists(os.path.join(mo_ct, "hf_quant_config.json")))

    # The peer's reader on the converted checkpoint: transformers + compressed-tensors dequantize
    # every layer to the ModelOpt checkpoint's weights (code · scale · S), rounded to bf16 as it
    # does; gs = fl(1/S) may move a product by an ulp before that rounding, never more.
    model = transformers.AutoModelForCausalLM.from_pretrained(
        mo_ct, dtype=torch.float32,
        quantization_config=transformers.utils.quantization_config.CompressedTensorsConfig(dequantize=True))
    state = model.state_dict()
    worst = 0.0
    for m in modules:
        codes = torch.stack([a[m + ".weight"] & 0xF, a[m + ".weight"] >> 4], dim=-1).reshape(a[m + ".weight"].shape[0], -1)
        values = E2M1[codes.long()].view(codes.shape[0], -1, 16)
        want = (values * (a[m + ".weight_scale"].float() * a[m + ".weight_scale_2"]).unsqueeze(-1)).reshape(codes.shape[0], -1)
        worst = max(worst, ((state[m + ".weight"] - want.bfloat16().float()).abs() / want.abs().clamp(min=1e-30)).max().item())
    check("transformers + compressed-tensors load the converted checkpoint to the ModelOpt weights (bf16, within 1 bf16 ulp)",
          worst <= 2 ** -7, f"worst relative difference {worst:.3g}")

    # compressed-tensors' own converter on the same input (it keeps ModelOpt's zero-block byte and
    # writes 0-dim global scales; everything else must agree).
    theirs = ModelOptNvfp4Converter(targets=["re:.*"], ignore=["lm_head"]).process(dict(a))
    agree = set(theirs) == set(b) and all(
        torch.equal(theirs[k].reshape(-1).view(torch.uint8), b[k].reshape(-1).view(torch.uint8))
        for k in b if k != up + ".weight_scale")
    check("convert agrees with compressed-tensors' ModelOptNvfp4Converter on every tensor but the planted zero block", agree)

    # A compressed-tensors checkpoint from llm-compressor's arithmetic round-trips too.
    ct_mo, ct_mo_ct = os.path.join(tmp, "ct-mo"), os.path.join(tmp, "ct-mo-ct")
    run("convert", ct, ct_mo, "--to", "modelopt")
    run("convert", ct_mo, ct_mo_ct, "--to", "compressed-tensors")
    x, y = load_dir(ct), load_dir(ct_mo_ct)
    check("compressed-tensors -> modelopt -> compressed-tensors reproduces every tensor, global scales within 1 ulp",
          set(x) == set(y) and all(torch.equal(x[k].view(torch.uint8), y[k].view(torch.uint8)) if not k.endswith("global_scale")
                                   else ulps(x[k], y[k]) <= 1 for k in x))

    # The search rule (issue 18): S chosen per fused group; both dialects valid, the group's S
    # shared and moved off amax/2688, and the compressed-tensors output round-trips through ModelOpt.
    for dialect in ("modelopt", "compressed-tensors"):
        searched = os.path.join(tmp, "search-" + dialect)
        run("quantize", DEFAULT, searched, "--scale", "search", "--format", dialect, "--quiet")
        rc, report = inspect(searched)
        t = load_dir(searched)
        key = ".weight_scale_2" if dialect == "modelopt" else ".weight_global_scale"
        scales = [t[f"model.layers.0.self_attn.{p}_proj{key}"].item() for p in "qkv"]
        amax = max(load_dir(DEFAULT)[f"model.layers.0.self_attn.{p}_proj.weight"].float().abs().max().item() for p in "qkv")
        s = scales[0] if dialect == "modelopt" else 1 / scales[0]
        check(f"--scale search, {dialect}: valid, q/k/v share S, S is a searched multiple of amax/2688 (here {s * 2688 / amax:.4f})",
              rc == 0 and len(set(scales)) == 1 and abs(s * 2688 / amax - 1) > 0.01 and 0.87 < s * 2688 / amax < 3.01,
              str(report.get("errors"))[:200])
    back = os.path.join(tmp, "search-ct-back")
    run("convert", os.path.join(tmp, "search-compressed-tensors"), back + "-mo", "--to", "modelopt")
    run("convert", back + "-mo", back, "--to", "compressed-tensors")
    x, y = load_dir(os.path.join(tmp, "search-compressed-tensors")), load_dir(back)
    check("--scale search, compressed-tensors -> modelopt -> compressed-tensors: every tensor, global scales within 1 ulp",
          set(x) == set(y) and all(torch.equal(x[k].view(torch.uint8), y[k].view(torch.uint8)) if not k.endswith("global_scale")
                                   else ulps(x[k], y[k]) <= 1 for k in x))

    bad = edited(tmp, modelopt, "mo-reciprocal", lambda t: t.update({q + ".weight_scale_2": 1.0 / t[q + ".weight_scale_2"]}))
    r = run("convert", bad, os.path.join(tmp, "bad-out"), "--to", "compressed-tensors")
    check("convert refuses an invalid input with its findings and writes nothing",
          r.returncode == 1 and "2688/amax" in r.stderr and q in r.stderr and not os.path.exists(os.path.join(tmp, "bad-out")),
          r.stderr[:200])
    r = run("convert", mxfp4, os.path.join(tmp, "mx-out"), "--to", "modelopt")
    check("convert refuses MXFP4 (not an NVFP4 dialect) by name", r.returncode == 1 and "mxfp4-pack-quantized" in r.stderr,
          r.stderr)
    oss_mo = os.path.join(tmp, "oss-modelopt")
    run("quantize", os.path.join(ROOT, "tests", "fixtures", "gpt_oss"), oss_mo, "--quiet")
    r = run("convert", oss_mo, os.path.join(tmp, "oss-ct"), "--to", "compressed-tensors")
    check("convert refuses ModelOpt 3-D experts (no confirmed compressed-tensors layout) by tensor, writes nothing",
          r.returncode == 1 and "mlp.experts.down_proj_weight_scale" in r.stderr and not os.path.exists(os.path.join(tmp, "oss-ct")),
          r.stderr)

finish()
