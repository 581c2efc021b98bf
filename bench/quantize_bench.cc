// Quantizer throughput on an 8192 x 8192 BF16 weight (128 MiB: far larger than the caches), next to
// this machine's memory bandwidth and the scalar reference, all measured in this binary.
//   build/bin/quantize_bench --benchmark_counters_tabular=true
// Napkin math: NVFP4 reads 2 B and writes 0.5625 B per element; at the ~20 GB/s (read+write) one
// core copies, that bounds one core near 7 G elements/s.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "fp4forge/codec/half.h"
#include "fp4forge/cpu/quantize.h"
#include "fp4forge/cpu/target.h"
#include "fp4forge/quant/quantize.h"

namespace fp4forge {
namespace {

constexpr int64_t kRows = 8192, kCols = 8192;

const std::vector<uint16_t>& Weights() {
  static const std::vector<uint16_t> w = [] {
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<uint16_t> v(kRows * kCols);
    for (uint16_t& x : v) x = EncodeBF16(normal(rng));
    return v;
  }();
  return w;
}

ConstMatrixView View(int64_t rows = kRows) {
  return {.data = Weights().data(), .dtype = DType::kBF16, .rows = rows, .cols = kCols};
}

void Report(benchmark::State& state, int64_t elements) {
  state.SetItemsProcessed(state.iterations() * elements);
  state.SetBytesProcessed(state.iterations() * elements * 2);  // BF16 input bytes
}

// Roofline: memcpy of 256 MiB (bytes = read + write) and a read-only pass.
void BM_Memcpy(benchmark::State& state) {
  std::vector<char> a(256 << 20, 1), b(256 << 20, 0);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), a.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<int64_t>(a.size()));
}
BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MemoryRead(benchmark::State& state) {
  std::vector<uint64_t> a(32 << 20, 1);
  for (auto _ : state) {
    uint64_t sum = 0;
    for (uint64_t v : a) sum += v;
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(state.iterations() * 8 * static_cast<int64_t>(a.size()));
}
BENCHMARK(BM_MemoryRead)->Unit(benchmark::kMillisecond)->UseRealTime();

// The validated entry point: amax (and NaN/Inf) pass + quantization, as `fp4forge quantize` calls
// it for a tensor outside a fused group, into an output reused from tensor to tensor.
void BM_Quantize(benchmark::State& state, QuantSpec spec) {
  QuantizeOptions options;
  options.threads = static_cast<int>(state.range(0));
  const ConstMatrixView x = View();  // generates the weights outside the timed loop
  QuantizedTensor out;
  for (auto _ : state) {
    Quantize(spec, x, options, out);
    benchmark::DoNotOptimize(out.codes.data());
  }
  Report(state, kRows * kCols);
}

// The kernel alone, given the tensor amax (a fused group's amax is known up front), writing into
// the same output each time as `fp4forge quantize` does (fresh pages, faulted in and zeroed by the
// kernel, cost ~30% of the NVFP4 kernel's time here: BENCHMARKS.md, session 3).
void BM_QuantizeKernel(benchmark::State& state, QuantSpec spec) {
  const ConstMatrixView x = View();
  const float amax = cpu::TensorAmax(x, 2).amax;
  QuantizedTensor out;
  for (auto _ : state) {
    cpu::Quantize(spec, x, amax, static_cast<int>(state.range(0)), out);
    benchmark::DoNotOptimize(out.codes.data());
  }
  Report(state, kRows * kCols);
}

// The scalar reference (one thread), on 256 rows to keep it short.
void BM_QuantizeReference(benchmark::State& state, QuantSpec spec) {
  const ConstMatrixView x = View(256);
  for (auto _ : state) benchmark::DoNotOptimize(QuantizeRef(spec, x).codes.data());
  Report(state, 256 * kCols);
}

#define FP4FORGE_BENCH(name, spec)                                                                        \
  BENCHMARK_CAPTURE(BM_QuantizeKernel, name, spec)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(BM_Quantize, name, spec)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();       \
  BENCHMARK_CAPTURE(BM_QuantizeReference, name, spec)->Unit(benchmark::kMillisecond)->UseRealTime()

FP4FORGE_BENCH(nvfp4_amax, Nvfp4Spec{Nvfp4ScaleRule::kAmax});
FP4FORGE_BENCH(nvfp4_compressed_tensors, (Nvfp4Spec{Nvfp4ScaleRule::kAmax, Nvfp4Producer::kCompressedTensors}));
FP4FORGE_BENCH(nvfp4_mse, Nvfp4Spec{Nvfp4ScaleRule::kMse});
FP4FORGE_BENCH(nvfp4_4over6, Nvfp4Spec{Nvfp4ScaleRule::kFourOverSix});
FP4FORGE_BENCH(nvfp4_search, Nvfp4Spec{Nvfp4ScaleRule::kSearch});
FP4FORGE_BENCH(mxfp4_ocp, Mxfp4Spec{Mxfp4ScaleRule::kOcp});
FP4FORGE_BENCH(mxfp4_compressed_tensors, Mxfp4Spec{Mxfp4ScaleRule::kCompressedTensors});
FP4FORGE_BENCH(int4_asym_g128, (Int4Spec{{.group_size = 128, .asymmetric = true, .scale_dtype = DType::kF16}}));
FP4FORGE_BENCH(fp8_per_tensor, Fp8Spec{.per_channel = false});

}  // namespace
}  // namespace fp4forge

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // The context line names the SIMD target every figure was measured on.
  benchmark::AddCustomContext("highway_target", fp4forge::cpu::DispatchedTargetName());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
