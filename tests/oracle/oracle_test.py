#!/usr/bin/env python3
"""Python oracles for the codecs and quantizers: PyTorch, ml_dtypes and NumPy against fp4forge
(through tests/oracle/capi.cc), over every float32 in [-448, 448] for E4M3 and millions of random
and boundary values elsewhere.

Usage: oracle_test.py PATH/TO/libfp4forge_oracle_capi.so PATH/TO/fp4forge
Exit 77 (skipped) when the oracle packages are missing, unless FP4FORGE_REQUIRE_ORACLES=1 (CI).
"""
import ctypes
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harness import ROOT, check, finish, require  # noqa: E402

ml_dtypes, np, safetensors_torch, torch, _ = require("ml_dtypes", "numpy", "safetensors.torch", "torch",
                                                     "compressed_tensors")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import torch_nvfp4  # noqa: E402

lib = ctypes.CDLL(sys.argv[1])


def ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def ours(fn, x, out_dtype):
    out = np.empty(x.shape, dtype=out_dtype)
    getattr(lib, fn)(ptr(x), ctypes.c_int64(x.size), ptr(out))
    return out


def first_mismatch(x, want, got):
    i = int(np.flatnonzero(want != got)[0])
    return f"first mismatch: x={x.flat[i]!r} want {want.flat[i]:#x} got {got.flat[i]:#x}"


rng = np.random.default_rng(2026)

# E4M3 encode: every float32 bit pattern in [0, 448] and its negative, against torch.
limit = int(np.float32(448.0).view(np.uint32))
mismatches, checked, detail = 0, 0, ""
chunk = 1 << 24
for start in range(0, limit + 1, chunk):
    bits = np.arange(start, min(start + chunk, limit + 1), dtype=np.uint32)
    for sign in (0, 0x80000000):
        x = (bits | np.uint32(sign)).view(np.float32)
        want = torch.from_numpy(x).to(torch.float8_e4m3fn).view(torch.uint8).numpy()
        got = ours("fp4forge_encode_e4m3", x, np.uint8)
        bad = int(np.count_nonzero(want != got))
        if bad and not detail:
            detail = first_mismatch(x, want, got)
        mismatches += bad
        checked += x.size
check("E4M3 encode == torch .to(float8_e4m3fn), every float32 in [-448, 448]", mismatches == 0,
      f"({checked} values) {detail}")

# E4M3 encode against ml_dtypes on random values beyond the clamp range too (RNE, NaN past 464).
x = np.concatenate([rng.uniform(-500, 500, 4_000_000), rng.standard_normal(4_000_000) * 2.0 ** rng.integers(-12, 9, 4_000_000)]).astype(np.float32)
want = x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
got = ours("fp4forge_encode_e4m3", x, np.uint8)
same = (want == got) | (((want & 0x7F) == 0x7F) & ((got & 0x7F) == 0x7F))  # NaN payload sign may differ
check("E4M3 encode == ml_dtypes float8_e4m3fn, 8M random values", bool(same.all()),
      "" if same.all() else first_mismatch(x, want, got))

codes = np.arange(256, dtype=np.uint8)
want = torch.from_numpy(codes).view(torch.float8_e4m3fn).float().numpy()
got = ours("fp4forge_decode_e4m3", codes, np.float32)
check("E4M3 decode == torch, all 256 codes", bool(np.array_equal(want, got, equal_nan=True)))

want = codes.view(ml_dtypes.float8_e8m0fnu).astype(np.float32)
got = ours("fp4forge_decode_ue8m0", codes, np.float32)
check("UE8M0 decode == ml_dtypes float8_e8m0fnu, all 256 codes", bool(np.array_equal(want, got, equal_nan=True)))

# E2M1 encode: random values, every midpoint and its neighbours. -0.0 itself is excluded: ModelOpt
# (our convention, sign = x < 0) writes 0x0 where ml_dtypes keeps the sign (0x8).
mids = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], dtype=np.float32)
near = np.concatenate([mids, np.nextafter(mids, 0), np.nextafter(mids, 10)])
x = np.concatenate([near, -near, rng.uniform(-8, 8, 10_000_000).astype(np.float32)]).astype(np.float32)
x = x[~((x == 0) & np.signbit(x))]
want = x.astype(ml_dtypes.float4_e2m1fn).view(np.uint8)
got = ours("fp4forge_encode_e2m1", x, np.uint8)
check("E2M1 encode == ml_dtypes float4_e2m1fn, 10M values and all ties", bool(np.array_equal(want, got)),
      "" if np.array_equal(want, got) else first_mismatch(x, want, got))

# BF16 / FP16 encode on random float32 bit patterns (normals, subnormals, Inf, NaN).
x = rng.integers(0, 2**32, 10_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
with np.errstate(invalid="ignore"):
    want = x.astype(ml_dtypes.bfloat16).view(np.uint16)
got = ours("fp4forge_encode_bf16", x, np.uint16)
ok = np.isnan(x) | (want == got)
check("BF16 encode == ml_dtypes bfloat16, 10M random bit patterns", bool(ok.all()))
with np.errstate(over="ignore"):
    want = x.astype(np.float16).view(np.uint16)
got = ours("fp4forge_encode_f16", x, np.uint16)
ok = np.isnan(x) | (want == got)
check("FP16 encode == numpy float16, 10M random bit patterns", bool(ok.all()))
x = (rng.standard_normal(10_000_000) * 2.0 ** rng.integers(-30, 17, 10_000_000)).astype(np.float32)
with np.errstate(over="ignore"):
    ok = (x.astype(np.float16).view(np.uint16) == ours("fp4forge_encode_f16", x, np.uint16)).all()
check("FP16 encode == numpy float16, 10M values across the f16 range", bool(ok))


# NVFP4 (ModelOpt dynamic path) and MXFP4 against the pure-torch restatement of FORMATS.md.
def hard_matrix(rows, cols, seed):
    g = np.random.default_rng(seed)
    w = g.standard_normal((rows, cols)) * 2.0 ** g.integers(-8, 3, (rows, 1))
    w[g.random((rows, cols)) < 0.02] *= 30  # outliers
    w[:, 16:32] = 0  # a zero block in every row
    w[g.random((rows, cols)) < 0.01] = 0
    return w.astype(np.float32)


for rows, cols, seed in [(64, 4096, 1), (3, 48, 2), (257, 160, 3)]:
    w = torch.from_numpy(hard_matrix(rows, cols, seed)).to(torch.bfloat16)
    want_codes, want_scales, want_s2 = torch_nvfp4.quantize_nvfp4(w)
    codes = np.empty((rows, cols // 2), np.uint8)
    scales = np.empty((rows, cols // 16), np.uint8)
    s2 = ctypes.c_float()
    bits = w.view(torch.int16).numpy().view(np.uint16).copy()
    rc = lib.fp4forge_quantize_nvfp4_bf16(ptr(bits), ctypes.c_int64(rows), ctypes.c_int64(cols), ptr(codes),
                                          ptr(scales), ctypes.byref(s2))
    ok = rc == 0 and np.array_equal(codes, want_codes.numpy()) and np.array_equal(scales, want_scales.numpy()) \
        and np.float32(s2.value) == want_s2.numpy()
    check(f"NVFP4 amax [{rows}, {cols}] bf16 == torch ModelOpt restatement (codes, scales, weight_scale_2)", bool(ok))

for round_up in (False, True):
    w = hard_matrix(128, 1024, 4)
    want_codes, want_scales = torch_nvfp4.quantize_mxfp4(torch.from_numpy(w), round_up)
    codes = np.empty((128, 512), np.uint8)
    scales = np.empty((128, 32), np.uint8)
    rc = lib.fp4forge_quantize_mxfp4_f32(ptr(w), ctypes.c_int64(128), ctypes.c_int64(1024), ctypes.c_int(int(round_up)),
                                         ptr(codes), ptr(scales))
    ok = rc == 0 and np.array_equal(codes, want_codes.numpy()) and np.array_equal(scales, want_scales.numpy())
    check(f"MXFP4 {'round-up' if round_up else 'ocp'} == torch restatement", bool(ok))

# compressed-tensors' arithmetic against compressed-tensors itself (driven as llm-compressor does).
sys.path.insert(0, os.path.dirname(__file__))
import ct_reference  # noqa: E402

DTYPES = [(torch.float32, np.float32), (torch.bfloat16, np.uint16), (torch.float16, np.uint16)]
for code, (dtype, _) in enumerate(DTYPES):
    if dtype == torch.float32:  # 50k random positive finite float32 (one call each: ~1 s), then the edges
        amax = rng.integers(1, 0x7F800000, 50_000, dtype=np.uint32).view(np.float32)
        amax = np.concatenate([amax, np.float32([0.0, 1e-45, 1.1754944e-38, 3.4028235e38])])
        values = torch.from_numpy(amax)
    else:  # every non-negative finite value of the dtype
        limit = 0x7F80 if dtype == torch.bfloat16 else 0x7C00
        values = torch.arange(0, limit, dtype=torch.int32).to(torch.int16).view(dtype)
        amax = values.float().numpy()
    want = torch.cat([ct_reference.generate_gparam(-v.reshape(1), v.reshape(1)) for v in values]).numpy()
    got = np.empty_like(amax)
    lib.fp4forge_ct_global_scale(ptr(amax), ctypes.c_int64(amax.size), ctypes.c_int(code), ptr(got))
    bad = np.flatnonzero(want.view(np.uint32) != got.view(np.uint32))
    check(f"compressed-tensors global scale == generate_gparam in {dtype}, {amax.size} amax values", bad.size == 0,
          f"amax {amax[bad[0]]!r}: want {want[bad[0]]!r} got {got[bad[0]]!r}" if bad.size else "")

for code, (dtype, np_dtype) in enumerate(DTYPES):
    for rows, cols, seed in [(64, 1024, 5), (33, 96, 6)]:
        w = torch.from_numpy(hard_matrix(rows, cols, seed)).to(dtype)
        w[0, 0:3] = torch.tensor([-0.0, 1e-30, -1e-30])  # signed zeros and underflow
        data = w.numpy() if dtype == torch.float32 else w.view(torch.int16).numpy().view(np.uint16).copy()
        for mxfp4 in (0, 1):
            if mxfp4:
                want_codes, want_scales = ct_reference.quantize_mxfp4(w)
            else:
                want_gs = ct_reference.global_scale([w])
                want_codes, want_scales = ct_reference.quantize_nvfp4(w, want_gs)
            codes = np.empty((rows, cols // 2), np.uint8)
            scales = np.empty((rows, cols // (32 if mxfp4 else 16)), np.uint8)
            gs = ctypes.c_float()
            rc = lib.fp4forge_quantize_ct(ptr(data), ctypes.c_int(code), ctypes.c_int64(rows), ctypes.c_int64(cols),
                                          ctypes.c_int(mxfp4), ptr(codes), ptr(scales), ctypes.byref(gs))
            ok = rc == 0 and np.array_equal(codes, want_codes.numpy()) and np.array_equal(scales, want_scales.numpy())
            if not mxfp4:
                ok = ok and np.float32(gs.value) == want_gs.numpy()[0]
            detail = "" if ok or rc else f"{np.count_nonzero(codes != want_codes.numpy())} code bytes, " \
                f"{np.count_nonzero(scales != want_scales.numpy())} scale bytes differ"
            check(f"compressed-tensors {'MXFP4' if mxfp4 else 'NVFP4'} [{rows}, {cols}] {dtype} == compressed-tensors "
                  "calculate_qparams + compressor", bool(ok), detail)

# A file written by the official safetensors writer is read by fp4forge compare-formats.
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "official.safetensors")
    generator = torch.Generator().manual_seed(3)
    safetensors_torch.save_file({"layers.0.up_proj.weight": torch.randn(512, 1024, generator=generator).bfloat16(),
                                 "layers.0.norm.weight": torch.ones(1024, dtype=torch.bfloat16),
                                 "layers.0.down_proj.weight": torch.randn(128, 256, generator=generator).half()},
                                path, metadata={"format": "pt"})
    run = subprocess.run([sys.argv[2], "compare-formats", "--file", path, "--per-tensor", "--json"], capture_output=True, text=True)
    rows = json.loads(run.stdout) if run.returncode == 0 else []
    names = {r["dist"] for r in rows}
    nvfp4 = [r["rel_mse"] for r in rows if r["format"] == "nvfp4" and r["rule"] == "amax" and r["dist"] == "layers.0.up_proj.weight"]
    # Gaussian weights: ANCHORS.md §1 gives 0.0090 for 2^20 samples; 2^19 samples stay within ±10%.
    check("compare-formats reads a file of the official safetensors writer (bf16 and f16 tensors)",
          names == {"layers.0.up_proj.weight", "layers.0.down_proj.weight"} and len(nvfp4) == 1
          and 0.0081 < nvfp4[0] < 0.0099, run.stderr.strip())

finish()
