// fp4forge convert IN_DIR OUT_DIR --to DIALECT: an NVFP4 checkpoint between ModelOpt and
// compressed-tensors, losslessly.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "fp4forge/pipeline/convert_checkpoint.h"

namespace fp4forge::cli {

namespace {

struct Options {
  std::string in_dir, out_dir, to;
  bool force = false;
  bool quiet = false;
};

void Run(const Options& o) {
  const ConvertReport r = ConvertCheckpoint(o.in_dir, o.out_dir, ParseCheckpointDialect(o.to), o.force);
  if (o.quiet) return;
  fmt::print("{}: {} -> {}, {} NVFP4 modules; FP4 codes and block scales kept ({} zero blocks rewritten to the "
             "target's scale byte), global scales reciprocated ({} not exactly invertible in float32: 1 ulp)\n",
             o.out_dir, r.from, o.to, r.modules, r.zero_blocks, r.inexact_reciprocals);
}

}  // namespace

void AddConvert(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "Convert an NVFP4 checkpoint between the modelopt and compressed-tensors dialects without re-quantizing");
  cmd->add_option("IN_DIR", o->in_dir, "NVFP4 checkpoint (validated first; an invalid one is refused)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("OUT_DIR", o->out_dir, "Output directory (must not exist unless --force)")->required();
  cmd->add_option("--to", o->to, "Target dialect: modelopt or compressed-tensors")->required();
  cmd->add_flag("--force", o->force, "Replace OUT_DIR if it exists");
  cmd->add_flag("--quiet", o->quiet, "No summary");
  cmd->callback([o] { Run(*o); });
}

}  // namespace fp4forge::cli
