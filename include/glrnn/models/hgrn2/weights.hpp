#pragma once
// The HGRN2 tensor table (fla layout, docs/formats.md §3.2): every tensor name with its shape from
// the configuration and its role for the weight recipe. The only place these names appear.

#include <cstdint>  // std::int64_t
#include <string>   // std::string, std::to_string

#include "glrnn/io/tensor_source.hpp"
#include "glrnn/layers/hgrn2.hpp"
#include "glrnn/layers/mlp.hpp"
#include "glrnn/models/hgrn2/config.hpp"

namespace glrnn::hgrn2 {

inline std::string layer_prefix(std::int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

/// The embedding, stored as the head's role wants when it is also the head.
inline WeightMatrix embedding(TensorReader& w, const Hgrn2Config& c) {
  return w.matrix("model.embeddings.weight", {c.vocab_size, c.hidden_size},
                  c.tie_word_embeddings ? MatrixRole::Head : MatrixRole::Embedding);
}

/// lm_head.weight, or the embedding when tie_word_embeddings.
inline WeightMatrix output_head(TensorReader& w, const Hgrn2Config& c) {
  if (c.tie_word_embeddings) return embedding(w, c);
  return w.matrix("lm_head.weight", {c.vocab_size, c.hidden_size}, MatrixRole::Head);
}

inline TensorView<const float> final_norm(TensorReader& w, const Hgrn2Config& c) {
  return w.vector("model.norm.weight", {c.hidden_size});
}
inline TensorView<const float> lower_bounds(TensorReader& w, const Hgrn2Config& c) {
  return w.vector("model.lower_bounds", {c.num_layers, c.hidden_size});
}
inline TensorView<const float> attn_norm(TensorReader& w, const Hgrn2Config& c, std::int64_t l) {
  return w.vector(layer_prefix(l) + "attn_norm.weight", {c.hidden_size});
}
inline TensorView<const float> mlp_norm(TensorReader& w, const Hgrn2Config& c, std::int64_t l) {
  return w.vector(layer_prefix(l) + "mlp_norm.weight", {c.hidden_size});
}

inline Hgrn2MixerWeights mixer(TensorReader& store, const Hgrn2Config& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "attn.";
  const std::int64_t D = c.hidden_size, F = c.forget_dim();
  const MatrixRole role = MatrixRole::Projection;
  Hgrn2MixerWeights w;
  w.q_proj.weight = store.matrix(p + "q_proj.weight", {F, D}, role);
  w.f_proj.weight = store.matrix(p + "f_proj.weight", {F, D}, role);
  w.i_proj.weight = store.matrix(p + "i_proj.weight", {D, D}, role);
  w.o_proj.weight = store.matrix(p + "o_proj.weight", {D, D}, role);
  if (c.elementwise_affine) w.g_norm = store.vector(p + "g_norm.weight", {D});
  if (c.use_short_conv) {
    const auto conv = [&](const char* name, std::int64_t channels) {
      return Conv1dWeights{store.vector(p + name + ".weight", {channels, 1, c.conv_size}),
                           c.conv_bias ? store.vector(p + name + ".bias", {channels}) : TensorView<const float>{}};
    };
    w.q_conv = conv("q_conv1d", F);
    w.f_conv = conv("f_conv1d", F);
    w.i_conv = conv("i_conv1d", D);
  }
  return w;
}

/// SwiGLU weights; older fla checkpoints fuse gate and up into gate_proj [2I, D] (rows [0, I) the
/// gate, [I, 2I) the up projection; docs/formats.md §3.2), recognised by the absent up_proj.
inline MlpWeights mlp(TensorReader& store, const Hgrn2Config& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "mlp.";
  const std::int64_t D = c.hidden_size, I = c.intermediate_size;
  MlpWeights w;
  w.down_proj.weight = store.matrix(p + "down_proj.weight", {D, I}, MatrixRole::MlpOut);
  if (store.has(p + "up_proj.weight")) {
    w.gate_proj.weight = store.matrix(p + "gate_proj.weight", {I, D}, MatrixRole::MlpIn);
    w.up_proj.weight = store.matrix(p + "up_proj.weight", {I, D}, MatrixRole::MlpIn);
  } else {
    const WeightMatrix fused = store.matrix(p + "gate_proj.weight", {2 * I, D}, MatrixRole::MlpIn);
    w.gate_proj.weight = {fused.data, fused.type, I, D};
    w.up_proj.weight = {fused.row(I), fused.type, I, D};
  }
  return w;
}

}  // namespace glrnn::hgrn2
