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

/// Builds the model from its tensors, checking every shape against the configuration.
inline Hgrn2 build_hgrn2(const Hgrn2Config& c, TensorReader& w) {
  RowMatrixXf bounds;
  if (c.use_lower_bound) bounds = fla_lower_bounds(fla::lower_bounds(w, c));
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
