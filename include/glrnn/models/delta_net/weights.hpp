#pragma once
// The tensor table of fla's DeltaNet and GatedDeltaNet layers (docs/formats.md §3.7): names with
// shapes from the configuration and roles for the weight recipe. The parts every fla family shares
// are in models/fla_common.hpp.

#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/io/tensor_source.hpp"
#include "glrnn/models/delta_net/config.hpp"

namespace glrnn::delta_net {

inline DeltaNetMixerWeights mixer(TensorReader& store, const DeltaNetConfig& c, std::int64_t l) {
  const std::string p = fla::layer_prefix(l) + "attn.";
  const DeltaNetMixerConfig m = c.mixer();
  const std::int64_t D = c.hidden_size, HV = m.value_heads;
  const MatrixRole role = MatrixRole::Projection;
  DeltaNetMixerWeights w;
  w.q_proj.weight = store.matrix(p + "q_proj.weight", {m.k_width(), D}, role);
  w.k_proj.weight = store.matrix(p + "k_proj.weight", {m.k_width(), D}, role);
  w.v_proj.weight = store.matrix(p + "v_proj.weight", {m.v_width(), D}, role);
  w.o_proj.weight = store.matrix(p + "o_proj.weight", {D, m.v_width()}, role);
  if (m.output_gate) w.g_proj.weight = store.matrix(p + "g_proj.weight", {m.v_width(), D}, role);
  if (m.use_beta) w.b_proj = store.vector(p + "b_proj.weight", {HV, D});
  if (m.gated) {
    w.a_proj = store.vector(p + "a_proj.weight", {HV, D});
    w.a_log = store.vector(p + "A_log", {HV});
    w.dt_bias = store.vector(p + "dt_bias", {HV});
  }
  w.o_norm = store.vector(p + "o_norm.weight", {m.value_dim});
  if (m.short_conv) {
    const auto conv = [&](const char* name, std::int64_t channels) {
      return Conv1dWeights{store.vector(p + name + ".weight", {channels, 1, m.conv_size}), {}};
    };
    w.q_conv = conv("q_conv1d", m.k_width());
    w.k_conv = conv("k_conv1d", m.k_width());
    w.v_conv = conv("v_conv1d", m.v_width());
  }
  return w;
}

}  // namespace glrnn::delta_net
