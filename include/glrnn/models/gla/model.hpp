#pragma once
// GLA (fla): the decoder stack with gated-linear-attention mixers (or, in a hybrid, softmax
// attention) and SwiGLU MLPs (docs/gla.md), and its entry in the family table.

#include <string>  // std::string
#include <vector>  // std::vector

#include "glrnn/models/family.hpp"
#include "glrnn/models/fla_common.hpp"
#include "glrnn/models/gla/config.hpp"
#include "glrnn/models/gla/weights.hpp"

namespace glrnn {

using Gla = FlaStack<GlaMixer>;

/// Builds a GLA or RetNet model from its tensors, checking every shape against the configuration.
inline Gla build_gla(const GlaConfig& c, TensorReader& w) {
  return build_fla_stack<GlaMixer>(c, w, [&](std::int64_t l) { return GlaMixer(c.mixer(), gla::mixer(w, c, l)); });
}

struct GlaFamily {
  static constexpr const char* kName = "gla";
  static std::vector<std::string> model_types() { return {"gla"}; }
  using Config = GlaConfig;

  static Config parse(const JsonConfig& json, const LoadOptions& options) {
    return Config::from_json(json, options, GlaDecay::LowRankGate);
  }
  static ModelSummary summary(const Config& c) { return c.summary(GlaMixerState::bytes(c.mixer())); }
  static Gla build(const Config& c, TensorReader& w) { return build_gla(c, w); }
};

}  // namespace glrnn
