#pragma once
// RetNet (fla): multi-scale retention is GlaMixer with fixed per-head decays and rotary queries and
// keys (docs/retnet.md), so the family reuses GLA's configuration, tensor table and stack; this is
// its entry in the family table.

#include <string>  // std::string
#include <vector>  // std::vector

#include "glrnn/models/gla/model.hpp"

namespace glrnn {

struct RetNetFamily {
  static constexpr const char* kName = "retnet";
  static std::vector<std::string> model_types() { return {"retnet"}; }
  using Config = GlaConfig;

  static Config parse(const JsonConfig& json, const LoadOptions& options) {
    return Config::from_json(json, options, GlaDecay::Retention);
  }
  static ModelSummary summary(const Config& c) { return c.summary(GlaMixerState::bytes(c.mixer())); }
  static Gla build(const Config& c, TensorReader& w) { return build_gla(c, w); }
};

}  // namespace glrnn
