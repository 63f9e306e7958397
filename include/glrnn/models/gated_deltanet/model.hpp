#pragma once
// Gated DeltaNet (fla): the delta rule with a decay per value head and grouped value heads
// (docs/delta_net.md), so the family reuses DeltaNet's configuration, tensor table and stack; this
// is its entry in the family table.

#include <string>  // std::string
#include <vector>  // std::vector

#include "glrnn/models/delta_net/model.hpp"

namespace glrnn {

struct GatedDeltaNetFamily {
  static constexpr const char* kName = "gated_deltanet";
  static std::vector<std::string> model_types() { return {"gated_deltanet"}; }
  using Config = DeltaNetConfig;

  static Config parse(const JsonConfig& json, const LoadOptions& options) { return Config::from_json(json, options, true); }
  static ModelSummary summary(const Config& c) { return c.summary(DeltaNetMixerState::bytes(c.mixer())); }
  static DeltaNet build(const Config& c, TensorReader& w) { return build_delta_net(c, w); }
};

}  // namespace glrnn
