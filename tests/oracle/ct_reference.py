"""compressed-tensors' own quantizer, driven as llm-compressor drives it (test oracle only).

llm-compressor's default weight observer (memoryless_minmax) takes the min/max of every 16- or
32-element group in the weight's own dtype (observers/min_max.py, observers/helpers.py); fused
siblings share a global scale from their joint absmax (observers/base.py::get_global_scale). The
scale lands in a parameter of the weight's dtype (lifecycle/initialize.py), and the compressor
quantizes and packs. Everything numeric below is compressed-tensors' code from PyPI.
"""
import torch
from compressed_tensors.compressors.mxfp4.base import MXFP4PackedCompressor
from compressed_tensors.compressors.nvfp4.base import NVFP4PackedCompressor
from compressed_tensors.quantization import preset_name_to_scheme
from compressed_tensors.quantization.utils.helpers import calculate_qparams, generate_gparam

__all__ = ["generate_gparam", "global_scale", "quantize_nvfp4", "quantize_mxfp4"]

NVFP4A16 = preset_name_to_scheme("NVFP4A16", ["Linear"])
MXFP4A16 = preset_name_to_scheme("MXFP4A16", ["Linear"])


def _group_min_max(weight, group_size):
    observed = weight.reshape(1, weight.shape[0], -1, group_size)
    return torch.amin(observed, dim=(0, -1)), torch.amax(observed, dim=(0, -1))


def global_scale(weights):
    """weight_global_scale of a fused group (one tensor for a single Linear)."""
    absmax = None
    for w in weights:
        lo, hi = _group_min_max(w, 16)
        m = torch.max(-lo.min(), hi.max())
        absmax = m if absmax is None else torch.max(absmax, m)
    return generate_gparam(-absmax.reshape(1), absmax.reshape(1))


def quantize_nvfp4(weight, gs):
    """(weight_packed, weight_scale as uint8 bytes) of one Linear weight with global scale gs."""
    lo, hi = _group_min_max(weight, 16)
    scale, _ = calculate_qparams(lo, hi, NVFP4A16.weights, global_scale=gs)
    state = {"weight": weight, "weight_scale": scale.to(weight.dtype), "weight_global_scale": gs}
    out = NVFP4PackedCompressor.compress(state, NVFP4A16)
    return out["weight_packed"], out["weight_scale"].view(torch.uint8)


def quantize_mxfp4(weight):
    """(weight_packed, weight_scale) of one Linear weight in compressed-tensors' MXFP4."""
    lo, hi = _group_min_max(weight, 32)
    scale, _ = calculate_qparams(lo, hi, MXFP4A16.weights)
    state = {"weight": weight, "weight_scale": scale.to(weight.dtype)}
    out = MXFP4PackedCompressor.compress(state, MXFP4A16)
    return out["weight_packed"], out["weight_scale"]
