#include "fp4forge/io/json.h"

#include "fp4forge/base/error.h"

namespace fp4forge {

namespace {

// Tracks nesting and stops the parse as soon as it is too deep.
struct DepthLimit : nlohmann::json_sax<nlohmann::json> {
  int depth = 0;
  bool too_deep = false;

  bool Enter() {
    too_deep = too_deep || ++depth > kMaxJsonDepth;
    return !too_deep;
  }
  bool start_object(std::size_t) override { return Enter(); }
  bool start_array(std::size_t) override { return Enter(); }
  bool end_object() override { return --depth, true; }
  bool end_array() override { return --depth, true; }
  bool key(string_t&) override { return true; }
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

nlohmann::json ParseUntrustedJson(std::string_view text, std::string_view where) {
  DepthLimit limit;
  nlohmann::json::sax_parse(text.begin(), text.end(), &limit, nlohmann::json::input_format_t::json, false);
  if (limit.too_deep) Fail(ErrorCode::kInvalidData, "{} nests deeper than {} levels; expected a JSON file", where, kMaxJsonDepth);
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) Fail(ErrorCode::kInvalidData, "{} is not valid JSON", where);
  return json;
}

}  // namespace fp4forge
