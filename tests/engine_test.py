#!/usr/bin/env python3
"""`fp4forge eval` against transformers: the same perplexity (4 significant digits) and KL divergence
on the default model in BF16 and in every format fp4forge runs (NVFP4 ModelOpt and compressed-tensors,
W4A16 and W4A4, MXFP4, FP8), and on every supported architecture fixture, BF16 and quantized by
fp4forge. Quantized checkpoints are run by transformers on their weights dequantized here in
float32 (code · block scale · tensor scale, FORMATS.md §3.1), and W4A4 with its activations quantized
as FORMATS.md §3.6 says a Blackwell runtime does.

Both sides compute the same definition: BOS + the tokenized text, non-overlapping windows of N tokens,
mean NLL of tokens 1..N-1 of each window. Float32 on both sides, summed in different orders: the
perplexities agree to ~1e-6 relative; 4 significant digits (5e-5) is the bound the engine issue sets.

W4A4 is held to 1e-3 instead: quantizing activations is discontinuous, so float32 differences of an
ulp in a layer's input flip an E2M1 code or block scale now and then and the two runs drift apart
(measured 1.3e-4). The activation quantizer itself is checked bit for bit against the emulation below
through the oracle C ABI.

Usage: engine_test.py FP4FORGE CAPI_LIB   (exit 77 = skipped: oracle packages missing, unless FP4FORGE_REQUIRE_ORACLES=1)
"""
import ctypes
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

from harness import ROOT, check, finish, load_dir, require

torch, transformers, ml_dtypes, np = require("torch", "transformers", "ml_dtypes", "numpy")
from safetensors.torch import save_file  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from quality import write_fp8_checkpoint  # noqa: E402

fp4forge = sys.argv[1]
capi = ctypes.CDLL(sys.argv[2])
DEFAULT = os.path.join(ROOT, "models", "default")
TEXT = os.path.join(ROOT, "models", "eval", "kjv-test.txt")
CTX = 256
PPL_RTOL = 5e-5
E2M1 = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6])


def eval_ours(model, *args):
    run = subprocess.run([fp4forge, "eval", model, "--json", *args], capture_output=True, text=True)
    return json.loads(run.stdout) if run.returncode == 0 else {"error": run.stderr.strip()[-400:]}


def unpack_e2m1(packed):  # [N, K/2] U8 -> [N, K] float32, element 2k in the low nibble
    codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(packed.shape[0], -1).long()
    return E2M1[codes]


def dequantized_state(directory):
    """Every weight of a checkpoint as transformers' float32 state dict, quantized ones dequantized."""
    t = load_dir(directory)
    state = {}
    for k, v in t.items():
        base = k.rsplit(".", 1)[0]
        if k.endswith(".weight_packed") or (k.endswith(".weight") and v.dtype == torch.uint8):
            scale = t[base + ".weight_scale"]
            if scale.dtype == torch.uint8:  # MXFP4: UE8M0 per 32
                block = torch.exp2(scale.float() - 127).repeat_interleave(32, dim=1)
            elif base + ".weight_scale_2" in t:  # ModelOpt: fl(e4m3 · S)
                block = (scale.float() * t[base + ".weight_scale_2"].float()).repeat_interleave(16, dim=1)
            else:  # compressed-tensors: fl(e4m3 / gs)
                block = (scale.float() / t[base + ".weight_global_scale"].float()).repeat_interleave(16, dim=1)
            state[base + ".weight"] = unpack_e2m1(v) * block
        elif k.endswith(".weight") and v.dtype == torch.float8_e4m3fn:
            state[k] = v.float() * t[base + ".weight_scale"].float().reshape(-1, 1)
        elif not k.endswith(("_scale", "_scale_2", "_global_scale", "input_scale")):
            state[k] = v.float()
    return t, state


def hf_model(original, directory, input_scales=None):
    """transformers' model of `original`'s architecture holding `directory`'s dequantized weights
    (written as a float32 checkpoint beside `original`'s config, so that transformers applies its own
    loading conversions, e.g. fusing MoE experts); with input_scales {module: gs}, those Linears see
    their inputs NVFP4-quantized (W4A4)."""
    _, state = dequantized_state(directory)
    with tempfile.TemporaryDirectory() as plain:
        shutil.copy(os.path.join(original, "config.json"), plain)
        save_file(state, os.path.join(plain, "model.safetensors"), metadata={"format": "pt"})
        model = transformers.AutoModelForCausalLM.from_pretrained(plain, dtype=torch.float32).eval()
    for module, gs in (input_scales or {}).items():
        model.get_submodule(module).register_forward_pre_hook(lambda m, args, gs=gs: (quantize_activations(args[0], gs),))
    return model


def quantize_activations(x, gs):
    """FORMATS.md §3.6: BF16 row, e4m3(gs · amax16 / 6) block scales, E2M1 RNE of x · 1/(sf/gs)."""
    gs = torch.tensor(gs, dtype=torch.float32)
    xb = x.to(torch.bfloat16).float().reshape(-1, 16)
    amax = xb.abs().amax(dim=-1, keepdim=True)
    sf = torch.clamp(gs * amax * (1.0 / 6.0), max=448.0).to(torch.float8_e4m3fn).float()
    inverse = 1.0 / gs
    scale = torch.where(sf != 0, 1.0 / (sf * inverse), torch.zeros_like(sf))
    q = torch.from_numpy((xb * scale).clamp(-6, 6).numpy().astype(ml_dtypes.float4_e2m1fn).astype(np.float32))
    return (q * sf * inverse).reshape(x.shape)


def windows(tokens, n):
    return [tokens[w * n:(w + 1) * n] for w in range(len(tokens) // n)]


def hf_logprobs(model, tokens, n):
    with torch.no_grad():
        return [torch.log_softmax(model(input_ids=torch.tensor([w])).logits[0].double(), dim=-1) for w in windows(tokens, n)]


def ppl_of(logprobs, tokens, n):
    nll = [-lp[torch.arange(n - 1), torch.tensor(w[1:])] for lp, w in zip(logprobs, windows(tokens, n))]
    return math.exp(torch.cat(nll).mean().item())


def agree(label, ours, theirs, rtol=PPL_RTOL):
    ok = "ppl" in ours and abs(ours["ppl"] - theirs) <= rtol * theirs
    check(f"{label}: eval ppl {ours.get('ppl', float('nan')):.5f} equals transformers' {theirs:.5f} (rtol {rtol:g})",
          ok, ours.get("error", ""))


# The engine's W4A4 activation quantizer equals the emulation bit for bit: Gaussian rows of mixed
# magnitudes with zero blocks, exact E2M1 decision points and a block scale at the E4M3 clamp.
gen = torch.Generator().manual_seed(3)
x = torch.randn(64, 256, generator=gen) * torch.logspace(-3, 2, 64).reshape(-1, 1)
x[:, 16:32] = 0
x[0, :16] = torch.tensor([6, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5, 5.5])
for gs in [2688.0 / x.abs().max().item(), 1.0, 1e4]:
    got = torch.empty_like(x)
    capi.fp4forge_quantize_activations_nvfp4(ctypes.c_void_p(x.data_ptr()), ctypes.c_int64(64), ctypes.c_int64(256),
                                             ctypes.c_float(gs), ctypes.c_void_p(got.data_ptr()))
    want = quantize_activations(x, torch.tensor(gs, dtype=torch.float32).item())
    check(f"W4A4 activation quantizer equals the FORMATS.md §3.6 emulation bit for bit (gs {gs:.4g})",
          torch.equal(got.view(torch.int32), want.view(torch.int32)) or torch.equal(got, want))


tokenizer = transformers.AutoTokenizer.from_pretrained(DEFAULT)
with open(TEXT, encoding="utf-8") as f:
    text_ids = [0] + tokenizer(f.read(), add_special_tokens=False)["input_ids"]  # BOS <|begin_of_text|> = 0

with tempfile.TemporaryDirectory() as tmp:
    def quantize(src, name, *args):
        out = os.path.join(tmp, name)
        run = subprocess.run([fp4forge, "quantize", src, out, "--quiet", *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return out

    # ---- the default model in every format ----
    bf16 = transformers.AutoModelForCausalLM.from_pretrained(DEFAULT, dtype=torch.float32).eval()
    ref = hf_logprobs(bf16, text_ids, CTX)
    agree("default model BF16", eval_ours(DEFAULT, "--text", TEXT, "--ctx", str(CTX)), ppl_of(ref, text_ids, CTX))

    # The second model (Qwen3: q/k norms, tied embeddings) on its own held-out text.
    second, second_text = os.path.join(ROOT, "models", "second"), os.path.join(ROOT, "models", "eval", "fortunes-test.txt")
    with open(second_text, encoding="utf-8") as f:
        second_ids = [0] + transformers.AutoTokenizer.from_pretrained(second)(f.read(), add_special_tokens=False)["input_ids"]
    model = transformers.AutoModelForCausalLM.from_pretrained(second, dtype=torch.float32).eval()
    agree("second model BF16", eval_ours(second, "--text", second_text, "--ctx", str(CTX)),
          ppl_of(hf_logprobs(model, second_ids, CTX), second_ids, CTX))

    checkpoints = {
        "NVFP4 ModelOpt W4A16": quantize(DEFAULT, "mo"),
        "NVFP4 compressed-tensors W4A16": quantize(DEFAULT, "ct", "--format", "compressed-tensors"),
        "MXFP4 compressed-tensors": quantize(DEFAULT, "mx", "--format", "compressed-tensors", "--scheme", "mxfp4"),
    }
    # FP8 per tensor (ModelOpt layout), as scripts/quality.py writes it: scale amax/448, torch's RNE cast.
    fp8 = os.path.join(tmp, "fp8")
    write_fp8_checkpoint(DEFAULT, fp8)
    checkpoints["FP8 per tensor"] = fp8

    # W4A4: the ModelOpt W4A16 output plus input_scale = amax/2688 from a calibration pass (the first
    # two windows, max |input| shared by q/k/v and by gate/up as ModelOpt shares it).
    w4a4 = os.path.join(tmp, "w4a4")
    shutil.copytree(checkpoints["NVFP4 ModelOpt W4A16"], w4a4)
    amax = {}
    hooks = [m.register_forward_pre_hook(lambda m, a, name=name: amax.__setitem__(name, max(amax.get(name, 0.0), a[0].abs().max().item())))
             for name, m in bf16.named_modules() if name.endswith("proj")]
    with torch.no_grad():
        for w in windows(text_ids, CTX)[:2]:
            bf16(input_ids=torch.tensor([w]))
    for h in hooks:
        h.remove()
    group = lambda name: name.rsplit(".", 1)[0] + (".qkv" if name.endswith(("q_proj", "k_proj", "v_proj")) else
                                                   ".gate_up" if name.endswith(("gate_proj", "up_proj")) else "." + name)
    shared = {}
    for name, a in amax.items():
        shared[group(name)] = max(shared.get(group(name), 0.0), a)
    tensors = load_dir(w4a4)
    for name in amax:
        tensors[name + ".input_scale"] = torch.tensor(shared[group(name)] / 2688.0, dtype=torch.float32)
    save_file(tensors, os.path.join(w4a4, "model.safetensors"), metadata={"format": "pt"})
    config = json.load(open(os.path.join(w4a4, "config.json")))
    config["quantization_config"]["quant_algo"] = "NVFP4"
    config["quantization_config"]["config_groups"]["group_0"]["input_activations"] = {
        "dynamic": False, "num_bits": 4, "type": "float", "group_size": 16}
    json.dump(config, open(os.path.join(w4a4, "config.json"), "w"), indent=2)
    hf_quant = json.load(open(os.path.join(w4a4, "hf_quant_config.json")))
    hf_quant["quantization"]["quant_algo"] = "NVFP4"
    json.dump(hf_quant, open(os.path.join(w4a4, "hf_quant_config.json"), "w"), indent=2)
    checkpoints["NVFP4 ModelOpt W4A4"] = w4a4
    w4a4_ct = os.path.join(tmp, "w4a4-ct")
    run = subprocess.run([fp4forge, "convert", w4a4, w4a4_ct, "--to", "compressed-tensors"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    checkpoints["NVFP4 compressed-tensors W4A4"] = w4a4_ct

    def input_global_scales(directory):
        """gs of every W4A4 Linear as the checkpoint stores it: 1/input_scale (ModelOpt, in float32) or
        input_global_scale (compressed-tensors)."""
        t = load_dir(directory)
        gs = {k[:-len(".input_scale")]: (1.0 / t[k].float()).item() for k in t if k.endswith(".input_scale")}
        gs.update({k[:-len(".input_global_scale")]: t[k].float().item() for k in t if k.endswith(".input_global_scale")})
        return gs

    for label, directory in checkpoints.items():
        model = hf_model(DEFAULT, directory, input_global_scales(directory))
        theirs = hf_logprobs(model, text_ids, CTX)
        ours = eval_ours(directory, "--text", TEXT, "--ctx", str(CTX), "--ref", DEFAULT)
        agree(f"default model {label}", ours, ppl_of(theirs, text_ids, CTX), 1e-3 if "W4A4" in label else PPL_RTOL)
        kl = torch.cat([(r.exp() * (r - t)).sum(-1)[:-1] for r, t in zip(ref, theirs)])
        top1 = torch.cat([(r.argmax(-1) == t.argmax(-1))[:-1] for r, t in zip(ref, theirs)]).double().mean().item()
        check(f"default model {label}: KL mean {ours.get('kld_mean', float('nan')):.6f} vs BF16 equals transformers' "
              f"{kl.mean().item():.6f} (1%), top-1 agreement {ours.get('top1_agree', float('nan')):.4f} vs {top1:.4f}",
              abs(ours.get("kld_mean", 1e9) - kl.mean().item()) <= 0.01 * kl.mean().item()
              and abs(ours.get("top1_agree", 2) - top1) <= (0.002 if "W4A4" in label else 2 / len(kl)), ours.get("error", ""))
        if label == "NVFP4 ModelOpt W4A16":
            check(f"eval names the weights it ran: {ours.get('weights')}", ours.get("weights") == "bf16 + nvfp4 (W4A16)")
        if "W4A4" in label:
            check(f"eval names the weights it ran: {ours.get('weights')}", ours.get("weights") == "bf16 + nvfp4 (W4A4)")

    # ---- architecture fixtures, BF16 and NVFP4 (ModelOpt), on random token ids ----
    rng = random.Random(5)
    ids = [rng.randrange(256) for _ in range(256)]
    ids_file = os.path.join(tmp, "ids.txt")
    with open(ids_file, "w") as f:
        f.write(" ".join(map(str, ids)))
    for name in ["llama3", "mistral", "qwen2_5", "qwen3", "phi3", "mixtral", "qwen3_moe"]:
        fixture = os.path.join(ROOT, "tests", "fixtures", name)
        for label, directory in [("BF16", fixture), ("NVFP4", quantize(fixture, f"fx-{name}"))]:
            model = hf_model(fixture, directory)
            agree(f"fixture {name} {label}", eval_ours(directory, "--tokens", ids_file, "--ctx", "64"),
                  ppl_of(hf_logprobs(model, ids, 64), ids, 64))

    # ---- refusals ----
    broken = os.path.join(tmp, "broken")
    shutil.copytree(checkpoints["NVFP4 ModelOpt W4A16"], broken)
    tensors = load_dir(broken)
    s2 = "model.layers.0.mlp.up_proj.weight_scale_2"
    tensors[s2] = 1.0 / tensors[s2]  # the reciprocal global scale users lose days to
    save_file(tensors, os.path.join(broken, "model.safetensors"), metadata={"format": "pt"})
    run = subprocess.run([fp4forge, "eval", broken, "--text", TEXT], capture_output=True, text=True)
    check("eval refuses a checkpoint inspect calls invalid, with inspect's finding (exit 1)",
          run.returncode == 1 and "inspect calls invalid" in run.stderr and "up_proj" in run.stderr, run.stderr.strip()[-300:])
    oss = subprocess.run([fp4forge, "eval", os.path.join(ROOT, "tests", "fixtures", "gpt_oss"), "--tokens", ids_file],
                         capture_output=True, text=True)
    check("eval refuses an unsupported architecture naming model_type (exit 1)",
          oss.returncode == 1 and "model_type" in oss.stderr and "gpt_oss" in oss.stderr, oss.stderr.strip())
    empty = os.path.join(tmp, "empty.txt")
    open(empty, "w").close()
    run = subprocess.run([fp4forge, "eval", DEFAULT, "--text", empty], capture_output=True, text=True)
    check("eval of an empty text file: exit 2, says so", run.returncode == 2 and "empty" in run.stderr, run.stderr.strip())
    run = subprocess.run([fp4forge, "eval", DEFAULT, "--text", TEXT, "--ctx", "4096"], capture_output=True, text=True)
    check("eval --ctx beyond the model's context: exit 2, names the limit", run.returncode == 2 and "1024" in run.stderr,
          run.stderr.strip())
    short = os.path.join(tmp, "short.txt")
    with open(short, "w") as f:
        f.write("And God said")
    run = subprocess.run([fp4forge, "eval", DEFAULT, "--text", short], capture_output=True, text=True)
    check("eval of a text shorter than one window: exit 2, says so", run.returncode == 2 and "window" in run.stderr,
          run.stderr.strip())
    llama3 = os.path.join(ROOT, "tests", "fixtures", "llama3")
    run = subprocess.run([fp4forge, "eval", llama3, "--text", TEXT], capture_output=True, text=True)
    check("eval of a model without tokenizer.json: exit 2, names the file", run.returncode == 2 and "tokenizer.json" in run.stderr,
          run.stderr.strip())
    mismatched = os.path.join(tmp, "mismatched-tokenizer")
    shutil.copytree(llama3, mismatched)
    shutil.copy(os.path.join(DEFAULT, "tokenizer.json"), mismatched)  # 4096 ids for a vocabulary of 256
    run = subprocess.run([fp4forge, "eval", mismatched, "--text", TEXT], capture_output=True, text=True)
    check("eval with a tokenizer larger than the vocabulary: exit 1, names both sizes",
          run.returncode == 1 and "4095" in run.stderr and "256" in run.stderr, run.stderr.strip())
    run = subprocess.run([fp4forge, "run", DEFAULT, "-p", "x " * 1100], capture_output=True, text=True)
    check("run with a prompt longer than the context: exit 2, says so", run.returncode == 2 and "context" in run.stderr,
          run.stderr.strip()[-200:])
    run = subprocess.run([fp4forge, "run", DEFAULT, "-p", "In the beginning", "-n", "24"], capture_output=True, text=True)
    check("run: the greedy continuation transformers gives (docs/MODELS.md)",
          run.returncode == 0 and run.stdout.startswith(" of the month, in the month, the word of the LORD came unto me"),
          repr(run.stdout[:80]))
    check("run: prefill and decode tokens/s on stderr", "prefill" in run.stderr and "decode" in run.stderr, run.stderr)

finish()
