#pragma once
// fla's HGRN token mixer, the first version (docs/hgrn.md §2): an element-wise gated recurrence over
// E = D·expand_ratio channels,
//   log f_t = forget gate of f_proj x (floored by the layer's lower bound, layers/forget_gate.hpp)
//   i_t     = silu(i_proj x) · (1 - f_t)
//   h_t     = f_t · h_{t-1} + i_t                 (float32)
// then one RMSNorm over all E channels times swish(g_proj x), and o_proj. Short convolutions
// (without activation) may precede the input and forget gates. The recurrence is O(E) per
// position, so prefill runs it position by position: a chunked form would only add work.

#include <cmath>    // std::exp, std::sqrt
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <utility>  // std::move
#include <vector>   // std::vector

#include "glrnn/core/math.hpp"
#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/layers/conv1d.hpp"
#include "glrnn/layers/forget_gate.hpp"
#include "glrnn/layers/linear.hpp"
#include "glrnn/layers/recurrent_state.hpp"
#include "glrnn/layers/rmsnorm.hpp"

namespace glrnn {

struct HgrnMixerConfig {
  std::int64_t hidden = 0;  // D
  std::int64_t width = 0;   // E = D · expand_ratio
  bool short_conv = false;  // causal convolutions on the input and forget projections
  std::int64_t conv_size = 4;
  float norm_eps = 1e-6f;
  Conv1dConfig conv() const { return {width, conv_size}; }
  /// h [1, E] and, with short convolutions, the input and forget histories.
  RecurrentStateShape state_shape() const { return {1, width, {conv(), conv()}, short_conv ? 2u : 0u}; }
};

struct HgrnMixerWeights {
  LinearWeights i_proj, f_proj, g_proj;  // [E, D]
  LinearWeights o_proj;                  // [D, E]
  TensorView<const float> g_norm;        // [E], or empty for a norm without weight
  Conv1dWeights i_conv, f_conv;          // with short_conv only: [E, 1, conv_size]
};

/// h [1, E], float32; plus the input and forget convolution histories with short convolutions.
struct HgrnMixerState : RecurrentState {
  explicit HgrnMixerState(const HgrnMixerConfig& cfg) : RecurrentState("hgrn_state", cfg.state_shape()) {}
  static std::size_t bytes(const HgrnMixerConfig& cfg) { return RecurrentState::bytes(cfg.state_shape()); }
  using RecurrentState::bytes;
};

class HgrnMixer {
 public:
  using State = HgrnMixerState;
  using Config = HgrnMixerConfig;
  using Weights = HgrnMixerWeights;

  /// lower_bound: the layer's forget-gate floor [E], or empty for none.
  HgrnMixer(const Config& cfg, const Weights& w, Eigen::VectorXf lower_bound)
      : cfg_(cfg),
        i_proj_(cfg.hidden, cfg.width, w.i_proj, "attn.i_proj"),
        f_proj_(cfg.hidden, cfg.width, w.f_proj, "attn.f_proj"),
        g_proj_(cfg.hidden, cfg.width, w.g_proj, "attn.g_proj"),
        o_proj_(cfg.width, cfg.hidden, w.o_proj, "attn.o_proj"),
        forget_(std::move(lower_bound), cfg.width),
        norm_gain_(Eigen::RowVectorXf::Ones(cfg.width)) {
    if (!w.g_norm.empty()) {
      check_shape(w.g_norm.shape, {cfg.width}, "attn.g_norm weight");
      norm_gain_ = Eigen::Map<const Eigen::RowVectorXf>(w.g_norm.data, cfg.width);
    }
    if (cfg.short_conv) {
      convs_.emplace_back(cfg.conv(), w.i_conv);
      convs_.emplace_back(cfg.conv(), w.f_conv);
    }
  }

  const Config& config() const { return cfg_; }
  State make_state() const { return State(cfg_); }
  std::size_t state_bytes() const { return State::bytes(cfg_); }

  /// Y[T, D] = mixer(U[T, D]) for positions pos0 .. pos0+T-1, continuing from `state`.
  void forward(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    mix(
        u, y, scratch,
        [&](int which, MatIn raw, MatOut out) {
          convs_[static_cast<std::size_t>(which)].forward(raw, pos0, state.convs[static_cast<std::size_t>(which)], out);
        },
        [&](Eigen::Index) -> State& { return state; });
  }

  /// One position for each of B sequences: row b at positions[b] with state get(b).
  template <class GetState>
  void forward_batch(const MatIn& u, const std::int64_t* positions, GetState&& get, MatOut y, Scratch& scratch) const {
    mix(
        u, y, scratch,
        [&](int which, MatIn raw, MatOut out) {
          convs_[static_cast<std::size_t>(which)].forward_batch(
              raw, positions, [&](Eigen::Index b) -> Conv1dState& { return get(b).convs[static_cast<std::size_t>(which)]; },
              out);
        },
        [&](Eigen::Index b) -> State& { return get(b); });
  }

 private:
  /// Projections (through conv(which, raw, out) with short convolutions), gates, the recurrence
  /// row by row with row_state(t), the gated norm, o_proj.
  template <class Conv, class RowState>
  void mix(const MatIn& u, MatOut y, Scratch& scratch, Conv&& conv, RowState&& row_state) const {
    const std::int64_t len = u.rows(), E = cfg_.width;
    Scratch::Frame frame(scratch);
    MatMap x = scratch.matrix(len, E);     // input, then the recurrence's output
    MatMap f = scratch.matrix(len, E);     // forget projection
    project(i_proj_, u, x, scratch, 0, conv);
    project(f_proj_, u, f, scratch, 1, conv);
    if (!scratch.measuring()) {
      // The gates of every position first (f becomes the forget gate, x its SiLU), then the
      // recurrence position by position.
      parallel_for(0, len, 20 * E, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t t = lo; t < hi; ++t) {
          forget_.log_forget(f.row(t).data(), f.row(t).data(), E);
          kernels::apply(Elementwise::Exp, f.row(t).data(), f.row(t).data(), E);
          kernels::apply(Elementwise::Silu, x.row(t).data(), x.row(t).data(), E);
        }
      });
      for (Eigen::Index t = 0; t < len; ++t) {
        auto h = row_state(t).state.row(0);
        h.array() = f.row(t).array() * h.array() + x.row(t).array() * (1.0f - f.row(t).array());
        x.row(t) = h;
      }
    }
    // fla's FusedRMSNormGated over all E channels.
    norm_then_project(x, u, &g_proj_, norm_gain_, cfg_.norm_eps, o_proj_, y, scratch);
  }

  /// out = proj(u), through the short convolution when the layer has them.
  template <class Conv>
  void project(const Linear& proj, const MatIn& u, MatOut out, Scratch& scratch, int which, Conv& conv) const {
    project_then_convolve(proj, u, out, scratch, cfg_.short_conv, [&](MatIn raw, MatOut convolved) { conv(which, raw, convolved); });
  }

  Config cfg_;
  Linear i_proj_, f_proj_, g_proj_, o_proj_;
  ForgetGate forget_;
  Eigen::RowVectorXf norm_gain_;  // [E]
  std::vector<Conv1d> convs_;     // input, forget with short_conv
};

}  // namespace glrnn
