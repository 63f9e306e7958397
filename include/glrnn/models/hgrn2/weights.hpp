#pragma once
// The HGRN2 tensor table (fla layout, docs/formats.md §3.2): the names of the mixer's tensors, with
// shapes from the configuration and roles for the weight recipe. The parts
// every fla family shares are in models/fla_common.hpp.

#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/io/tensor_source.hpp"
#include "glrnn/layers/hgrn2.hpp"
#include "glrnn/models/hgrn2/config.hpp"

namespace glrnn::hgrn2 {

inline Hgrn2MixerWeights mixer(TensorReader& store, const Hgrn2Config& c, std::int64_t l) {
  const std::string p = fla::layer_prefix(l) + "attn.";
  const std::int64_t D = c.hidden_size, F = c.forget_dim();
  const MatrixRole role = MatrixRole::Projection;
  Hgrn2MixerWeights w;
  w.q_proj.weight = store.matrix(p + "q_proj.weight", {F, D}, role);
  w.f_proj.weight = store.matrix(p + "f_proj.weight", {F, D}, role);
  w.i_proj.weight = store.matrix(p + "i_proj.weight", {D, D}, role);
  w.o_proj.weight = store.matrix(p + "o_proj.weight", {D, D}, role);
  if (c.elementwise_affine) w.g_norm = store.vector(p + "g_norm.weight", {D});
  if (c.use_short_conv) {
    const auto conv = [&](const char* name, std::int64_t channels) {
      return Conv1dWeights{store.vector(p + name + ".weight", {channels, 1, c.conv_size}),
                           c.conv_bias ? store.vector(p + name + ".bias", {channels}) : TensorView<const float>{}};
    };
    w.q_conv = conv("q_conv1d", F);
    w.f_conv = conv("f_conv1d", F);
    w.i_conv = conv("i_conv1d", D);
  }
  return w;
}

}  // namespace glrnn::hgrn2
