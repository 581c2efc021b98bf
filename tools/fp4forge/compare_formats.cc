// fp4forge compare-formats: every format and scale rule on the same data, one table.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "fp4forge/base/error.h"
#include "fp4forge/base/regex.h"
#include "fp4forge/quant/compare.h"
#include "fp4forge/io/checkpoint.h"
#include "fp4forge/io/safetensors.h"
#include "fp4forge/quant/distributions.h"

namespace fp4forge::cli {

namespace {

struct Options {
  std::vector<std::string> dists = {"gaussian"};
  int64_t samples = int64_t{1} << 20;
  uint64_t seed = 42;
  std::string outliers;  // "FRACTION:SCALE"
  std::string file;      // a .safetensors file instead of synthetic data
  std::string model;     // a checkpoint directory (sharded or not) instead of synthetic data
  std::string tensor_regex = ".*";
  bool per_tensor = false;  // with --file: one row per tensor instead of one per format
  int threads = 0;
  bool json = false;
};

constexpr const char* kExplanation =
    "What this measures: each format quantizes the same weights, which are dequantized again;\n"
    "rel_mse = E[(x'-x)^2] / E[x^2] and sqnr_db = -10 log10(rel_mse). bits/w counts codes, block\n"
    "scales and zero points. 'anchor' is the published figure of ANCHORS.md section 1 for 2^20\n"
    "unit-variance samples (none for real tensors). NVIDIA's blog figure 'NVFP4 MSE 0.08 vs MXFP4\n"
    "0.72' is about encoding the scale factors of a toy example, not about weights: on weights\n"
    "MXFP4's error is 1.5-2.5x NVFP4's, as the rows above show.\n";

Outliers ParseOutliers(const std::string& text) {
  if (text.empty()) return {};
  const size_t colon = text.find(':');
  try {
    if (colon != std::string::npos) {
      const Outliers o{.fraction = std::stod(text.substr(0, colon)), .scale = std::stod(text.substr(colon + 1))};
      if (o.fraction >= 0 && o.fraction <= 1) return o;
    }
  } catch (const std::exception&) {
  }
  Fail(ErrorCode::kInvalidArgument, "[--outliers] got '{}', expected FRACTION:SCALE, e.g. 0.001:20", text);
}

// The widest row length (at most 4096) that divides the sample count, so every format fits.
int64_t RowLength(int64_t samples) {
  for (int64_t cols = 4096; cols >= 128; cols /= 2) {
    if (samples % cols == 0) return cols;
  }
  Fail(ErrorCode::kInvalidArgument, "[--samples] got {}, expected a positive multiple of 128", samples);
}

std::string FormatAnchor(const std::optional<Anchor>& anchor, double value) {
  if (!anchor) return "";
  // Distance to the nearest end of the published range, relative to it (0 inside the range).
  const double nearest = std::clamp(value, anchor->low, anchor->high);
  const std::string range = anchor->low == anchor->high ? fmt::format("{:.4f}", anchor->low)
                                                        : fmt::format("{:.4f}-{:.4f}", anchor->low, anchor->high);
  return fmt::format("{} ({:+.1f}%)", range, 100.0 * (value - nearest) / nearest);
}

// Rows as table lines, under a header printed with the first of them (a run that fails before its
// first row prints only the error), or collected as JSON.
struct RowPrinter {
  const Options& options;
  nlohmann::json json = nlohmann::json::array();
  bool header_printed = false;

  void operator()(const std::vector<ComparisonRow>& rows);
};

void RowPrinter::operator()(const std::vector<ComparisonRow>& rows) {
  if (!options.json && !header_printed) {
    fmt::print("{:<6} {:<18} {:<12} {:>6} {:>9} {:>8} {:>10} {:>8} {:>9}  {}\n", "format", "rule", "data", "bits/w",
               "rel_mse", "sqnr_db", "mse", "max_abs", "cosine", "anchor");
    header_printed = true;
  }
  for (const ComparisonRow& row : rows) {
    const ErrorMetrics m = row.sums.Metrics();
    if (options.json) {
      nlohmann::json entry = {{"format", row.traits.format}, {"rule", row.traits.rule}, {"dist", row.data},
                              {"bits_per_weight", row.traits.bits_per_weight}, {"rel_mse", m.relative_mse},
                              {"sqnr_db", m.sqnr_db}, {"mse", m.mse}, {"max_abs_error", m.max_abs_error},
                              {"cosine", m.cosine}};
      if (row.anchor) entry["anchor_rel_mse"] = {row.anchor->low, row.anchor->high};
      json.push_back(entry);
    } else {
      fmt::print("{:<6} {:<18} {:<12} {:>6.3f} {:>9.5f} {:>8.2f} {:>10.3e} {:>8.4f} {:>9.6f}  {}\n", row.traits.format,
                 row.traits.rule, row.data, row.traits.bits_per_weight, m.relative_mse, m.sqnr_db, m.mse,
                 m.max_abs_error, m.cosine, FormatAnchor(row.anchor, m.relative_mse));
    }
  }
}

void Run(const Options& options) {
  RowPrinter print{options};
  if (!options.file.empty() || !options.model.empty()) {
    // Real tensors: every F32/BF16/F16 tensor of rank >= 2 whose name matches.
    std::vector<const SafetensorsTensor*> tensors;
    std::optional<SafetensorsFile> file;
    std::optional<Checkpoint> model;
    if (!options.file.empty()) {
      file.emplace(options.file);
      for (const SafetensorsTensor& t : file->tensors()) tensors.push_back(&t);
    } else {
      model.emplace(options.model);
      for (const CheckpointTensor& t : model->tensors()) tensors.push_back(t.tensor);
    }
    const std::string source = options.file.empty() ? options.model : options.file;
    const Regex pattern(options.tensor_regex, "--tensor");
    std::vector<ComparisonRow> totals;  // one per format and rule, summed over the tensors
    int compared = 0;
    for (const SafetensorsTensor* t : tensors) {
      if (!t->FloatDType() || t->shape.size() < 2 || t->NumElements() == 0 || !pattern.Search(t->name)) continue;
      const std::vector<ComparisonRow> rows = CompareFormats(t->AsMatrix(), t->name, "", options.threads);
      if (options.per_tensor) print(rows);
      for (const ComparisonRow& row : rows) {
        auto it = std::find_if(totals.begin(), totals.end(), [&](const ComparisonRow& r) {
          return r.traits.format == row.traits.format && r.traits.rule == row.traits.rule;
        });
        if (it == totals.end()) {
          totals.push_back(row);
        } else {
          it->sums.Add(row.sums);
        }
      }
      ++compared;
    }
    if (compared == 0) {
      Fail(ErrorCode::kInvalidArgument, "[compare-formats] '{}' has no F32/BF16/F16 tensor of rank >= 2 matching '{}'",
           source, options.tensor_regex);
    }
    if (!options.per_tensor) {
      for (ComparisonRow& row : totals) row.data = fmt::format("{} tensors", compared);
      print(totals);
    }
  } else {
    const int64_t cols = RowLength(options.samples);
    const Outliers outliers = ParseOutliers(options.outliers);
    for (const std::string& dist_name : options.dists) {
      const Distribution dist = ParseDistribution(dist_name);
      const std::vector<float> samples = GenerateSamples(dist, options.samples, options.seed, outliers);
      const ConstMatrixView x{.data = samples.data(), .dtype = DType::kF32, .rows = options.samples / cols, .cols = cols};
      // Published figures are for plain samples; with planted outliers there is nothing to compare with.
      print(CompareFormats(x, dist.Name(), outliers.fraction > 0 ? "" : dist.Name(), options.threads));
    }
  }
  if (options.json) {
    fmt::print("{}\n", print.json.dump(2));
  } else if (options.file.empty() && options.model.empty()) {
    fmt::print("\n{} samples per distribution, seed {}{}.\n{}", options.samples, options.seed,
               options.outliers.empty() ? "" : fmt::format(", outliers {}", options.outliers), kExplanation);
  } else {
    fmt::print("\nTensors of {} matching '{}'{}.\n{}", options.file.empty() ? options.model : options.file,
               options.tensor_regex,
               options.per_tensor ? "" : " (errors summed over them; --per-tensor for each)", kExplanation);
  }
}

}  // namespace

void AddCompareFormats(CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "compare-formats", "Measure every format and scale rule (NVFP4, MXFP4, INT4, FP8) on the same data");
  cmd->add_option("--dist", options->dists, "Distributions: gaussian, laplace, student-t:NU (repeatable)")
      ->capture_default_str();
  cmd->add_option("--samples", options->samples, "Samples per distribution (a multiple of 128)")->capture_default_str();
  cmd->add_option("--seed", options->seed, "Random seed")->capture_default_str();
  cmd->add_option("--outliers", options->outliers, "Plant outliers: FRACTION:SCALE, e.g. 0.001:20");
  CLI::Option* file = cmd->add_option("--file", options->file, "Measure the tensors of this .safetensors file")
                          ->check(CLI::ExistingFile);
  cmd->add_option("--model", options->model, "Measure the tensors of this checkpoint directory (sharded or not)")
      ->check(CLI::ExistingDirectory)
      ->excludes(file);
  cmd->add_option("--tensor", options->tensor_regex, "With --file/--model: only tensors whose name matches this regex")
      ->capture_default_str()
      ->check(kRegex);
  cmd->add_flag("--per-tensor", options->per_tensor, "With --file/--model: one row per tensor and format");
  cmd->add_option("--threads", options->threads, "Threads (0 = all cores); results do not depend on it")
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "Print a JSON list of objects instead of the table");
  cmd->callback([options] { Run(*options); });
}

}  // namespace fp4forge::cli
