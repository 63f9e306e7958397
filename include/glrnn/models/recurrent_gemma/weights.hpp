#pragma once
// The RecurrentGemma tensor table: every Hugging Face tensor name (docs/formats.md §2.2) with its
// shape from the configuration and its role for the weight recipe, fetched into the layers'
// weight structs. The only place these names appear.

#include <cstdint>  // std::int64_t
#include <string>   // std::string, std::to_string

#include "glrnn/io/tensor_source.hpp"
#include "glrnn/layers/attention.hpp"
#include "glrnn/layers/mlp.hpp"
#include "glrnn/layers/recurrent_block.hpp"
#include "glrnn/models/recurrent_gemma/config.hpp"

namespace glrnn::recurrent_gemma {

inline std::string layer_prefix(std::int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

inline LinearWeights linear(TensorReader& w, const std::string& name, std::int64_t in, std::int64_t out, bool bias,
                            MatrixRole role) {
  return {w.matrix(name + ".weight", {out, in}, role), bias ? w.vector(name + ".bias", {out}) : TensorView<const float>{}};
}

/// The embedding, also the output head when tied (an lm_head.weight is then ignored, as
/// transformers ties it): stored as the head's role wants, the costlier of the two uses.
inline WeightMatrix embedding(TensorReader& w, const RecurrentGemmaConfig& c) {
  return w.matrix("model.embed_tokens.weight", {c.vocab_size, c.hidden_size},
                  c.tie_word_embeddings ? MatrixRole::Head : MatrixRole::Embedding);
}

inline WeightMatrix output_head(TensorReader& w, const RecurrentGemmaConfig& c) {
  if (c.tie_word_embeddings) return embedding(w, c);
  return w.matrix("lm_head.weight", {c.vocab_size, c.hidden_size}, MatrixRole::Head);
}

inline TensorView<const float> final_norm(TensorReader& w, const RecurrentGemmaConfig& c) {
  return w.vector("model.final_norm.weight", {c.hidden_size});
}
inline TensorView<const float> temporal_norm(TensorReader& w, const RecurrentGemmaConfig& c, std::int64_t l) {
  return w.vector(layer_prefix(l) + "temporal_pre_norm.weight", {c.hidden_size});
}
inline TensorView<const float> channel_norm(TensorReader& w, const RecurrentGemmaConfig& c, std::int64_t l) {
  return w.vector(layer_prefix(l) + "channel_pre_norm.weight", {c.hidden_size});
}

inline MlpWeights mlp(TensorReader& w, const RecurrentGemmaConfig& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "mlp_block.";
  const std::int64_t D = c.hidden_size, F = c.mlp_width();
  return {linear(w, p + "gate_proj", D, F, true, MatrixRole::MlpIn), linear(w, p + "up_proj", D, F, true, MatrixRole::MlpIn),
          linear(w, p + "down_proj", F, D, true, MatrixRole::MlpOut)};
}

inline RecurrentBlockWeights recurrent_block(TensorReader& w, const RecurrentGemmaConfig& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "temporal_block.";
  const std::int64_t D = c.hidden_size, Dr = c.lru_width, H = c.num_heads, bw = Dr / H;
  RecurrentBlockWeights b;
  b.linear_y = linear(w, p + "linear_y", D, Dr, true, MatrixRole::Projection);
  b.linear_x = linear(w, p + "linear_x", D, Dr, true, MatrixRole::Projection);
  b.linear_out = linear(w, p + "linear_out", Dr, D, true, MatrixRole::Projection);
  b.conv_1d = {w.vector(p + "conv_1d.weight", {Dr, 1, c.conv_width}), w.vector(p + "conv_1d.bias", {Dr})};
  // Read once, row by row, to be transposed per block (RgLru::Gates).
  b.rg_lru.input_gate_weight = w.matrix(p + "rg_lru.input_gate_weight", {H, bw, bw}, MatrixRole::Dense, RowOrder::Rows);
  b.rg_lru.recurrent_gate_weight =
      w.matrix(p + "rg_lru.recurrent_gate_weight", {H, bw, bw}, MatrixRole::Dense, RowOrder::Rows);
  b.rg_lru.input_gate_bias = w.vector(p + "rg_lru.input_gate_bias", {H, bw});
  b.rg_lru.recurrent_gate_bias = w.vector(p + "rg_lru.recurrent_gate_bias", {H, bw});
  b.rg_lru.recurrent_param = w.vector(p + "rg_lru.recurrent_param", {Dr});
  return b;
}

inline AttentionWeights attention(TensorReader& w, const RecurrentGemmaConfig& c, std::int64_t l) {
  const std::string p = layer_prefix(l) + "temporal_block.";
  const std::int64_t D = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  const MatrixRole role = MatrixRole::Projection;
  // q/k/v carry biases only with attention_bias; o_proj always has one (docs/recurrent_gemma.md §8).
  return {linear(w, p + "q_proj", D, q, c.attention_bias, role), linear(w, p + "k_proj", D, kv, c.attention_bias, role),
          linear(w, p + "v_proj", D, kv, c.attention_bias, role), linear(w, p + "o_proj", q, D, true, role)};
}

}  // namespace glrnn::recurrent_gemma
