#pragma once
// load_tokenizer: a Hugging Face tokenizer.json (or a folder holding one) -> Tokenizer. Every
// component type outside the supported SentencePiece-BPE family is an error naming the type, so
// a tokenizer is never applied half-understood.

#include <cstdint>           // std::int32_t, std::int64_t
#include <filesystem>        // std::filesystem::is_directory
#include <fstream>           // std::ifstream
#include <sstream>           // std::ostringstream
#include <string>            // std::string
#include <unordered_map>     // std::unordered_map
#include <unordered_set>     // std::unordered_set
#include <utility>           // std::pair
#include <vector>            // std::vector

#include <nlohmann/json.hpp>

#include "glrnn/tokenizer/tokenizer.hpp"

namespace glrnn {

namespace detail {

class TokenizerJsonReader {
 public:
  explicit TokenizerJsonReader(std::string path) : path_(std::move(path)) {}

  Tokenizer read(const nlohmann::json& j) const {
    expect(j.is_object(), "the top level is not a JSON object");
    BpeModel model = read_model(field(j, "model"));
    std::vector<AddedToken> added;
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
      expect(j["added_tokens"].is_array(), "'added_tokens' is not a list");
      for (const nlohmann::json& t : j["added_tokens"]) added.push_back(read_added(t));
    }
    std::vector<NormalizerStep> normalizer;
    read_normalizer(j.value("normalizer", nlohmann::json()), normalizer);
    std::vector<PreTokenizerStep> pre;
    read_pre_tokenizer(j.value("pre_tokenizer", nlohmann::json()), pre);
    std::vector<DecoderStep> decoder;
    read_decoder(j.value("decoder", nlohmann::json()), decoder);
    const std::int64_t vocab_size = checked_vocab_size(model, added);
    std::vector<TemplateItem> single =
        read_post_processor(j.value("post_processor", nlohmann::json()), model, added, vocab_size);
    return Tokenizer(std::move(model), std::move(added), std::move(normalizer), std::move(pre), std::move(single),
                     std::move(decoder));
  }

 private:
  /// The tokenizer keeps one piece per id from 0 to the largest id, so a few sparse ids in a small
  /// file (found by fuzzing: one id near 2^30 asked for 25 GB) must be refused. Real vocabularies
  /// are dense; a margin allows the odd unused id. Returns the vocabulary size, the largest id + 1.
  std::int64_t checked_vocab_size(const BpeModel& model, const std::vector<AddedToken>& added) const {
    constexpr std::int64_t kMaxUnusedIds = 65536;
    std::int64_t max_id = -1;
    for (const auto& [piece, id] : model.vocab()) max_id = std::max<std::int64_t>(max_id, id);
    for (const AddedToken& t : added) max_id = std::max<std::int64_t>(max_id, t.id);
    const auto defined = static_cast<std::int64_t>(model.vocab().size() + added.size());
    expect(max_id < defined + kMaxUnusedIds,
           "token ids go up to " + std::to_string(max_id) + " but only " + std::to_string(defined) +
               " tokens are defined; ids must be dense (at most " + std::to_string(kMaxUnusedIds) + " unused)");
    return max_id + 1;
  }
  [[noreturn]] void fail(const std::string& what) const { throw FormatError(path_ + ": " + what); }
  void expect(bool ok, const std::string& what) const {
    if (!ok) fail(what);
  }
  const nlohmann::json& field(const nlohmann::json& j, const char* key) const {
    expect(j.is_object() && j.contains(key), std::string("missing '") + key + "'");
    return j[key];
  }
  std::string string_field(const nlohmann::json& j, const char* key) const {
    const nlohmann::json& v = field(j, key);
    expect(v.is_string(), std::string("'") + key + "' is not a string");
    return v.get<std::string>();
  }
  bool bool_field(const nlohmann::json& j, const char* key, bool fallback) const {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    expect(j[key].is_boolean(), std::string("'") + key + "' is not true or false");
    return j[key].get<bool>();
  }
  /// An optional count, bounded so that a loop over it always ends quickly.
  int count_field(const nlohmann::json& j, const char* key) const {
    constexpr std::int64_t kMaxCount = 1 << 20;
    if (!j.contains(key) || j[key].is_null()) return 0;
    const nlohmann::json& v = j[key];
    expect(v.is_number_integer() && v.get<std::int64_t>() >= 0 && v.get<std::int64_t>() <= kMaxCount,
           std::string("'") + key + "' is not a count from 0 to " + std::to_string(kMaxCount));
    return static_cast<int>(v.get<std::int64_t>());
  }
  std::string type_of(const nlohmann::json& j, const char* component) const {
    expect(j.is_object() && j.contains("type") && j["type"].is_string(), std::string(component) + " has no type");
    return j["type"].get<std::string>();
  }
  [[noreturn]] void unsupported(const char* component, const std::string& type) const {
    fail(std::string("unsupported ") + component + " type '" + type + "'");
  }
  /// A literal pattern {"String": s}; regular expressions are not supported.
  std::string literal_pattern(const nlohmann::json& j, const char* component) const {
    const nlohmann::json& p = field(j, "pattern");
    if (p.is_object() && p.contains("Regex")) fail(std::string(component) + " with a Regex pattern is not supported");
    expect(p.is_object() && p.contains("String") && p["String"].is_string(),
           std::string(component) + " pattern is not {\"String\": ...}");
    return p["String"].get<std::string>();
  }

  BpeModel read_model(const nlohmann::json& m) const {
    expect(m.is_object(), "'model' is not an object");
    const std::string type = m.contains("type") && !m["type"].is_null() ? string_field(m, "type") : "BPE";
    if (type != "BPE") unsupported("model", type);
    const auto null_or_empty = [&](const char* key) {
      return !m.contains(key) || m[key].is_null() || (m[key].is_string() && m[key].get<std::string>().empty());
    };
    expect(null_or_empty("continuing_subword_prefix"), "BPE continuing_subword_prefix is not supported");
    expect(null_or_empty("end_of_word_suffix"), "BPE end_of_word_suffix is not supported");
    expect(!m.contains("dropout") || m["dropout"].is_null() || (m["dropout"].is_number() && m["dropout"].get<double>() <= 0.0),
           "BPE dropout is not supported");
    const nlohmann::json& vocab_json = field(m, "vocab");
    expect(vocab_json.is_object(), "model vocab is not an object");
    std::unordered_map<std::string, std::int32_t> vocab;
    std::unordered_set<std::int32_t> seen;  // a set, not a bitmap: a single huge id must not allocate
    for (const auto& [piece, id] : vocab_json.items()) {
      expect(id.is_number_integer() && id.get<std::int64_t>() >= 0 && id.get<std::int64_t>() < (1 << 30),
             "vocab entry '" + piece + "' has no valid id");
      const auto i = static_cast<std::int32_t>(id.get<std::int64_t>());
      expect(seen.insert(i).second, "vocab id " + std::to_string(i) + " is given to two pieces");
      vocab.emplace(piece, i);
    }
    std::vector<std::pair<std::string, std::string>> merges;
    const nlohmann::json& merges_json = field(m, "merges");
    expect(merges_json.is_array(), "model merges is not a list");
    merges.reserve(merges_json.size());
    for (const nlohmann::json& merge : merges_json) {
      if (merge.is_string()) {  // older files: "a b"
        const std::string s = merge.get<std::string>();
        const std::size_t space = s.find(' ');
        expect(space != std::string::npos && s.find(' ', space + 1) == std::string::npos, "merge '" + s + "' is not 'a b'");
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else {
        expect(merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string(),
               "a merge is neither 'a b' nor a pair of strings");
        merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      }
    }
    BpeModel::Options options;
    options.byte_fallback = bool_field(m, "byte_fallback", false);
    options.fuse_unk = bool_field(m, "fuse_unk", false);
    options.ignore_merges = bool_field(m, "ignore_merges", false);
    if (m.contains("unk_token") && !m["unk_token"].is_null()) {
      const std::string unk = string_field(m, "unk_token");
      const auto it = vocab.find(unk);
      expect(it != vocab.end(), "unk_token '" + unk + "' is not in the vocabulary");
      options.unk_id = it->second;
    }
    try {
      return BpeModel(std::move(vocab), merges, options);
    } catch (const FormatError& e) {
      fail(e.what());
    }
  }

  AddedToken read_added(const nlohmann::json& t) const {
    AddedToken a;
    const nlohmann::json& id = field(t, "id");
    expect(id.is_number_integer() && id.get<std::int64_t>() >= 0 && id.get<std::int64_t>() < (1 << 30),
           "an added token has no valid id");
    a.id = static_cast<std::int32_t>(id.get<std::int64_t>());
    a.content = string_field(t, "content");
    expect(!a.content.empty(), "added token " + std::to_string(a.id) + " is empty");
    a.special = bool_field(t, "special", false);
    a.lstrip = bool_field(t, "lstrip", false);
    a.rstrip = bool_field(t, "rstrip", false);
    a.normalized = bool_field(t, "normalized", !a.special);
    a.single_word = bool_field(t, "single_word", false);
    return a;
  }

  void read_normalizer(const nlohmann::json& j, std::vector<NormalizerStep>& out) const {
    if (j.is_null()) return;
    const std::string type = type_of(j, "normalizer");
    if (type == "Sequence") {
      for (const nlohmann::json& n : field(j, "normalizers")) read_normalizer(n, out);
    } else if (type == "Replace") {
      out.push_back({NormalizerStep::Kind::Replace, literal_pattern(j, "Replace normalizer"), string_field(j, "content")});
    } else if (type == "Prepend") {
      out.push_back({NormalizerStep::Kind::Prepend, "", string_field(j, "prepend")});
    } else {
      unsupported("normalizer", type);
    }
  }

  PreTokenizerStep::Prepend read_prepend_scheme(const nlohmann::json& j) const {
    using P = PreTokenizerStep::Prepend;
    if (j.contains("prepend_scheme")) {
      const std::string scheme = string_field(j, "prepend_scheme");
      if (scheme == "always") return P::Always;
      if (scheme == "first") return P::First;
      if (scheme == "never") return P::Never;
      fail("unknown Metaspace prepend_scheme '" + scheme + "'");
    }
    return bool_field(j, "add_prefix_space", true) ? P::Always : P::Never;  // before prepend_scheme existed
  }

  void read_pre_tokenizer(const nlohmann::json& j, std::vector<PreTokenizerStep>& out) const {
    if (j.is_null()) return;
    using B = PreTokenizerStep::Behavior;
    const std::string type = type_of(j, "pre_tokenizer");
    if (type == "Sequence") {
      for (const nlohmann::json& p : field(j, "pretokenizers")) read_pre_tokenizer(p, out);
    } else if (type == "Split") {
      PreTokenizerStep step;
      step.kind = PreTokenizerStep::Kind::Split;
      step.pattern = literal_pattern(j, "Split pre-tokenizer");
      expect(!bool_field(j, "invert", false), "Split pre-tokenizer with invert is not supported");
      const std::string behavior = string_field(j, "behavior");
      if (behavior == "Removed") step.behavior = B::Removed;
      else if (behavior == "Isolated") step.behavior = B::Isolated;
      else if (behavior == "MergedWithPrevious") step.behavior = B::MergedWithPrevious;
      else if (behavior == "MergedWithNext") step.behavior = B::MergedWithNext;
      else if (behavior == "Contiguous") step.behavior = B::Contiguous;
      else fail("unknown Split behavior '" + behavior + "'");
      out.push_back(step);
    } else if (type == "Metaspace") {
      PreTokenizerStep step;
      step.kind = PreTokenizerStep::Kind::Metaspace;
      step.pattern = string_field(j, "replacement");
      step.prepend = read_prepend_scheme(j);
      step.split = bool_field(j, "split", true);
      out.push_back(step);
    } else {
      unsupported("pre_tokenizer", type);
    }
  }

  static DecoderStep decoder_step(DecoderStep::Kind kind) {
    DecoderStep step;
    step.kind = kind;
    return step;
  }

  void read_decoder(const nlohmann::json& j, std::vector<DecoderStep>& out) const {
    if (j.is_null()) return;
    using K = DecoderStep::Kind;
    const std::string type = type_of(j, "decoder");
    if (type == "Sequence") {
      for (const nlohmann::json& d : field(j, "decoders")) read_decoder(d, out);
    } else if (type == "Replace") {
      out.push_back({K::Replace, literal_pattern(j, "Replace decoder"), string_field(j, "content")});
    } else if (type == "ByteFallback") {
      out.push_back(decoder_step(K::ByteFallback));
    } else if (type == "Fuse") {
      out.push_back(decoder_step(K::Fuse));
    } else if (type == "Strip") {
      DecoderStep step = decoder_step(K::Strip);
      step.content = string_field(j, "content");
      expect(!step.content.empty(), "Strip decoder has an empty 'content'");
      step.start = count_field(j, "start");
      step.stop = count_field(j, "stop");
      out.push_back(step);
    } else if (type == "Metaspace") {
      DecoderStep step = decoder_step(K::Metaspace);
      step.pattern = string_field(j, "replacement");
      step.prepend = read_prepend_scheme(j);
      out.push_back(step);
    } else {
      unsupported("decoder", type);
    }
  }

  std::vector<TemplateItem> read_post_processor(const nlohmann::json& j, const BpeModel& model,
                                                const std::vector<AddedToken>& added, std::int64_t vocab_size) const {
    std::vector<TemplateItem> items;
    if (j.is_null()) return items;
    const std::string type = type_of(j, "post_processor");
    if (type != "TemplateProcessing") unsupported("post_processor", type);
    const nlohmann::json& specials = j.value("special_tokens", nlohmann::json::object());
    for (const nlohmann::json& item : field(j, "single")) {
      if (item.contains("Sequence")) {
        items.push_back({true, {}});
        continue;
      }
      expect(item.contains("SpecialToken"), "TemplateProcessing item is neither Sequence nor SpecialToken");
      const std::string name = string_field(item["SpecialToken"], "id");
      TemplateItem t;
      if (specials.contains(name)) {
        for (const nlohmann::json& id : field(specials[name], "ids")) {
          expect(id.is_number_integer() && id.get<std::int64_t>() >= 0 && id.get<std::int64_t>() < vocab_size,
                 "special token '" + name + "' has an id outside the vocabulary");
          t.ids.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
        }
      } else {
        std::int32_t id = model.id_of(name);
        for (const AddedToken& a : added)
          if (a.content == name) id = a.id;
        expect(id >= 0, "template token '" + name + "' is not in the vocabulary");
        t.ids.push_back(id);
      }
      items.push_back(t);
    }
    return items;
  }

  std::string path_;
};

}  // namespace detail

/// Parses the text of a tokenizer.json; `source` names it in errors. Throws FormatError naming the
/// problem.
inline Tokenizer parse_tokenizer(const std::string& text, const std::string& source) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  GLRNN_CHECK(!j.is_discarded(), FormatError, source + ": not valid JSON");
  return detail::TokenizerJsonReader(source).read(j);
}

/// Loads a tokenizer.json, or the tokenizer.json inside a model folder. Throws IoError when the
/// file cannot be read and FormatError naming the file and the problem otherwise.
inline Tokenizer load_tokenizer(const std::string& path) {
  std::error_code ec;
  const std::string file =
      std::filesystem::is_directory(path, ec) ? (std::filesystem::path(path) / "tokenizer.json").string() : path;
  std::ifstream in(file, std::ios::binary);
  GLRNN_CHECK(in.good(), IoError, "cannot open '" + file + "'");
  std::ostringstream content;
  content << in.rdbuf();
  return parse_tokenizer(content.str(), file);
}

}  // namespace glrnn
