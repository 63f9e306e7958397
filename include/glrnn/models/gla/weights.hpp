#pragma once
// The tensor table of fla's GatedLinearAttention and MultiScaleRetention layers (docs/formats.md
// §3.4): names with shapes from the configuration and roles for the weight recipe. The parts every
// fla family shares are in models/fla_common.hpp.

#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/io/tensor_source.hpp"
#include "glrnn/models/gla/config.hpp"

namespace glrnn::gla {

inline GlaMixerWeights mixer(TensorReader& store, const GlaConfig& c, std::int64_t l) {
  const std::string p = fla::layer_prefix(l) + "attn.";
  const GlaMixerConfig m = c.mixer();
  const std::int64_t D = c.hidden_size;
  const MatrixRole role = MatrixRole::Projection;
  GlaMixerWeights w;
  w.q_proj.weight = store.matrix(p + "q_proj.weight", {m.q_width(), D}, role);
  w.k_proj.weight = store.matrix(p + "k_proj.weight", {m.k_width(), D}, role);
  w.v_proj.weight = store.matrix(p + "v_proj.weight", {m.v_width(), D}, role);
  w.o_proj.weight = store.matrix(p + "o_proj.weight", {D, m.o_width()}, role);
  if (c.use_output_gate) w.g_proj.weight = store.matrix(p + "g_proj.weight", {m.o_width(), D}, role);
  if (c.decay == GlaDecay::LowRankGate) {
    w.gate_down = store.vector(p + "gk_proj.0.weight", {m.gate_rank, D});
    w.gate_up = store.vector(p + "gk_proj.1.weight", {m.k_width(), m.gate_rank});
    w.gate_up_bias = store.vector(p + "gk_proj.1.bias", {m.k_width()});
  }
  // fla fuses norm and swish gate (g_norm_swish_gate) unless fuse_norm is off or there is no gate;
  // the two compute the same.
  if (c.elementwise_affine) {
    const std::string fused = p + "g_norm_swish_gate.weight";
    w.g_norm = store.vector(store.has(fused) ? fused : p + "g_norm.weight", {m.value_dim});
  }
  if (c.use_short_conv) {
    const auto conv = [&](const char* name, std::int64_t channels) {
      return Conv1dWeights{store.vector(p + name + ".weight", {channels, 1, c.conv_size}), {}};
    };
    w.q_conv = conv("q_conv1d", m.q_width());
    w.k_conv = conv("k_conv1d", m.k_width());
    w.v_conv = conv("v_conv1d", m.v_width());
  }
  return w;
}

}  // namespace glrnn::gla
