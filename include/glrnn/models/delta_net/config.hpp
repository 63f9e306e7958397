#pragma once
// config.json of an fla DeltaNet or Gated DeltaNet checkpoint -> typed, validated configuration
// (docs/delta_net.md §4). Both families run DeltaNetMixer; the fields every fla family shares,
// hybrid attention layers included, are FlaConfig's.

#include <cmath>    // std::floor
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/layers/delta_net.hpp"
#include "glrnn/models/fla_common.hpp"

namespace glrnn {

struct DeltaNetConfig : FlaConfig {
  DeltaNetMixerConfig mixer_config;

  /// DeltaNet (model_type "delta_net", gated false) or Gated DeltaNet ("gated_deltanet"), with that
  /// family's defaults. Throws ConfigError naming the file and the key.
  static DeltaNetConfig from_json(const JsonConfig& json, const LoadOptions& options, bool gated) {
    DeltaNetConfig c;
    static_cast<FlaConfig&>(c) = FlaConfig::parse(json, options, gated ? "gated_deltanet" : "delta_net", 4.0);
    DeltaNetMixerConfig& m = c.mixer_config;
    m.hidden = c.hidden_size;
    m.gated = gated;
    m.heads = json.integer_or("num_heads", gated ? 6 : 16);
    in_range(json, "num_heads", m.heads, c.hidden_size);
    if (gated) {
      // Gated DeltaNet sizes its heads directly: head_dim for keys, head_dim x expand_v for values.
      m.key_dim = json.integer_or("head_dim", 256);
      in_range(json, "head_dim", m.key_dim, kMaxWidth);
      const double expand_v = json.number_or("expand_v", 2.0);
      const double head_v = static_cast<double>(m.key_dim) * expand_v;
      GLRNN_CHECK(expand_v > 0.0 && head_v == std::floor(head_v) && head_v <= static_cast<double>(kMaxWidth), ConfigError,
                  json.where("expand_v") + " times head_dim must be a whole number of values per head");
      m.value_dim = static_cast<std::int64_t>(head_v);
      m.value_heads = json.integer_or("num_v_heads", m.heads);
      in_range(json, "num_v_heads", m.value_heads, kMaxWidth);
      GLRNN_CHECK(m.value_heads % m.heads == 0, ConfigError,
                  json.where("num_v_heads") + " must be a multiple of num_heads (each key head serves a group of value heads)");
      m.output_gate = json.boolean_or("use_gate", true);
    } else {
      // DeltaNet: int(hidden_size * expand), split evenly between the heads.
      const auto width = [&](const char* key) {
        const double expand = json.number_or(key, 1.0);
        GLRNN_CHECK(expand > 0.0 && expand <= 64.0, ConfigError, json.where(key) + " is out of range");
        const auto w = static_cast<std::int64_t>(std::floor(static_cast<double>(c.hidden_size) * expand));
        GLRNN_CHECK(w > 0 && w % m.heads == 0, ConfigError,
                    json.where(key) + " gives a width of " + std::to_string(w) + ", which num_heads does not divide");
        return w / m.heads;
      };
      m.key_dim = width("expand_k");
      m.value_dim = width("expand_v");
      m.value_heads = m.heads;
      m.output_gate = json.boolean_or("use_gate", false);
      m.use_beta = json.boolean_or("use_beta", true);
      const std::string activation = json.string_or("qk_activation", "silu");
      if (activation == "silu") {
        m.qk_activation = QkActivation::Silu;
      } else if (activation == "relu") {
        m.qk_activation = QkActivation::Relu;
      } else if (activation == "elu") {
        m.qk_activation = QkActivation::EluPlusOne;
      } else if (activation == "identity") {
        m.qk_activation = QkActivation::Identity;
      } else {
        throw ConfigError(json.where("qk_activation") + " is '" + activation + "'; fla allows silu, relu, elu and identity");
      }
      const std::string norm = json.string_or("qk_norm", "l2");
      GLRNN_CHECK(norm == "l2" || norm == "sum", ConfigError,
                  json.where("qk_norm") + " is '" + norm + "'; fla allows l2 and sum");
      m.qk_norm = norm == "l2" ? QkNorm::L2 : QkNorm::Sum;
    }
    m.allow_neg_eigval = json.boolean_or("allow_neg_eigval", false);
    m.short_conv = json.boolean_or("use_short_conv", true);
    m.conv_size = json.integer_or("conv_size", 4);
    in_range(json, "conv_size", m.conv_size, 1024);
    m.norm_eps = c.norm_eps;
    return c;
  }

  DeltaNetMixerConfig mixer() const {
    DeltaNetMixerConfig m = mixer_config;
    m.chunk_size = recurrence_chunk.value_or(m.chunk_size);
    if (bf16_activations) m.precision = kernels::Precision::Bf16;
    return m;
  }
  /// Bytes of one sequence's state at position 0 (docs/delta_net.md §5).
  std::size_t state_bytes() const { return FlaConfig::state_bytes(DeltaNetMixerState::bytes(mixer())); }
};

}  // namespace glrnn
