#pragma once
// HGRN (fla, the first version): the decoder stack with element-wise gated recurrences (or, in a
// hybrid, softmax attention) and SwiGLU MLPs (docs/hgrn.md); its tensor table and its entry in the
// family table.

#include <cstdint>  // std::int64_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "glrnn/models/family.hpp"
#include "glrnn/models/fla_common.hpp"
#include "glrnn/models/hgrn/config.hpp"
#include "glrnn/models/hgrn2/model.hpp"

namespace glrnn {

namespace hgrn {
/// The mixer's tensors (docs/formats.md §3.5).
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
}  // namespace hgrn

using Hgrn = FlaStack<HgrnMixer>;

inline Hgrn build_hgrn(const HgrnConfig& c, TensorReader& w) {
  RowMatrixXf bounds;
  if (c.use_lower_bound) bounds = fla_lower_bounds(w.vector("model.lower_bounds", {c.num_layers, c.hidden_size}));
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
