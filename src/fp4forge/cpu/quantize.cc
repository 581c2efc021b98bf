// Highway quantization kernels. Each function mirrors a scalar reference in format/ operation by
// operation (same divisions, same rounding, same summation order), which is why the results are
// identical bit for bit; tests/cpu_quantize_test.cc checks this on every compiled target.
//
// NVFP4 and MXFP4 codes are not computed by dividing each element (a vector division costs ~3.4 ns
// per 8 lanes on this project's Zen cores, more than everything else together) but by comparing
// the input's own bit patterns with exact per-scale-code thresholds (e2m1_thresholds.h): for BF16
// that is 16 lanes of 16-bit integer compares per AVX2 vector, no conversion to float at all.
// Napkin math (NVFP4, BF16 in): per 16 elements 32 bytes read, 9 written, and about 30
// instructions (7 compares + 7 subtracts with memory operands, sign, pack, block max), so one core
// runs near 2 instructions per element against a memory bound of ~7 G elements/s.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "fp4forge/cpu/quantize.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/aligned_allocator.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <mutex>
#include <type_traits>
#include <variant>
#include <vector>

#include "fp4forge/base/parallel.h"
#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/codec/ue8m0.h"
#include "fp4forge/cpu/e2m1_thresholds.h"
#include "fp4forge/cpu/quantize.h"
#include "fp4forge/format/fp8.h"

HWY_BEFORE_NAMESPACE();
namespace fp4forge::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 float lanes, so that a vector never spans two NVFP4 blocks.
using DF = hn::CappedTag<float, kNvfp4BlockSize>;
using DI = hn::RebindToSigned<DF>;
using DU8 = hn::Rebind<uint8_t, DI>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// Elements worked on at a time (2 KiB of BF16, 4 KiB as float32: stays in L1), a multiple of every
// block size; sized together with PrefetchChunkAfterNext's distance by measurement (BENCHMARKS.md).
constexpr int64_t kChunk = 1024;

// ---------------------------------------------------------------------------------------------
// Input conversion.

template <typename T>
float ScalarToFloat(T v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    uint16_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    return std::is_same_v<T, hwy::bfloat16_t> ? DecodeBF16(bits) : DecodeF16(bits);
  }
}

// Elements [0, n) of `src` as float32: `src` itself for f32 input, else converted into `buf`.
template <typename T>
const float* AsFloat(const T* HWY_RESTRICT src, int64_t n, float* HWY_RESTRICT buf) {
  if constexpr (std::is_same_v<T, float>) {
    return src;
  } else {
    const DF df;
    const hn::Rebind<T, DF> dt;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dt, src + i)), df, buf + i);
    for (; i < n; ++i) buf[i] = ScalarToFloat(src[i]);
    return buf;
  }
}

// Max over [0, n) of the bits of |x| as integers. For non-negative floats integer order is float
// order, and Inf/NaN patterns (>= 0x7F800000) sort above every finite value: one max finds both
// the amax and any non-finite value.
uint32_t MaxAbsBits(const float* HWY_RESTRICT x, int64_t n) {
  const DF df;
  const DI di;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VI m = hn::Zero(di);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) m = hn::Max(m, hn::BitCast(di, hn::Abs(hn::LoadU(df, x + i))));
  uint32_t result = static_cast<uint32_t>(hn::GetLane(hn::MaxOfLanes(di, m)));
  for (; i < n; ++i) result = std::max(result, std::bit_cast<uint32_t>(x[i]) & 0x7FFFFFFFu);
  return result;
}

// MaxAbsBits over rows, straight on the input's own bit patterns: for 16-bit inputs the largest
// magnitude pattern is found first and converted once (bf16 and f16 patterns of non-negative
// values also order like the values, Inf/NaN above every finite one).
template <typename T>
uint32_t MaxAbsBitsRowsT(const ConstMatrixView& x, int64_t row_begin, int64_t row_end) {
  if constexpr (std::is_same_v<T, float>) {
    uint32_t result = 0;
    for (int64_t r = row_begin; r < row_end; ++r) {
      result = std::max(result, MaxAbsBits(reinterpret_cast<const float*>(x.RowBytes(r)), x.cols));
    }
    return result;
  } else {
    const hn::ScalableTag<uint16_t> du;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(du));
    const auto magnitude = hn::Set(du, uint16_t{0x7FFF});
    auto m = hn::Zero(du);
    uint16_t tail = 0;
    for (int64_t r = row_begin; r < row_end; ++r) {
      const uint16_t* row = reinterpret_cast<const uint16_t*>(x.RowBytes(r));
      int64_t i = 0;
      for (; i + lanes <= x.cols; i += lanes) m = hn::Max(m, hn::And(hn::LoadU(du, row + i), magnitude));
      for (; i < x.cols; ++i) {  // mapped tensors need not be 2-byte aligned: no uint16_t loads
        uint16_t bits;
        std::memcpy(&bits, row + i, 2);
        tail = std::max<uint16_t>(tail, bits & 0x7FFF);
      }
    }
    const uint16_t max_bits = std::max<uint16_t>(tail, hn::GetLane(hn::MaxOfLanes(du, m)));
    const float amax = std::is_same_v<T, hwy::bfloat16_t> ? DecodeBF16(max_bits) : DecodeF16(max_bits);
    return std::bit_cast<uint32_t>(amax);
  }
}

// ---------------------------------------------------------------------------------------------
// Vector codecs, lane for lane equal to codec/.

// E4M3 codes of finite s in [0, 448]; EncodeE4M3 without the sign and NaN cases.
HWY_INLINE VI E4M3Codes(DF df, VF s) {
  const DI di;
  VI r = hn::Sub(hn::BitCast(di, s), hn::Set(di, 120 << 23));
  r = hn::Add(r, hn::Add(hn::Set(di, 0x7FFFF), hn::And(hn::ShiftRight<20>(r), hn::Set(di, 1))));
  const VI normal = hn::ShiftRight<20>(r);
  const VI subnormal = hn::NearestInt(hn::Mul(s, hn::Set(df, 512.0f)));  // cvtps2dq: ties to even
  return hn::IfThenElse(hn::RebindMask(di, hn::Lt(s, hn::Set(df, 0x1p-6f))), subnormal, normal);
}

// Values of E4M3 codes in [0, 0x7E]; DecodeE4M3 without the sign and NaN cases.
HWY_INLINE VF E4M3Values(DF df, VI code) {
  const DI di;
  const VI exponent = hn::ShiftRight<3>(code);
  const VI mantissa = hn::And(code, hn::Set(di, 7));
  const VF normal = hn::BitCast(df, hn::Or(hn::ShiftLeft<23>(hn::Add(exponent, hn::Set(di, 120))),
                                           hn::ShiftLeft<20>(mantissa)));
  const VF subnormal = hn::Mul(hn::ConvertTo(df, mantissa), hn::Set(df, kE4M3MinSubnormal));
  return hn::IfThenElse(hn::RebindMask(df, hn::Eq(exponent, hn::Zero(di))), subnormal, normal);
}

// DecodeE2M1(EncodeE2M1Magnitude(a)) for a >= 0 (not NaN): a rounded to nearest-even on the grid
// {0, 0.5, 1, 1.5, 2, 3, 4, 6}, saturating. The grid's step is 2^(e-1) in [2^e, 2^(e+1)) for
// e = 0, 1, 2 and 0.5 below 1; adding M = 1.5 · 2^(22+e) (1.5 · 2^22 below 1) leaves exactly
// that step as the sum's ulp, so (c + M) - M is the rounding, ties to even, in two exact steps.
HWY_INLINE VF E2M1Magnitudes(DF df, VF a) {
  const DI di;
  const VF c = hn::Min(a, hn::Set(df, kE2M1Max));
  const VF magic_below_two = hn::Set(df, 0x1.8p22f);
  const VF power_of_two = hn::BitCast(df, hn::And(hn::BitCast(di, c), hn::Set(di, 0x7F800000)));  // 2^e
  const VF magic = hn::Max(magic_below_two, hn::Mul(power_of_two, magic_below_two));
  return hn::Sub(hn::Add(c, magic), magic);
}

// Packs the nibbles of 2N elements (c0: elements 0..N-1, c1: N..2N-1) into N bytes, element 2k in
// the low nibble: even lanes of the pair go low, odd lanes high.
HWY_INLINE void StorePackedNibbles(VI c0, VI c1, uint8_t* HWY_RESTRICT out) {
#if HWY_TARGET == HWY_SCALAR  // one lane (the fallback target of GCC < 12.3): no lanes to shuffle
  *out = static_cast<uint8_t>(hn::GetLane(c0) | (hn::GetLane(c1) << 4));
#else
  const DI di;
  const DU8 du8;
  const VI even = hn::ConcatEven(di, c1, c0);
  const VI odd = hn::ConcatOdd(di, c1, c0);
  hn::StoreU(hn::DemoteTo(du8, hn::Or(even, hn::ShiftLeft<4>(odd))), du8, out);
#endif
}

// ---------------------------------------------------------------------------------------------
// Shared block machinery.

// Integer lanes as wide as the input: bit patterns of non-negative floats order like the values.
template <typename T>
using BitsOf = std::conditional_t<sizeof(T) == 2, int16_t, int32_t>;
template <typename T>
using DB = hn::CappedTag<BitsOf<T>, kNvfp4BlockSize>;  // at most 16 lanes: never two blocks

template <typename T>
constexpr DType InputDType() {
  return std::is_same_v<T, float> ? DType::kF32 : std::is_same_v<T, hwy::bfloat16_t> ? DType::kBF16 : DType::kF16;
}

// E2M1Thresholds for every scale code of a tensor, each threshold already broadcast to a vector so
// that the compares take it straight from memory. Row `code`: 7 magnitude thresholds, then the sign.
template <typename T>
class ThresholdTable {
 public:
  // divisor(code): the float32 every element of a block with this scale code is divided by.
  template <typename DivisorFn>
  ThresholdTable(int num_codes, DivisorFn&& divisor) : lanes_(hn::Lanes(DB<T>())) {
    const DB<T> db;
    rows_ = hwy::AllocateAligned<BitsOf<T>>(static_cast<size_t>(num_codes) * 8 * lanes_);
    for (int code = 0; code < num_codes; ++code) {
      const float d = divisor(code);
      std::array<int32_t, 8> t;
      t.fill(std::numeric_limits<BitsOf<T>>::max());  // codes no block uses: never passed
      if (d > 0.0f && d < std::numeric_limits<float>::infinity()) t = E2M1Thresholds(d, InputDType<T>());
      for (int i = 0; i < 8; ++i) hn::Store(hn::Set(db, static_cast<BitsOf<T>>(t[i])), db, MutableRow(code) + i * lanes_);
    }
  }
  const BitsOf<T>* Row(uint8_t code) const { return rows_.get() + static_cast<size_t>(code) * 8 * lanes_; }

 private:
  BitsOf<T>* MutableRow(int code) { return rows_.get() + static_cast<size_t>(code) * 8 * lanes_; }
  size_t lanes_;
  hwy::AlignedFreeUniquePtr<BitsOf<T>[]> rows_;
};

// amax[b] = max |x| over block b, as a value of T (the max of the magnitude bit patterns).
template <typename T, int kBlockSize>
void BlockMaxAbsOneByOne(const T* HWY_RESTRICT x, int64_t num_blocks, T* HWY_RESTRICT amax) {
  const hn::RebindToUnsigned<DB<T>> du;
  using Bits = hn::TFromD<decltype(du)>;
  const auto magnitude = hn::Set(du, static_cast<Bits>(std::numeric_limits<Bits>::max() >> 1));
  const Bits* bits = reinterpret_cast<const Bits*>(x);
  for (int64_t b = 0; b < num_blocks; ++b) {
    auto m = hn::Zero(du);
    for (size_t k = 0; k < kBlockSize; k += hn::Lanes(du)) m = hn::Max(m, hn::And(hn::LoadU(du, bits + b * kBlockSize + k), magnitude));
    const Bits max_bits = hn::GetLane(hn::MaxOfLanes(du, m));
    std::memcpy(&amax[b], &max_bits, sizeof(Bits));
  }
}

template <typename T, int kBlockSize>
void BlockMaxAbs(const T* HWY_RESTRICT x, int64_t num_blocks, T* HWY_RESTRICT amax) {
#if HWY_TARGET == HWY_SCALAR
  BlockMaxAbsOneByOne<T, kBlockSize>(x, num_blocks, amax);
#else
  if constexpr (sizeof(T) != 2) {
    BlockMaxAbsOneByOne<T, kBlockSize>(x, num_blocks, amax);
  } else {
    // 16-bit inputs, eight blocks at a time without a horizontal reduction per block: each block's
    // 128-bit pieces are maxed into 8 partial maxima, then the eight blocks' vectors are reduced
    // together by interleaving 16-, 32- and 64-bit units (three max steps leave lane i = block i).
    const hn::Full128<uint16_t> d;
    const hn::Full128<uint32_t> d32;
    const hn::Full128<uint64_t> d64;
    using V = hn::Vec<decltype(d)>;
    const V magnitude = hn::Set(d, uint16_t{0x7FFF});
    const uint16_t* bits = reinterpret_cast<const uint16_t*>(x);
    auto merge32 = [&](V a, V b) {
      return hn::Max(hn::BitCast(d, hn::InterleaveLower(d32, hn::BitCast(d32, a), hn::BitCast(d32, b))),
                     hn::BitCast(d, hn::InterleaveUpper(d32, hn::BitCast(d32, a), hn::BitCast(d32, b))));
    };
    int64_t b = 0;
    for (; b + 8 <= num_blocks; b += 8) {
      V r[8];
      for (int i = 0; i < 8; ++i) {
        const uint16_t* block = bits + (b + i) * kBlockSize;
        r[i] = hn::And(hn::LoadU(d, block), magnitude);
        for (int k = 8; k < kBlockSize; k += 8) r[i] = hn::Max(r[i], hn::And(hn::LoadU(d, block + k), magnitude));
      }
      V pairs[4];  // lanes alternate blocks 2i and 2i+1, four partial maxima each
      for (int i = 0; i < 4; ++i) {
        pairs[i] = hn::Max(hn::InterleaveLower(d, r[2 * i], r[2 * i + 1]), hn::InterleaveUpper(d, r[2 * i], r[2 * i + 1]));
      }
      const V quads0 = merge32(pairs[0], pairs[1]), quads1 = merge32(pairs[2], pairs[3]);  // two partials each
      const V result = hn::Max(hn::BitCast(d, hn::InterleaveLower(d64, hn::BitCast(d64, quads0), hn::BitCast(d64, quads1))),
                               hn::BitCast(d, hn::InterleaveUpper(d64, hn::BitCast(d64, quads0), hn::BitCast(d64, quads1))));
      hn::StoreU(result, d, reinterpret_cast<uint16_t*>(amax + b));
    }
    BlockMaxAbsOneByOne<T, kBlockSize>(x + b * kBlockSize, num_blocks - b, amax + b);
  }
#endif
}

// Stores the codes of N lanes (element 2k in the low nibble) as N/2 bytes. A wide lane holds the
// pair (even, odd): for 16-bit lanes one multiply-add of the pair with (1, 16) forms the byte;
// wider lanes shift the odd code down to bits 4..7.
template <class D>
HWY_INLINE void StoreNibblePairs(D d, hn::Vec<D> code, uint8_t* HWY_RESTRICT out) {
  if constexpr (sizeof(hn::TFromD<D>) == 2) {
    const hn::RepartitionToWide<D> d32;
    const hn::RebindToUnsigned<decltype(d32)> du32;
    auto unused = hn::Zero(d32);
    const auto weights = hn::BitCast(d, hn::Set(d32, 0x00100001));  // (1, 16): the even lane is low
    const auto bytes = hn::RearrangeToOddPlusEven(hn::ReorderWidenMulAccumulate(d32, code, weights, hn::Zero(d32), unused), unused);
    const hn::Rebind<uint8_t, decltype(d32)> du8;
    hn::StoreU(hn::U8FromU32(hn::BitCast(du32, bytes)), du8, out);
  } else {
    const hn::RepartitionToWide<hn::RebindToUnsigned<D>> dw;
    const hn::Rebind<uint8_t, decltype(dw)> du8;
    const auto pair = hn::BitCast(dw, code);
    hn::StoreU(hn::TruncateTo(du8, hn::Or(pair, hn::ShiftRight<8 * sizeof(hn::TFromD<D>) - 4>(pair))), du8, out);
  }
}

// Packed E2M1 codes of blocks whose scale codes are known: element i of block b is encoded as
// EncodeE2M1(x_i / d(scales[b])), computed as integer compares with the table's thresholds.
template <typename T, int kBlockSize>
void EncodeE2M1Blocks(const T* HWY_RESTRICT x, int64_t num_blocks, const uint8_t* HWY_RESTRICT scales,
                      const ThresholdTable<T>& table, uint8_t* HWY_RESTRICT codes) {
  using Bits = BitsOf<T>;
  const Bits* bits = reinterpret_cast<const Bits*>(x);
#if HWY_TARGET == HWY_SCALAR  // one lane: no pairs of lanes to pack, so pack pairs of elements
  for (int64_t i = 0; i < num_blocks * kBlockSize; i += 2) {
    const Bits* t = table.Row(scales[i / kBlockSize]);
    auto encode = [&](Bits v) {
      const Bits magnitude = v & std::numeric_limits<Bits>::max();
      int code = 0;
      for (int k = 0; k < kE2M1MagnitudeThresholds; ++k) code += magnitude > t[k];
      return static_cast<uint8_t>(code | (v < 0 && magnitude > t[7] ? 8 : 0));
    };
    codes[i / 2] = PackNibbles(encode(bits[i]), encode(bits[i + 1]));
  }
#else
  const DB<T> db;
  const size_t lanes = hn::Lanes(db);
  const auto magnitude_mask = hn::Set(db, std::numeric_limits<Bits>::max());
  const auto sign_bit = hn::Set(db, std::numeric_limits<Bits>::min());
  const auto eight = hn::Set(db, 8);
  for (int64_t b = 0; b < num_blocks; ++b) {
    const Bits* t = table.Row(scales[b]);
    for (size_t k = 0; k < kBlockSize; k += lanes) {
      const int64_t i = b * kBlockSize + static_cast<int64_t>(k);
      const auto v = hn::LoadU(db, bits + i);
      const auto magnitude = hn::And(v, magnitude_mask);
      // Negative x have the sign bit set; flipping it makes them positive and the rest negative.
      auto code = hn::And(hn::VecFromMask(db, hn::Gt(hn::Xor(v, sign_bit), hn::Load(db, t + 7 * lanes))), eight);
      for (int j = 0; j < kE2M1MagnitudeThresholds; ++j) {  // each passed threshold adds one (true = -1)
        code = hn::Sub(code, hn::VecFromMask(db, hn::Gt(magnitude, hn::Load(db, t + j * lanes))));
      }
      StoreNibblePairs(db, code, codes + i / 2);
    }
  }
#endif
}

// Asks for the chunk after next (x + 2n: rows are contiguous) while x[0, n) is worked on; the
// kernels' first pass over a chunk otherwise waits for memory. 1024-element chunks with this
// distance run the NVFP4 amax kernel 15% faster on Zen 1 and 18-40% on a Xeon than 2048-element
// chunks with the next one prefetched.
template <typename T>
void PrefetchChunkAfterNext(const T* x, int64_t n) {
  const uint8_t* next = reinterpret_cast<const uint8_t*>(x + 2 * n);
  for (int64_t i = 0; i < n * static_cast<int64_t>(sizeof(T)); i += 64) hwy::Prefetch(next + i);
}

// Row-chunk drivers: hand `chunk_fn(row, col, values, n)` each chunk of each row, as stored
// (ForEachRawChunk) or converted to float32 (ForEachChunk); chunks are multiples of every block size.
template <typename T, typename ChunkFn>
void ForEachRawChunk(const ConstMatrixView& x, int64_t row_begin, int64_t row_end, ChunkFn&& chunk_fn) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* row = reinterpret_cast<const T*>(x.RowBytes(r));
    for (int64_t c = 0; c < x.cols; c += kChunk) {
      const int64_t n = std::min(kChunk, x.cols - c);
      PrefetchChunkAfterNext(row + c, n);
      chunk_fn(r, c, row + c, n);
    }
  }
}

template <typename T, typename ChunkFn>
void ForEachChunk(const ConstMatrixView& x, int64_t row_begin, int64_t row_end, ChunkFn&& chunk_fn) {
  HWY_ALIGN float buf[kChunk];
  ForEachRawChunk<T>(x, row_begin, row_end, [&](int64_t r, int64_t c, const T* values, int64_t n) {
    chunk_fn(r, c, AsFloat(values, n, buf), n);
  });
}

// Scale codes of blocks from their amax (as T): looked up by bit pattern in `table`
// (BlockScaleCodeTable, built once per tensor) where there is one, else computed block by block.
struct ScaleCodesByAmax {
  const QuantizedTensor& q;
  const std::vector<uint8_t>& table;

  template <typename T>
  void operator()(const T* HWY_RESTRICT block_amax, int64_t num_blocks, uint8_t* HWY_RESTRICT codes) const {
    if constexpr (sizeof(T) == 2) {
      if (!table.empty()) {
        const uint8_t* HWY_RESTRICT t = table.data();
        for (int64_t b = 0; b < num_blocks; ++b) codes[b] = t[std::bit_cast<uint16_t>(block_amax[b])];
        return;
      }
    }
    for (int64_t b = 0; b < num_blocks; ++b) codes[b] = BlockScaleCode(q, InputDType<T>(), ScalarToFloat(block_amax[b]));
  }
};

// A chunk of blocks: each block's scale code from its amax, then refine(x, block_amax, num_blocks,
// scales) (the NVFP4 search rules; a no-op otherwise), then the codes by the table's thresholds.
template <typename T, int kBlockSize, typename RefineFn>
void QuantizeChunk(const T* HWY_RESTRICT x, int64_t n, const ScaleCodesByAmax& amax_codes, RefineFn&& refine,
                   const ThresholdTable<T>& table, uint8_t* HWY_RESTRICT codes, uint8_t* HWY_RESTRICT scales) {
  const int64_t num_blocks = n / kBlockSize;
  HWY_ALIGN T block_amax[kChunk / kBlockSize];
  BlockMaxAbs<T, kBlockSize>(x, num_blocks, block_amax);
  amax_codes(block_amax, num_blocks, scales);
  refine(x, block_amax, num_blocks, scales);
  EncodeE2M1Blocks<T, kBlockSize>(x, num_blocks, scales, table, codes);
}

constexpr auto kKeepAmaxCodes = [](const auto*, const auto*, int64_t, uint8_t*) {};

// ---------------------------------------------------------------------------------------------
// NVFP4.

// Nvfp4AmaxScaleCode for a vector of block amaxes; target_times_scale = fl(target · S).
HWY_INLINE VI AmaxScaleCodes(DF df, VF block_amax, float target_times_scale) {
  VF s = hn::Div(block_amax, hn::Set(df, target_times_scale));
  s = hn::IfThenElse(hn::Eq(s, hn::Zero(df)), hn::Set(df, 1.0f), s);
  s = hn::Min(hn::Max(s, hn::Set(df, kE4M3MinSubnormal)), hn::Set(df, kE4M3Max));
  return E4M3Codes(df, s);
}

// Nvfp4BlockSquaredError with one block per lane; columns[k * N + lane] = |element k| of that block.
HWY_INLINE VF SquaredErrors(DF df, const float* HWY_RESTRICT columns, VI code, float tensor_scale) {
  const size_t lanes = hn::Lanes(df);
  const VF d = hn::Mul(E4M3Values(df, code), hn::Set(df, tensor_scale));
  const VF r = hn::Min(hn::Div(hn::Set(df, 1.0f), d), hn::Set(df, std::numeric_limits<float>::max()));
  VF sse = hn::Zero(df);
  for (int k = 0; k < kNvfp4BlockSize; ++k) {
    const VF q = hn::Mul(hn::Load(df, columns + k * lanes), r);
    const VF err = hn::Sub(E2M1Magnitudes(df, q), q);
    sse = hn::Add(sse, hn::Mul(err, err));
  }
  return hn::Mul(sse, hn::Mul(d, d));
}

// Nvfp4SelectScaleCode for N consecutive blocks at once (lane = block), given their amax codes; the
// chosen codes' squared errors into best_sse.
VI SearchScaleCodes(DF df, const float* HWY_RESTRICT blocks, VF block_amax, VI amax_code, Nvfp4ScaleRule rule,
                    float tensor_scale, VF& best_sse) {
  const DI di;
  const size_t lanes = hn::Lanes(df);
  HWY_ALIGN float columns[kNvfp4BlockSize * kNvfp4BlockSize];
  const VI block_starts = hn::ShiftLeft<4>(hn::Iota(di, 0));  // lane * 16
  for (int k = 0; k < kNvfp4BlockSize; ++k) {
    hn::Store(hn::Abs(hn::GatherIndex(df, blocks + k, block_starts)), df, columns + k * lanes);
  }
  VI best = amax_code;
  best_sse = SquaredErrors(df, columns, best, tensor_scale);
  auto consider = [&](VI code) {
    const VF sse = SquaredErrors(df, columns, code, tensor_scale);
    const auto better = hn::Lt(sse, best_sse);  // strictly: ties keep the earlier candidate
    best = hn::IfThenElse(hn::RebindMask(di, better), code, best);
    best_sse = hn::IfThenElse(better, sse, best_sse);
  };
  switch (rule) {
    case Nvfp4ScaleRule::kAmax:
      break;
    case Nvfp4ScaleRule::kMse:
    case Nvfp4ScaleRule::kSearch:
      for (int offset = -kNvfp4MseCodesBelow; offset <= kNvfp4MseCodesAbove; ++offset) {  // reference order
        if (offset == 0) continue;
        consider(hn::Min(hn::Max(hn::Add(amax_code, hn::Set(di, offset)), hn::Set(di, 1)), hn::Set(di, kE4M3MaxCode)));
      }
      break;
    case Nvfp4ScaleRule::kMseExhaustive:
      for (int code = 1; code <= kE4M3MaxCode; ++code) consider(hn::Set(di, code));
      break;
    case Nvfp4ScaleRule::kFourOverSix:
      consider(AmaxScaleCodes(df, block_amax, 4.0f * tensor_scale));
      break;
  }
  return best;
}

// Replaces the amax codes in scales[0, num_blocks) with the choice of a search rule.
template <typename T>
void SearchNvfp4ScaleCodes(const T* HWY_RESTRICT x, const T* HWY_RESTRICT block_amax, int64_t num_blocks,
                           Nvfp4ScaleRule rule, float tensor_scale, uint8_t* HWY_RESTRICT scales) {
  const DF df;
  const DI di;
  const DU8 du8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  HWY_ALIGN float amax_buf[kChunk / kNvfp4BlockSize];
  HWY_ALIGN float x_buf[kChunk];
  const float* amax = AsFloat(block_amax, num_blocks, amax_buf);
  const float* xf = AsFloat(x, num_blocks * kNvfp4BlockSize, x_buf);
  int64_t b = 0;
  for (; b + lanes <= num_blocks; b += lanes) {  // lane = block
    const VI amax_code = hn::PromoteTo(di, hn::LoadU(du8, scales + b));
    VF sse;
    const VI code = SearchScaleCodes(df, xf + b * kNvfp4BlockSize, hn::LoadU(df, amax + b), amax_code, rule, tensor_scale, sse);
    hn::StoreU(hn::DemoteTo(du8, code), du8, scales + b);
  }
  for (; b < num_blocks; ++b) scales[b] = Nvfp4SelectScaleCode(xf + b * kNvfp4BlockSize, rule, tensor_scale);
}

// Nvfp4RowSearchError of row `row` at each of the search rule's scales: errors[i] for scales[i].
template <typename T>
void RowSearchErrorsT(const ConstMatrixView& x, int64_t row, const std::vector<float>& scales, double* HWY_RESTRICT errors) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t num_blocks = x.cols / kNvfp4BlockSize;
  std::vector<float> values(static_cast<size_t>(x.cols)), block_amax(static_cast<size_t>(num_blocks));
  LoadRowAsFloat(x, row, values.data());
  BlockMaxAbsOneByOne<float, kNvfp4BlockSize>(values.data(), num_blocks, block_amax.data());
  HWY_ALIGN float sse[kNvfp4BlockSize];
  for (size_t i = 0; i < scales.size(); ++i) {
    const float s = scales[i];
    double sum = 0.0;  // in block order, as the reference
    int64_t b = 0;
    for (; b + lanes <= num_blocks; b += lanes) {
      const VF amax = hn::LoadU(df, block_amax.data() + b);
      VF best;
      SearchScaleCodes(df, values.data() + b * kNvfp4BlockSize, amax, AmaxScaleCodes(df, amax, 6.0f * s),
                       Nvfp4ScaleRule::kMse, s, best);
      hn::Store(best, df, sse);
      for (int64_t k = 0; k < lanes; ++k) sum += sse[k];
    }
    for (; b < num_blocks; ++b) sum += Nvfp4RowSearchError(values.data() + b * kNvfp4BlockSize, kNvfp4BlockSize, s);
    errors[i] = sum;
  }
}

// ---------------------------------------------------------------------------------------------
// INT4, FP8.

void QuantizeInt4Chunk(const float* HWY_RESTRICT x, int64_t n, const Int4GroupParams& params,
                       uint8_t* HWY_RESTRICT codes, uint16_t* HWY_RESTRICT scales, uint8_t* HWY_RESTRICT zero_points) {
  const DF df;
  const DI di;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int g = params.group_size;  // >= 32 >= 2 * lanes
  for (int64_t group = 0; group < n / g; ++group) {
    const float* v = x + group * g;
    VF lo = hn::Zero(df), hi = hn::Zero(df);
    for (int k = 0; k < g; k += lanes) {
      const VF xv = hn::LoadU(df, v + k);
      lo = hn::Min(lo, xv);
      hi = hn::Max(hi, xv);
    }
    const Int4GroupScale s = ComputeInt4GroupScale(hn::GetLane(hn::MinOfLanes(df, lo)),
                                                   hn::GetLane(hn::MaxOfLanes(df, hi)), params);
    scales[group] = s.scale_bits;
    if (params.asymmetric) zero_points[group] = static_cast<uint8_t>(s.zero_point);
    const VF scale = hn::Set(df, s.scale);
    const VI zero_point = hn::Set(di, s.zero_point);
    auto encode = [&](const float* p) {
      const VI q = hn::Add(hn::NearestInt(hn::Div(hn::LoadU(df, p), scale)), zero_point);
      return hn::Min(hn::Max(q, hn::Zero(di)), hn::Set(di, 15));
    };
    for (int k = 0; k < g; k += 2 * static_cast<int>(lanes)) {
      StorePackedNibbles(encode(v + k), encode(v + k + lanes), codes + (group * g + k) / 2);
    }
  }
}

void QuantizeFp8Chunk(const float* HWY_RESTRICT x, int64_t n, float scale, uint8_t* HWY_RESTRICT codes) {
  const DF df;
  const DI di;
  const DU8 du8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VF q = hn::Min(hn::Max(hn::Div(hn::LoadU(df, x + i), hn::Set(df, scale)), hn::Set(df, -kE4M3Max)),
                         hn::Set(df, kE4M3Max));
    const VI sign = hn::And(hn::ShiftRight<24>(hn::BitCast(di, q)), hn::Set(di, 0x80));
    hn::StoreU(hn::DemoteTo(du8, hn::Or(E4M3Codes(df, hn::Abs(q)), sign)), du8, codes + i);
  }
  for (; i < n; ++i) codes[i] = EncodeE4M3(std::clamp(x[i] / scale, -kE4M3Max, kE4M3Max));
}

// ---------------------------------------------------------------------------------------------
// Entry points (one per tensor and thread range; the input type is chosen here, once).

template <typename T>
void QuantizeRowsT(const ConstMatrixView& x, int64_t row_begin, int64_t row_end,
                   const std::vector<uint8_t>& scale_code_table, QuantizedTensor& q) {
  const int64_t cols = x.cols;
  const ScaleCodesByAmax amax_codes{q, scale_code_table};
  std::visit(
      [&](const auto& spec) {
        using Spec = std::decay_t<decltype(spec)>;
        if constexpr (std::is_same_v<Spec, Nvfp4Spec>) {
          const float s = q.tensor_scales[0];
          const ThresholdTable<T> table(kE4M3MaxCode + 1, [&](int code) {
            return Nvfp4Divisor(static_cast<uint8_t>(code), s, spec.producer);
          });
          const auto search = [&](const T* v, const T* block_amax, int64_t num_blocks, uint8_t* scales) {
            SearchNvfp4ScaleCodes(v, block_amax, num_blocks, spec.rule, s, scales);
          };
          ForEachRawChunk<T>(x, row_begin, row_end, [&](int64_t r, int64_t c, const T* v, int64_t n) {
            const int64_t e = r * cols + c;  // element index of the chunk's first value
            uint8_t* codes = &q.codes[e / 2];
            uint8_t* scales = &q.block_scales[e / kNvfp4BlockSize];
            if (spec.rule == Nvfp4ScaleRule::kAmax) {
              QuantizeChunk<T, kNvfp4BlockSize>(v, n, amax_codes, kKeepAmaxCodes, table, codes, scales);
            } else {
              QuantizeChunk<T, kNvfp4BlockSize>(v, n, amax_codes, search, table, codes, scales);
            }
          });
        } else if constexpr (std::is_same_v<Spec, Mxfp4Spec>) {
          const ThresholdTable<T> table(255, [](int code) { return DecodeUE8M0(static_cast<uint8_t>(code)); });
          ForEachRawChunk<T>(x, row_begin, row_end, [&](int64_t r, int64_t c, const T* v, int64_t n) {
            const int64_t e = r * cols + c;
            QuantizeChunk<T, kMxfp4BlockSize>(v, n, amax_codes, kKeepAmaxCodes, table, &q.codes[e / 2],
                                              &q.block_scales[e / kMxfp4BlockSize]);
          });
        } else {
          ForEachChunk<T>(x, row_begin, row_end, [&](int64_t r, int64_t c, const float* v, int64_t n) {
            const int64_t e = r * cols + c;
            if constexpr (std::is_same_v<Spec, Int4Spec>) {
              const int g = spec.params.group_size;
              QuantizeInt4Chunk(v, n, spec.params, &q.codes[e / 2], &q.group_scales[e / g],
                                spec.params.asymmetric ? &q.zero_points[e / g] : nullptr);
            } else {
              QuantizeFp8Chunk(v, n, q.tensor_scales[spec.per_channel ? r : 0], &q.codes[e]);
            }
          });
        }
      },
      q.spec);
}

template <typename T>
void SetRowScalesT(const ConstMatrixView& x, int64_t row_begin, int64_t row_end, QuantizedTensor& q) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    q.tensor_scales[r] = Fp8Scale(std::bit_cast<float>(MaxAbsBitsRowsT<T>(x, r, r + 1)));
  }
}

// Calls fn<T>() with T the C++ type of the view's dtype.
template <typename Fn>
auto WithInputType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kBF16: return fn.template operator()<hwy::bfloat16_t>();
    case DType::kF16: return fn.template operator()<hwy::float16_t>();
    case DType::kF32: break;
  }
  return fn.template operator()<float>();
}

uint32_t MaxAbsBitsRows(const ConstMatrixView& x, int64_t row_begin, int64_t row_end) {
  return WithInputType(x.dtype, [&]<typename T>() { return MaxAbsBitsRowsT<T>(x, row_begin, row_end); });
}

void QuantizeRows(const ConstMatrixView& x, int64_t row_begin, int64_t row_end,
                  const std::vector<uint8_t>& scale_code_table, QuantizedTensor& q) {
  WithInputType(x.dtype, [&]<typename T>() {
    const auto* fp8 = std::get_if<Fp8Spec>(&q.spec);
    if (fp8 && fp8->per_channel) SetRowScalesT<T>(x, row_begin, row_end, q);
    QuantizeRowsT<T>(x, row_begin, row_end, scale_code_table, q);
  });
}

void RowSearchErrors(const ConstMatrixView& x, int64_t row, const std::vector<float>& scales, double* errors) {
  WithInputType(x.dtype, [&]<typename T>() { RowSearchErrorsT<T>(x, row, scales, errors); });
}

}  // namespace HWY_NAMESPACE
}  // namespace fp4forge::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fp4forge::cpu {

HWY_EXPORT(MaxAbsBitsRows);
HWY_EXPORT(QuantizeRows);
HWY_EXPORT(RowSearchErrors);

AmaxResult TensorAmax(const ConstMatrixView& x, int threads) {
  std::mutex mutex;
  uint32_t max_bits = 0;
  ParallelFor(x.rows, ResolveThreads(threads), [&](int64_t begin, int64_t end) {
    const uint32_t bits = HWY_DYNAMIC_DISPATCH(MaxAbsBitsRows)(x, begin, end);
    std::lock_guard<std::mutex> lock(mutex);
    max_bits = std::max(max_bits, bits);
  });
  return {.amax = std::bit_cast<float>(max_bits), .all_finite = max_bits < 0x7F800000u};
}

QuantizedTensor Quantize(const QuantSpec& spec, const ConstMatrixView& x, float scale_amax, int threads,
                         std::optional<float> tensor_scale) {
  QuantizedTensor q;
  Quantize(spec, x, scale_amax, threads, q, tensor_scale);
  return q;
}

int64_t Nvfp4SearchRowStride(std::span<const ConstMatrixView> members) {
  int64_t group_blocks = 0;
  for (const ConstMatrixView& m : members) group_blocks += m.rows * (m.cols / kNvfp4BlockSize);
  return fp4forge::Nvfp4SearchRowStride(group_blocks);
}

float SearchNvfp4TensorScale(std::span<const ConstMatrixView> members, float group_amax, int64_t stride, int threads) {
  const std::vector<float> scales = Nvfp4SearchScales(group_amax);
  std::vector<double> errors(scales.size(), 0.0), row_errors;
  for (const ConstMatrixView& m : members) {
    const int64_t sampled = (m.rows + stride - 1) / stride;
    row_errors.assign(static_cast<size_t>(sampled) * scales.size(), 0.0);
    ParallelFor(sampled, ResolveThreads(threads), [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        HWY_DYNAMIC_DISPATCH(RowSearchErrors)(m, j * stride, scales, &row_errors[static_cast<size_t>(j) * scales.size()]);
      }
    });
    for (int64_t j = 0; j < sampled; ++j) {  // member by member, row by row, as the reference
      for (size_t i = 0; i < scales.size(); ++i) errors[i] += row_errors[static_cast<size_t>(j) * scales.size() + i];
    }
  }
  return scales[Nvfp4PickSearchScale(errors)];
}

void Quantize(const QuantSpec& spec, const ConstMatrixView& x, float scale_amax, int threads, QuantizedTensor& out,
              std::optional<float> tensor_scale) {
  ResizeQuantized(out, spec, x.rows, x.cols);
  SetTensorScale(out, scale_amax, x.dtype);
  if (const auto* nvfp4 = std::get_if<Nvfp4Spec>(&spec); nvfp4 && nvfp4->rule == Nvfp4ScaleRule::kSearch) {
    const ConstMatrixView self[] = {x};
    out.tensor_scales[0] = tensor_scale ? *tensor_scale : SearchNvfp4TensorScale(self, scale_amax, Nvfp4SearchRowStride(self), threads);
  }
  // Built here, once per tensor in baseline code: built per thread inside the AVX-512 target (32K
  // calls into format/) it cost ~60 ms per tensor on the device's Xeon (BENCHMARKS.md, session 5).
  const std::vector<uint8_t> scale_codes = BlockScaleCodeTable(out, x.dtype);
  ParallelFor(x.rows, ResolveThreads(threads), [&](int64_t begin, int64_t end) {
    HWY_DYNAMIC_DISPATCH(QuantizeRows)(x, begin, end, scale_codes, out);
  });
}

std::vector<float> Dequantize(const QuantizedTensor& q, int threads) {
  std::vector<float> out(static_cast<size_t>(q.rows * q.cols));
  ParallelFor(q.rows, ResolveThreads(threads),
              [&](int64_t begin, int64_t end) { DequantizeRowsRef(q, begin, end, out.data()); });
  return out;
}

}  // namespace fp4forge::cpu
#endif  // HWY_ONCE
