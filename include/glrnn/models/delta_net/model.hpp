#pragma once
// DeltaNet (fla): the decoder stack with delta-rule mixers (or, in a hybrid, softmax attention) and
// SwiGLU MLPs (docs/delta_net.md), and its entry in the family table.

#include <string>  // std::string
#include <vector>  // std::vector

#include "glrnn/models/delta_net/config.hpp"
#include "glrnn/models/delta_net/weights.hpp"
#include "glrnn/models/family.hpp"
#include "glrnn/models/fla_common.hpp"

namespace glrnn {

using DeltaNet = FlaStack<DeltaNetMixer>;

/// Builds a DeltaNet or Gated DeltaNet model from its tensors, checking every shape against the
/// configuration.
inline DeltaNet build_delta_net(const DeltaNetConfig& c, TensorReader& w) {
  return build_fla_stack<DeltaNetMixer>(c, w, [&](std::int64_t l) { return DeltaNetMixer(c.mixer(), delta_net::mixer(w, c, l)); });
}

struct DeltaNetFamily {
  static constexpr const char* kName = "delta_net";
  static std::vector<std::string> model_types() { return {"delta_net"}; }
  using Config = DeltaNetConfig;

  static Config parse(const JsonConfig& json, const LoadOptions& options) { return Config::from_json(json, options, false); }
  static ModelSummary summary(const Config& c) { return c.summary(DeltaNetMixerState::bytes(c.mixer())); }
  static DeltaNet build(const Config& c, TensorReader& w) { return build_delta_net(c, w); }
};

}  // namespace glrnn
