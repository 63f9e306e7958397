#pragma once
// HGRN2 (fla): the decoder stack with HGRN2 mixers and SwiGLU MLPs, plain RMSNorms, no embedding
// scale, an untied head and no soft cap (docs/hgrn2.md §2), and its entry in the family table.

#include <string>   // std::string
#include <utility>  // std::move
#include <vector>   // std::vector

#include "glrnn/layers/residual_block.hpp"
#include "glrnn/models/decoder_stack.hpp"
#include "glrnn/models/family.hpp"
#include "glrnn/models/hgrn2/config.hpp"
#include "glrnn/models/hgrn2/weights.hpp"

namespace glrnn {

using Hgrn2 = DecoderStack<RmsNorm, LinearHead, ResidualBlock<RmsNorm, Hgrn2Mixer, Mlp>>;

/// The forget-gate floor of every layer from model.lower_bounds [L, D] (docs/hgrn2.md §4): a softmax
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

/// Builds the model from its tensors, checking every shape against the configuration.
inline Hgrn2 build_hgrn2(const Hgrn2Config& c, TensorReader& w) {
  RowMatrixXf bounds;
  if (c.use_lower_bound) bounds = hgrn2_lower_bounds(hgrn2::lower_bounds(w, c));
  std::vector<Hgrn2::Block> blocks;
  blocks.reserve(static_cast<std::size_t>(c.num_layers));
  for (std::int64_t l = 0; l < c.num_layers; ++l) {
    // Layer 0 runs without a bound, as fla does (its bound is 0 anyway).
    Eigen::VectorXf bound = c.use_lower_bound && l > 0 ? Eigen::VectorXf(bounds.row(l).transpose()) : Eigen::VectorXf();
    blocks.emplace_back(ResidualBlock<RmsNorm, Hgrn2Mixer, Mlp>(
        c.hidden_size, RmsNorm(c.norm(), hgrn2::attn_norm(w, c, l)),
        Hgrn2Mixer(c.mixer(), hgrn2::mixer(w, c, l), std::move(bound)), RmsNorm(c.norm(), hgrn2::mlp_norm(w, c, l)),
        Mlp(c.mlp(), hgrn2::mlp(w, c, l))));
  }
  return Hgrn2(Embedding(hgrn2::embedding(w, c), 1.0f), std::move(blocks), RmsNorm(c.norm(), hgrn2::final_norm(w, c)),
               LinearHead(Linear(c.hidden_size, c.vocab_size, {hgrn2::output_head(w, c), {}}, "lm_head")));
}

struct Hgrn2Family {
  static constexpr const char* kName = "hgrn2";
  static std::vector<std::string> model_types() { return {"hgrn2"}; }
  using Config = Hgrn2Config;

  static Config parse(const JsonConfig& json, const LoadOptions&) { return Config::from_json(json); }
  static ModelSummary summary(const Config& c) {
    return {c.vocab_size, c.hidden_size, c.num_layers, c.bos_token_id, c.eos_token_id, c.state_bytes()};
  }
  static Hgrn2 build(const Config& c, TensorReader& w) { return build_hgrn2(c, w); }
};

}  // namespace glrnn
