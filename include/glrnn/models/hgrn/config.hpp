#pragma once
// config.json of an fla HGRN checkpoint (the first version) -> typed, validated configuration
// (docs/hgrn.md §1). The fields every fla family shares are FlaConfig's.

#include <cmath>    // std::floor
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/layers/hgrn.hpp"
#include "glrnn/models/fla_common.hpp"

namespace glrnn {

struct HgrnConfig : FlaConfig {
  std::int64_t width = 0;  // E = int(hidden_size * expand_ratio)
  bool use_short_conv = false, use_lower_bound = true, elementwise_affine = true;
  std::int64_t conv_size = 4;

  static HgrnConfig from_json(const JsonConfig& json, const LoadOptions& options = {}) {
    HgrnConfig c;
    static_cast<FlaConfig&>(c) = FlaConfig::parse(json, options, "hgrn", 4.0);
    const double expand = json.number_or("expand_ratio", 1.0);
    GLRNN_CHECK(expand > 0.0 && expand <= 64.0, ConfigError, json.where("expand_ratio") + " is out of range");
    c.width = static_cast<std::int64_t>(std::floor(static_cast<double>(c.hidden_size) * expand));
    in_range(json, "expand_ratio", c.width, 64 * kMaxWidth);
    c.use_short_conv = json.boolean_or("use_short_conv", false);
    c.conv_size = json.integer_or("conv_size", 4);
    in_range(json, "conv_size", c.conv_size, 1024);
    c.use_lower_bound = json.boolean_or("use_lower_bound", true);
    // fla's lower bounds are [layers, hidden_size] and floor each of the E channels.
    GLRNN_CHECK(!c.use_lower_bound || c.width == c.hidden_size, ConfigError,
                json.where("expand_ratio") + ": lower bounds need expand_ratio 1 (fla's bounds have hidden_size channels)");
    c.elementwise_affine = json.boolean_or("elementwise_affine", true);
    return c;
  }

  HgrnMixerConfig mixer() const { return {hidden_size, width, use_short_conv, conv_size, norm_eps}; }
  /// Bytes of one sequence's state at position 0 (docs/hgrn.md §3).
  std::size_t state_bytes() const { return FlaConfig::state_bytes(HgrnMixerState::bytes(mixer())); }
};

}  // namespace glrnn
