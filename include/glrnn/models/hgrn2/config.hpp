#pragma once
// config.json of a flash-linear-attention HGRN2 checkpoint -> typed, validated configuration
// (docs/formats.md §3.1, docs/hgrn2.md §1).

#include <cmath>    // std::floor
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int32_t, std::int64_t
#include <string>   // std::string

#include "glrnn/io/json_config.hpp"
#include "glrnn/layers/hgrn2.hpp"
#include "glrnn/layers/mlp.hpp"
#include "glrnn/layers/rmsnorm.hpp"

namespace glrnn {

struct Hgrn2Config {
  std::int64_t hidden_size = 0;        // D
  std::int64_t num_layers = 0;         // L
  std::int64_t vocab_size = 0;         // V
  std::int64_t num_heads = 0;          // H
  std::int64_t key_dim = 0;            // dk = expand_ratio
  std::int64_t value_dim = 0;          // dv = D / H
  std::int64_t intermediate_size = 0;  // MLP width
  bool use_short_conv = false, conv_bias = false, use_lower_bound = true, elementwise_affine = true;
  bool tie_word_embeddings = false;
  std::int64_t conv_size = 4;
  float norm_eps = 1e-6f;
  std::int32_t bos_token_id = 1, eos_token_id = 2;
  std::int64_t prefill_chunk = 64;  // not from config.json: the chunk of the parallel prefill form

  /// Parses and validates. Throws ConfigError naming the file and the key.
  static Hgrn2Config from_json(const JsonConfig& json) {
    const std::string model_type = json.string_or("model_type", "hgrn2");
    GLRNN_CHECK(model_type == "hgrn2", ConfigError, json.where("model_type") + " is '" + model_type + "', expected 'hgrn2'");
    GLRNN_CHECK(!json.has("attn"), ConfigError,
                json.where("attn") + " lists softmax-attention layers: hybrid HGRN2 models are not supported");
    Hgrn2Config c;
    c.hidden_size = json.integer("hidden_size");
    c.num_layers = json.integer("num_hidden_layers");
    c.vocab_size = json.integer("vocab_size");
    const auto in_range = [&](const char* key, std::int64_t value, std::int64_t max) {
      GLRNN_CHECK(value >= 1 && value <= max, ConfigError,
                  json.where(key) + " is " + std::to_string(value) + "; expected 1 to " + std::to_string(max));
    };
    constexpr std::int64_t kMaxWidth = 1 << 20;
    in_range("hidden_size", c.hidden_size, kMaxWidth);
    in_range("num_hidden_layers", c.num_layers, 4096);
    in_range("vocab_size", c.vocab_size, 1 << 24);
    // expand_ratio wins over num_heads when both are set (docs/hgrn2.md §1).
    if (json.has("expand_ratio")) {
      c.key_dim = json.integer("expand_ratio");
      in_range("expand_ratio", c.key_dim, c.hidden_size);
      GLRNN_CHECK(c.hidden_size % c.key_dim == 0, ConfigError,
                  json.where("expand_ratio") + " (" + std::to_string(c.key_dim) + ") does not divide hidden_size (" +
                      std::to_string(c.hidden_size) + ")");
      c.num_heads = c.hidden_size / c.key_dim;
    } else {
      c.num_heads = json.integer("num_heads");
      in_range("num_heads", c.num_heads, c.hidden_size);
      GLRNN_CHECK(c.hidden_size % c.num_heads == 0, ConfigError,
                  json.where("num_heads") + " does not divide hidden_size");
      c.key_dim = c.hidden_size / c.num_heads;
    }
    GLRNN_CHECK(c.hidden_size % c.num_heads == 0, ConfigError, json.source() + ": hidden_size is not divisible by the heads");
    c.value_dim = c.hidden_size / c.num_heads;
    c.use_short_conv = json.boolean_or("use_short_conv", false);
    c.conv_size = json.integer_or("conv_size", 4);
    in_range("conv_size", c.conv_size, 1024);
    c.conv_bias = json.boolean_or("conv_bias", false);
    c.use_lower_bound = json.boolean_or("use_lower_bound", true);
    GLRNN_CHECK(!c.use_lower_bound || c.num_heads * c.key_dim == c.hidden_size, ConfigError,
                json.source() + ": lower bounds need num_heads x expand_ratio == hidden_size");
    c.elementwise_affine = json.boolean_or("elementwise_affine", true);
    c.tie_word_embeddings = json.boolean_or("tie_word_embeddings", false);
    // Older configs spell it rms_norm_eps.
    c.norm_eps = static_cast<float>(json.number_or("norm_eps", json.number_or("rms_norm_eps", 1e-6)));
    GLRNN_CHECK(c.norm_eps > 0.0f, ConfigError, json.where("norm_eps") + " must be positive");
    const std::string act = json.string_or("hidden_act", "swish");
    GLRNN_CHECK(act == "swish" || act == "silu", ConfigError,
                json.where("hidden_act") + " is '" + act + "'; only 'swish' is supported");
    if (json.has("intermediate_size")) {
      c.intermediate_size = json.integer("intermediate_size");
    } else {
      // fla: int(D * hidden_ratio * 2/3) rounded up to a multiple of 256 (docs/hgrn2.md §7)
      const double ratio = json.number_or("hidden_ratio", 4.0);
      GLRNN_CHECK(ratio > 0.0 && ratio < 1e4, ConfigError, json.where("hidden_ratio") + " is out of range");
      const auto raw = static_cast<std::int64_t>(std::floor(static_cast<double>(c.hidden_size) * ratio * 2.0 / 3.0));
      c.intermediate_size = 256 * ((raw + 255) / 256);
    }
    in_range("intermediate_size", c.intermediate_size, 4 * kMaxWidth);
    c.bos_token_id = static_cast<std::int32_t>(json.integer_or("bos_token_id", 1));
    c.eos_token_id = static_cast<std::int32_t>(json.integer_or("eos_token_id", 2));
    GLRNN_CHECK(c.bos_token_id >= 0 && c.bos_token_id < c.vocab_size && c.eos_token_id >= 0 &&
                    c.eos_token_id < c.vocab_size,
                ConfigError, json.source() + ": bos_token_id and eos_token_id must be inside the vocabulary");
    return c;
  }

  static Hgrn2Config load(const std::string& path) { return from_json(JsonConfig::load(path)); }

  std::int64_t forget_dim() const { return num_heads * key_dim; }
  /// Every norm of the block and the final norm: plain weight, norm_eps (docs/hgrn2.md §2).
  RmsNormConfig norm() const { return {hidden_size, norm_eps, /*unit_offset=*/false}; }
  MlpConfig mlp() const { return {hidden_size, intermediate_size, Activation::Silu}; }
  Hgrn2MixerConfig mixer() const {
    Hgrn2MixerConfig m;
    m.hidden = hidden_size;
    m.heads = num_heads;
    m.key_dim = key_dim;
    m.value_dim = value_dim;
    m.short_conv = use_short_conv;
    m.conv_size = conv_size;
    m.chunk_size = prefill_chunk;
    return m;
  }
  /// Bytes of one sequence's state (docs/hgrn2.md §5).
  std::size_t state_bytes() const { return static_cast<std::size_t>(num_layers) * Hgrn2MixerState::bytes(mixer()); }
};

}  // namespace glrnn
