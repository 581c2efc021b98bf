// fp4forge inspect DIR: what a checkpoint is, what it needs, and whether runtimes will load it right.
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "fp4forge/base/error.h"
#include "fp4forge/pipeline/inspect_checkpoint.h"

namespace fp4forge::cli {

namespace {

struct Options {
  std::string dir;
  bool json = false;
};

struct Gpu {
  const char* name;
  double gigabytes;
};
// Memory for weights, leaving 20% for KV cache and activations.
constexpr Gpu kGpus[] = {{"H100 80GB", 80}, {"H200 141GB", 141}, {"B200 192GB", 192}, {"RTX 5090 32GB", 32},
                         {"DGX Spark 128GB", 128}};
constexpr double kHeadroom = 0.8;

void Run(const Options& o) {
  InspectReport r;
  try {
    r = InspectCheckpoint(o.dir);
  } catch (const Error& e) {
    fmt::print(stderr, "fp4forge: error: {}\n", e.what());
    throw CLI::RuntimeError(2);  // unreadable
  }
  auto lines = [](const std::vector<Finding>& findings) {
    std::vector<std::string> out;
    for (const Finding& f : findings) out.push_back(fmt::format("{}: {} (fix: {})", f.where, f.what, f.fix));
    return out;
  };
  if (o.json) {
    nlohmann::json fits = nlohmann::json::object();
    for (const Gpu& g : kGpus) fits[g.name] = r.bytes <= g.gigabytes * 1e9 * kHeadroom;
    fmt::print("{}\n", nlohmann::json{{"dialect", r.dialect}, {"valid", r.valid()}, {"validated", r.validated},
                                      {"errors", lines(r.errors)}, {"warnings", lines(r.warnings)},
                                      {"num_params", r.num_params}, {"bytes", r.bytes},
                                      {"bits_per_weight", r.bits_per_weight()}, {"quantized_modules", r.quantized_modules},
                                      {"fits", fits}, {"serve_commands", r.serve_commands}}
                               .dump(2));
  } else {
    fmt::print("{}\n  dialect           {}\n  parameters        {:.3f} M\n  weight bytes      {:.1f} MB ({:.2f} bits per weight)\n"
               "  quantized modules {}\n  fits (weights + 20% for KV cache):",
               o.dir, r.dialect, r.num_params / 1e6, r.bytes / 1e6, r.bits_per_weight(), r.quantized_modules);
    for (const Gpu& g : kGpus) fmt::print(" {} {}", g.name, r.bytes <= g.gigabytes * 1e9 * kHeadroom ? "yes" : "no");
    fmt::print("\n");
    for (const std::string& c : r.serve_commands) fmt::print("  serve: {}\n", c);
    for (const std::string& w : lines(r.warnings)) fmt::print("  warning: {}\n", w);
    for (const std::string& e : lines(r.errors)) fmt::print("  ERROR: {}\n", e);
    fmt::print("{}\n", r.valid() ? "valid" : fmt::format("INVALID: {} error(s)", r.errors.size()));
  }
  if (!r.valid()) throw CLI::RuntimeError(1);
}

}  // namespace

void AddInspect(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Describe and validate a checkpoint (exit 0 valid, 1 invalid, 2 unreadable)");
  cmd->add_option("DIR", o->dir, "Checkpoint directory")->required();
  cmd->add_flag("--json", o->json, "Print JSON: dialect, valid, errors, warnings, num_params, bytes, ...");
  cmd->callback([o] { Run(*o); });
}

}  // namespace fp4forge::cli
