#pragma once
// What every flash-linear-attention (fla) family shares (docs/hybrid_attention.md): the config.json
// fields read the same way by HGRN, HGRN2, GLA and RetNet, the hybrid attention layers of `attn`,
// the tensor table of the parts around the token mixer (embedding, norms, SwiGLU MLP, head,
// attention), and the stack builder that puts a family's mixer or softmax attention in each layer.

#include <cmath>     // std::floor, std::isfinite
#include <cstddef>   // std::size_t
#include <cstdint>   // std::int32_t, std::int64_t
#include <optional>  // std::optional
#include <string>    // std::string, std::to_string
#include <utility>   // std::move
#include <vector>    // std::vector

#include "glrnn/io/json_config.hpp"
#include "glrnn/io/tensor_source.hpp"
#include "glrnn/layers/attention.hpp"
#include "glrnn/layers/mlp.hpp"
#include "glrnn/layers/residual_block.hpp"
#include "glrnn/layers/rmsnorm.hpp"
#include "glrnn/models/decoder_stack.hpp"
#include "glrnn/models/family.hpp"

namespace glrnn {

/// One softmax-attention layer of a hybrid (fla's `attn` entry, models/hybrid.py).
struct FlaAttentionSpec {
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;
  bool qkv_bias = false;
  std::int64_t window = 0;  // 0: full causal attention (window_size null)
  float rope_theta = 10000.0f;
};

/// The configuration every fla family reads the same way; a family's own config derives from it.
struct FlaConfig {
  static constexpr std::int64_t kMaxWidth = 1 << 20;
  /// The maximum context of full-attention layers when neither the load options nor config.json's
  /// max_position_embeddings give one.
  static constexpr std::int64_t kDefaultMaxContext = 8192;

  std::int64_t hidden_size = 0;        // D
  std::int64_t num_layers = 0;         // L
  std::int64_t vocab_size = 0;         // V
  std::int64_t intermediate_size = 0;  // MLP width
  float norm_eps = 1e-6f;
  bool tie_word_embeddings = false;
  std::int32_t bos_token_id = 1, eos_token_id = 2;
  std::int64_t max_context = 0;  // full-attention layers: the most positions a sequence may reach
  std::optional<std::int64_t> recurrence_chunk;  // LoadOptions::recurrence_chunk; unset: the mixer's default
  bool bf16_activations = false;  // LoadOptions::bf16_activations: the delta rule's chunk products round too
  std::vector<std::optional<FlaAttentionSpec>> attention;  // [L]: the layers that are softmax attention

  /// Parses the shared fields and `attn`. default_hidden_ratio: the family's default when neither
  /// intermediate_size nor hidden_ratio is given. Throws ConfigError naming the file and key.
  static FlaConfig parse(const JsonConfig& json, const LoadOptions& options, const std::string& model_type,
                         double default_hidden_ratio) {
    const std::string type = json.string_or("model_type", model_type);
    GLRNN_CHECK(type == model_type, ConfigError, json.where("model_type") + " is '" + type + "', expected '" + model_type + "'");
    // Fields that change the computation and that glrnn does not implement: refused by name.
    GLRNN_CHECK(!json.has("attnres_block_size"), ConfigError,
                json.where("attnres_block_size") + " enables attention residuals, which glrnn does not implement");
    const std::string act = json.string_or("hidden_act", "swish");
    GLRNN_CHECK(act == "swish" || act == "silu", ConfigError,
                json.where("hidden_act") + " is '" + act + "'; only 'swish' is supported");
    FlaConfig c;
    c.hidden_size = json.integer("hidden_size");
    c.num_layers = json.integer("num_hidden_layers");
    c.vocab_size = json.integer("vocab_size");
    in_range(json, "hidden_size", c.hidden_size, kMaxWidth);
    in_range(json, "num_hidden_layers", c.num_layers, 4096);
    in_range(json, "vocab_size", c.vocab_size, 1 << 24);
    c.tie_word_embeddings = json.boolean_or("tie_word_embeddings", false);
    // Older configs spell it rms_norm_eps.
    c.norm_eps = static_cast<float>(json.number_or("norm_eps", json.number_or("rms_norm_eps", 1e-6)));
    GLRNN_CHECK(c.norm_eps > 0.0f, ConfigError, json.where("norm_eps") + " must be positive");
    if (json.has("intermediate_size")) {
      c.intermediate_size = json.integer("intermediate_size");
    } else {
      // fla's GatedMLP: int(D * hidden_ratio * 2/3) rounded up to a multiple of 256 (docs/hgrn2.md §7)
      const double ratio = json.number_or("hidden_ratio", default_hidden_ratio);
      GLRNN_CHECK(ratio > 0.0 && ratio < 1e4, ConfigError, json.where("hidden_ratio") + " is out of range");
      const auto raw = static_cast<std::int64_t>(std::floor(static_cast<double>(c.hidden_size) * ratio * 2.0 / 3.0));
      c.intermediate_size = 256 * ((raw + 255) / 256);
    }
    in_range(json, "intermediate_size", c.intermediate_size, 4 * kMaxWidth);
    c.bos_token_id = static_cast<std::int32_t>(json.integer_or("bos_token_id", 1));
    c.eos_token_id = static_cast<std::int32_t>(json.integer_or("eos_token_id", 2));
    GLRNN_CHECK(c.bos_token_id >= 0 && c.bos_token_id < c.vocab_size && c.eos_token_id >= 0 &&
                    c.eos_token_id < c.vocab_size,
                ConfigError, json.source() + ": bos_token_id and eos_token_id must be inside the vocabulary");
    c.attention = parse_attention(json, c.num_layers, c.hidden_size);
    c.max_context = options.max_context > 0 ? options.max_context
                                            : json.integer_or("max_position_embeddings", kDefaultMaxContext);
    GLRNN_CHECK(c.max_context > 0, ConfigError, json.where("max_position_embeddings") + " must be positive");
    GLRNN_CHECK(options.recurrence_chunk.value_or(0) >= 0, ConfigError, "the recurrence chunk must not be negative");
    c.recurrence_chunk = options.recurrence_chunk;
    c.bf16_activations = options.bf16_activations;
    return c;
  }

  bool is_attention(std::int64_t layer) const { return attention[static_cast<std::size_t>(layer)].has_value(); }
  /// Every norm of the block and the final norm: plain weight, norm_eps.
  RmsNormConfig norm() const { return {hidden_size, norm_eps, /*unit_offset=*/false}; }
  MlpConfig mlp() const { return {hidden_size, intermediate_size, Activation::Silu}; }
  /// fla's Attention (layers/attn.py): head_dim = D / heads, rotate-half RoPE over all of it.
  AttentionConfig attention_config(std::int64_t layer) const {
    const FlaAttentionSpec& spec = *attention[static_cast<std::size_t>(layer)];
    AttentionConfig a;
    a.hidden = hidden_size;
    a.heads = spec.heads;
    a.kv_heads = spec.kv_heads;
    a.head_dim = hidden_size / spec.heads;
    a.window = spec.window;
    a.rotary_dims = a.head_dim;
    a.rope_theta = spec.rope_theta;
    a.max_context = max_context;
    return a;
  }
  /// Bytes of the attention layers' caches at position 0 (windows are allocated whole).
  std::size_t attention_state_bytes() const {
    std::size_t n = 0;
    for (std::int64_t l = 0; l < num_layers; ++l)
      if (is_attention(l)) n += AttentionState::bytes(attention_config(l));
    return n;
  }
  /// What one more position adds to a state: the keys and values of the full-attention layers.
  std::size_t state_bytes_per_position() const {
    std::size_t n = 0;
    for (std::int64_t l = 0; l < num_layers; ++l)
      if (is_attention(l) && attention[static_cast<std::size_t>(l)]->window == 0)
        n += AttentionState::bytes_at(attention_config(l), 1);
    return n;
  }
  std::int64_t recurrent_layers() const {
    std::int64_t n = 0;
    for (std::int64_t l = 0; l < num_layers; ++l) n += is_attention(l) ? 0 : 1;
    return n;
  }
  /// Bytes of one sequence's state at position 0, given one recurrent layer's.
  std::size_t state_bytes(std::size_t per_recurrent_layer) const {
    return static_cast<std::size_t>(recurrent_layers()) * per_recurrent_layer + attention_state_bytes();
  }
  ModelSummary summary(std::size_t per_recurrent_layer) const {
    ModelSummary s{vocab_size, hidden_size, num_layers, bos_token_id, eos_token_id, state_bytes(per_recurrent_layer)};
    s.state_bytes_per_position = state_bytes_per_position();
    s.max_context = state_bytes_per_position() > 0 ? max_context : 0;
    return s;
  }

  static void in_range(const JsonConfig& json, const char* key, std::int64_t value, std::int64_t max) {
    GLRNN_CHECK(value >= 1 && value <= max, ConfigError,
                json.where(key) + " is " + std::to_string(value) + "; expected 1 to " + std::to_string(max));
  }

 private:
  /// `attn`: null, one spec or a list of specs, validated as fla's normalize_hybrid_attention_config
  /// does, plus what glrnn's attention needs (heads dividing the width and grouping, an even head).
  static std::vector<std::optional<FlaAttentionSpec>> parse_attention(const JsonConfig& json, std::int64_t layers,
                                                                      std::int64_t hidden) {
    std::vector<std::optional<FlaAttentionSpec>> out(static_cast<std::size_t>(layers));
    const nlohmann::json* attn = json.find("attn");
    if (attn == nullptr) return out;
    GLRNN_CHECK(attn->is_object() || attn->is_array(), ConfigError,
                json.where("attn") + " must be null, an object or a list of objects");
    const std::vector<nlohmann::json> specs = attn->is_object() ? std::vector<nlohmann::json>{*attn}
                                                                : attn->get<std::vector<nlohmann::json>>();
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const std::string where = attn->is_object() ? std::string("attn") : "attn[" + std::to_string(i) + "]";
      GLRNN_CHECK(specs[i].is_object(), ConfigError, json.where(where) + " must be an object");
      const auto field = [&](const char* name) { return where + "." + name; };
      const auto positive = [&](const char* name, const nlohmann::json& v) {
        GLRNN_CHECK(v.is_number_integer() && v.get<std::int64_t>() > 0, ConfigError,
                    json.where(field(name)) + " must be a positive integer");
        return v.get<std::int64_t>();
      };
      const nlohmann::json& s = specs[i];
      GLRNN_CHECK(s.contains("layers") && s["layers"].is_array(), ConfigError, json.where(field("layers")) + " must be a list");
      GLRNN_CHECK(s.contains("num_heads"), ConfigError, json.where(field("num_heads")) + " is required");
      FlaAttentionSpec spec;
      spec.heads = positive("num_heads", s["num_heads"]);
      spec.kv_heads = s.contains("num_kv_heads") && !s["num_kv_heads"].is_null() ? positive("num_kv_heads", s["num_kv_heads"])
                                                                                 : spec.heads;
      if (s.contains("qkv_bias")) {
        GLRNN_CHECK(s["qkv_bias"].is_boolean(), ConfigError, json.where(field("qkv_bias")) + " must be a Boolean");
        spec.qkv_bias = s["qkv_bias"].get<bool>();
      }
      if (s.contains("window_size") && !s["window_size"].is_null()) spec.window = positive("window_size", s["window_size"]);
      if (s.contains("rope_theta")) {
        const nlohmann::json& theta = s["rope_theta"];
        GLRNN_CHECK(theta.is_number() && !theta.is_boolean() && std::isfinite(theta.get<double>()) && theta.get<double>() > 0,
                    ConfigError, json.where(field("rope_theta")) + " must be positive and finite");
        spec.rope_theta = static_cast<float>(theta.get<double>());
      }
      GLRNN_CHECK(hidden % spec.heads == 0 && (hidden / spec.heads) % 2 == 0, ConfigError,
                  json.where(field("num_heads")) + ": hidden_size " + std::to_string(hidden) +
                      " must split into num_heads heads of an even width");
      GLRNN_CHECK(spec.heads % spec.kv_heads == 0, ConfigError,
                  json.where(field("num_kv_heads")) + " must divide num_heads");
      for (const nlohmann::json& layer : s["layers"]) {
        GLRNN_CHECK(layer.is_number_integer() && layer.get<std::int64_t>() >= 0 && layer.get<std::int64_t>() < layers,
                    ConfigError,
                    json.where(field("layers")) + " holds " + layer.dump() + "; expected layer indices 0 to " +
                        std::to_string(layers - 1));
        auto& slot = out[static_cast<std::size_t>(layer.get<std::int64_t>())];
        GLRNN_CHECK(!slot, ConfigError, json.where(field("layers")) + " assigns layer " + layer.dump() + " twice");
        slot = spec;
      }
    }
    return out;
  }
};

namespace fla {

inline std::string layer_prefix(std::int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

/// The embedding, stored as the head's role wants when it is also the head.
inline WeightMatrix embedding(TensorReader& w, const FlaConfig& c) {
  return w.matrix("model.embeddings.weight", {c.vocab_size, c.hidden_size},
                  c.tie_word_embeddings ? MatrixRole::Head : MatrixRole::Embedding);
}

/// lm_head.weight, or the embedding when tie_word_embeddings.
inline WeightMatrix output_head(TensorReader& w, const FlaConfig& c) {
  if (c.tie_word_embeddings) return embedding(w, c);
  return w.matrix("lm_head.weight", {c.vocab_size, c.hidden_size}, MatrixRole::Head);
}

/// HGRN's and HGRN2's forget-gate floors before the softmax over layers (fla_lower_bounds).
inline TensorView<const float> lower_bounds(TensorReader& w, const FlaConfig& c) {
  return w.vector("model.lower_bounds", {c.num_layers, c.hidden_size});
}

inline TensorView<const float> final_norm(TensorReader& w, const FlaConfig& c) {
  return w.vector("model.norm.weight", {c.hidden_size});
}
inline TensorView<const float> attn_norm(TensorReader& w, const FlaConfig& c, std::int64_t l) {
  return w.vector(layer_prefix(l) + "attn_norm.weight", {c.hidden_size});
}
inline TensorView<const float> mlp_norm(TensorReader& w, const FlaConfig& c, std::int64_t l) {
  return w.vector(layer_prefix(l) + "mlp_norm.weight", {c.hidden_size});
}

/// SwiGLU weights; older fla checkpoints fuse gate and up into gate_proj [2I, D] (rows [0, I) the
/// gate, [I, 2I) the up projection; docs/formats.md §3.2), recognised by the absent up_proj.
inline MlpWeights mlp(TensorReader& store, const FlaConfig& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "mlp.";
  const std::int64_t D = c.hidden_size, I = c.intermediate_size;
  MlpWeights w;
  w.down_proj.weight = store.matrix(p + "down_proj.weight", {D, I}, MatrixRole::MlpOut);
  if (store.has(p + "up_proj.weight")) {
    w.gate_proj.weight = store.matrix(p + "gate_proj.weight", {I, D}, MatrixRole::MlpIn);
    w.up_proj.weight = store.matrix(p + "up_proj.weight", {I, D}, MatrixRole::MlpIn);
  } else {
    // Split at row I: in row groups only where I ends a group.
    const WeightMatrix fused = store.matrix(p + "gate_proj.weight", {2 * I, D}, MatrixRole::MlpIn,
                                            I % kRowGroup == 0 ? RowOrder::Groups : RowOrder::Rows);
    w.gate_proj.weight = fused.row_range(0, I);
    w.up_proj.weight = fused.row_range(I, I);
  }
  return w;
}

/// A hybrid's softmax-attention layer (fla's layers/attn.py): q/k/v with optional biases, o_proj.
inline AttentionWeights attention(TensorReader& store, const FlaConfig& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "attn.";
  const AttentionConfig a = c.attention_config(l);
  const bool bias = c.attention[static_cast<std::size_t>(l)]->qkv_bias;
  const std::int64_t D = c.hidden_size, q = a.heads * a.head_dim, kv = a.kv_width();
  const auto linear = [&](const char* name, std::int64_t out, std::int64_t in, bool with_bias) {
    LinearWeights w;
    w.weight = store.matrix(p + name + ".weight", {out, in}, MatrixRole::Projection);
    if (with_bias) w.bias = store.vector(p + name + ".bias", {out});
    return w;
  };
  return {linear("q_proj", q, D, bias), linear("k_proj", kv, D, bias), linear("v_proj", kv, D, bias),
          linear("o_proj", D, q, false)};
}

}  // namespace fla

/// The forget-gate floor of every layer from model.lower_bounds [L, D] (docs/hgrn2.md §4): a softmax
/// over the layers per channel, its cumulative sum, minus the first term. Row 0 is exactly 0 and
/// rows do not decrease; computed once, in float32 like the reference. HGRN and HGRN2 use it.
inline RowMatrixXf fla_lower_bounds(const TensorView<const float>& raw) {
  const Eigen::Map<const RowMatrixXf> logits(raw.data, raw.shape[0], raw.shape[1]);
  RowMatrixXf p = (logits.rowwise() - logits.colwise().maxCoeff()).array().exp();
  p.array().rowwise() /= p.colwise().sum().array();
  RowMatrixXf bounds(p.rows(), p.cols());
  Eigen::RowVectorXf running = p.row(0);
  bounds.row(0).setZero();
  for (Eigen::Index l = 1; l < p.rows(); ++l) {
    running += p.row(l);
    bounds.row(l) = running - p.row(0);
  }
  return bounds;
}

/// Layer l's floor; layer 0 runs without one, as fla does (its bound is 0 anyway).
inline Eigen::VectorXf fla_layer_bound(const RowMatrixXf& bounds, std::int64_t l) {
  return bounds.size() > 0 && l > 0 ? Eigen::VectorXf(bounds.row(l).transpose()) : Eigen::VectorXf();
}

/// An fla network whose recurrent layers use Mixer: each block is the family's mixer or, where
/// `attn` says so, softmax attention, with the same norms and MLP around it.
template <class Mixer>
using FlaStack = DecoderStack<RmsNorm, LinearHead, ResidualBlock<RmsNorm, Mixer, Mlp>, ResidualBlock<RmsNorm, Attention, Mlp>>;

/// Builds an FlaStack; make_mixer(l) builds the family's mixer of layer l.
template <class Mixer, class MakeMixer>
FlaStack<Mixer> build_fla_stack(const FlaConfig& c, TensorReader& w, MakeMixer&& make_mixer) {
  using Stack = FlaStack<Mixer>;
  std::vector<typename Stack::Block> blocks;
  blocks.reserve(static_cast<std::size_t>(c.num_layers));
  for (std::int64_t l = 0; l < c.num_layers; ++l) {
    RmsNorm before(c.norm(), fla::attn_norm(w, c, l));
    if (c.is_attention(l)) {
      Attention mixer(c.attention_config(l), fla::attention(w, c, l));
      blocks.emplace_back(ResidualBlock<RmsNorm, Attention, Mlp>(c.hidden_size, std::move(before), std::move(mixer),
                                                                 RmsNorm(c.norm(), fla::mlp_norm(w, c, l)),
                                                                 Mlp(c.mlp(), fla::mlp(w, c, l))));
    } else {
      Mixer mixer = make_mixer(l);
      blocks.emplace_back(ResidualBlock<RmsNorm, Mixer, Mlp>(c.hidden_size, std::move(before), std::move(mixer),
                                                             RmsNorm(c.norm(), fla::mlp_norm(w, c, l)),
                                                             Mlp(c.mlp(), fla::mlp(w, c, l))));
    }
  }
  return Stack(Embedding(fla::embedding(w, c), 1.0f), std::move(blocks), RmsNorm(c.norm(), fla::final_norm(w, c)),
               LinearHead(Linear(c.hidden_size, c.vocab_size, {fla::output_head(w, c), {}}, "lm_head")));
}

}  // namespace glrnn
