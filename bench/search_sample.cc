// What the search rule's sample costs (issue 18): for every NVFP4-quantized weight group of a
// checkpoint (fused q/k/v, gate/up, ... share one S), the S picked on the sample the rule measures
// (kNvfp4SearchSampleBlocks blocks) against the S of a search over every block, with the error of
// each over the whole group, relative to the mse rule's S = amax/2688, and the time each search takes.
//
// Usage: search_sample CHECKPOINT_DIR [THREADS]
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fp4forge/cpu/quantize.h"
#include "fp4forge/format/nvfp4.h"
#include "fp4forge/io/checkpoint.h"
#include "fp4forge/io/hf_names.h"
#include "fp4forge/quant/quantize.h"

namespace fp4forge {
namespace {

// The search rule's measure over every row of the group at S (the scalar reference, one thread).
double GroupError(const std::vector<ConstMatrixView>& members, float s) {
  double sum = 0;
  for (const ConstMatrixView& m : members) {
    std::vector<float> row(static_cast<size_t>(m.cols));
    for (int64_t r = 0; r < m.rows; ++r) {
      LoadRowAsFloat(m, r, row.data());
      sum += Nvfp4RowSearchError(row.data(), m.cols, s);
    }
  }
  return sum;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: search_sample CHECKPOINT_DIR [THREADS]\n");
    return 2;
  }
  const int threads = argc > 2 ? std::stoi(argv[2]) : 0;
  const Checkpoint checkpoint(argv[1]);
  std::map<std::string, std::vector<ConstMatrixView>> groups;
  for (const CheckpointTensor& ct : checkpoint.tensors()) {
    const SafetensorsTensor& t = *ct.tensor;
    if (ClassifyTensor(t.name, t.shape.size(), {}) != LinearVerdict::kQuantize || t.shape.back() % kNvfp4BlockSize) continue;
    groups[FusedGroupKey(t.name).value_or(t.name)].push_back(t.AsMatrix());
  }
  fmt::print("{:<44} {:>9} {:>7} {:>7} {:>10} {:>10} {:>10} {:>9} {:>9}\n", "group", "blocks", "f_samp", "f_full",
             "gain_samp", "gain_full", "samp_cost", "t_samp_s", "t_full_s");
  double mse_total = 0, sample_total = 0, full_total = 0, t_sample_total = 0, t_full_total = 0;
  for (const auto& [name, members] : groups) {
    float amax = 0;
    int64_t blocks = 0;
    for (const ConstMatrixView& m : members) {
      amax = std::max(amax, TensorAmax(m, threads, name));
      blocks += m.rows * (m.cols / kNvfp4BlockSize);
    }
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    const float s_sample = cpu::SearchNvfp4TensorScale(members, amax, cpu::Nvfp4SearchRowStride(members), threads);
    const auto t1 = Clock::now();
    const float s_full = cpu::SearchNvfp4TensorScale(members, amax, 1, threads);
    const auto t2 = Clock::now();
    const float s_mse = Nvfp4TensorScale(amax, Nvfp4ScaleRule::kMse);
    const double e_mse = GroupError(members, s_mse), e_sample = GroupError(members, s_sample),
                 e_full = GroupError(members, s_full);
    mse_total += e_mse;
    sample_total += e_sample;
    full_total += e_full;
    const double t_sample = std::chrono::duration<double>(t1 - t0).count(), t_full = std::chrono::duration<double>(t2 - t1).count();
    t_sample_total += t_sample;
    t_full_total += t_full;
    fmt::print("{:<44} {:>9} {:>7.4f} {:>7.4f} {:>9.3f}% {:>9.3f}% {:>9.4f}% {:>9.3f} {:>9.3f}\n", name, blocks,
               s_sample / s_mse, s_full / s_mse, 100 * (1 - e_sample / e_mse), 100 * (1 - e_full / e_mse),
               100 * (e_sample / e_full - 1), t_sample, t_full);
  }
  fmt::print("all {} groups: error below mse's {:.3f}% (sampled S), {:.3f}% (full search); the sample costs {:.4f}% "
             "in error; searches {:.2f} s sampled, {:.2f} s full\n", groups.size(), 100 * (1 - sample_total / mse_total),
             100 * (1 - full_total / mse_total), 100 * (sample_total / full_total - 1), t_sample_total, t_full_total);
  return 0;
}

}  // namespace
}  // namespace fp4forge

int main(int argc, char** argv) { return fp4forge::Main(argc, argv); }
