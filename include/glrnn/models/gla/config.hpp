#pragma once
// config.json of an fla GLA or RetNet checkpoint -> typed, validated configuration (docs/gla.md §3,
// docs/retnet.md §3). Both families run GlaMixer; they differ in their decay, their defaults and
// the fields they read. The fields every fla family shares are FlaConfig's.

#include <cmath>    // std::floor
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/layers/gla.hpp"
#include "glrnn/models/fla_common.hpp"

namespace glrnn {

struct GlaConfig : FlaConfig {
  GlaDecay decay = GlaDecay::LowRankGate;  // GLA, or retention (RetNet)
  std::int64_t num_heads = 0, num_kv_heads = 0;
  std::int64_t head_k_dim = 0, head_v_dim = 0;
  FeatureMap feature_map = FeatureMap::None;
  bool use_short_conv = false;  // GLA only: fla's RetNet layer is built without its config's short convolutions
  std::int64_t conv_size = 4;
  bool use_output_gate = true;
  bool clamp = false;  // GLA: clamp_min given
  float clamp_min = 0.0f;
  bool elementwise_affine = true;

  /// GLA (model_type "gla") or RetNet ("retnet"), with that family's defaults. Throws ConfigError
  /// naming the file and the key.
  static GlaConfig from_json(const JsonConfig& json, const LoadOptions& options, GlaDecay decay) {
    const bool gla = decay == GlaDecay::LowRankGate;
    GlaConfig c;
    static_cast<FlaConfig&>(c) = FlaConfig::parse(json, options, gla ? "gla" : "retnet", gla ? 4.0 : 2.0);
    c.decay = decay;
    c.num_heads = json.integer_or("num_heads", gla ? 4 : 8);
    in_range(json, "num_heads", c.num_heads, c.hidden_size);
    c.num_kv_heads = json.integer_or("num_kv_heads", c.num_heads);
    in_range(json, "num_kv_heads", c.num_kv_heads, c.num_heads);
    GLRNN_CHECK(c.num_heads % c.num_kv_heads == 0, ConfigError, json.where("num_kv_heads") + " must divide num_heads");
    // fla: int(hidden_size * expand), then split evenly between the heads.
    const auto width = [&](const char* key, double fallback) {
      const double expand = json.number_or(key, fallback);
      GLRNN_CHECK(expand > 0.0 && expand <= 64.0, ConfigError, json.where(key) + " is out of range");
      const auto w = static_cast<std::int64_t>(std::floor(static_cast<double>(c.hidden_size) * expand));
      GLRNN_CHECK(w > 0 && w % c.num_heads == 0, ConfigError,
                  json.where(key) + " gives a width of " + std::to_string(w) + ", which num_heads (" +
                      std::to_string(c.num_heads) + ") does not divide");
      return w / c.num_heads;
    };
    c.head_k_dim = width("expand_k", gla ? 0.5 : 1.0);
    c.head_v_dim = width("expand_v", gla ? 1.0 : 2.0);
    GLRNN_CHECK(gla || c.head_k_dim <= 256, ConfigError,
                json.where("expand_k") + ": fla's retention supports key heads of at most 256 (here " +
                    std::to_string(c.head_k_dim) + ")");
    c.feature_map = parse_feature_map(json);
    if (gla) {
      c.use_short_conv = json.boolean_or("use_short_conv", false);
      c.conv_size = json.integer_or("conv_size", 4);
      in_range(json, "conv_size", c.conv_size, 1024);
      if (json.has("clamp_min")) {
        c.clamp = true;
        c.clamp_min = static_cast<float>(json.number_or("clamp_min", 0.0));
      }
    }
    c.use_output_gate = json.boolean_or("use_output_gate", true);
    c.elementwise_affine = json.boolean_or("elementwise_affine", true);
    return c;
  }

  GlaMixerConfig mixer() const {
    GlaMixerConfig m;
    m.hidden = hidden_size;
    m.heads = num_heads;
    m.kv_heads = num_kv_heads;
    m.key_dim = head_k_dim;
    m.value_dim = head_v_dim;
    m.decay = decay;
    m.clamp = clamp;
    m.clamp_min = clamp_min;
    m.feature_map = feature_map;
    m.short_conv = use_short_conv;
    m.conv_size = conv_size;
    m.output_gate = use_output_gate;
    m.norm_eps = norm_eps;
    m.chunk_size = recurrence_chunk.value_or(m.chunk_size);
    return m;
  }
  /// Bytes of one sequence's state at position 0 (docs/gla.md §4).
  std::size_t state_bytes() const { return FlaConfig::state_bytes(GlaMixerState::bytes(mixer())); }

 private:
  static FeatureMap parse_feature_map(const JsonConfig& json) {
    if (!json.has("feature_map")) return FeatureMap::None;
    const std::string name = json.string_or("feature_map", "");
    if (name == "relu") return FeatureMap::Relu;
    if (name == "sigmoid") return FeatureMap::Sigmoid;
    if (name == "silu" || name == "swish") return FeatureMap::Silu;
    if (name == "sqrelu") return FeatureMap::SquaredRelu;
    if (name == "logsigmoid") return FeatureMap::LogSigmoid;
    throw ConfigError(json.where("feature_map") + " is '" + name +
                      "'; glrnn implements relu, sigmoid, silu, swish, sqrelu and logsigmoid");
  }
};

}  // namespace glrnn
