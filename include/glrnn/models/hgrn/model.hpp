#pragma once
// HGRN (fla, the first version): the decoder stack with element-wise gated recurrences (or, in a
// hybrid, softmax attention) and SwiGLU MLPs (docs/hgrn.md), and its entry in the family table.

#include <string>   // std::string
#include <vector>   // std::vector

#include "glrnn/models/family.hpp"
#include "glrnn/models/fla_common.hpp"
#include "glrnn/models/hgrn/config.hpp"
#include "glrnn/models/hgrn/weights.hpp"

namespace glrnn {

using Hgrn = FlaStack<HgrnMixer>;

/// Builds the model from its tensors, checking every shape against the configuration.
inline Hgrn build_hgrn(const HgrnConfig& c, TensorReader& w) {
  RowMatrixXf bounds;
  if (c.use_lower_bound) bounds = fla_lower_bounds(fla::lower_bounds(w, c));
  return build_fla_stack<HgrnMixer>(c, w, [&](std::int64_t l) {
    return HgrnMixer(c.mixer(), hgrn::mixer(w, c, l), fla_layer_bound(bounds, l));
  });
}

struct HgrnFamily {
  static constexpr const char* kName = "hgrn";
  static std::vector<std::string> model_types() { return {"hgrn"}; }
  using Config = HgrnConfig;

  static Config parse(const JsonConfig& json, const LoadOptions& options) { return Config::from_json(json, options); }
  static ModelSummary summary(const Config& c) { return c.summary(HgrnMixerState::bytes(c.mixer())); }
  static Hgrn build(const Config& c, TensorReader& w) { return build_hgrn(c, w); }
};

}  // namespace glrnn
