// fp4forge: quantize LLM checkpoints to NVFP4 and friends. One binary, one subcommand per job.
#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "fp4forge/base/error.h"
#include "fp4forge/base/regex.h"

namespace fp4forge::cli {

const CLI::Validator kRegex(
    [](const std::string& value) -> std::string {
      try {
        fp4forge::Regex check(value, "value");
      } catch (const fp4forge::Error& e) {
        return e.what();
      }
      return "";
    },
    "REGEX");

}  // namespace fp4forge::cli

int main(int argc, char** argv) {
  CLI::App app{"fp4forge " FP4FORGE_VERSION " - NVFP4 quantization toolkit for LLM checkpoints, and a CPU engine to run and judge them"};
  app.set_version_flag("--version", "fp4forge " FP4FORGE_VERSION);
  app.require_subcommand(1);
  fp4forge::cli::AddCompareFormats(app);
  fp4forge::cli::AddQuantize(app);
  fp4forge::cli::AddInspect(app);
  fp4forge::cli::AddConvert(app);
  fp4forge::cli::AddEval(app);
  fp4forge::cli::AddRun(app);
  fp4forge::cli::AddTokenize(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {  // a subcommand's own status (inspect: 1 invalid, 2 unreadable)
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help and --version exit 0, every usage error 2
  } catch (const fp4forge::Error& e) {
    fmt::print(stderr, "fp4forge: error: {}\n", e.what());
    switch (e.code()) {
      case fp4forge::ErrorCode::kInvalidArgument: return 2;
      case fp4forge::ErrorCode::kInterrupted: return 130;  // as a shell reports a process ended by SIGINT
      default: return 1;
    }
  }
  return 0;
}
