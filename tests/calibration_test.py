#!/usr/bin/env python3
"""fp4forge quantize --calib (W4A4), checked against the peers' own code:

- nvidia-modelopt's `max` calibration (mtq.quantize with NVFP4_DEFAULT_CFG on the same calibration
  windows, then export_hf_checkpoint) writes the same tensors as ours: weights byte for byte, input
  scales to float32 rounding of the activations (both run float32 forward passes, summed in different
  orders), and the same quantization config;
- each Linear's input amax equals transformers' activations (forward pre-hooks), and on MoE models
  every expert gets the amax of all its layer's tokens (gate/up: the layer's normed input; down:
  act(gate) * up of that expert, computed here from the weights);
- compressed-tensors' QuantizationConfig parses our W4A4 config as its NVFP4 preset and transformers +
  compressed-tensors load the input_global_scale we wrote;
- inspect reports a missing, zero, NaN or unshared input scale as an error; quantize refuses a
  quantized input and MXFP4 with --calib.

Usage: calibration_test.py PATH/TO/fp4forge   (exit 77 = skipped without the oracle packages)
"""
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

from harness import ROOT, check, finish, group_of, load_dir, require

torch, transformers, safetensors_torch, modelopt = require("torch", "transformers", "safetensors.torch", "modelopt")
from safetensors.torch import save_file  # noqa: E402

FP4FORGE = sys.argv[1]
DEFAULT = os.path.join(ROOT, "models", "default")
CALIB = os.path.join(ROOT, "models", "eval", "kjv-calib.txt")
TOKENS, CTX = 2048, 256  # 8 windows
# Float32 forward passes in different summation orders: logits agree within 4.4e-7 x max |logit|
# (engine_test); an activation's max |x| is one such value, a few float32 ulps apart at most.
AMAX_RTOL = 1e-5


def fp4forge(*args):
    return subprocess.run([FP4FORGE, *args], capture_output=True, text=True)


def shared(amax):
    """Each module's amax as the max over its fused group, as ModelOpt and llm-compressor share it."""
    groups = {}
    for m, a in amax.items():
        groups[group_of(m)] = max(groups.get(group_of(m), 0.0), a)
    return {m: groups[group_of(m)] for m in amax}


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def hooked_amax(model, windows):
    """max |input| of every nn.Linear over the windows, from transformers' forward pass."""
    amax = {}

    def hook(module, args, name):
        amax[name] = max(amax.get(name, 0.0), args[0].detach().abs().max().item())

    hooks = [m.register_forward_pre_hook(lambda m, a, name=name: hook(m, a, name))
             for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for w in windows:
            model(input_ids=torch.tensor([w]))
    for h in hooks:
        h.remove()
    return amax


def windows_of(ids, n):
    return [ids[i:i + n] for i in range(0, len(ids), n)]


def inspect(directory):
    run = fp4forge("inspect", directory, "--json")
    return run.returncode, json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}


with tempfile.TemporaryDirectory() as tmp:
    tokenizer = transformers.AutoTokenizer.from_pretrained(DEFAULT)
    ids = ([0] + tokenizer(open(CALIB).read(), add_special_tokens=False)["input_ids"])[:TOKENS]
    windows = windows_of(ids, CTX)

    # ---- ModelOpt dialect against nvidia-modelopt's max calibration and export ----
    ours_mo = os.path.join(tmp, "w4a4-mo")
    run = fp4forge("quantize", DEFAULT, ours_mo, "--calib", CALIB, "--calib-tokens", str(TOKENS), "--calib-ctx", str(CTX))
    check("quantize --calib runs (ModelOpt dialect)", run.returncode == 0, run.stderr[-400:])
    check("quantize --calib reports the calibration", f"on {TOKENS} tokens" in run.stdout and "W4A4" in run.stdout,
          run.stdout.strip())

    import modelopt.torch.quantization as mtq
    from modelopt.torch.export import export_hf_checkpoint
    model = transformers.AutoModelForCausalLM.from_pretrained(DEFAULT, dtype=torch.float32).eval()

    def forward_loop(m):
        with torch.no_grad():
            for w in windows:
                m(input_ids=torch.tensor([w]))

    model = mtq.quantize(model, mtq.NVFP4_DEFAULT_CFG, forward_loop)
    theirs_mo = os.path.join(tmp, "modelopt")
    export_hf_checkpoint(model, export_dir=theirs_mo)
    ours, theirs = load_dir(ours_mo), load_dir(theirs_mo)
    inputs = sorted(k for k in theirs if k.endswith(".input_scale"))
    same_keys = sorted(ours) == sorted(theirs)
    # ModelOpt ran the float32 model (so that both calibrate in float32) and exports its unquantized
    # tensors in float32: those are compared by value, the quantized ones byte for byte.
    as_bytes = lambda t: t.view(torch.uint8) if t.element_size() == 1 else t
    other_equal = same_keys and all(torch.equal(as_bytes(ours[k]), as_bytes(theirs[k])) if ours[k].element_size() == 1
                                    or ours[k].dtype == torch.float32 else torch.equal(ours[k].float(), theirs[k])
                                    for k in theirs if not k.endswith(".input_scale"))
    check(f"the same tensors as nvidia-modelopt's NVFP4 export ({len(theirs)}, {len(inputs)} input_scale): every weight, "
          "block scale and global scale byte for byte, the rest by value", same_keys and len(inputs) == 42 and other_equal)
    worst = max(rel(ours[k].item(), theirs[k].item()) for k in inputs) if same_keys else math.inf
    exact = sum(ours[k].item() == theirs[k].item() for k in inputs) if same_keys else 0
    check(f"input_scale = nvidia-modelopt's within {AMAX_RTOL:g} relative (worst {worst:.2e}; {exact}/{len(inputs)} "
          "bit-identical), scalar F32 [] as it exports them",
          worst <= AMAX_RTOL and all(ours[k].dtype == torch.float32 and ours[k].shape == () for k in inputs))
    hq_ours = json.load(open(os.path.join(ours_mo, "hf_quant_config.json")))["quantization"]
    hq_theirs = json.load(open(os.path.join(theirs_mo, "hf_quant_config.json")))["quantization"]
    qc_ours = json.load(open(os.path.join(ours_mo, "config.json")))["quantization_config"]
    qc_theirs = json.load(open(os.path.join(theirs_mo, "config.json")))["quantization_config"]
    # ModelOpt also lists the embedding, a module without quantizers that no runtime would quantize.
    embedding_aside = lambda names: sorted(set(names) - {"model.embed_tokens"})
    check("hf_quant_config.json: quant_algo NVFP4, group_size, kv_cache_quant_algo and exclude_modules (but for the "
          "embedding) as nvidia-modelopt writes them",
          all(hq_ours.get(k) == hq_theirs.get(k) for k in ("quant_algo", "group_size", "kv_cache_quant_algo"))
          and embedding_aside(hq_ours["exclude_modules"]) == embedding_aside(hq_theirs["exclude_modules"])
          and hq_ours["quant_algo"] == "NVFP4", f"{hq_ours} vs {hq_theirs}")
    check("config.json quantization_config: quant_algo and config_groups (with input_activations) as nvidia-modelopt's",
          qc_ours["quant_algo"] == qc_theirs["quant_algo"] == "NVFP4"
          and qc_ours["config_groups"] == qc_theirs["config_groups"], f"{qc_ours} vs {qc_theirs}")

    # Against transformers' activations directly (no ModelOpt in between): amax/2688 of the hooks.
    hf = transformers.AutoModelForCausalLM.from_pretrained(DEFAULT, dtype=torch.float32).eval()
    expected = shared({m: a for m, a in hooked_amax(hf, windows).items() if m != "lm_head"})
    worst = max(rel(ours[m + ".input_scale"].item() * 2688, a) for m, a in expected.items())
    check(f"input_scale x 2688 = transformers' max |input| of each Linear, shared in q/k/v and gate/up (worst {worst:.2e})",
          worst <= AMAX_RTOL and len(expected) == 42)

    code, report = inspect(ours_mo)
    check("inspect: our W4A4 ModelOpt checkpoint is valid", code == 0 and report.get("valid"), str(report)[:300])
    run = fp4forge("eval", ours_mo, "--text", os.path.join(ROOT, "models", "eval", "kjv-test.txt"), "--ref", DEFAULT, "--json")
    result = json.loads(run.stdout) if run.returncode == 0 else {}
    # W4A16 costs 24.49 vs 24.11 (README); 4-bit activations cost more, and the model must still model its text.
    check(f"eval runs it with 4-bit activations: {result.get('weights')}, ppl {result.get('ppl', 0):.3f} in [24.11, 30]",
          result.get("weights") == "bf16 + nvfp4 (W4A4)" and 24.11 < result.get("ppl", 0) < 30, run.stderr[-300:])

    # ---- compressed-tensors dialect ----
    ours_ct = os.path.join(tmp, "w4a4-ct")
    run = fp4forge("quantize", DEFAULT, ours_ct, "--format", "compressed-tensors", "--calib", CALIB,
                   "--calib-tokens", str(TOKENS), "--calib-ctx", str(CTX), "--quiet")
    check("quantize --calib runs (compressed-tensors dialect)", run.returncode == 0, run.stderr[-400:])
    ct = load_dir(ours_ct)
    gs = {k[:-len(".input_global_scale")]: ct[k] for k in ct if k.endswith(".input_global_scale")}
    worst = max(rel(2688.0 / v.item(), expected[m]) for m, v in gs.items())
    # llm-compressor's generate_gparam fl(fl(1/amax) * 2688) against ModelOpt's fl(amax/2688): two roundings apart.
    arith = all(rel(v.item(), 1.0 / ours[m + ".input_scale"].item()) <= 1e-6 for m, v in gs.items())
    check(f"input_global_scale [1] F32 = 2688 / transformers' amax for all {len(gs)} Linears (worst {worst:.2e}), "
          "the reciprocal of the ModelOpt dialect's input_scale",
          len(gs) == 42 and worst <= AMAX_RTOL and arith and all(v.shape == (1,) and v.dtype == torch.float32 for v in gs.values()))
    from compressed_tensors.quantization import QuantizationConfig, preset_name_to_scheme
    raw = json.load(open(os.path.join(ours_ct, "config.json")))["quantization_config"]
    group = QuantizationConfig.model_validate(raw).config_groups["group_0"]
    preset = preset_name_to_scheme("NVFP4", ["Linear"])
    check("config parses as compressed-tensors' QuantizationConfig with the NVFP4 (W4A4) preset's weights and "
          "input_activations",
          group.weights.model_dump() == preset.weights.model_dump()
          and group.input_activations.model_dump() == preset.input_activations.model_dump(),
          f"{group.input_activations} vs {preset.input_activations}")
    code, report = inspect(ours_ct)
    check("inspect: our W4A4 compressed-tensors checkpoint is valid", code == 0 and report.get("valid"), str(report)[:300])
    # Loaded as compressed (its W4A4 module: weights decompressed, activations fake-quantized with the
    # stored input_global_scale); its CPU kernels run in bfloat16.
    loaded = transformers.AutoModelForCausalLM.from_pretrained(ours_ct, dtype=torch.bfloat16).eval()
    state = loaded.state_dict()
    held = [m for m in gs if m + ".input_global_scale" in state]
    check(f"transformers + compressed-tensors load every input_global_scale we wrote ({len(held)} of {len(gs)})",
          len(held) == len(gs) and all(torch.equal(state[m + ".input_global_scale"].float().reshape(1), gs[m]) for m in held))
    # Its forward pass against ours on the same window (ours: float32; its CPU kernels: bfloat16).
    test_ids = ([0] + tokenizer(open(os.path.join(ROOT, "models", "eval", "kjv-test.txt")).read(),
                                add_special_tokens=False)["input_ids"])[:CTX]
    with torch.no_grad():
        logits = loaded(input_ids=torch.tensor([test_ids])).logits[0].float()
    nll = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(test_ids[1:])).item()
    ids_path = os.path.join(tmp, "test-ids.txt")
    with open(ids_path, "w") as f:
        f.write(" ".join(map(str, test_ids)))
    run = fp4forge("eval", ours_ct, "--tokens", ids_path, "--ctx", str(CTX), "--json")
    ours_nll = json.loads(run.stdout)["nll"] if run.returncode == 0 else math.inf
    # bfloat16 activations and weights on their side move the mean NLL by a few parts in a thousand.
    check(f"and run it: its mean NLL {nll:.4f} on the first window = ours {ours_nll:.4f} within 0.5%",
          abs(nll - ours_nll) <= 0.005 * ours_nll, run.stderr[-200:])

    # ---- GPTQ and activation-aware scales: standard bytes, less error than round to nearest ----
    def kld(directory):
        run = fp4forge("eval", directory, "--text", os.path.join(ROOT, "models", "eval", "kjv-test.txt"), "--ref",
                       DEFAULT, "--max-tokens", "4096", "--json")
        return json.loads(run.stdout)["kld_mean"] if run.returncode == 0 else math.inf

    calibrated = {}
    for label, extra in (("RTN amax", ["--scale", "amax"]), ("activation-aware mse", ["--scale", "mse"]),
                         ("GPTQ", ["--method", "gptq"]), ("GPTQ act-order, compressed-tensors",
                                                           ["--method", "gptq", "--act-order", "--format", "compressed-tensors"])):
        d = os.path.join(tmp, label.replace(" ", "-").replace(",", ""))
        run = fp4forge("quantize", DEFAULT, d, "--calib", CALIB, "--calib-tokens", "4096", "--weight-only", "--quiet", *extra)
        code, report = inspect(d)
        check(f"{label}: quantize --weight-only writes a W4A16 checkpoint inspect calls valid",
              run.returncode == 0 and code == 0 and report.get("dialect", "").endswith(("W4A16_NVFP4", "nvfp4-pack-quantized"))
              and not any(k.endswith(("input_scale", "input_global_scale")) for k in load_dir(d)), run.stderr[-300:])
        calibrated[label] = (d, kld(d))
    rtn = calibrated["RTN amax"][1]
    for label, (d, k) in calibrated.items():
        if label != "RTN amax":
            # Default model, 16k calibration tokens: KL 0.0244 RTN, 0.0179 activation-aware, 0.0130 GPTQ
            # (docs/QUALITY.md has the full-text figures); 0.9 x RTN leaves room for the smaller sample.
            check(f"{label}: KL divergence vs BF16 {k:.5f} below 0.9 x round-to-nearest's {rtn:.5f}", k < 0.9 * rtn)
    mx_rtn, mx_gptq = os.path.join(tmp, "mx-rtn"), os.path.join(tmp, "mx-gptq")
    fp4forge("quantize", DEFAULT, mx_rtn, "--format", "compressed-tensors", "--scheme", "mxfp4", "--quiet")
    run = fp4forge("quantize", DEFAULT, mx_gptq, "--format", "compressed-tensors", "--scheme", "mxfp4", "--calib", CALIB,
                   "--calib-tokens", "4096", "--method", "gptq", "--quiet")
    code, report = inspect(mx_gptq)
    k_rtn, k_gptq = kld(mx_rtn), kld(mx_gptq)
    # Default model, whole calibration text: KL 0.0342 RTN -> 0.0179 GPTQ (docs/QUALITY.md).
    check(f"MXFP4 GPTQ: a valid mxfp4-pack-quantized checkpoint, KL {k_gptq:.5f} below 0.9 x RTN's {k_rtn:.5f}",
          run.returncode == 0 and code == 0 and "mxfp4" in report.get("dialect", "") and k_gptq < 0.9 * k_rtn,
          run.stderr[-300:])
    mo = load_dir(calibrated["GPTQ"][0])
    run = fp4forge("quantize", DEFAULT, os.path.join(tmp, "gptq-ct"), "--calib", CALIB, "--calib-tokens", "4096",
                   "--weight-only", "--quiet", "--method", "gptq", "--format", "compressed-tensors")
    ct = load_dir(os.path.join(tmp, "gptq-ct")) if run.returncode == 0 else {}
    modules = [k[:-len(".weight_scale_2")] for k in mo if k.endswith(".weight_scale_2")]
    check("GPTQ in the compressed-tensors dialect: the ModelOpt output's codes and block scales, weight_global_scale "
          "= 1/weight_scale_2", len(modules) == 42 and all(
              torch.equal(ct[m + ".weight_packed"], mo[m + ".weight"])
              and torch.equal(ct[m + ".weight_scale"].view(torch.uint8), mo[m + ".weight_scale"].view(torch.uint8))
              and ct[m + ".weight_global_scale"].item() == (1 / mo[m + ".weight_scale_2"].float()).item() for m in modules))

    # ---- MoE: every expert, routed to or not, gets the amax of all its layer's tokens ----
    rng = random.Random(3)
    fixture_ids = [rng.randrange(256) for _ in range(96)]
    ids_file = os.path.join(tmp, "ids.txt")
    with open(ids_file, "w") as f:
        f.write(" ".join(map(str, fixture_ids)))
    for name, fmt in (("qwen3_moe", "modelopt"), ("mixtral", "compressed-tensors")):
        src = os.path.join(ROOT, "tests", "fixtures", name)
        dst = os.path.join(tmp, f"{name}-w4a4")
        run = fp4forge("quantize", src, dst, "--format", fmt, "--calib-ids", ids_file, "--calib-ctx", "32", "--quiet")
        if run.returncode != 0:
            check(f"{name}: quantize --calib-ids runs", False, run.stderr[-400:])
            continue
        out = load_dir(dst)
        suffix = ".input_scale" if fmt == "modelopt" else ".input_global_scale"
        amax = {k[:-len(suffix)]: (out[k].item() * 2688 if fmt == "modelopt" else 2688 / out[k].item())
                for k in out if k.endswith(suffix)}
        config = json.load(open(os.path.join(src, "config.json")))
        model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
        w = load_dir(src)
        leaves = ("w1", "w3", "w2") if name == "mixtral" else ("gate_proj", "up_proj", "down_proj")
        experts_key = "block_sparse_moe" if name == "mixtral" else "mlp"
        # The normed input of every MoE layer, from transformers: what all experts see.
        normed = {}
        hooks = [m.register_forward_pre_hook(lambda m, a, i=i: normed.setdefault(i, []).append(a[0].detach()))
                 for i, layer in enumerate(model.model.layers) for m in [layer.mlp]]
        attn = {}
        hooks += [layer.self_attn.o_proj.register_forward_pre_hook(
            lambda m, a, i=i: attn.__setitem__(i, max(attn.get(i, 0.0), a[0].abs().max().item())))
            for i, layer in enumerate(model.model.layers)]
        with torch.no_grad():
            for win in windows_of(fixture_ids, 32):
                model(input_ids=torch.tensor([win]))
        for h in hooks:
            h.remove()
        worst, count = 0.0, 0
        for i, xs in normed.items():
            x = torch.cat([t.reshape(-1, t.shape[-1]) for t in xs])
            for e in range(config.get("num_local_experts", config.get("num_experts"))):
                p = f"model.layers.{i}.{experts_key}.experts.{e}."
                gate, up = x @ w[p + leaves[0] + ".weight"].float().T, x @ w[p + leaves[1] + ".weight"].float().T
                inner = torch.nn.functional.silu(gate) * up
                expect = {leaves[0]: x.abs().max().item(), leaves[1]: x.abs().max().item(), leaves[2]: inner.abs().max().item()}
                for leaf, a in expect.items():
                    worst = max(worst, rel(amax.get(p + leaf, math.inf), a))
                    count += 1
            worst = max(worst, rel(amax[f"model.layers.{i}.self_attn.o_proj"], attn[i]))
        check(f"{name} ({fmt}): all {count} expert projections carry the amax of every token of their layer, "
              f"o_proj that of transformers (worst {worst:.2e})", count > 0 and worst <= AMAX_RTOL)
        code, report = inspect(dst)
        check(f"{name} ({fmt}): inspect calls the W4A4 checkpoint valid", code == 0 and report.get("valid"), str(report)[:300])

    # ---- inspect's findings on broken input scales ----
    def broken(label, edit, expect):
        d = os.path.join(tmp, "broken")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(ours_mo, d)
        t = load_dir(d)
        edit(t)
        save_file(t, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        code, report = inspect(d)
        found = [e for e in report.get("errors", []) if expect in json.dumps(e)]
        check(f"inspect: {label} is an error naming it (exit 1)", code == 1 and found, str(report.get("errors"))[:300])

    k = "model.layers.1.mlp.down_proj.input_scale"
    broken("a zero input_scale", lambda t: t.__setitem__(k, torch.tensor(0.0)), k)
    broken("a NaN input_scale", lambda t: t.__setitem__(k, torch.tensor(float("nan"))), k)
    broken("a missing input_scale", lambda t: t.pop(k), "model.layers.1.mlp.down_proj")
    q = "model.layers.0.self_attn.q_proj.input_scale"
    broken("q/k/v with different input_scale", lambda t: t.__setitem__(q, t[q] * 2), "model.layers.0.self_attn")

    # ---- refusals ----
    run = fp4forge("quantize", ours_mo, os.path.join(tmp, "twice"), "--calib", CALIB)
    check("quantize --calib refuses an already quantized input (exit 1, names the encoding)",
          run.returncode == 1 and "nvfp4" in run.stderr and not os.path.exists(os.path.join(tmp, "twice")), run.stderr.strip())
    run = fp4forge("quantize", DEFAULT, os.path.join(tmp, "mx"), "--format", "compressed-tensors", "--scheme", "mxfp4",
                   "--calib", CALIB)
    check("quantize --calib refuses MXFP4 without GPTQ (exit 2: it has no activation scales, says to add --method gptq)",
          run.returncode == 2 and "--method gptq" in run.stderr, run.stderr.strip())
    run = fp4forge("quantize", os.path.join(ROOT, "tests", "fixtures", "gpt_oss"), os.path.join(tmp, "oss"), "--calib-ids",
                   ids_file)
    check("quantize --calib of a model the engine does not run (gpt-oss): exit 1, names model_type and the way out",
          run.returncode == 1 and "gpt_oss" in run.stderr and "without --calib" in run.stderr
          and not os.path.exists(os.path.join(tmp, "oss")), run.stderr.strip())
    run = fp4forge("quantize", DEFAULT, os.path.join(tmp, "g"), "--method", "gptq")
    check("quantize --method gptq without --calib: exit 2, says to add it", run.returncode == 2 and "--calib" in run.stderr,
          run.stderr.strip())
    run = fp4forge("quantize", DEFAULT, os.path.join(tmp, "s"), "--calib", CALIB, "--scale", "search")
    check("quantize --calib --scale search: exit 2, names the rules that calibrate", run.returncode == 2 and "mse" in run.stderr,
          run.stderr.strip())

finish()
