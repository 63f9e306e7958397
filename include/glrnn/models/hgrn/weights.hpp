#pragma once
// The HGRN tensor table (fla layout, docs/formats.md §3.5): the mixer's tensor names with shapes from
// the configuration and roles for the weight recipe. The parts every fla family shares are in
// models/fla_common.hpp.

#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/io/tensor_source.hpp"
#include "glrnn/models/hgrn/config.hpp"

namespace glrnn::hgrn {

inline HgrnMixerWeights mixer(TensorReader& store, const HgrnConfig& c, std::int64_t l) {
  const std::string p = fla::layer_prefix(l) + "attn.";
  const std::int64_t D = c.hidden_size, E = c.width;
  const MatrixRole role = MatrixRole::Projection;
  HgrnMixerWeights w;
  w.i_proj.weight = store.matrix(p + "i_proj.weight", {E, D}, role);
  w.f_proj.weight = store.matrix(p + "f_proj.weight", {E, D}, role);
  w.g_proj.weight = store.matrix(p + "g_proj.weight", {E, D}, role);
  w.o_proj.weight = store.matrix(p + "o_proj.weight", {D, E}, role);
  if (c.elementwise_affine) w.g_norm = store.vector(p + "g_norm.weight", {E});
  if (c.use_short_conv) {
    w.i_conv = {store.vector(p + "i_conv1d.weight", {E, 1, c.conv_size}), {}};
    w.f_conv = {store.vector(p + "f_conv1d.weight", {E, 1, c.conv_size}), {}};
  }
  return w;
}

}  // namespace glrnn::hgrn
