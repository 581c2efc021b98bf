// One function per subcommand: registers its options and its action on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace fp4forge::cli {

void AddCompareFormats(CLI::App& app);
void AddQuantize(CLI::App& app);
void AddInspect(CLI::App& app);
void AddConvert(CLI::App& app);

}  // namespace fp4forge::cli
