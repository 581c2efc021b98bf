// The `tokenizers` library's pipeline, for BPE models: added tokens are cut out of the text first,
// the rest is normalized, split into words by the pre-tokenizers, each word merged by BPE ranks
// (lowest rank first, leftmost first among equals), and unknown pieces fall back to byte tokens.
#include "fp4forge/engine/tokenizer.h"

#include <sentencepiece_processor.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include "fp4forge/base/error.h"
#include "fp4forge/base/regex.h"
#include "fp4forge/io/files.h"
#include "fp4forge/io/json.h"

namespace fp4forge::engine {
namespace {

// GPT-2's pre-tokenizer regex (ByteLevel with use_regex).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Length of the UTF-8 character starting with byte `lead` (1 for a stray continuation byte).
size_t Utf8Length(unsigned char lead) {
  return lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
}

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 onwards.
struct ByteAlphabet {
  std::string to_char[256];
  std::unordered_map<std::string, uint8_t> to_byte;
  ByteAlphabet() {
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = Utf8(printable ? b : 256 + next++);
      to_byte[to_char[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteAlphabet& Alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

std::string TokenizerRegexContext(const std::string& source) { return fmt::format("[{}] pre-tokenizer", source); }

// Splits `word` at the matches of `regex`: the matches, and the text between them, become pieces
// ("Isolated"); with `remove_matches` the matches are dropped ("Removed").
void SplitByRegex(const Regex& regex, const std::string& word, bool remove_matches, std::vector<std::string>& out) {
  size_t last = 0;
  for (const auto& [b, e] : regex.Matches(word)) {
    if (b > last) out.push_back(word.substr(last, b - last));
    if (!remove_matches) out.push_back(word.substr(b, e - b));
    last = e;
  }
  if (last < word.size()) out.push_back(word.substr(last));
}

// The text in Unicode normalization form `form` ("NFC", "NFD", "NFKC", "NFKD"), by ICU.
std::string UnicodeNormalize(const std::string& text, const std::string& form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = form == "NFC"    ? icu::Normalizer2::getNFCInstance(status)
                                       : form == "NFD"  ? icu::Normalizer2::getNFDInstance(status)
                                       : form == "NFKC" ? icu::Normalizer2::getNFKCInstance(status)
                                                        : icu::Normalizer2::getNFKDInstance(status);
  const icu::UnicodeString normalized = U_SUCCESS(status) ? normalizer->normalize(icu::UnicodeString::fromUTF8(text), status)
                                                          : icu::UnicodeString();
  if (U_FAILURE(status)) Fail(ErrorCode::kInvalidData, "[Tokenizer] {} normalization failed: {}", form, u_errorName(status));
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

struct Step {
  std::string type;
  std::string a, b;     // Prepend: a; Replace: a -> b; Metaspace: a = replacement; Strip: a = content
  bool flag = false;    // ByteLevel: add_prefix_space; Split: remove matches; Metaspace: prepend always
  bool prepend_first = false;  // Metaspace prepend_scheme "first": prepend to the input's first word only
  bool use_regex = true;  // ByteLevel
  int64_t n = 0;          // Strip: characters from the start
  std::optional<Regex> regex;
};

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sentencepiece;  // set: a tokenizer.model
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> id_to_token;
  std::unordered_map<std::string, int32_t> merge_rank;  // left + '\xff' + right ('\xff' is never in UTF-8)
  bool byte_fallback = false, ignore_merges = false;
  int32_t unk = -1;
  std::vector<std::pair<std::string, int32_t>> added;  // longest first
  std::vector<Step> normalizer, pre_tokenizer, decoder;
  bool byte_level = false;  // words are mapped through the byte alphabet before BPE
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  [[noreturn]] void Bad(const std::string& what, const std::string& expected) const {
    Fail(ErrorCode::kInvalidData, "[{}] got {}, expected {}", source, what, expected);
  }

  // An optional setting of a tokenizer.json object (T: bool, int64_t or std::string): its value, or
  // `fallback` when absent or null; a value of another JSON type is an error naming the key.
  template <typename T>
  T Setting(const nlohmann::json& j, const char* key, T fallback) const {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    const nlohmann::json& v = j[key];
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) Bad(fmt::format("{} {}", key, v.dump()), "true or false");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) Bad(fmt::format("{} {}", key, v.dump()), "a string");
    } else {
      if (!v.is_number_integer()) Bad(fmt::format("{} {}", key, v.dump()), "an integer");
    }
    return v.get<T>();
  }

  void ParseSteps(const nlohmann::json& j, const char* section, std::vector<Step>& out) {
    if (j.is_null()) return;
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) Bad(std::string(section) + " " + j.dump(), "an object with a type");
    const std::string type = j["type"];
    const auto str = [&](const char* key) {
      if (!j.contains(key) || !j[key].is_string()) Bad(fmt::format("{} {} without a string {}", section, type, key), "one");
      return j[key].get<std::string>();
    };
    const auto pattern = [&]() -> std::pair<std::string, bool> {  // (text, is a regex)
      if (!j.contains("pattern") || !j["pattern"].is_object()) Bad(fmt::format("{} {} without a pattern", section, type), "one");
      const nlohmann::json& p = j["pattern"];
      if (p.contains("String") && p["String"].is_string()) return {p["String"], false};
      if (p.contains("Regex") && p["Regex"].is_string()) return {p["Regex"], true};
      Bad(fmt::format("{} {} pattern {}", section, type, p.dump()), "{\"String\": ...} or {\"Regex\": ...}");
    };
    Step s;
    s.type = type;
    if (type == "Sequence") {
      const char* key = j.contains("normalizers") ? "normalizers" : j.contains("pretokenizers") ? "pretokenizers" : "decoders";
      if (!j.contains(key) || !j[key].is_array()) Bad(fmt::format("{} Sequence without a list", section), "one");
      for (const nlohmann::json& e : j[key]) ParseSteps(e, section, out);
      return;
    } else if (type == "Prepend") {
      s.a = str("prepend");
    } else if (type == "Replace") {
      bool is_regex;
      std::tie(s.a, is_regex) = pattern();
      if (is_regex) Fail(ErrorCode::kUnsupported, "[{}] got a {} Replace by regex, expected a String pattern", source, section);
      s.b = str("content");
    } else if (type == "ByteLevel") {
      s.flag = Setting(j, "add_prefix_space", false);
      s.use_regex = Setting(j, "use_regex", true);
      if (s.use_regex && std::string(section) == "pre_tokenizer") s.regex.emplace(kGpt2Pattern, TokenizerRegexContext(source), Regex::Text::kUtf8);
      byte_level |= std::string(section) == "pre_tokenizer";
    } else if (type == "Split") {
      const std::string behavior = str("behavior");
      if ((behavior != "Isolated" && behavior != "Removed") || Setting(j, "invert", false)) {
        Fail(ErrorCode::kUnsupported, "[{}] got Split behavior {} (invert {}), expected Isolated or Removed", source,
             behavior, Setting(j, "invert", false));
      }
      s.flag = behavior == "Removed";
      auto [p, is_regex] = pattern();
      if (!is_regex) {  // a literal string: quote it for PCRE
        p = "\\Q" + p + "\\E";
      }
      s.regex.emplace(p, TokenizerRegexContext(source), Regex::Text::kUtf8);
    } else if (type == "Digits") {
      s.flag = Setting(j, "individual_digits", false);
      s.regex.emplace(s.flag ? "\\p{N}" : "\\p{N}+", TokenizerRegexContext(source), Regex::Text::kUtf8);
    } else if (type == "Metaspace") {
      s.a = str("replacement");
      const std::string scheme = Setting<std::string>(j, "prepend_scheme", Setting(j, "add_prefix_space", true) ? "always" : "never");
      s.flag = scheme == "always";
      s.prepend_first = scheme == "first";
      s.use_regex = Setting(j, "split", true);
    } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    } else if (type == "ByteFallback" || type == "Fuse") {
    } else if (type == "Strip") {
      s.a = str("content");
      s.n = Setting<int64_t>(j, "start", 0);
      if (s.n < 0) Bad(fmt::format("Strip start {}", s.n), "a count of characters");
      if (Setting<int64_t>(j, "stop", 0) != 0) Fail(ErrorCode::kUnsupported, "[{}] got a Strip decoder with stop, expected 0", source);
    } else {
      Fail(ErrorCode::kUnsupported, "[{}] got {} type {}, expected one of the BPE pipeline's (Sequence, Prepend, "
           "Replace, ByteLevel, Split, Digits, Metaspace, ByteFallback, Fuse, Strip)", source, section, type);
    }
    out.push_back(std::move(s));
  }

  // Pre-tokenization of one normalized piece of text into words (in BPE's alphabet).
  // `at_start`: the text begins the input (Metaspace's prepend_scheme "first" marks only that word).
  std::vector<std::string> Words(const std::string& text, bool at_start) const {
    std::vector<std::string> words{text}, next;
    for (const Step& s : pre_tokenizer) {
      next.clear();
      for (const std::string& w : words) {
        if (s.type == "ByteLevel") {
          const std::string t = (s.flag && !w.empty() && w[0] != ' ') ? " " + w : w;
          std::vector<std::string> parts;
          if (s.regex) {
            SplitByRegex(*s.regex, t, false, parts);
          } else {
            parts.push_back(t);
          }
          for (const std::string& p : parts) {
            std::string mapped;
            for (unsigned char c : p) mapped += Alphabet().to_char[c];
            next.push_back(mapped);
          }
        } else if (s.type == "Split" || s.type == "Digits") {
          SplitByRegex(*s.regex, w, s.flag, next);
        } else if (s.type == "Metaspace") {
          std::string t = ReplaceAll(w, " ", s.a);
          if ((s.flag || (s.prepend_first && at_start && &w == &words.front())) && t.rfind(s.a, 0) != 0) t = s.a + t;
          if (!s.use_regex) {
            next.push_back(t);
            continue;
          }
          // Split before each replacement character ("MergedWithNext").
          size_t begin = 0;
          for (size_t p = t.find(s.a, 1); p != std::string::npos; p = t.find(s.a, p + 1)) {
            next.push_back(t.substr(begin, p - begin));
            begin = p;
          }
          next.push_back(t.substr(begin));
        } else {
          next.push_back(w);
        }
      }
      words.swap(next);
    }
    return words;
  }

  void Bpe(const std::string& word, std::vector<int32_t>& ids) const {
    if (word.empty()) return;
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      if (auto it = cache.find(word); it != cache.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> out;
    if (auto it = vocab.find(word); ignore_merges && it != vocab.end()) {
      out.push_back(it->second);
    } else {
      std::vector<std::string> symbols;
      for (size_t i = 0; i < word.size();) {
        const size_t n = std::min(Utf8Length(static_cast<unsigned char>(word[i])), word.size() - i);
        symbols.push_back(word.substr(i, n));
        i += n;
      }
      while (symbols.size() > 1) {
        int32_t best = std::numeric_limits<int32_t>::max();
        size_t at = 0;
        for (size_t i = 0; i + 1 < symbols.size(); ++i) {
          const auto it = merge_rank.find(symbols[i] + '\xff' + symbols[i + 1]);
          if (it != merge_rank.end() && it->second < best) {
            best = it->second;
            at = i;
          }
        }
        if (best == std::numeric_limits<int32_t>::max()) break;
        symbols[at] += symbols[at + 1];
        symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(at) + 1);
      }
      for (const std::string& s : symbols) {
        if (auto it = vocab.find(s); it != vocab.end()) {
          out.push_back(it->second);
        } else if (byte_fallback) {
          for (unsigned char c : s) {
            const auto b = vocab.find(fmt::format("<0x{:02X}>", c));
            if (b != vocab.end()) {
              out.push_back(b->second);
            } else if (unk >= 0) {
              out.push_back(unk);
            }
          }
        } else if (unk >= 0) {
          out.push_back(unk);
        }
      }
    }
    ids.insert(ids.end(), out.begin(), out.end());
    std::lock_guard<std::mutex> lock(cache_mutex);
    cache.emplace(word, std::move(out));
  }

  void EncodePlain(const std::string& text, bool at_start, std::vector<int32_t>& ids) const {
    if (text.empty()) return;
    std::string t = text;
    for (const Step& s : normalizer) {
      if (s.type == "Prepend") t = s.a + t;
      if (s.type == "Replace") t = ReplaceAll(t, s.a, s.b);
      if (s.type.rfind("NF", 0) == 0) t = UnicodeNormalize(t, s.type);
    }
    for (const std::string& w : Words(t, at_start)) Bpe(w, ids);
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::FromDirectory(const std::string& dir) {
  for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
    if (PathExists(std::filesystem::path(dir) / name)) return FromFile(dir + "/" + name);
  }
  Fail(ErrorCode::kInvalidArgument, "[Tokenizer] got no {0}/tokenizer.json or {0}/tokenizer.model, expected the "
       "model's tokenizer beside its weights", dir);
}

Tokenizer Tokenizer::FromFile(const std::string& path) {
  if (path.ends_with(".model")) {
    auto impl = std::make_unique<Impl>();
    impl->source = path;
    impl->sentencepiece = std::make_unique<sentencepiece::SentencePieceProcessor>();
    if (const auto status = impl->sentencepiece->Load(path); !status.ok()) {
      Fail(ErrorCode::kInvalidData, "[{}] got a file SentencePiece cannot load ({}), expected a tokenizer.model", path,
           status.ToString());
    }
    return Tokenizer(std::move(impl));
  }
  const std::string text = ReadRegularFile(path, "[Tokenizer]");
  const nlohmann::json j = ParseUntrustedJson(text, "[" + path + "]");
  auto impl = std::make_unique<Impl>();
  impl->source = path;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) impl->Bad("no \"model\" object", "a tokenizer.json");
  const nlohmann::json& m = j["model"];
  const std::string type = impl->Setting<std::string>(m, "type", "");
  if (type != "BPE") {
    Fail(ErrorCode::kUnsupported, "[{}] got model type \"{}\", expected BPE (WordPiece, Unigram: use a SentencePiece "
         "tokenizer.model)", path, type);
  }
  if (!m.contains("vocab") || !m["vocab"].is_object()) impl->Bad("model.vocab that is not an object", "token -> id");
  for (const auto& [token, id] : m["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24)) {
      impl->Bad(fmt::format("vocab entry {}: {}", token, id.dump()), "an id in [0, 2^24]");
    }
    impl->vocab[token] = id.get<int32_t>();
  }
  if (!m.contains("merges") || !m["merges"].is_array()) impl->Bad("model.merges that is not a list", "a list");
  int32_t rank = 0;
  for (const nlohmann::json& merge : m["merges"]) {
    std::string left, right;
    if (merge.is_string()) {  // "a b" (older files)
      const std::string s = merge;
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos) impl->Bad("merge \"" + s + "\"", "two symbols separated by a space");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      left = merge[0];
      right = merge[1];
    } else {
      impl->Bad("merge " + merge.dump(), "[\"a\", \"b\"] or \"a b\"");
    }
    impl->merge_rank.emplace(left + '\xff' + right, rank++);
  }
  impl->byte_fallback = impl->Setting(m, "byte_fallback", false);
  impl->ignore_merges = impl->Setting(m, "ignore_merges", false);
  if (m.contains("unk_token") && m["unk_token"].is_string()) {
    const auto it = impl->vocab.find(m["unk_token"].get<std::string>());
    if (it != impl->vocab.end()) impl->unk = it->second;
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const nlohmann::json& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id") ||
          !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > (1 << 24)) {
        impl->Bad("added token " + a.dump(), "{\"id\": N, \"content\": \"...\"}");
      }
      impl->added.emplace_back(a["content"].get<std::string>(), a["id"].get<int32_t>());
      impl->vocab.emplace(a["content"].get<std::string>(), a["id"].get<int32_t>());
    }
  }
  std::sort(impl->added.begin(), impl->added.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  impl->ParseSteps(j.value("normalizer", nlohmann::json()), "normalizer", impl->normalizer);
  impl->ParseSteps(j.value("pre_tokenizer", nlohmann::json()), "pre_tokenizer", impl->pre_tokenizer);
  impl->ParseSteps(j.value("decoder", nlohmann::json()), "decoder", impl->decoder);
  for (const Step& s : impl->normalizer) {
    if (s.type != "Prepend" && s.type != "Replace" && s.type.rfind("NF", 0) != 0) {
      Fail(ErrorCode::kUnsupported, "[{}] got normalizer {}, expected Prepend, Replace, NFC, NFD, NFKC or NFKD", path,
           s.type);
    }
  }
  int32_t largest = -1;
  for (const auto& [token, id] : impl->vocab) largest = std::max(largest, id);
  impl->id_to_token.resize(static_cast<size_t>(largest + 1));
  for (const auto& [token, id] : impl->vocab) impl->id_to_token[id] = token;
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  if (impl_->sentencepiece) {
    std::vector<int> pieces;
    if (const auto status = impl_->sentencepiece->Encode(text, &pieces); !status.ok()) {
      Fail(ErrorCode::kInvalidData, "[{}] could not encode the text: {}", impl_->source, status.ToString());
    }
    return {pieces.begin(), pieces.end()};
  }
  std::string plain;
  for (size_t i = 0; i < text.size();) {
    const auto hit = std::find_if(impl_->added.begin(), impl_->added.end(), [&](const auto& a) {
      return !a.first.empty() && text.compare(i, a.first.size(), a.first) == 0;
    });
    if (hit == impl_->added.end()) {
      plain += text[i++];
      continue;
    }
    impl_->EncodePlain(plain, i == plain.size(), ids);
    plain.clear();
    ids.push_back(hit->second);
    i += hit->first.size();
  }
  impl_->EncodePlain(plain, plain.size() == text.size(), ids);
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  if (impl_->sentencepiece) {
    std::vector<int> known;
    for (int32_t id : ids) {
      if (id >= 0 && id < impl_->sentencepiece->GetPieceSize()) known.push_back(id);
    }
    std::string text;
    if (const auto status = impl_->sentencepiece->Decode(known, &text); !status.ok()) {
      Fail(ErrorCode::kInvalidData, "[{}] could not decode: {}", impl_->source, status.ToString());
    }
    return text;
  }
  std::vector<std::string> pieces;  // added tokens go through the decoder too, as in `tokenizers`
  for (int32_t id : ids) {  // ids the tokenizer does not have (a model's padded vocabulary) decode to nothing
    if (id >= 0 && id < static_cast<int32_t>(impl_->id_to_token.size())) pieces.push_back(impl_->id_to_token[id]);
  }
  for (const Step& s : impl_->decoder) {
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string& p = pieces[i];
      if (s.type == "ByteLevel") {
        std::string bytes;
        for (size_t k = 0; k < p.size();) {
          const size_t n = std::min(Utf8Length(static_cast<unsigned char>(p[k])), p.size() - k);
          const auto it = Alphabet().to_byte.find(p.substr(k, n));
          bytes += it != Alphabet().to_byte.end() ? std::string(1, static_cast<char>(it->second)) : p.substr(k, n);
          k += n;
        }
        p = bytes;
      } else if (s.type == "Replace") {
        p = ReplaceAll(p, s.a, s.b);
      } else if (s.type == "ByteFallback") {
        unsigned value;
        if (p.size() == 6 && p.rfind("<0x", 0) == 0 && p[5] == '>' && std::sscanf(p.c_str(), "<0x%2X>", &value) == 1) {
          p = std::string(1, static_cast<char>(value));
        }
      } else if (s.type == "Strip") {
        for (int64_t k = 0; k < s.n && p.rfind(s.a, 0) == 0; ++k) p.erase(0, s.a.size());
      } else if (s.type == "Metaspace") {
        p = ReplaceAll(p, s.a, " ");
        if (i == 0 && (s.flag || s.prepend_first) && !p.empty() && p[0] == ' ') p.erase(0, 1);
      }
    }
    if (s.type == "Fuse") {  // later steps see one piece
      std::string all;
      for (const std::string& p : pieces) all += p;
      pieces = {all};
    }
  }
  std::string out;
  for (const std::string& p : pieces) out += p;
  return out;
}

int64_t Tokenizer::vocab_size() const {
  return impl_->sentencepiece ? impl_->sentencepiece->GetPieceSize() : static_cast<int64_t>(impl_->id_to_token.size());
}

int32_t Tokenizer::TokenId(std::string_view content) const {
  if (impl_->sentencepiece) {
    const int id = impl_->sentencepiece->PieceToId(content);
    return id == impl_->sentencepiece->unk_id() && content != impl_->sentencepiece->IdToPiece(id) ? -1 : id;
  }
  for (const auto& [text, id] : impl_->added) {
    if (text == content) return id;
  }
  return -1;
}

}  // namespace fp4forge::engine
