#pragma once
// Checked access to a config.json: required and optional keys, nested keys ("a.b"), type checks,
// and errors that name the file and the key.

#include <cmath>        // std::floor
#include <cstdint>      // std::int64_t, std::uint64_t, INT64_MAX
#include <fstream>      // std::ifstream
#include <sstream>      // std::ostringstream
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include <nlohmann/json.hpp>

#include "glrnn/core/error.hpp"

namespace glrnn {

class JsonConfig {
 public:
  /// source names the document in error messages (usually the file path).
  JsonConfig(nlohmann::json json, std::string source) : json_(std::move(json)), source_(std::move(source)) {
    GLRNN_CHECK(json_.is_object(), FormatError, source_ + ": expected a JSON object");
  }

  /// Reads and parses a JSON file. Throws IoError or FormatError.
  static JsonConfig load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    GLRNN_CHECK(in.good(), IoError, "cannot open '" + path + "'");
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), path);
  }

  /// Parses JSON text; `source` names it in errors. Throws FormatError.
  static JsonConfig parse(const std::string& text, const std::string& source) {
    nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    GLRNN_CHECK(!json.is_discarded(), FormatError, source + ": not valid JSON");
    return JsonConfig(std::move(json), source);
  }

  const nlohmann::json& json() const { return json_; }
  const std::string& source() const { return source_; }

  /// The value at a dotted key path, or nullptr when absent or null.
  const nlohmann::json* find(std::string_view key) const {
    const nlohmann::json* node = &json_;
    while (true) {
      const std::size_t dot = key.find('.');
      const std::string part(key.substr(0, dot));
      if (!node->is_object()) return nullptr;
      auto it = node->find(part);
      if (it == node->end() || it->is_null()) return nullptr;
      node = &*it;
      if (dot == std::string_view::npos) return node;
      key.remove_prefix(dot + 1);
    }
  }
  bool has(std::string_view key) const { return find(key) != nullptr; }

  std::int64_t integer(std::string_view key) const { return as_integer(required(key), key); }
  std::int64_t integer_or(std::string_view key, std::int64_t fallback) const {
    const nlohmann::json* v = find(key);
    return v ? as_integer(*v, key) : fallback;
  }
  double number(std::string_view key) const { return as_number(required(key), key); }
  double number_or(std::string_view key, double fallback) const {
    const nlohmann::json* v = find(key);
    return v ? as_number(*v, key) : fallback;
  }
  bool boolean_or(std::string_view key, bool fallback) const {
    const nlohmann::json* v = find(key);
    if (!v) return fallback;
    GLRNN_CHECK(v->is_boolean(), ConfigError, where(key) + " must be true or false, got " + v->dump());
    return v->get<bool>();
  }
  std::string string(std::string_view key) const { return as_string(required(key), key); }
  std::string string_or(std::string_view key, const std::string& fallback) const {
    const nlohmann::json* v = find(key);
    return v ? as_string(*v, key) : fallback;
  }
  std::vector<std::string> strings(std::string_view key) const {
    const nlohmann::json& v = required(key);
    GLRNN_CHECK(v.is_array(), ConfigError, where(key) + " must be a list of strings, got " + v.dump());
    std::vector<std::string> out;
    for (const nlohmann::json& item : v) out.push_back(as_string(item, key));
    return out;
  }

  /// "config.json: key 'hidden_size'"
  std::string where(std::string_view key) const { return source_ + ": key '" + std::string(key) + "'"; }

 private:
  const nlohmann::json& required(std::string_view key) const {
    const nlohmann::json* v = find(key);
    GLRNN_CHECK(v != nullptr, ConfigError, source_ + ": missing required key '" + std::string(key) + "'");
    return *v;
  }
  std::int64_t as_integer(const nlohmann::json& v, std::string_view key) const {
    GLRNN_CHECK(!v.is_number_unsigned() || v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX),
                ConfigError, where(key) + " is too large: " + v.dump());
    if (v.is_number_integer()) return v.get<std::int64_t>();
    // 64.0 is an integer too; anything else is not, and neither is a number beyond int64.
    const bool integral_float = v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                                v.get<double>() >= -9.2e18 && v.get<double>() <= 9.2e18;
    GLRNN_CHECK(integral_float, ConfigError, where(key) + " must be an integer, got " + v.dump());
    return static_cast<std::int64_t>(v.get<double>());
  }
  double as_number(const nlohmann::json& v, std::string_view key) const {
    GLRNN_CHECK(v.is_number(), ConfigError, where(key) + " must be a number, got " + v.dump());
    return v.get<double>();
  }
  std::string as_string(const nlohmann::json& v, std::string_view key) const {
    GLRNN_CHECK(v.is_string(), ConfigError, where(key) + " must be a string, got " + v.dump());
    return v.get<std::string>();
  }

  nlohmann::json json_;
  std::string source_;
};

}  // namespace glrnn
