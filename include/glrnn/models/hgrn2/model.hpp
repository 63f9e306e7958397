#pragma once
// HGRN2 (fla): the decoder stack with HGRN2 mixers and SwiGLU MLPs, plain RMSNorms, no embedding
// scale, an untied head and no soft cap (hgrn2.md §2).

#include <utility>  // std::move
#include <vector>   // std::vector

#include "glrnn/models/decoder_stack.hpp"
#include "glrnn/models/hgrn2/config.hpp"
#include "glrnn/models/hgrn2/weights.hpp"

namespace glrnn {

template <class T>
using Hgrn2 = DecoderStack<T, Hgrn2Mixer<T>>;

/// The forget-gate floor of every layer from model.lower_bounds [L, D] (hgrn2.md §4): a softmax
/// over the layers per channel, its cumulative sum, minus the first term. Row 0 is exactly 0 and
/// rows do not decrease; computed once, in float32 like the reference.
inline RowMatrixXf hgrn2_lower_bounds(const TensorView<const float>& raw) {
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

/// Builds the model from a store's tensors, checking every shape against the configuration.
template <class T, class Store>
Hgrn2<T> build_hgrn2(const Hgrn2Config& c, Store& store) {
  RowMatrixXf bounds;
  if (c.use_lower_bound) bounds = hgrn2_lower_bounds(hgrn2::lower_bounds(store, c));
  std::vector<typename Hgrn2<T>::Block> blocks;
  blocks.reserve(static_cast<std::size_t>(c.num_layers));
  for (std::int64_t l = 0; l < c.num_layers; ++l) {
    // Layer 0 runs without a bound, as fla does (its bound is 0 anyway).
    Eigen::VectorXf bound = c.use_lower_bound && l > 0 ? Eigen::VectorXf(bounds.row(l).transpose()) : Eigen::VectorXf();
    blocks.emplace_back(ResidualBlock<T, Hgrn2Mixer<T>>(
        RmsNorm(c.norm(), hgrn2::attn_norm(store, c, l)),
        Hgrn2Mixer<T>(c.mixer(), hgrn2::mixer<T>(store, c, l), std::move(bound)),
        RmsNorm(c.norm(), hgrn2::mlp_norm(store, c, l)), Mlp<T>(c.mlp(), hgrn2::mlp<T>(store, c, l))));
  }
  return Hgrn2<T>(Embedding<T>(hgrn2::embedding<T>(store, c), 1.0f), std::move(blocks),
                  RmsNorm(c.norm(), hgrn2::final_norm(store, c)),
                  Linear<T>(c.hidden_size, c.vocab_size, {hgrn2::output_head<T>(store, c), {}}, "lm_head"),
                  /*soft_cap=*/0.0f);
}

}  // namespace glrnn
