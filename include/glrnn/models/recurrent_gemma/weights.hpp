#pragma once
// The RecurrentGemma tensor table: every Hugging Face tensor name (formats.md §2.2) with its shape
// from the configuration, fetched into the layers' weight structs. The only place these names appear.
// A Store is anything with `matrix<T>(name, shape)` and `vector(name, shape)` returning views: a
// WeightStore over a checkpoint, or random weights in the benchmarks.

#include <cstdint>  // std::int64_t
#include <string>   // std::string, std::to_string

#include "glrnn/layers/local_attention.hpp"
#include "glrnn/layers/mlp.hpp"
#include "glrnn/layers/recurrent_block.hpp"
#include "glrnn/models/recurrent_gemma/config.hpp"

namespace glrnn::recurrent_gemma {

inline std::string layer_prefix(std::int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

template <class T, class Store>
LinearWeights<T> linear(Store& store, const std::string& name, std::int64_t in, std::int64_t out, bool bias) {
  return {store.template matrix<T>(name + ".weight", {out, in}), bias ? store.vector(name + ".bias", {out})
                                                             : TensorView<const float>{}};
}

template <class T, class Store>
TensorView<const T> embedding(Store& store, const RecurrentGemmaConfig& c) {
  return store.template matrix<T>("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
}

/// The output head: the embedding when tied (an lm_head.weight is then ignored, as transformers
/// ties it), else lm_head.weight.
template <class T, class Store>
TensorView<const T> output_head(Store& store, const RecurrentGemmaConfig& c) {
  if (c.tie_word_embeddings) return embedding<T>(store, c);
  return store.template matrix<T>("lm_head.weight", {c.vocab_size, c.hidden_size});
}

template <class Store>
TensorView<const float> final_norm(Store& store, const RecurrentGemmaConfig& c) {
  return store.vector("model.final_norm.weight", {c.hidden_size});
}
template <class Store>
TensorView<const float> temporal_norm(Store& store, const RecurrentGemmaConfig& c, std::int64_t l) {
  return store.vector(layer_prefix(l) + "temporal_pre_norm.weight", {c.hidden_size});
}
template <class Store>
TensorView<const float> channel_norm(Store& store, const RecurrentGemmaConfig& c, std::int64_t l) {
  return store.vector(layer_prefix(l) + "channel_pre_norm.weight", {c.hidden_size});
}

template <class T, class Store>
MlpWeights<T> mlp(Store& store, const RecurrentGemmaConfig& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "mlp_block.";
  const std::int64_t D = c.hidden_size, F = c.mlp_width();
  return {linear<T>(store, p + "gate_proj", D, F, true), linear<T>(store, p + "up_proj", D, F, true),
          linear<T>(store, p + "down_proj", F, D, true)};
}

template <class T, class Store>
RecurrentBlockWeights<T> recurrent_block(Store& store, const RecurrentGemmaConfig& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "temporal_block.";
  const std::int64_t D = c.hidden_size, Dr = c.lru_width, H = c.num_heads, bw = Dr / H;
  RecurrentBlockWeights<T> w;
  w.linear_y = linear<T>(store, p + "linear_y", D, Dr, true);
  w.linear_x = linear<T>(store, p + "linear_x", D, Dr, true);
  w.linear_out = linear<T>(store, p + "linear_out", Dr, D, true);
  w.conv_1d = {store.vector(p + "conv_1d.weight", {Dr, 1, c.conv_width}), store.vector(p + "conv_1d.bias", {Dr})};
  w.rg_lru.input_gate_weight = store.template matrix<dense_storage_t<T>>(p + "rg_lru.input_gate_weight", {H, bw, bw});
  w.rg_lru.recurrent_gate_weight = store.template matrix<dense_storage_t<T>>(p + "rg_lru.recurrent_gate_weight", {H, bw, bw});
  w.rg_lru.input_gate_bias = store.vector(p + "rg_lru.input_gate_bias", {H, bw});
  w.rg_lru.recurrent_gate_bias = store.vector(p + "rg_lru.recurrent_gate_bias", {H, bw});
  w.rg_lru.recurrent_param = store.vector(p + "rg_lru.recurrent_param", {Dr});
  return w;
}

template <class T, class Store>
LocalAttentionWeights<T> attention(Store& store, const RecurrentGemmaConfig& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "temporal_block.";
  const std::int64_t D = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  // q/k/v carry biases only with attention_bias; o_proj always has one (recurrentgemma.md §8).
  return {linear<T>(store, p + "q_proj", D, q, c.attention_bias), linear<T>(store, p + "k_proj", D, kv, c.attention_bias),
          linear<T>(store, p + "v_proj", D, kv, c.attention_bias), linear<T>(store, p + "o_proj", q, D, true)};
}

}  // namespace glrnn::recurrent_gemma
