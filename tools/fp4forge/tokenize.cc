// fp4forge tokenize MODEL --text FILE: the token ids of a text, as the engine sees them.
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "engine_cli.h"

namespace fp4forge::cli {
namespace {

struct Options {
  std::string model, text, prompt;
  bool json = false;
};

void Run(const Options& o) {
  const engine::Tokenizer tokenizer = LoadTokenizer(o.model, nullptr);
  const std::string text = o.text.empty() ? o.prompt : ReadTextFile(o.text);
  const std::vector<int32_t> ids = tokenizer.Encode(text);
  if (o.json) {
    const std::string decoded = tokenizer.Decode(ids);
    fmt::print("{}\n", nlohmann::json{{"ids", ids}, {"decoded", decoded}}.dump(-1, ' ', false,
                                                                               nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("{}\n", fmt::join(ids, " "));
  }
}

}  // namespace

void AddTokenize(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text (no BOS added)");
  cmd->add_option("MODEL", o->model, "Directory holding tokenizer.json or tokenizer.model")->required();
  auto* text = cmd->add_option("--text", o->text, "UTF-8 text file");
  cmd->add_option("-p,--prompt", o->prompt, "Text given inline")->excludes(text);
  cmd->add_flag("--json", o->json, "Print JSON: ids and the decoded text");
  cmd->callback([o] { Run(*o); });
}

}  // namespace fp4forge::cli
