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
#include "hwy/cache_control.h"
#include "hwy/highway.h"

#include <algorithm>
#include <array>
#include <cmath>
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

// Batch-1 kernels ask for the weight bytes this far ahead of the ones they read. The hardware
// prefetchers stop at 4 KiB pages, and a mapped checkpoint sits in 4 KiB pages of the page cache:
// the 8B-shaped model decoded ~7% faster with it (alternating runs on Zen 4).
constexpr int64_t kPrefetchBytes = 1024;

// Rows decoded at a time: four dot products share each load of an activation row.
constexpr int64_t kTileRows = 4;

// 2·e2m1 of each code as int8, the table of the byte shuffles.
alignas(16) constexpr int8_t kTwiceE2M1[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// A batch-1 activation row as the E2M1 kernels read it (QuantizeActivationsT).
struct QuantizedRow {
  std::vector<int16_t> values;  // cols, in the kernel's chunk order
  std::vector<float> scales;    // one per weight block
};

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

// E4M3 codes in the low byte of each lane, as float32, on the bits (DecodeE4M3 lane for lane): the
// 7 magnitude bits moved to the top of a float32's exponent and mantissa read as 2^(e-127)·(1+m/8),
// or m·2^-129 for the subnormal codes, so one exact multiply by 2^120 rebiases both (this needs
// denormals-are-zero off, the default); 0x7F/0xFF are NaN. A gather from a 256-entry table cost
// ~5x more per lane on Zen 4.
HWY_INLINE VF E4M3Values(DF df, hn::Vec<hn::RebindToSigned<DF>> code) {
  const hn::RebindToSigned<DF> di;
  const auto bits = hn::And(code, hn::Set(di, 0x7F));
  const VF magnitude = hn::IfThenElse(hn::RebindMask(df, hn::Eq(bits, hn::Set(di, 0x7F))),
                                      hn::Set(df, std::numeric_limits<float>::quiet_NaN()),
                                      hn::Mul(hn::BitCast(df, hn::ShiftLeft<20>(bits)), hn::Set(df, 0x1p120f)));
  return hn::Or(magnitude, hn::BitCast(df, hn::ShiftLeft<24>(hn::And(code, hn::Set(di, 0x80)))));
}

// UE8M0 codes in the low byte of each lane as 2^(code-127) (DecodeUE8M0): the code is the float32
// exponent, except 0 (2^-127, a subnormal) and 0xFF (NaN).
HWY_INLINE VF UE8M0Values(DF df, hn::Vec<hn::RebindToSigned<DF>> code) {
  const hn::RebindToSigned<DF> di;
  const VF power = hn::IfThenElse(hn::RebindMask(df, hn::Eq(code, hn::Zero(di))), hn::Set(df, 0x1p-127f),
                                  hn::BitCast(df, hn::ShiftLeft<23>(code)));
  return hn::IfThenElse(hn::RebindMask(df, hn::Eq(code, hn::Set(di, 0xFF))),
                        hn::Set(df, std::numeric_limits<float>::quiet_NaN()), power);
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
//
// E2M1 weights (NVFP4, MXFP4) take integer dot products. The activation row is quantized once per
// product to int16 with one scale per weight block (QuantizeActivationsT). A weight row's codes
// become int16 values 2·e2m1 by one byte shuffle, and widening multiply-adds (pmaddwd) sum a
// block's products exactly in int32; one float multiply-add per int32 lane then applies the
// block's weight scale times its activation scale. Per 128 weights on AVX-512 that is ~24 vector
// ops where decoding to float32 took ~50.
//
// A vector of V code bytes is one chunk of 2V elements: byte b holds elements 2b (low nibble) and
// 2b+1 (high nibble). After the shuffle, the low and high bytes of each 16-bit lane of the two
// nibble vectors give four int16 vectors whose lane j holds elements 4j, 4j+2 (low nibbles) and
// 4j+1, 4j+3 (high nibbles); the activations are stored in that order (ChunkSlot), and int32 lane
// i sums elements 8i..8i+7 of the chunk: an NVFP4 block spans 2 lanes, an MXFP4 block 4.

constexpr bool kIntegerE2M1 = HWY_TARGET != HWY_SCALAR;

constexpr int64_t kChunkElements = 2 * static_cast<int64_t>(hn::MaxLanes(hn::ScalableTag<uint8_t>()));

// Where element e (< kChunkElements) of a chunk sits in the kernel's activation order.
int64_t ChunkSlot(int64_t e) {
  constexpr int64_t kVectorOfOffset[4] = {0, 2, 1, 3};  // element 4j+o is lane j of vector kVectorOfOffset[o]
  return kVectorOfOffset[e % 4] * (kChunkElements / 4) + e / 4;
}

// x[cols] as int16 q (chunk order; a tail shorter than a chunk stays in element order) and one
// scale per block: q = round(x · 32767 / amax) and scale = 0.5 · amax / 32767, the 0.5 undoing the
// codes' ×2. A block holding NaN or Inf gets a NaN scale, so its products are NaN as they would be.
void QuantizeActivationsT(const float* HWY_RESTRICT x, int64_t cols, int64_t block, int16_t* HWY_RESTRICT q,
                          float* HWY_RESTRICT scales) {
  constexpr int64_t chunk = kChunkElements;
  const int64_t chunked = cols / chunk * chunk;
  for (int64_t b = 0; b < cols / block; ++b) {
    const float* xb = x + b * block;
    float amax = 0;
    bool finite = true;
    for (int64_t k = 0; k < block; ++k) {
      finite = finite && std::isfinite(xb[k]);
      amax = std::max(amax, std::fabs(xb[k]));
    }
    const float inverse = amax > 0 && finite ? 32767.0f / amax : 0.0f;
    scales[b] = finite ? 0.5f * amax / 32767.0f : std::numeric_limits<float>::quiet_NaN();
    for (int64_t k = b * block; k < (b + 1) * block; ++k) {
      const auto v = static_cast<int16_t>(std::clamp(std::nearbyint(x[k] * inverse), -32767.0f, 32767.0f));
      q[k < chunked ? k - k % chunk + ChunkSlot(k % chunk) : k] = v;
    }
  }
}

// row_scales[b] = weight block scale × activation block scale for a row's blocks (padded by one
// vector: the kernel loads a full vector at each chunk's first block). The block scale is
// Nvfp4Divisor's e4m3 · S or e4m3 / global scale (NVFP4), or 2^(e-127) (MXFP4), as in the reference.
void RowScales(const WeightMatrix& w, const uint8_t* HWY_RESTRICT codes, int64_t num_blocks,
               const float* HWY_RESTRICT table, const float* HWY_RESTRICT act_scales, float* HWY_RESTRICT out) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF tensor_scalar = hn::Set(df, w.tensor_scalar);
  int64_t b = 0;
  for (; b + lanes <= num_blocks; b += lanes) {
    const auto code = hn::BitCast(di, hn::PromoteTo(hn::RebindToUnsigned<DF>(), hn::LoadU(du8, codes + b)));
    VF scale;
    if (w.encoding == WeightEncoding::kMxfp4) {
      scale = UE8M0Values(df, code);
    } else if (w.producer == Nvfp4Producer::kModelOpt) {
      scale = hn::Mul(E4M3Values(df, code), tensor_scalar);
    } else {
      scale = hn::Div(E4M3Values(df, code), tensor_scalar);
    }
    hn::StoreU(hn::Mul(scale, hn::LoadU(df, act_scales + b)), df, out + b);
  }
  for (; b < num_blocks; ++b) out[b] = table[codes[b]] * act_scales[b];
}

// Σ_k e2m1(code_k) · x_k · d_block(k), with xq/row_scales from QuantizeActivationsT and RowScales.
float DotE2M1Row(const uint8_t* HWY_RESTRICT codes, const float* HWY_RESTRICT row_scales, int64_t cols,
                 int64_t block, const int16_t* HWY_RESTRICT xq) {
  int64_t c = 0;
  float sum = 0;
  if constexpr (kIntegerE2M1) {
    const hn::ScalableTag<uint8_t> du8;
    const hn::ScalableTag<int8_t> di8;
    const hn::ScalableTag<int16_t> di16;
    const hn::ScalableTag<int32_t> di32;
    const DF df;
    const int64_t lanes16 = static_cast<int64_t>(hn::Lanes(di16));
    constexpr int64_t chunk = kChunkElements;
    const auto table = hn::LoadDup128(di8, kTwiceE2M1);
    const auto nibble = hn::Set(du8, uint8_t{0xF});
    const auto lane = hn::Iota(di32, 0);
    const auto block_of_lane = hn::IndicesFromVec(df, block == 16 ? hn::ShiftRight<1>(lane) : hn::ShiftRight<2>(lane));
    const int64_t blocks_per_chunk = chunk / block;  // no division per chunk: a 64-bit idiv costs more than the rest
    const uint8_t* chunk_codes = codes;
    const float* chunk_scales = row_scales;
    VF acc = hn::Zero(df);
    for (; c + chunk <= cols; c += chunk, chunk_codes += chunk / 2, chunk_scales += blocks_per_chunk) {
      hwy::Prefetch(chunk_codes + kPrefetchBytes);
      const auto bytes = hn::LoadU(du8, chunk_codes);
      const auto lo = hn::BitCast(di16, hn::TableLookupBytes(table, hn::BitCast(di8, hn::And(bytes, nibble))));
      const auto hi = hn::BitCast(di16, hn::TableLookupBytes(table, hn::BitCast(di8, hn::ShiftRight<4>(bytes))));
      const int16_t* a = xq + c;
      auto odd = hn::Zero(di32);
      auto sums = hn::ReorderWidenMulAccumulate(di32, hn::ShiftRight<8>(hn::ShiftLeft<8>(lo)), hn::LoadU(di16, a),
                                                hn::Zero(di32), odd);
      sums = hn::ReorderWidenMulAccumulate(di32, hn::ShiftRight<8>(lo), hn::LoadU(di16, a + lanes16), sums, odd);
      sums = hn::ReorderWidenMulAccumulate(di32, hn::ShiftRight<8>(hn::ShiftLeft<8>(hi)),
                                           hn::LoadU(di16, a + 2 * lanes16), sums, odd);
      sums = hn::ReorderWidenMulAccumulate(di32, hn::ShiftRight<8>(hi), hn::LoadU(di16, a + 3 * lanes16), sums, odd);
      const VF scale = hn::TableLookupLanes(hn::LoadU(df, chunk_scales), block_of_lane);
      acc = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(sums, odd)), scale, acc);
    }
    sum = hn::GetLane(hn::SumOfLanes(df, acc));
  }
  for (; c < cols; c += block) {  // the tail, in element order
    int32_t s = 0;
    for (int64_t k = c; k < c + block; k += 2) {
      s += kTwiceE2M1[LowNibble(codes[k / 2])] * xq[k] + kTwiceE2M1[HighNibble(codes[k / 2])] * xq[k + 1];
    }
    sum += static_cast<float>(s) * row_scales[c / block];
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
    hwy::Prefetch(src + 2 * k + kPrefetchBytes);
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
    case WeightEncoding::kMxfp4: return kIntegerE2M1;
    default: return false;
  }
}

// y[n] for n in [n_begin, n_end) of y = w · x, for an encoding HasMatVec accepts. E2M1 encodings
// read x as QuantizeActivationsT leaves it in `xq`, the others x itself.
void MatVecRowsT(const WeightMatrix& w, const DecodeTables& tables, const float* x, const QuantizedRow& xq,
                 int64_t n_begin, int64_t n_end, float* y) {
  const int64_t cols = w.cols;
  const bool e2m1 = w.encoding == WeightEncoding::kNvfp4 || w.encoding == WeightEncoding::kMxfp4;
  const int64_t block = w.encoding == WeightEncoding::kNvfp4 ? kNvfp4BlockSize : kMxfp4BlockSize;
  std::vector<float> row_scales(e2m1 ? static_cast<size_t>(cols / block + hn::Lanes(DF())) : 0);
  for (int64_t n = n_begin; n < n_end; ++n) {
    switch (w.encoding) {
      case WeightEncoding::kBF16: y[n] = DotHalfRow<hwy::bfloat16_t>(w.values + n * cols * 2, cols, x); break;
      case WeightEncoding::kF16: y[n] = DotHalfRow<hwy::float16_t>(w.values + n * cols * 2, cols, x); break;
      case WeightEncoding::kFp8:
        y[n] = DotFp8Row(w.values + n * cols, cols, w.Fp8Scale(n), x);
        break;
      default:
        RowScales(w, w.block_scales + n * (cols / block), cols / block, tables.block_scale.data(), xq.scales.data(),
                  row_scales.data());
        y[n] = DotE2M1Row(w.values + n * cols / 2, row_scales.data(), cols, block, xq.values.data());
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
HWY_EXPORT(QuantizeActivationsT);
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
    thread_local QuantizedRow caller_xq;
    const QuantizedRow& xq = caller_xq;  // the pool's threads read the caller's, not their own
    if (w.encoding == WeightEncoding::kNvfp4 || w.encoding == WeightEncoding::kMxfp4) {
      const int64_t block = w.encoding == WeightEncoding::kNvfp4 ? kNvfp4BlockSize : kMxfp4BlockSize;
      caller_xq.values.resize(static_cast<size_t>(w.cols));
      caller_xq.scales.resize(static_cast<size_t>(w.cols / block));
      HWY_DYNAMIC_DISPATCH(QuantizeActivationsT)(x, w.cols, block, caller_xq.values.data(), caller_xq.scales.data());
    }
    pool.Run(w.rows, [&](int64_t begin, int64_t end) { HWY_DYNAMIC_DISPATCH(MatVecRowsT)(w, tables, x, xq, begin, end, y); });
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
