#pragma once
// config.json of a Hugging Face RecurrentGemma checkpoint -> typed, validated configuration
// (docs/formats.md §2.1, docs/recurrent_gemma.md §1).

#include <cmath>    // std::sqrt
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int32_t, std::int64_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "glrnn/core/math.hpp"
#include "glrnn/io/json_config.hpp"
#include "glrnn/layers/attention.hpp"
#include "glrnn/layers/mlp.hpp"
#include "glrnn/layers/recurrent_block.hpp"
#include "glrnn/layers/rmsnorm.hpp"

namespace glrnn {

enum class GriffinBlockType { Recurrent, Attention };

struct RecurrentGemmaConfig {
  std::int64_t hidden_size = 0;          // D
  std::int64_t num_layers = 0;           // L
  std::int64_t vocab_size = 0;           // V
  std::int64_t num_heads = 0;            // H: attention heads and RG-LRU gate blocks
  std::int64_t num_kv_heads = 0;         // Hkv
  std::int64_t head_dim = 0;             // D / H
  std::int64_t lru_width = 0;            // Dr
  std::int64_t intermediate_size = 0;    // twice the MLP branch width
  std::int64_t window = 0;               // W
  std::int64_t conv_width = 0;           // K
  float logits_soft_cap = 30.0f;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  double partial_rotary_factor = 0.5;
  bool attention_bias = false;
  bool tie_word_embeddings = true;
  std::vector<GriffinBlockType> block_types;  // the pattern, tiled over the layers
  std::int32_t bos_token_id = 2, eos_token_id = 1, pad_token_id = 0;
  /// Not from config.json: a load option (LoadOptions::rope_bf16_frequencies).
  bool rope_bf16_frequencies = false;

  /// Parses and validates. Throws ConfigError naming the file and the key.
  static RecurrentGemmaConfig from_json(const JsonConfig& json) {
    const std::string model_type = json.string_or("model_type", "recurrent_gemma");
    GLRNN_CHECK(model_type == "recurrent_gemma", ConfigError,
                json.where("model_type") + " is '" + model_type + "', expected 'recurrent_gemma'");
    RecurrentGemmaConfig c;
    c.hidden_size = json.integer("hidden_size");
    c.num_layers = json.integer("num_hidden_layers");
    c.vocab_size = json.integer("vocab_size");
    c.num_heads = json.integer("num_attention_heads");
    c.intermediate_size = json.integer("intermediate_size");
    c.num_kv_heads = json.integer_or("num_key_value_heads", c.num_heads);
    c.lru_width = json.integer_or("lru_width", c.hidden_size);
    // transformers 5.x may also write the window as sliding_window.
    c.window = json.integer_or("attention_window_size", json.integer_or("sliding_window", 2048));
    c.conv_width = json.integer_or("conv1d_width", 4);
    c.logits_soft_cap = static_cast<float>(json.number_or("logits_soft_cap", 30.0));
    c.rms_norm_eps = static_cast<float>(json.number_or("rms_norm_eps", 1e-6));
    // transformers 5.x writes RoPE settings inside rope_parameters; 4.x at the top level.
    c.rope_theta = static_cast<float>(json.number_or("rope_parameters.rope_theta", json.number_or("rope_theta", 1e4)));
    c.partial_rotary_factor = json.number_or("rope_parameters.partial_rotary_factor",
                                             json.number_or("partial_rotary_factor", 0.5));
    const std::string rope_type = json.string_or("rope_parameters.rope_type", "default");
    GLRNN_CHECK(rope_type == "default", ConfigError,
                json.where("rope_parameters.rope_type") + " is '" + rope_type + "'; only 'default' is supported");
    c.attention_bias = json.boolean_or("attention_bias", false);
    c.tie_word_embeddings = json.boolean_or("tie_word_embeddings", true);
    const std::string activation = json.string_or("hidden_activation", "gelu_pytorch_tanh");
    GLRNN_CHECK(activation == "gelu_pytorch_tanh", ConfigError,
                json.where("hidden_activation") + " is '" + activation + "'; only 'gelu_pytorch_tanh' is supported");
    // Configs written by transformers 4.40 spell it _block_types.
    const char* types_key = json.has("block_types") ? "block_types" : "_block_types";
    const std::vector<std::string> names = json.has(types_key)
                                               ? json.strings(types_key)
                                               : std::vector<std::string>{"recurrent", "recurrent", "attention"};
    GLRNN_CHECK(!names.empty(), ConfigError, json.where(types_key) + " is empty");
    for (const std::string& name : names) {
      GLRNN_CHECK(name == "recurrent" || name == "attention", ConfigError,
                  json.where(types_key) + " holds '" + name + "'; expected 'recurrent' or 'attention'");
      c.block_types.push_back(name == "recurrent" ? GriffinBlockType::Recurrent : GriffinBlockType::Attention);
    }
    c.bos_token_id = static_cast<std::int32_t>(json.integer_or("bos_token_id", 2));
    c.eos_token_id = static_cast<std::int32_t>(json.integer_or("eos_token_id", 1));
    c.pad_token_id = static_cast<std::int32_t>(json.integer_or("pad_token_id", 0));
    c.validate(json);
    return c;
  }

  static RecurrentGemmaConfig load(const std::string& path) { return from_json(JsonConfig::load(path)); }

  /// Width of each MLP branch: intermediate_size is twice it (docs/recurrent_gemma.md §1).
  std::int64_t mlp_width() const { return intermediate_size / 2; }
  /// Block types are tiled: layer l uses block_types[l mod len] (docs/recurrent_gemma.md §6).
  GriffinBlockType block_type(std::int64_t layer) const {
    return block_types[static_cast<std::size_t>(layer) % block_types.size()];
  }
  std::int64_t rotary_dims() const { return static_cast<std::int64_t>(head_dim * partial_rotary_factor); }
  /// sqrt(D) rounded to bfloat16, as the reference's bf16 buffer holds it (docs/recurrent_gemma.md §3).
  float embedding_scale() const { return round_to_bf16(std::sqrt(static_cast<double>(hidden_size))); }

  RmsNormConfig norm() const { return {hidden_size, rms_norm_eps, /*unit_offset=*/true}; }
  MlpConfig mlp() const { return {hidden_size, mlp_width(), Activation::GeluTanh}; }
  RecurrentBlockConfig recurrent_block() const { return {hidden_size, lru_width, num_heads, conv_width}; }
  AttentionConfig attention() const {
    return {hidden_size, num_heads, num_kv_heads, head_dim, window, rotary_dims(), rope_theta, rope_bf16_frequencies};
  }

  /// Bytes of one sequence's state (docs/recurrent_gemma.md §12), from the configuration alone.
  std::size_t state_bytes() const {
    std::size_t n = 0;
    for (std::int64_t l = 0; l < num_layers; ++l)
      n += block_type(l) == GriffinBlockType::Recurrent ? RecurrentBlockState::bytes(recurrent_block())
                                                        : AttentionState::bytes(attention());
    return n;
  }

 private:
  void validate(const JsonConfig& json) {
    // Bounds keep every derived size and product far from overflow; real models are well inside.
    const auto in_range = [&](const char* key, std::int64_t value, std::int64_t max) {
      GLRNN_CHECK(value >= 1 && value <= max, ConfigError,
                  json.where(key) + " is " + std::to_string(value) + "; expected 1 to " + std::to_string(max));
    };
    constexpr std::int64_t kMaxWidth = 1 << 20, kMaxVocab = 1 << 24, kMaxLayers = 4096, kMaxWindow = 1 << 24;
    in_range("hidden_size", hidden_size, kMaxWidth);
    in_range("num_hidden_layers", num_layers, kMaxLayers);
    in_range("vocab_size", vocab_size, kMaxVocab);
    in_range("num_attention_heads", num_heads, kMaxWidth);
    in_range("num_key_value_heads", num_kv_heads, num_heads);
    in_range("lru_width", lru_width, kMaxWidth);
    in_range("intermediate_size", intermediate_size, 2 * kMaxWidth);
    in_range("attention_window_size", window, kMaxWindow);
    in_range("conv1d_width", conv_width, 1024);
    GLRNN_CHECK(hidden_size % num_heads == 0, ConfigError,
                json.where("hidden_size") + " (" + std::to_string(hidden_size) +
                    ") is not divisible by num_attention_heads (" + std::to_string(num_heads) + ")");
    GLRNN_CHECK(lru_width % num_heads == 0, ConfigError,
                json.where("lru_width") + " (" + std::to_string(lru_width) +
                    ") is not divisible by num_attention_heads (" + std::to_string(num_heads) + ")");
    GLRNN_CHECK(num_heads % num_kv_heads == 0, ConfigError,
                json.where("num_key_value_heads") + " (" + std::to_string(num_kv_heads) +
                    ") does not divide num_attention_heads (" + std::to_string(num_heads) + ")");
    GLRNN_CHECK(intermediate_size % 2 == 0, ConfigError,
                json.where("intermediate_size") + " must be even (two MLP branches)");
    // transformers derives head_dim and ignores a stored value (docs/formats.md §2.1).
    head_dim = hidden_size / num_heads;
    const double rotated = head_dim * partial_rotary_factor;
    GLRNN_CHECK(partial_rotary_factor > 0.0 && partial_rotary_factor <= 1.0 && rotary_dims() % 2 == 0 &&
                    rotated == static_cast<double>(rotary_dims()),
                ConfigError,
                json.where("partial_rotary_factor") + " gives " + std::to_string(rotated) +
                    " rotary dims per head; expected an even whole number");
    GLRNN_CHECK(rope_theta > 0.0f, ConfigError, json.where("rope_theta") + " must be positive");
    GLRNN_CHECK(rms_norm_eps > 0.0f, ConfigError, json.where("rms_norm_eps") + " must be positive");
    GLRNN_CHECK(logits_soft_cap > 0.0f, ConfigError, json.where("logits_soft_cap") + " must be positive");
    GLRNN_CHECK(bos_token_id >= 0 && bos_token_id < vocab_size && eos_token_id >= 0 && eos_token_id < vocab_size,
                ConfigError, json.source() + ": bos_token_id and eos_token_id must be inside the vocabulary");
  }
};

}  // namespace glrnn
