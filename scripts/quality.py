#!/usr/bin/env python3
"""What quantization costs, measured by fp4forge's own evaluator: perplexity and KL divergence against
BF16 of each format and scale rule, on the project's two models and their held-out texts. Writes the
tables of docs/QUALITY.md (between its BEGIN/END markers) and prints them.

    python3 scripts/quality.py [--fp4forge build/bin/fp4forge] [--ctx 512]

Needs torch only to write the FP8 checkpoint (fp4forge's quantizer writes NVFP4 and MXFP4).
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MODELS = {  # name: (checkpoint, held-out text, calibration text: the validation split, disjoint from it)
    "default (Llama, KJV)": ("models/default", "models/eval/kjv-test.txt", "models/eval/kjv-calib.txt"),
    "second (Qwen3, fortunes)": ("models/second", "models/eval/fortunes-test.txt", "models/eval/fortunes-calib.txt"),
}
# (label, fp4forge quantize arguments, "{calib}" standing for the model's calibration text); None:
# the FP8 checkpoint written here.
VARIANTS = [
    ("NVFP4 W4A16, amax (ModelOpt's RTN)", ["--scale", "amax"]),
    ("NVFP4 W4A16, mse", ["--scale", "mse"]),
    ("NVFP4 W4A16, 4over6", ["--scale", "4over6"]),
    ("NVFP4 W4A16, search (S chosen per fused group)", ["--scale", "search"]),
    ("NVFP4 W4A16, amax, compressed-tensors", ["--format", "compressed-tensors"]),
    ("MXFP4 W4A16 (OCP scales)", ["--format", "compressed-tensors", "--scheme", "mxfp4"]),
    ("FP8 E4M3 per tensor", None),
    ("NVFP4 W4A16, activation-aware mse", ["--calib", "{calib}", "--weight-only", "--scale", "mse"]),
    ("NVFP4 W4A16, GPTQ (amax scales)", ["--calib", "{calib}", "--weight-only", "--method", "gptq"]),
    ("NVFP4 W4A16, GPTQ (mse scales)", ["--calib", "{calib}", "--weight-only", "--method", "gptq", "--scale", "mse"]),
    ("NVFP4 W4A16, GPTQ (mse scales, act-order)",
     ["--calib", "{calib}", "--weight-only", "--method", "gptq", "--scale", "mse", "--act-order"]),
    ("MXFP4 W4A16, GPTQ", ["--format", "compressed-tensors", "--scheme", "mxfp4", "--calib", "{calib}", "--method", "gptq"]),
    ("NVFP4 W4A4, amax (ModelOpt's max calibration + RTN)", ["--calib", "{calib}"]),
    ("NVFP4 W4A4, activation-aware mse", ["--calib", "{calib}", "--scale", "mse"]),
    ("NVFP4 W4A4, GPTQ (mse scales)", ["--calib", "{calib}", "--method", "gptq", "--scale", "mse"]),
]


def write_fp8_checkpoint(src, dst):
    """`src` with every Linear of the blocks as FP8 E4M3, one scale amax/448 per tensor, in ModelOpt's
    FP8 layout (weight F8_E4M3, weight_scale F32 [], hf_quant_config quant_algo FP8)."""
    import torch
    from safetensors.torch import load_file, save_file
    shutil.copytree(src, dst)
    path = os.path.join(dst, "model.safetensors")
    tensors = load_file(path)
    for k in [k for k in tensors if k.endswith("proj.weight") and "layers." in k]:
        w = tensors[k].float()
        scale = (w.abs().max() / 448).reshape(())
        tensors[k] = (w / scale).to(torch.float8_e4m3fn)
        tensors[k[:-len("weight")] + "weight_scale"] = scale
    save_file(tensors, path, metadata={"format": "pt"})
    with open(os.path.join(dst, "hf_quant_config.json"), "w") as f:
        json.dump({"producer": {"name": "fp4forge scripts/quality.py"},
                   "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": None, "exclude_modules": ["lm_head"]}},
                  f, indent=2)


def evaluate(fp4forge, model, text, ctx, ref=None):
    args = [fp4forge, "eval", model, "--text", text, "--ctx", str(ctx), "--json"] + (["--ref", ref] if ref else [])
    run = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp4forge", default=os.path.join(ROOT, "build", "bin", "fp4forge"))
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--doc", default=os.path.join(ROOT, "docs", "QUALITY.md"))
    args = parser.parse_args()
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, text, calib) in MODELS.items():
            model, text, calib = (os.path.join(ROOT, p) for p in (model, text, calib))
            base = evaluate(args.fp4forge, model, text, args.ctx)
            rows = [f"| BF16 (reference) | {base['ppl']:.3f} | | | | | |"]
            for label, quantize_args in VARIANTS:
                out = os.path.join(tmp, f"{len(sections)}-{len(rows)}")
                if quantize_args is None:
                    write_fp8_checkpoint(model, out)
                else:
                    quantize_args = [calib if a == "{calib}" else a for a in quantize_args]
                    subprocess.run([args.fp4forge, "quantize", model, out, "--quiet", *quantize_args], check=True)
                r = evaluate(args.fp4forge, out, text, args.ctx, ref=model)
                share = (r["ppl"] - base["ppl"]) / base["ppl"] * 100
                rows.append(f"| {label} | {r['ppl']:.3f} | {share:+.2f}% | {r['kld_mean']:.5f} | {r['kld_median']:.5f} "
                            f"| {r['kld_p99']:.4f} | {100 * r['top1_agree']:.2f}% |")
                print(rows[-1], flush=True)
            sections.append(f"**{name}**: `{os.path.relpath(model, ROOT)}` on `{os.path.relpath(text, ROOT)}`, "
                            f"{base['tokens']} tokens scored in windows of {args.ctx}; calibrated rows on "
                            f"`{os.path.relpath(calib, ROOT)}`.\n\n"
                            "| weights | PPL | PPL change | KLD mean | KLD median | KLD p99 | top-1 agreement |\n"
                            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    table = "\n".join(sections)
    print(table)
    with open(args.doc) as f:
        doc = f.read()
    begin, end = "<!-- BEGIN scripts/quality.py -->\n", "<!-- END scripts/quality.py -->"
    doc = doc[:doc.index(begin) + len(begin)] + table + doc[doc.index(end):]
    with open(args.doc, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main()
