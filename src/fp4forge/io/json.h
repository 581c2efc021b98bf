// JSON from untrusted files. nlohmann's parser is iterative, but what fp4forge does with a parsed
// value afterwards (copy, dump, compare) recurses, so a 100k-deep config.json overflowed the stack:
// nesting is bounded first, by a SAX pass that keeps no values.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace fp4forge {

// Deeper than any Hugging Face config, index or tokenizer file (they stay below 10).
inline constexpr int kMaxJsonDepth = 64;

// The JSON value of `text`; fails (ErrorCode::kInvalidData) naming `where` if it is not JSON or
// nests deeper than kMaxJsonDepth. JSON objects keep the last of repeated keys: with
// `duplicate_key`, the first key repeated in the top-level object is stored there (or "" if none).
nlohmann::json ParseUntrustedJson(std::string_view text, std::string_view where, std::string* duplicate_key = nullptr);

}  // namespace fp4forge
