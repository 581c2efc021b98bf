// Regular expressions through PCRE2 (Debian's libpcre2-dev), the one engine fp4forge uses: tensor
// name filters (--include/--exclude/--tensor, "re:" entries of compressed-tensors' ignore lists)
// and the tokenizers' pre-tokenizer patterns. PCRE2 backtracks on the heap under a match limit, so
// a hostile name or pattern gets an Error, never the stack overflow of libstdc++'s recursive
// std::regex. Copies share one compiled pattern; matching is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace fp4forge {

class Regex {
 public:
  enum class Text { kBytes, kUtf8 };  // kUtf8: \p{...} classes and "." see characters, not bytes

  // Fails (ErrorCode::kInvalidArgument) naming `what` and the pattern if it does not compile.
  Regex(std::string_view pattern, std::string_view what, Text text = Text::kBytes);

  // Whether a match starts anywhere in text (std::regex_search), or at its start (anchored).
  bool Search(std::string_view text) const;
  bool MatchesAtStart(std::string_view text) const;
  // The [begin, end) byte ranges of every non-overlapping non-empty match, left to right.
  std::vector<std::pair<size_t, size_t>> Matches(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  // PCRE2's match at `start` with `options`: the match's range, or {npos, npos} for none.
  std::pair<size_t, size_t> Match(std::string_view text, size_t start, uint32_t options) const;

  std::string pattern_;
  Text text_;
  std::shared_ptr<pcre2_real_code_8> code_;
};

}  // namespace fp4forge
