#include "fp4forge/io/json.h"

#include <set>
#include <string>

#include "fp4forge/base/error.h"

namespace fp4forge {

namespace {

// Tracks nesting, stopping the parse as soon as it is too deep, and (when asked) repeated keys of
// the top-level object.
struct Scan : nlohmann::json_sax<nlohmann::json> {
  explicit Scan(bool find_duplicate) : find_duplicate(find_duplicate) {}

  const bool find_duplicate;
  int depth = 0;
  bool too_deep = false;
  std::set<std::string> keys;
  std::string duplicate;

  bool Enter() {
    too_deep = too_deep || ++depth > kMaxJsonDepth;
    return !too_deep;
  }
  bool start_object(std::size_t) override { return Enter(); }
  bool start_array(std::size_t) override { return Enter(); }
  bool end_object() override { return --depth, true; }
  bool end_array() override { return --depth, true; }
  bool key(string_t& k) override {
    if (find_duplicate && depth == 1 && !keys.insert(k).second && duplicate.empty()) duplicate = k;
    return true;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
};

}  // namespace

nlohmann::json ParseUntrustedJson(std::string_view text, std::string_view where, std::string* duplicate_key) {
  Scan scan(duplicate_key != nullptr);
  nlohmann::json::sax_parse(text.begin(), text.end(), &scan, nlohmann::json::input_format_t::json, false);
  if (scan.too_deep) Fail(ErrorCode::kInvalidData, "{} nests deeper than {} levels; expected a JSON file", where, kMaxJsonDepth);
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) Fail(ErrorCode::kInvalidData, "{} is not valid JSON", where);
  if (duplicate_key) *duplicate_key = scan.duplicate;
  return json;
}

}  // namespace fp4forge
