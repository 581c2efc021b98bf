// Weight-streaming matrix-vector products (decode, M = 1) and small-batch products (prefill), per
// weight format, on a 14336 x 4096 weight (Llama-3-8B's gate/up projection), next to this machine's
// read bandwidth measured in the same binary with the same threads.
//   build/bin/matmul_bench --benchmark_counters_tabular=true
// Napkin math: at M = 1 every weight byte is read once: BF16 117 MB, NVFP4 33 MB (4.5 bits a
// weight), so at ~10 GB/s of read bandwidth per core BF16 takes ~12 ms and NVFP4 ~3.3 ms;
// 2 FLOPs per weight are far below what the cores compute in that time. bytes_per_second below
// counts the weight bytes read.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "fp4forge/base/thread_pool.h"
#include "fp4forge/codec/half.h"
#include "fp4forge/cpu/matmul.h"
#include "fp4forge/cpu/target.h"

namespace fp4forge::cpu {
namespace {

constexpr int64_t kRows = 14336, kCols = 4096;

struct Stored {
  std::vector<uint8_t> values, scales;
  WeightMatrix w;
};

const Stored& Weights(WeightEncoding encoding) {
  static Stored cache[6];
  Stored& s = cache[static_cast<int>(encoding)];
  if (!s.values.empty()) return s;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  s.w = {.encoding = encoding, .rows = kRows, .cols = kCols};
  const int64_t n = kRows * kCols;
  if (encoding == WeightEncoding::kBF16) {
    s.values.resize(2 * n);
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t b = EncodeBF16(normal(rng));
      std::memcpy(&s.values[2 * i], &b, 2);
    }
  } else if (encoding == WeightEncoding::kFp8) {
    s.values.resize(n);
    for (uint8_t& b : s.values) b = static_cast<uint8_t>(byte(rng) & 0xF7);
    s.w.tensor_scalar = 1e-3f;
  } else {
    s.values.resize(n / 2);
    for (uint8_t& b : s.values) b = static_cast<uint8_t>(byte(rng));
    const int64_t block = encoding == WeightEncoding::kNvfp4 ? 16 : 32;
    s.scales.resize(n / block);
    for (uint8_t& b : s.scales) b = static_cast<uint8_t>(encoding == WeightEncoding::kNvfp4 ? 40 + byte(rng) % 60 : 120);
    s.w.tensor_scalar = 1e-4f;
  }
  s.w.values = s.values.data();
  s.w.block_scales = s.scales.empty() ? nullptr : s.scales.data();
  return s;
}

// Args: threads, activation rows M.
void BM_MatMul(benchmark::State& state, WeightEncoding encoding) {
  const WeightMatrix& w = Weights(encoding).w;
  ThreadPool pool(static_cast<int>(state.range(0)));
  const int64_t m = state.range(1);
  std::vector<float> x(m * kCols, 0.01f), y(m * kRows);
  for (auto _ : state) {
    MatMul(w, x.data(), m, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * w.StoredBytes());
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * m * kRows * kCols / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// The roofline: a read-only pass over 256 MiB split over the same threads.
void BM_MemoryRead(benchmark::State& state) {
  static std::vector<uint64_t> a(32 << 20, 1);
  ThreadPool pool(static_cast<int>(state.range(0)));
  std::vector<uint64_t> sums(64);
  for (auto _ : state) {
    pool.Run(static_cast<int64_t>(a.size()), [&](int64_t begin, int64_t end) {
      uint64_t sum = 0;
      for (int64_t i = begin; i < end; ++i) sum += a[i];
      sums[begin * 64 / static_cast<int64_t>(a.size())] = sum;
    });
    benchmark::DoNotOptimize(sums.data());
  }
  state.SetBytesProcessed(state.iterations() * 8 * static_cast<int64_t>(a.size()));
}

BENCHMARK(BM_MemoryRead)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_MatMul, bf16, WeightEncoding::kBF16)->ArgsProduct({{1, 2}, {1, 16}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_MatMul, nvfp4, WeightEncoding::kNvfp4)->ArgsProduct({{1, 2}, {1, 16}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_MatMul, mxfp4, WeightEncoding::kMxfp4)->ArgsProduct({{1, 2}, {1}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_MatMul, fp8, WeightEncoding::kFp8)->ArgsProduct({{1, 2}, {1}})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace fp4forge::cpu

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("highway_target", fp4forge::cpu::DispatchedTargetName());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
