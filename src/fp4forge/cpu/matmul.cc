// Highway kernels of matmul.h. A product decodes a tile of weight rows into float32 (a few KiB that
// stay in L1/L2), then takes each activation row's dot products with the whole tile, so that a
// decoded weight is reused by every activation row and each weight byte is read from memory once.
//
// E2M1 codes are decoded with a byte shuffle: one 16-entry table of the values ×2 as int8 (-12..12)
// looked up by TableLookupBytes (pshufb) for 32 codes at a time, then widened to float32 and
// multiplied by 0.5 (exact) and the block's scale, which is the reference's e2m1 · divisor product.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "fp4forge/cpu/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <array>
#include <limits>
#include <cstring>
#include <vector>

#include "fp4forge/base/error.h"
#include "fp4forge/base/thread_pool.h"
#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/codec/ue8m0.h"
#include "fp4forge/cpu/matmul.h"
#include "fp4forge/format/fp8.h"
#include "fp4forge/format/mxfp4.h"

#ifndef FP4FORGE_CPU_MATMUL_ONCE
#define FP4FORGE_CPU_MATMUL_ONCE
namespace fp4forge::cpu {

// Per-matrix constants the kernels look up instead of recomputing per block.
struct DecodeTables {
  std::array<float, 256> block_scale{};  // NVFP4: Nvfp4Divisor(code); MXFP4: 2^(code-127)
};

// Rows decoded at a time: four dot products share each load of an activation row.
constexpr int64_t kTileRows = 4;

}  // namespace fp4forge::cpu
#endif

HWY_BEFORE_NAMESPACE();
namespace fp4forge::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// ---------------------------------------------------------------------------------------------
// Row decoders: one row of w into out[cols].

template <typename T>
void DecodeHalfRow(const uint8_t* src, int64_t cols, float* HWY_RESTRICT out) {
  const DF df;
  const hn::Rebind<T, DF> dt;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const T* row = reinterpret_cast<const T*>(src);  // x86 loads need no alignment
  int64_t k = 0;
  for (; k + lanes <= cols; k += lanes) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dt, row + k)), df, out + k);
  for (; k < cols; ++k) {
    uint16_t bits;
    std::memcpy(&bits, src + 2 * k, 2);
    out[k] = std::is_same_v<T, hwy::bfloat16_t> ? DecodeBF16(bits) : DecodeF16(bits);
  }
}

// E2M1 codes (cols/2 bytes) into int8 values 2·e2m1 (cols bytes, in element order).
void E2M1TimesTwo(const uint8_t* HWY_RESTRICT codes, int64_t cols, int8_t* HWY_RESTRICT out) {
  int64_t k = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::Full128<uint8_t> du8;
  const hn::Full128<int8_t> di8;
  alignas(16) static constexpr int8_t kTwiceE2M1[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  const auto table = hn::Load(di8, kTwiceE2M1);
  const auto nibble = hn::Set(du8, uint8_t{0xF});
  for (; k + 32 <= cols; k += 32) {
    const auto bytes = hn::LoadU(du8, codes + k / 2);
    const auto lo = hn::BitCast(di8, hn::And(bytes, nibble));
    const auto hi = hn::BitCast(di8, hn::ShiftRight<4>(bytes));
    const auto even = hn::TableLookupBytes(table, lo);  // elements 2j
    const auto odd = hn::TableLookupBytes(table, hi);   // elements 2j+1
    hn::StoreU(hn::InterleaveLower(di8, even, odd), di8, out + k);
    hn::StoreU(hn::InterleaveUpper(di8, even, odd), di8, out + k + 16);
  }
#endif
  for (; k < cols; k += 2) {
    out[k] = static_cast<int8_t>(2.0f * DecodeE2M1(LowNibble(codes[k / 2])));
    out[k + 1] = static_cast<int8_t>(2.0f * DecodeE2M1(HighNibble(codes[k / 2])));
  }
}

// Block-scaled E2M1 row: out[k] = (0.5 · twice[k]) · scale[k / block] (the reference's e2m1 · d).
void ScaleE2M1Row(const int8_t* HWY_RESTRICT twice, const uint8_t* HWY_RESTRICT scale_codes, int64_t cols,
                  int64_t block, const float* HWY_RESTRICT scale_table, float* HWY_RESTRICT out) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> di8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF half = hn::Set(df, 0.5f);
  if (lanes > block) {  // a vector wider than a block (never for the 16/32 blocks below 512 bits)
    for (int64_t k = 0; k < cols; ++k) out[k] = (0.5f * twice[k]) * scale_table[scale_codes[k / block]];
    return;
  }
  for (int64_t b = 0; b < cols / block; ++b) {
    const VF d = hn::Set(df, scale_table[scale_codes[b]]);
    for (int64_t k = b * block; k < (b + 1) * block; k += lanes) {
      const VF v = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, twice + k)));
      hn::StoreU(hn::Mul(hn::Mul(v, half), d), df, out + k);
    }
  }
}

// E4M3 codes in the low byte of each lane, as float32, on the bits (DecodeE4M3 lane for lane): normal
// codes rebias the exponent (7 -> 127) and move the 3 mantissa bits up; subnormals are m · 2^-9;
// 0x7F/0xFF are NaN. A gather from a 256-entry table cost ~5x more per lane on Zen 4.
HWY_INLINE VF E4M3Values(DF df, hn::Vec<hn::RebindToSigned<DF>> code) {
  const hn::RebindToSigned<DF> di;
  const auto exponent = hn::And(hn::ShiftRight<3>(code), hn::Set(di, 0xF));
  const auto mantissa = hn::And(code, hn::Set(di, 7));
  const VF normal = hn::BitCast(df, hn::Or(hn::ShiftLeft<23>(hn::Add(exponent, hn::Set(di, 120))),
                                            hn::ShiftLeft<20>(mantissa)));
  const VF subnormal = hn::Mul(hn::ConvertTo(df, mantissa), hn::Set(df, 0x1p-9f));
  VF magnitude = hn::IfThenElse(hn::RebindMask(df, hn::Eq(exponent, hn::Zero(di))), subnormal, normal);
  magnitude = hn::IfThenElse(hn::RebindMask(df, hn::Eq(hn::And(code, hn::Set(di, 0x7F)), hn::Set(di, 0x7F))),
                             hn::Set(df, std::numeric_limits<float>::quiet_NaN()), magnitude);
  return hn::Or(magnitude, hn::BitCast(df, hn::ShiftLeft<24>(hn::And(code, hn::Set(di, 0x80)))));
}

void DecodeFp8Row(const uint8_t* HWY_RESTRICT codes, int64_t cols, float scale, float* HWY_RESTRICT out) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint8_t, DF> du8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF s = hn::Set(df, scale);
  int64_t k = 0;
  for (; k + lanes <= cols; k += lanes) {
    const auto code = hn::BitCast(hn::RebindToSigned<DF>(), hn::PromoteTo(du, hn::LoadU(du8, codes + k)));
    hn::StoreU(hn::Mul(E4M3Values(df, code), s), df, out + k);
  }
  for (; k < cols; ++k) out[k] = DecodeE4M3(codes[k]) * scale;
}

// Decodes row r of w into out; `scratch` holds cols int8 for the 4-bit formats.
void DecodeRow(const WeightMatrix& w, const DecodeTables& tables, int64_t r, int8_t* scratch, float* out) {
  const int64_t cols = w.cols;
  switch (w.encoding) {
    case WeightEncoding::kF32:
      std::memcpy(out, w.values + r * cols * 4, static_cast<size_t>(cols) * 4);
      break;
    case WeightEncoding::kBF16:
      DecodeHalfRow<hwy::bfloat16_t>(w.values + r * cols * 2, cols, out);
      break;
    case WeightEncoding::kF16:
      DecodeHalfRow<hwy::float16_t>(w.values + r * cols * 2, cols, out);
      break;
    case WeightEncoding::kNvfp4:
    case WeightEncoding::kMxfp4: {
      const int64_t block = w.encoding == WeightEncoding::kNvfp4 ? kNvfp4BlockSize : kMxfp4BlockSize;
      E2M1TimesTwo(w.values + r * cols / 2, cols, scratch);
      ScaleE2M1Row(scratch, w.block_scales + r * (cols / block), cols, block, tables.block_scale.data(), out);
      break;
    }
    case WeightEncoding::kFp8:
      DecodeFp8Row(w.values + r * cols, cols, w.Fp8Scale(r), out);
      break;
  }
}

void DecodeRowsT(const WeightMatrix& w, const DecodeTables& tables, int64_t row_begin, int64_t row_end,
                 float* out) {
  std::vector<int8_t> scratch(static_cast<size_t>(w.cols));
  for (int64_t r = row_begin; r < row_end; ++r) DecodeRow(w, tables, r, scratch.data(), out + (r - row_begin) * w.cols);
}

// ---------------------------------------------------------------------------------------------
// Dot products of one activation row with `num` (<= kTileRows) decoded weight rows.

void DotTile(const float* HWY_RESTRICT x, const float* HWY_RESTRICT tile, int64_t num, int64_t cols,
             float* HWY_RESTRICT y) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF acc[kTileRows];
  for (int64_t t = 0; t < kTileRows; ++t) acc[t] = hn::Zero(df);
  int64_t k = 0;
  if (num == kTileRows) {
    for (; k + lanes <= cols; k += lanes) {
      const VF xv = hn::LoadU(df, x + k);
      for (int64_t t = 0; t < kTileRows; ++t) acc[t] = hn::MulAdd(xv, hn::LoadU(df, tile + t * cols + k), acc[t]);
    }
  } else {
    for (; k + lanes <= cols; k += lanes) {
      const VF xv = hn::LoadU(df, x + k);
      for (int64_t t = 0; t < num; ++t) acc[t] = hn::MulAdd(xv, hn::LoadU(df, tile + t * cols + k), acc[t]);
    }
  }
  for (int64_t t = 0; t < num; ++t) {
    float sum = hn::GetLane(hn::SumOfLanes(df, acc[t]));
    for (int64_t j = k; j < cols; ++j) sum += x[j] * tile[t * cols + j];
    y[t] = sum;
  }
}

// ---------------------------------------------------------------------------------------------
// Batch 1 (decode): one dot product per weight row, decoding in registers with no tile in between.
// For E2M1 rows the activation is read in an even/odd order (PermuteEvenOdd) so that the low and
// high nibbles of N code bytes, widened to N lanes, meet their activations without a shuffle.

// At least 8 float lanes: the E2M1 value tables below live in one vector.
constexpr bool kFusedE2M1 = hn::MaxLanes(DF()) >= 8;

// Per chunk of 2N elements (N lanes), the N even elements then the N odd ones; a tail shorter than
// a chunk stays in order.
void PermuteEvenOdd(const float* HWY_RESTRICT x, int64_t cols, float* HWY_RESTRICT out) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  int64_t c = 0;
  for (; c + 2 * lanes <= cols; c += 2 * lanes) {
    for (int64_t j = 0; j < lanes; ++j) {
      out[c + j] = x[c + 2 * j];
      out[c + lanes + j] = x[c + 2 * j + 1];
    }
  }
  for (; c < cols; ++c) out[c] = x[c];
}

// E2M1 values of the codes in the low 4 bits of each lane.
HWY_INLINE VF E2M1Values(DF df, hn::Vec<hn::RebindToSigned<DF>> codes) {
  const hn::RebindToSigned<DF> di;
  if constexpr (hn::MaxLanes(DF()) >= 16) {
    alignas(64) static constexpr float kValues[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    return hn::TableLookupLanes(hn::Load(df, kValues), hn::IndicesFromVec(df, codes));
  } else {  // 8 lanes: the magnitude from the low 3 bits, the sign from bit 3
    alignas(32) static constexpr float kMagnitudes[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    const VF magnitude = hn::TableLookupLanes(hn::Load(df, kMagnitudes), hn::IndicesFromVec(df, hn::And(codes, hn::Set(di, 7))));
    return hn::Xor(magnitude, hn::BitCast(df, hn::ShiftLeft<28>(hn::And(codes, hn::Set(di, 8)))));
  }
}

// block: 16 (NVFP4) or 32 (MXFP4).
float DotE2M1Row(const uint8_t* HWY_RESTRICT codes, const uint8_t* HWY_RESTRICT scale_codes, int64_t cols,
                 int64_t block, const float* HWY_RESTRICT scale_table, const float* HWY_RESTRICT xp) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto nibble = hn::Set(di, 0xF);
  const auto first_half = hn::FirstN(df, static_cast<size_t>(lanes / 2));
  VF acc = hn::Zero(df);
  int64_t c = 0;
  const int block_shift = block == 16 ? 4 : 5;  // c / block by a shift: a 64-bit idiv per chunk cost more than the rest
  if constexpr (kFusedE2M1) {
    for (; c + 2 * lanes <= cols; c += 2 * lanes) {
      const auto bytes = hn::BitCast(di, hn::PromoteTo(hn::RebindToUnsigned<DF>(), hn::LoadU(du8, codes + c / 2)));
      const VF even = E2M1Values(df, hn::And(bytes, nibble));
      const VF odd = E2M1Values(df, hn::ShiftRight<4>(bytes));
      const VF t = hn::MulAdd(odd, hn::LoadU(df, xp + c + lanes), hn::Mul(even, hn::LoadU(df, xp + c)));
      // Lane j holds elements c + 2j and c + 2j + 1: one block, or two when 2N spans two.
      const float s0 = scale_table[scale_codes[c >> block_shift]];
      const VF scale = 2 * lanes > block ? hn::IfThenElse(first_half, hn::Set(df, s0),
                                                          hn::Set(df, scale_table[scale_codes[(c >> block_shift) + 1]]))
                                         : hn::Set(df, s0);
      acc = hn::MulAdd(t, scale, acc);
    }
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; c < cols; c += 2) {
    const float s = scale_table[scale_codes[c / block]];
    sum += (DecodeE2M1(LowNibble(codes[c / 2])) * xp[c] + DecodeE2M1(HighNibble(codes[c / 2])) * xp[c + 1]) * s;
  }
  return sum;
}

template <typename T>
float DotHalfRow(const uint8_t* src, int64_t cols, const float* HWY_RESTRICT x) {
  const DF df;
  const hn::Rebind<T, DF> dt;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const T* row = reinterpret_cast<const T*>(src);
  VF acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t k = 0;
  for (; k + 2 * lanes <= cols; k += 2 * lanes) {
    acc0 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dt, row + k)), hn::LoadU(df, x + k), acc0);
    acc1 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dt, row + k + lanes)), hn::LoadU(df, x + k + lanes), acc1);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; k < cols; ++k) {
    uint16_t bits;
    std::memcpy(&bits, src + 2 * k, 2);
    sum += (std::is_same_v<T, hwy::bfloat16_t> ? DecodeBF16(bits) : DecodeF16(bits)) * x[k];
  }
  return sum;
}

// Σ e4m3(code_k) · x_k · scale, the scale applied once to the row's sum.
float DotFp8Row(const uint8_t* HWY_RESTRICT codes, int64_t cols, float scale, const float* HWY_RESTRICT x) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint8_t, DF> du8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF acc = hn::Zero(df);
  int64_t k = 0;
  for (; k + lanes <= cols; k += lanes) {
    const auto code = hn::BitCast(hn::RebindToSigned<DF>(), hn::PromoteTo(du, hn::LoadU(du8, codes + k)));
    acc = hn::MulAdd(E4M3Values(df, code), hn::LoadU(df, x + k), acc);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; k < cols; ++k) sum += DecodeE4M3(codes[k]) * x[k];
  return sum * scale;
}

// Whether MatVecRowsT has a fused kernel for this encoding on this target.
bool HasMatVec(WeightEncoding encoding) {
  switch (encoding) {
    case WeightEncoding::kBF16:
    case WeightEncoding::kF16:
    case WeightEncoding::kFp8: return true;
    case WeightEncoding::kNvfp4:
    case WeightEncoding::kMxfp4: return kFusedE2M1;
    default: return false;
  }
}

// y[n] for n in [n_begin, n_end) of y = w · x, for an encoding HasMatVec accepts. `xp` is x as
// PermuteEvenOdd orders it (E2M1 encodings) or x itself.
void MatVecRowsT(const WeightMatrix& w, const DecodeTables& tables, const float* xp, int64_t n_begin, int64_t n_end,
                 float* y) {
  const int64_t cols = w.cols;
  for (int64_t n = n_begin; n < n_end; ++n) {
    switch (w.encoding) {
      case WeightEncoding::kBF16: y[n] = DotHalfRow<hwy::bfloat16_t>(w.values + n * cols * 2, cols, xp); break;
      case WeightEncoding::kF16: y[n] = DotHalfRow<hwy::float16_t>(w.values + n * cols * 2, cols, xp); break;
      case WeightEncoding::kFp8:
        y[n] = DotFp8Row(w.values + n * cols, cols, w.Fp8Scale(n), xp);
        break;
      default: {
        const int64_t block = w.encoding == WeightEncoding::kNvfp4 ? kNvfp4BlockSize : kMxfp4BlockSize;
        y[n] = DotE2M1Row(w.values + n * cols / 2, w.block_scales + n * (cols / block), cols, block,
                          tables.block_scale.data(), xp);
      }
    }
  }
}

// DotTile for two activation rows at once: each load of the tile feeds two FMAs, which is what
// bounds prefill (8 accumulators: 6 loads per 8 FMAs instead of 5 per 4).
void DotTile2(const float* HWY_RESTRICT x0, const float* HWY_RESTRICT x1, const float* HWY_RESTRICT tile,
              int64_t num, int64_t cols, float* HWY_RESTRICT y0, float* HWY_RESTRICT y1) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF a0[kTileRows], a1[kTileRows];
  for (int64_t t = 0; t < kTileRows; ++t) a0[t] = a1[t] = hn::Zero(df);
  int64_t k = 0;
  for (; k + lanes <= cols; k += lanes) {
    const VF v0 = hn::LoadU(df, x0 + k), v1 = hn::LoadU(df, x1 + k);
    for (int64_t t = 0; t < num; ++t) {
      const VF w = hn::LoadU(df, tile + t * cols + k);
      a0[t] = hn::MulAdd(v0, w, a0[t]);
      a1[t] = hn::MulAdd(v1, w, a1[t]);
    }
  }
  for (int64_t t = 0; t < num; ++t) {
    float s0 = hn::GetLane(hn::SumOfLanes(df, a0[t])), s1 = hn::GetLane(hn::SumOfLanes(df, a1[t]));
    for (int64_t j = k; j < cols; ++j) {
      s0 += x0[j] * tile[t * cols + j];
      s1 += x1[j] * tile[t * cols + j];
    }
    y0[t] = s0;
    y1[t] = s1;
  }
}

// Output columns [n_begin, n_end) of y = x · wᵀ.
void MatMulRowsT(const WeightMatrix& w, const DecodeTables& tables, const float* x, int64_t num_rows,
                 int64_t n_begin, int64_t n_end, float* y) {
  std::vector<float> tile(static_cast<size_t>(kTileRows * w.cols));
  std::vector<int8_t> scratch(static_cast<size_t>(w.cols));
  float dots[kTileRows], dots2[kTileRows];
  for (int64_t n = n_begin; n < n_end; n += kTileRows) {
    const int64_t num = std::min(kTileRows, n_end - n);
    for (int64_t t = 0; t < num; ++t) DecodeRow(w, tables, n + t, scratch.data(), tile.data() + t * w.cols);
    int64_t m = 0;
    for (; m + 2 <= num_rows; m += 2) {
      DotTile2(x + m * w.cols, x + (m + 1) * w.cols, tile.data(), num, w.cols, dots, dots2);
      std::memcpy(y + m * w.rows + n, dots, static_cast<size_t>(num) * sizeof(float));
      std::memcpy(y + (m + 1) * w.rows + n, dots2, static_cast<size_t>(num) * sizeof(float));
    }
    for (; m < num_rows; ++m) {
      DotTile(x + m * w.cols, tile.data(), num, w.cols, dots);
      std::memcpy(y + m * w.rows + n, dots, static_cast<size_t>(num) * sizeof(float));
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace fp4forge::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fp4forge::cpu {

HWY_EXPORT(DecodeRowsT);
HWY_EXPORT(MatMulRowsT);
HWY_EXPORT(HasMatVec);
HWY_EXPORT(PermuteEvenOdd);
HWY_EXPORT(MatVecRowsT);

std::string_view WeightEncodingName(WeightEncoding encoding) {
  switch (encoding) {
    case WeightEncoding::kF32: return "f32";
    case WeightEncoding::kBF16: return "bf16";
    case WeightEncoding::kF16: return "f16";
    case WeightEncoding::kNvfp4: return "nvfp4";
    case WeightEncoding::kMxfp4: return "mxfp4";
    case WeightEncoding::kFp8: return "fp8";
  }
  return "?";
}

int64_t WeightMatrix::StoredBytes() const {
  const int64_t n = rows * cols;
  switch (encoding) {
    case WeightEncoding::kF32: return 4 * n;
    case WeightEncoding::kBF16:
    case WeightEncoding::kF16: return 2 * n;
    case WeightEncoding::kNvfp4: return n / 2 + n / kNvfp4BlockSize;
    case WeightEncoding::kMxfp4: return n / 2 + n / kMxfp4BlockSize;
    case WeightEncoding::kFp8: return n + (row_scales ? 4 * rows : 0);
  }
  return 0;
}

float WeightMatrix::Fp8Scale(int64_t row) const {
  float scale = tensor_scalar;
  if (row_scales) std::memcpy(&scale, row_scales + 4 * row, 4);  // F32, unaligned in the mapping
  return scale;
}

namespace {

DecodeTables MakeTables(const WeightMatrix& w) {
  DecodeTables t;
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<uint8_t>(c);
    if (w.encoding == WeightEncoding::kNvfp4) t.block_scale[c] = Nvfp4Divisor(code, w.tensor_scalar, w.producer);
    if (w.encoding == WeightEncoding::kMxfp4) t.block_scale[c] = DecodeUE8M0(code);
  }
  return t;
}

}  // namespace

void DecodeRowsRef(const WeightMatrix& w, int64_t row_begin, int64_t row_end, float* out) {
  const int64_t cols = w.cols;
  for (int64_t r = row_begin; r < row_end; ++r) {
    float* o = out + (r - row_begin) * cols;
    switch (w.encoding) {
      case WeightEncoding::kF32:
        std::memcpy(o, w.values + r * cols * 4, static_cast<size_t>(cols) * 4);
        break;
      case WeightEncoding::kBF16:
      case WeightEncoding::kF16:
        for (int64_t k = 0; k < cols; ++k) {
          uint16_t bits;
          std::memcpy(&bits, w.values + 2 * (r * cols + k), 2);
          o[k] = w.encoding == WeightEncoding::kBF16 ? DecodeBF16(bits) : DecodeF16(bits);
        }
        break;
      case WeightEncoding::kNvfp4:
        DequantizeNvfp4RowRef(w.values + r * cols / 2, w.block_scales + r * (cols / kNvfp4BlockSize), cols,
                              w.tensor_scalar, w.producer, o);
        break;
      case WeightEncoding::kMxfp4:
        DequantizeMxfp4RowRef(w.values + r * cols / 2, w.block_scales + r * (cols / kMxfp4BlockSize), cols, o);
        break;
      case WeightEncoding::kFp8:
        DequantizeFp8RowRef(w.values + r * cols, cols, w.Fp8Scale(r), o);
        break;
    }
  }
}

void DecodeRows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, float* out) {
  const DecodeTables tables = MakeTables(w);
  HWY_DYNAMIC_DISPATCH(DecodeRowsT)(w, tables, row_begin, row_end, out);
}

void MatMul(const WeightMatrix& w, const float* x, int64_t num_rows, float* y, ThreadPool& pool) {
  const DecodeTables tables = MakeTables(w);
  if (num_rows == 1 && HWY_DYNAMIC_DISPATCH(HasMatVec)(w.encoding)) {
    thread_local std::vector<float> permuted;
    const float* xp = x;
    if (w.encoding == WeightEncoding::kNvfp4 || w.encoding == WeightEncoding::kMxfp4) {
      permuted.resize(static_cast<size_t>(w.cols));
      HWY_DYNAMIC_DISPATCH(PermuteEvenOdd)(x, w.cols, permuted.data());
      xp = permuted.data();
    }
    pool.Run(w.rows, [&](int64_t begin, int64_t end) { HWY_DYNAMIC_DISPATCH(MatVecRowsT)(w, tables, xp, begin, end, y); });
    return;
  }
  // Whole tiles per thread, so that the split never changes which rows share a tile.
  const int64_t num_tiles = (w.rows + kTileRows - 1) / kTileRows;
  pool.Run(num_tiles, [&](int64_t begin, int64_t end) {
    HWY_DYNAMIC_DISPATCH(MatMulRowsT)(w, tables, x, num_rows, begin * kTileRows, std::min(w.rows, end * kTileRows), y);
  });
}

void MatMulRef(const WeightMatrix& w, const float* x, int64_t num_rows, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t n = 0; n < w.rows; ++n) {
    DecodeRowsRef(w, n, n + 1, row.data());
    for (int64_t m = 0; m < num_rows; ++m) {
      double sum = 0;
      for (int64_t k = 0; k < w.cols; ++k) sum += static_cast<double>(x[m * w.cols + k]) * row[k];
      y[m * w.rows + n] = static_cast<float>(sum);
    }
  }
}

}  // namespace fp4forge::cpu
#endif  // HWY_ONCE
