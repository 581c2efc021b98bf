// One function per subcommand: registers its options and its action on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace fp4forge::cli {

// Option values that must be regular expressions (PCRE2 syntax, base/regex.h): refused at parse time.
extern const CLI::Validator kRegex;

void AddCompareFormats(CLI::App& app);
void AddQuantize(CLI::App& app);
void AddInspect(CLI::App& app);
void AddConvert(CLI::App& app);
void AddEval(CLI::App& app);
void AddRun(CLI::App& app);
void AddTokenize(CLI::App& app);

}  // namespace fp4forge::cli
