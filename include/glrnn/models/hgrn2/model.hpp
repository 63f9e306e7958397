#pragma once
// HGRN2 (fla): the decoder stack with HGRN2 mixers (or, in a hybrid, softmax attention) and SwiGLU
// MLPs, plain RMSNorms, no embedding scale and no soft cap (docs/hgrn2.md §2), and its entry in the
// family table.

#include <string>   // std::string
#include <utility>  // std::move
#include <vector>   // std::vector

#include "glrnn/models/family.hpp"
#include "glrnn/models/fla_common.hpp"
#include "glrnn/models/hgrn2/config.hpp"
#include "glrnn/models/hgrn2/weights.hpp"

namespace glrnn {

using Hgrn2 = FlaStack<Hgrn2Mixer>;

/// The forget-gate floor of every layer from model.lower_bounds [L, D] (docs/hgrn2.md §4): a softmax
/// over the layers per channel, its cumulative sum, minus the first term. Row 0 is exactly 0 and
/// rows do not decrease; computed once, in float32 like the reference. HGRN uses the same.
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

/// Builds the model from its tensors, checking every shape against the configuration.
inline Hgrn2 build_hgrn2(const Hgrn2Config& c, TensorReader& w) {
  RowMatrixXf bounds;
  if (c.use_lower_bound) bounds = fla_lower_bounds(hgrn2::lower_bounds(w, c));
  return build_fla_stack<Hgrn2Mixer>(c, w, [&](std::int64_t l) {
    return Hgrn2Mixer(c.mixer(), hgrn2::mixer(w, c, l), fla_layer_bound(bounds, l));
  });
}

struct Hgrn2Family {
  static constexpr const char* kName = "hgrn2";
  static std::vector<std::string> model_types() { return {"hgrn2"}; }
  using Config = Hgrn2Config;

  static Config parse(const JsonConfig& json, const LoadOptions& options) { return Config::from_json(json, options); }
  static ModelSummary summary(const Config& c) { return c.summary(Hgrn2MixerState::bytes(c.mixer())); }
  static Hgrn2 build(const Config& c, TensorReader& w) { return build_hgrn2(c, w); }
};

}  // namespace glrnn
