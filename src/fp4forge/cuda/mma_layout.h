// The weight layout of the tensor-core W4A16 product (gemm.cu) and the decoding of its codes into
// BF16 operands, host and device code alike so that the CPU tests (mma_layout_test.cc) check them.
//
// mma.sync m16n8k16 (BF16) takes, per lane (g = lane / 4, t = lane % 4), A operands at k = 2t, 2t+1
// and 2t+8, 2t+9 of its 16-step and B operands at the same k. The sum over a step does not depend
// on which real k each of those 16 slots stands for, as long as A and B agree; gemm.cu lets lane t
// stand for 32 consecutive k of each chunk of 128: at step j (0..7) its slots 2t, 2t+1, 2t+8, 2t+9
// are k = 32t + 4j + 0, 1, 2, 3. A lane then reads x as 16-byte words and needs the 16 code bytes
// 16t..16t+15 of the chunk of each of its columns (g of a tile of 8), in the checkpoint's own order
// (low nibble = even k, FORMATS.md §1.6), and the scales of the chunk's blocks 2t and 2t+1. The
// reorder (ReorderNvfp4ForMma, done once when weights are loaded) puts each tile of 8 columns and
// 128 k together, so that a warp reads it as 512 consecutive bytes:
//   codes: tile (n8, c) at byte ((n8 · chunks + c) · 32 + L) · 16, for lane L = 4g + t: code bytes
//          16t..16t+15 of chunk c of column 8·n8 + g;
//   scales: tile (n8, c) at byte (n8 · chunks + c) · 64 + 8g + j = E4M3 scale of block 8c + j of
//           that column (lane L's two are the 16-bit word 4g + t of the tile);
// chunks = ceil(k / 128); the missing blocks of a last, partial chunk are zero codes and scales.
#pragma once

#include <bit>
#include <cstdint>

#include "fp4forge/cuda/host_device.h"

namespace fp4forge::cuda {

inline constexpr int kMmaChunk = 128;         // k per reordered tile
inline constexpr int kMmaTileCodeBytes = 512;  // 8 columns x 128 k / 2
inline constexpr int kMmaTileScaleBytes = 64;  // 8 columns x 8 blocks

// PTX prmt (default mode) with selectors of 3 bits: byte i of the result is byte s_i of the
// 8 bytes {x, y} (x = bytes 0..3).
FP4FORGE_HOST_DEVICE uint32_t BytePerm(uint32_t x, uint32_t y, uint32_t s) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(x, y, s);
#else
  const uint64_t bytes = uint64_t{y} << 32 | x;
  uint32_t out = 0;
  for (int i = 0; i < 4; ++i) out |= static_cast<uint32_t>((bytes >> (8 * ((s >> (4 * i)) & 7))) & 0xFF) << (8 * i);
  return out;
#endif
}

// The 8 E2M1 codes of w (nibble i = code i) as 4 pairs of BF16 (pair j = nibbles 2j, 2j+1, the
// lower in the low half). The magnitudes' BF16 bytes come from two 8-entry tables by prmt, the
// signs from bit 3 of each nibble.
FP4FORGE_HOST_DEVICE void DecodeE2M1ToBF16x2(uint32_t w, uint32_t (&pairs)[4]) {
  // BF16 of 0, 0.5, 1, 1.5, 2, 3, 4, 6: high bytes 00 3F 3F 3F 40 40 40 40, low 00 00 80 C0 00 40 80 C0.
  constexpr uint32_t kHigh0 = 0x3F3F3F00u, kHigh1 = 0x40404040u, kLow0 = 0xC0800000u, kLow1 = 0xC0804000u;
  const uint32_t magnitude = w & 0x77777777u;
  const uint32_t high[2] = {BytePerm(kHigh0, kHigh1, magnitude), BytePerm(kHigh0, kHigh1, magnitude >> 16)};
  const uint32_t low[2] = {BytePerm(kLow0, kLow1, magnitude), BytePerm(kLow0, kLow1, magnitude >> 16)};
  const uint32_t even_signs = w << 4;  // byte j's bit 7: the sign of nibble 2j; w's own bit 7: of nibble 2j+1
  for (int j = 0; j < 4; ++j) {
    const uint32_t value = BytePerm(low[j / 2], high[j / 2], j % 2 == 0 ? 0x5140u : 0x7362u);
    const uint32_t sign = BytePerm(even_signs, w, (4u + j) << 12 | uint32_t(j) << 4) & 0x80008000u;
    pairs[j] = value | sign;
  }
}

// An E4M3 scale (sign clear) as float32, exactly: its bits shifted into float32's place are the
// value times 2^-120, subnormals included (float32 denormals are kept: no flush to zero).
FP4FORGE_HOST_DEVICE float DecodeE4M3Scale(uint32_t code) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float((code & 0x7Fu) << 20) * 0x1p120f;
#else
  return std::bit_cast<float>((code & 0x7Fu) << 20) * 0x1p120f;
#endif
}

}  // namespace fp4forge::cuda
