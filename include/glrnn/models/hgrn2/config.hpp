#pragma once
// config.json of a flash-linear-attention HGRN2 checkpoint -> typed, validated configuration
// (docs/formats.md §3.1, docs/hgrn2.md §1). The fields every fla family shares, hybrid attention
// layers included, are FlaConfig's (models/fla_common.hpp).

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/layers/hgrn2.hpp"
#include "glrnn/models/fla_common.hpp"

namespace glrnn {

struct Hgrn2Config : FlaConfig {
  std::int64_t num_heads = 0;  // H
  std::int64_t key_dim = 0;    // dk = expand_ratio
  std::int64_t value_dim = 0;  // dv = D / H
  bool use_short_conv = false, conv_bias = false, use_lower_bound = true, elementwise_affine = true;
  std::int64_t conv_size = 4;

  /// Parses and validates. Throws ConfigError naming the file and the key.
  static Hgrn2Config from_json(const JsonConfig& json, const LoadOptions& options = {}) {
    Hgrn2Config c;
    static_cast<FlaConfig&>(c) = FlaConfig::parse(json, options, "hgrn2", 4.0);
    // expand_ratio wins over num_heads when both are set (docs/hgrn2.md §1).
    if (json.has("expand_ratio")) {
      c.key_dim = json.integer("expand_ratio");
      in_range(json, "expand_ratio", c.key_dim, c.hidden_size);
      GLRNN_CHECK(c.hidden_size % c.key_dim == 0, ConfigError,
                  json.where("expand_ratio") + " (" + std::to_string(c.key_dim) + ") does not divide hidden_size (" +
                      std::to_string(c.hidden_size) + ")");
      c.num_heads = c.hidden_size / c.key_dim;
    } else {
      c.num_heads = json.integer("num_heads");
      in_range(json, "num_heads", c.num_heads, c.hidden_size);
      GLRNN_CHECK(c.hidden_size % c.num_heads == 0, ConfigError,
                  json.where("num_heads") + " does not divide hidden_size");
      c.key_dim = c.hidden_size / c.num_heads;
    }
    GLRNN_CHECK(c.hidden_size % c.num_heads == 0, ConfigError, json.source() + ": hidden_size is not divisible by the heads");
    c.value_dim = c.hidden_size / c.num_heads;
    c.use_short_conv = json.boolean_or("use_short_conv", false);
    c.conv_size = json.integer_or("conv_size", 4);
    in_range(json, "conv_size", c.conv_size, 1024);
    c.conv_bias = json.boolean_or("conv_bias", false);
    c.use_lower_bound = json.boolean_or("use_lower_bound", true);
    GLRNN_CHECK(!c.use_lower_bound || c.num_heads * c.key_dim == c.hidden_size, ConfigError,
                json.source() + ": lower bounds need num_heads x expand_ratio == hidden_size");
    c.elementwise_affine = json.boolean_or("elementwise_affine", true);
    return c;
  }

  static Hgrn2Config load(const std::string& path) { return from_json(JsonConfig::load(path)); }

  std::int64_t forget_dim() const { return num_heads * key_dim; }
  Hgrn2MixerConfig mixer() const {
    Hgrn2MixerConfig m;
    m.hidden = hidden_size;
    m.heads = num_heads;
    m.key_dim = key_dim;
    m.value_dim = value_dim;
    m.short_conv = use_short_conv;
    m.conv_size = conv_size;
    m.chunk_size = recurrence_chunk.value_or(m.chunk_size);
    return m;
  }
  /// Bytes of one sequence's state at position 0 (docs/hgrn2.md §5).
  std::size_t state_bytes() const { return FlaConfig::state_bytes(Hgrn2MixerState::bytes(mixer())); }
};

}  // namespace glrnn
