// Issue 16's GPU figures. 1. Quantization throughput on a BF16 28672 x 8192 weight (470 MB, far past the L2),
// against a device-to-device copy of the same bytes measured in the same run; every GPU result is
// also checked equal, bit for bit, to the CPU kernels (cpu::Quantize, themselves tested equal to
// the scalar reference). Bandwidth counts the bytes a kernel must move: input read once, codes and
// scales written once ("amax + kernel" counts the same bytes for both passes' time).
//
// 2. The W4A16 NVFP4 product (cuda/gemm.h, weights reordered once on the host) at M = 1, 16, 64,
// 1024 on the four shapes, weights rotated among enough copies to pass the L2; cuBLAS BF16 beside it comes from torch_gemm_gpu.py.
//
// Usage: cuda_bench
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "fp4forge/codec/half.h"
#include "fp4forge/cpu/quantize.h"
#include "fp4forge/cuda/gemm.h"
#include "fp4forge/cuda/quantize.h"

namespace fp4forge {
namespace {

void Check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    fmt::print(stderr, "{}: {}\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

// Median time of `fn` over 30 runs after 5 warm-up runs, by CUDA events, in seconds.
double MedianSeconds(const std::function<void()>& fn) {
  cudaEvent_t start, stop;
  Check(cudaEventCreate(&start), "cudaEventCreate");
  Check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < 5; ++i) fn();
  std::vector<float> ms;
  for (int i = 0; i < 30; ++i) {
    Check(cudaEventRecord(start), "cudaEventRecord");
    fn();
    Check(cudaEventRecord(stop), "cudaEventRecord");
    Check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float t = 0;
    Check(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2] / 1e3;
}

// Weight-like BF16 values: uniform magnitudes over a range of exponents per row, both signs.
std::vector<uint16_t> MakeWeights(int64_t rows, int64_t cols) {
  std::vector<uint16_t> x(static_cast<size_t>(rows * cols));
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (int64_t r = 0; r < rows; ++r) {
    const float row_scale = std::ldexp(1.0f, static_cast<int>(r % 9) - 12);
    for (int64_t c = 0; c < cols; ++c) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      const float u = static_cast<float>(state >> 40) / 16777216.0f;  // [0, 1)
      const float v = (u - 0.5f) * row_scale * (1.0f + static_cast<float>((state >> 8) & 7));
      x[static_cast<size_t>(r * cols + c)] = EncodeBF16(v);
    }
  }
  return x;
}

// Our W4A16 product on each shape and M: median time, weight bytes per second, TFLOP/s.
void GemmTable() {
  fmt::print("\n| W4A16 NVFP4 product | M | median time | weight stream | TFLOP/s |\n|---|---|---|---|---|\n");
  for (const auto& [n, k] : std::vector<std::pair<int64_t, int64_t>>{{28672, 8192}, {8192, 28672}, {14336, 4096}, {4096, 14336}}) {
    const int64_t weight_bytes = n * k / 2 + n * k / 16;
    const int copies = static_cast<int>(std::max<int64_t>(1, (int64_t{256} << 20) / weight_bytes + 1));
    const std::vector<uint16_t> w = MakeWeights(n, k);
    void* dw = nullptr;
    Check(cudaMalloc(&dw, w.size() * 2), "cudaMalloc");
    Check(cudaMemcpy(dw, w.data(), w.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    const float s = Nvfp4TensorScale(cpu::TensorAmax({.data = w.data(), .dtype = DType::kBF16, .rows = n, .cols = k}, 0).amax,
                                     Nvfp4ScaleRule::kAmax);
    uint8_t *quantized_codes = nullptr, *quantized_scales = nullptr;
    Check(cudaMalloc(&quantized_codes, n * k / 2), "cudaMalloc");
    Check(cudaMalloc(&quantized_scales, n * k / 16), "cudaMalloc");
    cuda::QuantizeNvfp4OnDevice(dw, DType::kBF16, n, k, Nvfp4ScaleRule::kAmax, s, quantized_codes, quantized_scales, nullptr);
    std::vector<uint8_t> host_codes(n * k / 2), host_scales(n * k / 16);
    Check(cudaMemcpy(host_codes.data(), quantized_codes, host_codes.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
    Check(cudaMemcpy(host_scales.data(), quantized_scales, host_scales.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
    for (void* p : {dw, static_cast<void*>(quantized_codes), static_cast<void*>(quantized_scales)}) Check(cudaFree(p), "cudaFree");
    const cuda::Nvfp4MmaWeights reordered = cuda::ReorderNvfp4ForMma(host_codes, host_scales, n, k);
    std::vector<uint8_t*> codes(copies), scales(copies);
    for (int c = 0; c < copies; ++c) {
      Check(cudaMalloc(&codes[c], reordered.codes.size()), "cudaMalloc");
      Check(cudaMalloc(&scales[c], reordered.scales.size()), "cudaMalloc");
      Check(cudaMemcpy(codes[c], reordered.codes.data(), reordered.codes.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
      Check(cudaMemcpy(scales[c], reordered.scales.data(), reordered.scales.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
    }
    for (int64_t m : {1, 16, 64, 1024}) {
      const std::vector<uint16_t> x = MakeWeights(m, k);
      void *dx = nullptr, *dy = nullptr;
      Check(cudaMalloc(&dx, x.size() * 2), "cudaMalloc");
      Check(cudaMalloc(&dy, m * n * 2), "cudaMalloc");
      Check(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
      int next = 0;
      const double t = MedianSeconds([&] {
        cuda::Nvfp4GemmOnDevice(dx, m, k, codes[next], scales[next], s, n, dy, nullptr);
        next = (next + 1) % copies;
      });
      fmt::print("| {} x {} | {} | {:.1f} µs | {:.2f} TB/s | {:.1f} |\n", n, k, m, t * 1e6, weight_bytes / t / 1e12,
                 2.0 * m * n * k / t / 1e12);
      Check(cudaFree(dx), "cudaFree");
      Check(cudaFree(dy), "cudaFree");
    }
    for (int c = 0; c < copies; ++c) {
      Check(cudaFree(codes[c]), "cudaFree");
      Check(cudaFree(scales[c]), "cudaFree");
    }
  }
}

int Main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "gemm") {  // the product table alone
    GemmTable();
    return 0;
  }
  const int64_t rows = 28672, cols = 8192;
  if (!cuda::DeviceAvailable()) {
    fmt::print("{}\n", cuda::DeviceDescription());
    return 77;
  }
  fmt::print("device: {}\nweight: BF16 [{}, {}], {:.0f} MB\n", cuda::DeviceDescription(), rows, cols, rows * cols * 2 / 1e6);
  const std::vector<uint16_t> host = MakeWeights(rows, cols);
  const ConstMatrixView view{.data = host.data(), .dtype = DType::kBF16, .rows = rows, .cols = cols};
  const size_t in_bytes = host.size() * 2;
  void *x = nullptr, *copy = nullptr;
  uint8_t *codes = nullptr, *scales = nullptr;
  uint32_t* amax_bits = nullptr;
  Check(cudaMalloc(&x, in_bytes), "cudaMalloc");
  Check(cudaMalloc(&copy, in_bytes), "cudaMalloc");
  Check(cudaMalloc(&codes, in_bytes / 4), "cudaMalloc");
  Check(cudaMalloc(&scales, in_bytes / 32), "cudaMalloc");
  Check(cudaMalloc(&amax_bits, 4), "cudaMalloc");
  Check(cudaMemcpy(x, host.data(), in_bytes, cudaMemcpyHostToDevice), "cudaMemcpy");

  const cpu::AmaxResult amax = cpu::TensorAmax(view, 0);
  struct Row {
    std::string what;
    double seconds;
    double bytes;
  };
  std::vector<Row> rows_out;
  rows_out.push_back({"device-to-device copy (read + write)",
                      MedianSeconds([&] { Check(cudaMemcpyAsync(copy, x, in_bytes, cudaMemcpyDeviceToDevice), "copy"); }),
                      2.0 * in_bytes});
  rows_out.push_back({"tensor amax (read)", MedianSeconds([&] { cuda::TensorAmaxBitsOnDevice(x, DType::kBF16, rows * cols, amax_bits, nullptr); }),
                      double(in_bytes)});
  uint32_t bits = 0;
  Check(cudaMemcpy(&bits, amax_bits, 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
  bool all_equal = std::bit_cast<float>(bits) == amax.amax;
  fmt::print("GPU amax {} vs CPU {}: {}\n", std::bit_cast<float>(bits), amax.amax, all_equal ? "equal" : "DIFFERENT");

  for (const QuantSpec& spec : {QuantSpec{Nvfp4Spec{Nvfp4ScaleRule::kAmax}}, QuantSpec{Nvfp4Spec{Nvfp4ScaleRule::kMse}},
                                QuantSpec{Nvfp4Spec{Nvfp4ScaleRule::kFourOverSix}}, QuantSpec{Mxfp4Spec{Mxfp4ScaleRule::kOcp}}}) {
    const FormatTraits traits = Traits(spec);
    const bool nvfp4 = std::holds_alternative<Nvfp4Spec>(spec);
    const Nvfp4ScaleRule rule = nvfp4 ? std::get<Nvfp4Spec>(spec).rule : Nvfp4ScaleRule::kAmax;
    const float s = Nvfp4TensorScale(amax.amax, rule);
    const int64_t block = traits.block_size;
    auto kernel = [&] {
      if (nvfp4) {
        cuda::QuantizeNvfp4OnDevice(x, DType::kBF16, rows, cols, rule, s, codes, scales, nullptr);
      } else {
        cuda::QuantizeMxfp4OnDevice(x, DType::kBF16, rows, cols, codes, scales, nullptr);
      }
    };
    const double bytes = in_bytes + in_bytes / 4.0 + in_bytes / (2.0 * block);
    rows_out.push_back({fmt::format("{} {} (S given)", traits.format, traits.rule), MedianSeconds(kernel), bytes});
    rows_out.push_back({fmt::format("{} {} (amax pass + kernel)", traits.format, traits.rule), MedianSeconds([&] {
                          cuda::TensorAmaxBitsOnDevice(x, DType::kBF16, rows * cols, amax_bits, nullptr);
                          kernel();
                        }), bytes});
    // The same bytes as the CPU kernels?
    kernel();
    Check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    const QuantizedTensor want = cpu::Quantize(spec, view, amax.amax, 0);
    std::vector<uint8_t> got_codes(want.codes.size()), got_scales(want.block_scales.size());
    Check(cudaMemcpy(got_codes.data(), codes, got_codes.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
    Check(cudaMemcpy(got_scales.data(), scales, got_scales.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
    const bool equal = got_codes == want.codes && got_scales == want.block_scales;
    all_equal &= equal;
    fmt::print("{} {}: GPU bytes {} the CPU kernel's\n", traits.format, traits.rule, equal ? "equal" : "DIFFER FROM");
  }
  fmt::print("\n| kernel | median time | bandwidth |\n|---|---|---|\n");
  for (const Row& r : rows_out) fmt::print("| {} | {:.1f} µs | {:.2f} TB/s |\n", r.what, r.seconds * 1e6, r.bytes / r.seconds / 1e12);
  Check(cudaFree(x), "cudaFree");
  Check(cudaFree(copy), "cudaFree");
  GemmTable();
  return all_equal ? 0 : 1;
}

}  // namespace
}  // namespace fp4forge

int main(int argc, char** argv) { return fp4forge::Main(argc, argv); }
