// mma_layout.h and ReorderNvfp4ForMma on the CPU (no GPU needed): the register decode against the
// codecs on every 16-bit code pattern and every scale, and the reorder read back with the kernel's
// own index arithmetic (gemm.cu) against DequantizeRef, element for element, exactly.
#include "fp4forge/cuda/mma_layout.h"

#include <cstdint>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fp4forge/base/error.h"
#include "fp4forge/codec/e2m1.h"
#include "fp4forge/codec/e4m3.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/cuda/gemm.h"
#include "fp4forge/format/quantized_tensor.h"

namespace fp4forge::cuda {
namespace {

TEST(MmaLayout, DecodeE2M1ToBF16x2EqualsTheCodec) {
  for (uint32_t low = 0; low < 0x10000u; ++low) {
    const uint32_t w = low | (low * 0x9E37u & 0xFFFFu) << 16;  // every low half, varied high halves
    uint32_t pairs[4];
    DecodeE2M1ToBF16x2(w, pairs);
    for (int i = 0; i < 8; ++i) {
      const uint16_t want = EncodeBF16(DecodeE2M1(static_cast<uint8_t>(w >> (4 * i) & 0xF)));
      const uint16_t got = static_cast<uint16_t>(pairs[i / 2] >> (16 * (i % 2)));
      ASSERT_EQ(got, want) << fmt::format("w {:#010x}, nibble {}", w, i);
    }
  }
}

TEST(MmaLayout, DecodeE4M3ScaleEqualsTheCodec) {
  for (uint32_t code = 0; code <= kE4M3MaxCode; ++code) {
    EXPECT_EQ(DecodeE4M3Scale(code), DecodeE4M3(static_cast<uint8_t>(code))) << code;
    EXPECT_EQ(DecodeBF16(EncodeBF16(DecodeE4M3Scale(code))), DecodeE4M3Scale(code)) << code;  // exact in BF16, as gemm.cu uses it
  }
}

// What lane (g, t) of the kernel multiplies for column 8·n8 + g at step j, k = 128c + 32t + 4j + i
// (i = 0, 1: pair 0 of the step; 2, 3: pair 1), read as gemm.cu reads it: the lane's 16-byte word
// of the tile, its 32-bit word j / 2, pairs 2·(j % 2) and 2·(j % 2) + 1, the scale byte 8g + 2t + j / 4.
TEST(MmaLayout, ReorderedWeightsReadBackAsTheDequantizedTensor) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{{8, 128}, {20, 208}, {64, 64}, {24, 384}, {8, 16}}) {
    std::vector<float> w(static_cast<size_t>(n * k));
    for (float& v : w) v = normal(rng);
    const QuantizedTensor q = QuantizeRef(Nvfp4Spec{}, {.data = w.data(), .rows = n, .cols = k});
    const std::vector<float> deq = DequantizeRef(q);
    const Nvfp4MmaWeights r = ReorderNvfp4ForMma(q.codes, q.block_scales, n, k);
    const int64_t chunks = (k + kMmaChunk - 1) / kMmaChunk, tiles = (n + 7) / 8;
    ASSERT_EQ(std::ssize(r.codes), tiles * chunks * kMmaTileCodeBytes);
    ASSERT_EQ(std::ssize(r.scales), tiles * chunks * kMmaTileScaleBytes);
    for (int64_t tile = 0; tile < tiles * chunks; ++tile) {
      const int64_t n8 = tile / chunks, c = tile % chunks;
      for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        const uint8_t* bytes = &r.codes[(tile * 32 + lane) * 16];
        for (int j = 0; j < 8; ++j) {
          const uint32_t word = bytes[4 * (j / 2)] | bytes[4 * (j / 2) + 1] << 8 | bytes[4 * (j / 2) + 2] << 16 |
                                uint32_t{bytes[4 * (j / 2) + 3]} << 24;
          uint32_t pairs[4];
          DecodeE2M1ToBF16x2(word, pairs);
          const float scale = DecodeE4M3Scale(r.scales[tile * kMmaTileScaleBytes + 8 * g + 2 * t + j / 4]);
          const int64_t col = 8 * n8 + g;
          for (int i = 0; i < 4; ++i) {
            const uint32_t pair = pairs[2 * (j % 2) + i / 2];
            const float got = DecodeBF16(static_cast<uint16_t>(pair >> (16 * (i % 2)))) * (scale * q.tensor_scales[0]);  // DequantizeRef's order
            const int64_t kk = kMmaChunk * c + 32 * t + 4 * j + i;
            const float want = col < n && kk < k ? deq[col * k + kk] : 0.0f;
            ASSERT_EQ(got, want) << fmt::format("[{}, {}]: column {}, k {}", n, k, col, kk);
          }
        }
      }
    }
  }
}

TEST(MmaLayout, ReorderRefusesBadShapes) {
  const std::vector<uint8_t> codes(8 * 40), scales(8 * 5);
  EXPECT_THROW(ReorderNvfp4ForMma(codes, scales, 8, 80 + 8), Error);  // k not a multiple of 16
  EXPECT_THROW(ReorderNvfp4ForMma(codes, scales, 8, 96), Error);      // spans of another shape
  EXPECT_NO_THROW(ReorderNvfp4ForMma(codes, scales, 8, 80));
}

// Refused before anything is queued (kInvalidArgument, not a CUDA failure), so no GPU is needed: the
// kernel reads x and the codes as 16-byte words.
TEST(MmaLayout, ProductRefusesMisalignedPointers) {
  alignas(16) static uint8_t buffer[64];
  const auto code_of = [](const uint8_t* x, const uint8_t* codes, const uint8_t* scales) {
    try {
      Nvfp4GemmOnDevice(x, 1, 16, codes, scales, 1.0f, 8, buffer, nullptr);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kIo;  // queued without complaint
  };
  EXPECT_EQ(code_of(buffer + 4, buffer, buffer), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(buffer, buffer + 8, buffer), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(buffer, buffer, buffer + 1), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace fp4forge::cuda
