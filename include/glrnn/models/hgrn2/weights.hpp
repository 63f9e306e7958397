#pragma once
// The HGRN2 tensor table (fla layout, formats.md §3.2): every tensor name with its shape from the
// configuration. The only place these names appear. Store: see recurrent_gemma/weights.hpp.

#include <cstdint>  // std::int64_t
#include <string>   // std::string, std::to_string

#include "glrnn/layers/hgrn2.hpp"
#include "glrnn/layers/mlp.hpp"
#include "glrnn/models/hgrn2/config.hpp"

namespace glrnn::hgrn2 {

inline std::string layer_prefix(std::int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

template <class T, class Store>
TensorView<const T> embedding(Store& store, const Hgrn2Config& c) {
  return store.template matrix<T>("model.embeddings.weight", {c.vocab_size, c.hidden_size});
}

/// lm_head.weight, or the embedding when tie_word_embeddings.
template <class T, class Store>
TensorView<const T> output_head(Store& store, const Hgrn2Config& c) {
  if (c.tie_word_embeddings) return embedding<T>(store, c);
  return store.template matrix<T>("lm_head.weight", {c.vocab_size, c.hidden_size});
}

template <class Store>
TensorView<const float> final_norm(Store& store, const Hgrn2Config& c) {
  return store.vector("model.norm.weight", {c.hidden_size});
}
template <class Store>
TensorView<const float> lower_bounds(Store& store, const Hgrn2Config& c) {
  return store.vector("model.lower_bounds", {c.num_layers, c.hidden_size});
}
template <class Store>
TensorView<const float> attn_norm(Store& store, const Hgrn2Config& c, std::int64_t l) {
  return store.vector(layer_prefix(l) + "attn_norm.weight", {c.hidden_size});
}
template <class Store>
TensorView<const float> mlp_norm(Store& store, const Hgrn2Config& c, std::int64_t l) {
  return store.vector(layer_prefix(l) + "mlp_norm.weight", {c.hidden_size});
}

template <class T, class Store>
Hgrn2MixerWeights<T> mixer(Store& store, const Hgrn2Config& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "attn.";
  const std::int64_t D = c.hidden_size, F = c.forget_dim();
  Hgrn2MixerWeights<T> w;
  w.q_proj.weight = store.template matrix<T>(p + "q_proj.weight", {F, D});
  w.f_proj.weight = store.template matrix<T>(p + "f_proj.weight", {F, D});
  w.i_proj.weight = store.template matrix<T>(p + "i_proj.weight", {D, D});
  w.o_proj.weight = store.template matrix<T>(p + "o_proj.weight", {D, D});
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
/// gate, [I, 2I) the up projection; formats.md §3.2), recognised by the absent up_proj.
template <class T, class Store>
MlpWeights<T> mlp(Store& store, const Hgrn2Config& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "mlp.";
  const std::int64_t D = c.hidden_size, I = c.intermediate_size;
  MlpWeights<T> w;
  w.down_proj.weight = store.template matrix<T>(p + "down_proj.weight", {D, I});
  if (store.has(p + "up_proj.weight")) {
    w.gate_proj.weight = store.template matrix<T>(p + "gate_proj.weight", {I, D});
    w.up_proj.weight = store.template matrix<T>(p + "up_proj.weight", {I, D});
  } else {
    const TensorView<const T> fused = store.template matrix<T>(p + "gate_proj.weight", {2 * I, D});
    w.gate_proj.weight = {fused.data, Shape{I, D}};
    w.up_proj.weight = {fused.row(I), Shape{I, D}};
  }
  return w;
}

}  // namespace glrnn::hgrn2
