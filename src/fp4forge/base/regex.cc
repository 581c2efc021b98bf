#define PCRE2_CODE_UNIT_WIDTH 8
#include "fp4forge/base/regex.h"

#include <pcre2.h>

#include "fp4forge/base/error.h"

namespace fp4forge {

namespace {

std::string ErrorMessage(int error) {
  PCRE2_UCHAR message[256];
  pcre2_get_error_message(error, message, sizeof(message));
  return reinterpret_cast<const char*>(message);
}

// Steps of backtracking one match may take: far more than any name filter or tokenizer pattern
// needs, and a bound on what a pathological one costs (the default is 10 million).
constexpr uint32_t kMatchLimit = 10'000'000;

}  // namespace

Regex::Regex(std::string_view pattern, std::string_view what, Text text) : pattern_(pattern), text_(text) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  const uint32_t options = text == Text::kUtf8 ? PCRE2_UTF | PCRE2_UCP : 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error,
                                   &offset, nullptr);
  if (!code) {
    Fail(ErrorCode::kInvalidArgument, "{}: the regular expression {} does not compile ({} at offset {}); expected a "
         "PCRE2 pattern", what, pattern, ErrorMessage(error), offset);
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // a speed-up where available; matching works without
  code_ = std::shared_ptr<pcre2_code>(code, pcre2_code_free);
}

std::pair<size_t, size_t> Regex::Match(std::string_view text, size_t start, uint32_t options) const {
  constexpr size_t kNone = std::string_view::npos;
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_set_match_limit(context, kMatchLimit);
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_.get(), nullptr);
  int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, options, data,
                       context);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // the JIT's small stack; the interpreter backtracks on the heap
    rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                     options | PCRE2_NO_JIT, data, context);
  }
  std::pair<size_t, size_t> range{kNone, kNone};
  if (rc >= 0) {
    const PCRE2_SIZE* v = pcre2_get_ovector_pointer(data);
    range = {v[0], v[1]};
  }
  pcre2_match_data_free(data);
  pcre2_match_context_free(context);
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
    Fail(ErrorCode::kInvalidData, "the regular expression {} cannot be matched against a text of {} bytes: {}{}",
         pattern_, text.size(), ErrorMessage(rc), text_ == Text::kUtf8 ? " (the text must be UTF-8)" : "");
  }
  return range;
}

bool Regex::Search(std::string_view text) const { return Match(text, 0, 0).first != std::string_view::npos; }

bool Regex::MatchesAtStart(std::string_view text) const {
  return Match(text, 0, PCRE2_ANCHORED).first != std::string_view::npos;
}

std::vector<std::pair<size_t, size_t>> Regex::Matches(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  size_t start = 0;
  uint32_t options = 0;
  while (start <= text.size()) {
    const auto [begin, end] = Match(text, start, options);
    if (begin == std::string_view::npos) break;
    options = text_ == Text::kUtf8 ? PCRE2_NO_UTF_CHECK : 0;  // the first match checked the whole text
    if (end == begin) {  // an empty match: step one character on
      if (begin >= text.size()) break;
      size_t next = begin + 1;
      if (text_ == Text::kUtf8) {
        while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      }
      start = next;
      continue;
    }
    out.emplace_back(begin, end);
    start = end;
  }
  return out;
}

}  // namespace fp4forge
