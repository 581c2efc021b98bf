"""NVFP4 and MXFP4 quantization written in plain PyTorch: what a Python user would write.

It restates FORMATS.md §3.2 (ModelOpt's dynamic NVFP4 path) and the MXFP4 scale rules of §2.3 with
torch operations, as an independent oracle for the C++ quantizers (tests/oracle/oracle_test.py)
and as the Python baseline of bench/torch_vs_fp4forge.py.
"""
import torch

E2M1_BOUNDS = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])


def e2m1_codes(scaled: torch.Tensor) -> torch.Tensor:
    """Round to nearest even on the E2M1 grid, saturating; sign bit = (x < 0). int64 codes 0..15."""
    magnitude = scaled.abs()
    # bucketize(right=False): a value equal to a bound takes the lower code ...
    code = torch.bucketize(magnitude, E2M1_BOUNDS.to(scaled.device))
    # ... except the bounds whose upper neighbour is the even code (ties to even).
    code += (magnitude == 0.75) | (magnitude == 1.75) | (magnitude == 3.5)
    return code | ((scaled < 0).long() << 3)


def pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    """[..., K] codes -> [..., K/2] bytes, element 2k in the low nibble."""
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).to(torch.uint8)


def quantize_nvfp4(w: torch.Tensor, global_amax=None):
    """w: [N, K], K % 16 == 0, not all zero. Returns (weight U8 [N, K/2], weight_scale E4M3 bytes
    [N, K/16], weight_scale_2 float32) as ModelOpt exports them. global_amax: a fused group's amax
    (ModelOpt gives q/k/v and gate/up the max of their amaxes)."""
    n, k = w.shape
    w32 = w.float()
    amax = w32.abs().max() if global_amax is None else torch.tensor(global_amax, dtype=torch.float32)
    weight_scale_2 = amax / (6.0 * 448.0)
    blocks = w32.view(n, k // 16, 16)
    scale = blocks.abs().amax(dim=-1) / (6.0 * weight_scale_2)
    scale[scale == 0] = 1.0
    scale = scale.clamp(min=2.0**-9, max=448.0).to(torch.float8_e4m3fn)
    scaled = blocks / (scale.float() * weight_scale_2).unsqueeze(-1)
    codes = e2m1_codes(scaled).view(n, k)
    return pack_nibbles(codes), scale.view(torch.uint8), weight_scale_2


def quantize_mxfp4(w: torch.Tensor, round_up: bool):
    """w: float32 [N, K], K % 32 == 0. OCP rule 2^(floor(log2 amax) - 2), or 2^ceil(log2(amax/6))
    rounded on the float bits. Returns (codes U8 [N, K/2], UE8M0 scale bytes [N, K/32])."""
    n, k = w.shape
    blocks = w.view(n, k // 32, 32)
    amax = blocks.abs().amax(dim=-1)
    if round_up:
        mantissa, exponent = torch.frexp(amax / 6.0)  # amax/6 = mantissa * 2^exponent, mantissa in [0.5, 1)
        k_exp = torch.where(mantissa == 0.5, exponent - 1, exponent)
    else:
        _, exponent = torch.frexp(amax)
        k_exp = exponent - 1 - 2
    k_exp = torch.where(amax == 0, torch.full_like(k_exp, -127), k_exp).clamp(-127, 127)
    scale = torch.ldexp(torch.ones_like(amax), k_exp)
    codes = e2m1_codes(blocks / scale.unsqueeze(-1)).view(n, k)
    return pack_nibbles(codes), (k_exp + 127).to(torch.uint8)
