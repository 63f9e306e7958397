#pragma once
// The HGRN2 token mixer (docs/hgrn2.md §3): a gated linear recurrence whose state is expanded by an
// outer product. Per head, with forget gate f = exp(g) bounded below by the layer's learned bound
// and key k = 1 - f:
//   S_t = diag(f_t) S_{t-1} + k_t v_t^T          (S: dk x dv, float32)
//   o_t = (dk^-0.5 q_t)^T S_t                    (the updated state is read)
// then one RMSNorm over all heads (eps 1e-5, docs/hgrn2.md §3) and o_proj.
//
// The recurrence, with its chunk-parallel prefill, is the shared gated-linear-attention one
// (layers/gla_recurrence.hpp, docs/gla.md §1).

#include <algorithm>  // std::min, std::max
#include <cmath>      // std::exp, std::log, std::log1p, std::sqrt
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int64_t
#include <vector>     // std::vector

#include "glrnn/core/math.hpp"
#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/layers/conv1d.hpp"
#include "glrnn/layers/forget_gate.hpp"
#include "glrnn/layers/gla_recurrence.hpp"
#include "glrnn/layers/linear.hpp"
#include "glrnn/layers/recurrent_state.hpp"
#include "glrnn/layers/rmsnorm.hpp"

namespace glrnn {

struct Hgrn2MixerConfig {
  std::int64_t hidden = 0;     // D
  std::int64_t heads = 1;      // H
  std::int64_t key_dim = 0;    // dk (expand_ratio): query, key and forget width per head
  std::int64_t value_dim = 0;  // dv = D / H
  float g_norm_eps = 1e-5f;    // not norm_eps: fla's fused norm runs with its default (docs/hgrn2.md §3)
  bool short_conv = false;     // causal convolutions on the q, f and i projections (docs/hgrn2.md §6)
  std::int64_t conv_size = 4;
  std::int64_t chunk_size = 64;  // prefill chunk; 0 runs prefill sequentially, like decode
  std::int64_t forget_dim() const { return heads * key_dim; }
  Conv1dConfig conv(std::int64_t channels) const { return {channels, conv_size}; }
  /// The state [H·dk, dv] and, with short convolutions, the q, f and i histories.
  RecurrentStateShape state_shape() const {
    return {forget_dim(), value_dim, {conv(forget_dim()), conv(forget_dim()), conv(hidden)}, short_conv ? 3u : 0u};
  }
  /// The gated-linear-attention recurrence of these heads: scale dk^-1/2, no grouping.
  GlaRecurrenceConfig recurrence() const {
    GlaRecurrenceConfig r;
    r.heads = r.kv_heads = r.state_heads = heads;
    r.key_dim = key_dim;
    r.value_dim = value_dim;
    r.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(key_dim)));
    return r;
  }
};

struct Hgrn2MixerWeights {
  LinearWeights q_proj, f_proj;  // [H·dk, D]
  LinearWeights i_proj, o_proj;  // [D, D]
  TensorView<const float> g_norm;   // [D], or empty for a norm without weight
  Conv1dWeights q_conv, f_conv, i_conv;  // with short_conv only: [C, 1, conv_size]
};

/// Per head the dk x dv state, float32 whatever the weights: [H·dk, dv], head h is rows
/// h·dk .. (h+1)·dk; plus the q, f and i convolution histories with short_conv.
struct Hgrn2MixerState : RecurrentState {
  explicit Hgrn2MixerState(const Hgrn2MixerConfig& cfg) : RecurrentState("hgrn2_state", cfg.state_shape()) {}
  static std::size_t bytes(const Hgrn2MixerConfig& cfg) { return RecurrentState::bytes(cfg.state_shape()); }
  using RecurrentState::bytes;
};

class Hgrn2Mixer {
 public:
  using State = Hgrn2MixerState;
  using Config = Hgrn2MixerConfig;
  using Weights = Hgrn2MixerWeights;

  /// lower_bound: the layer's forget-gate floor [H·dk] (docs/hgrn2.md §4), or empty for none.
  Hgrn2Mixer(const Config& cfg, const Weights& w, Eigen::VectorXf lower_bound)
      : cfg_(cfg),
        q_proj_(cfg.hidden, cfg.forget_dim(), w.q_proj, "attn.q_proj"),
        f_proj_(cfg.hidden, cfg.forget_dim(), w.f_proj, "attn.f_proj"),
        i_proj_(cfg.hidden, cfg.hidden, w.i_proj, "attn.i_proj"),
        o_proj_(cfg.hidden, cfg.hidden, w.o_proj, "attn.o_proj"),
        g_norm_(make_g_norm(cfg, w.g_norm)),
        forget_(std::move(lower_bound), cfg.forget_dim()),
        recurrence_(cfg.recurrence()) {
    GLRNN_CHECK(cfg.heads > 0 && cfg.key_dim > 0 && cfg.heads * cfg.value_dim == cfg.hidden, ConfigError,
                "HGRN2 needs heads x value_dim == hidden");
    if (cfg.short_conv) {
      convs_.emplace_back(cfg.conv(cfg.forget_dim()), w.q_conv);
      convs_.emplace_back(cfg.conv(cfg.forget_dim()), w.f_conv);
      convs_.emplace_back(cfg.conv(cfg.hidden), w.i_conv);
    }
  }

  const Config& config() const { return cfg_; }
  State make_state() const { return State(cfg_); }
  std::size_t state_bytes() const { return State::bytes(cfg_); }

  /// Y[T, D] = mixer(U[T, D]) for positions pos0 .. pos0+T-1, continuing from `state`; chunk-
  /// parallel when T > 1 and the config has a chunk size.
  void forward(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    run(u, pos0, state, y, scratch, cfg_.chunk_size);
  }

  /// The same, one position at a time as decode runs (the reference for the chunk form).
  void forward_sequential(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    run(u, pos0, state, y, scratch, 0);
  }

  /// One position for each of B sequences: row b at positions[b] with state get(b).
  template <class GetState>
  void forward_batch(const MatIn& u, const std::int64_t* positions, GetState&& get, MatOut y, Scratch& scratch) const {
    mix(u, y, scratch,
        [&](const Linear& proj, MatOut out, int which) {
          project(proj, u, out, scratch, [&](MatIn raw, MatOut conv_out) {
            convs_[static_cast<std::size_t>(which)].forward_batch(
                raw, positions, [&](Eigen::Index b) -> Conv1dState& { return get(b).convs[static_cast<std::size_t>(which)]; },
                conv_out);
          });
        },
        [&](const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, MatMap& o) {
          if (scratch.measuring()) return;
          for (Eigen::Index b = 0; b < u.rows(); ++b) recurrence_.step(q, g, k, v, b, get(b).state, o);
        });
  }

 private:
  void run(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch, std::int64_t chunk_size) const {
    mix(u, y, scratch,
        [&](const Linear& proj, MatOut out, int which) {
          project(proj, u, out, scratch, [&](MatIn raw, MatOut conv_out) {
            convs_[static_cast<std::size_t>(which)].forward(raw, pos0, state.convs[static_cast<std::size_t>(which)], conv_out);
          });
        },
        [&](const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, MatMap& o) {
          recurrence_.forward(q, g, k, v, state.state, o, scratch, chunk_size);
        });
  }

  /// Projections, gates, the recurrence (supplied: one sequence or a batch), norm, o_proj.
  template <class Project, class Recurrence>
  void mix(const MatIn& u, MatOut y, Scratch& scratch, Project&& project_into, Recurrence&& recurrence) const {
    const std::int64_t len = u.rows(), F = cfg_.forget_dim(), D = cfg_.hidden;
    Scratch::Frame frame(scratch);
    MatMap q = scratch.matrix(len, F);   // queries, after swish
    MatMap g = scratch.matrix(len, F);   // forget gate f_proj, then log f
    MatMap k = scratch.matrix(len, F);   // keys 1 - f
    MatMap v = scratch.matrix(len, D);   // values
    MatMap o = scratch.matrix(len, D);   // heads' outputs, head-major
    project_into(q_proj_, q, 0);
    project_into(f_proj_, g, 1);
    project_into(i_proj_, v, 2);
    if (!scratch.measuring()) {
      kernels::apply(Elementwise::Silu, q);
      gates(g, k);
    }
    recurrence(q, g, k, v, o);
    if (!scratch.measuring()) g_norm_.forward(o, o);
    o_proj_.forward(o, y, scratch);
  }

  /// Without elementwise_affine the norm has no weight: a gain of ones.
  static RmsNorm make_g_norm(const Config& cfg, const TensorView<const float>& weight) {
    const RmsNormConfig norm{cfg.hidden, cfg.g_norm_eps, /*unit_offset=*/false};
    if (!weight.empty()) return RmsNorm(norm, weight);
    const std::vector<float> ones(static_cast<std::size_t>(cfg.hidden), 1.0f);
    return RmsNorm(norm, {ones.data(), Shape{cfg.hidden}});
  }

  /// out = proj(u), through the layer's short convolution (conv(raw, out)) when it has them.
  template <class Conv>
  void project(const Linear& proj, const MatIn& u, MatOut out, Scratch& scratch, Conv&& conv) const {
    project_then_convolve(proj, u, out, scratch, cfg_.short_conv, conv);
  }

  /// f_proj output -> log forget gate g (in place) and key k = 1 - exp(g) (docs/hgrn2.md §3).
  void gates(MatMap& g, MatMap& k) const {
    const Eigen::Index cols = g.cols();
    parallel_for(0, g.rows(), 20 * cols, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t t = lo; t < hi; ++t) {
        float* f = g.row(t).data();
        float* key = k.row(t).data();
        // Without a floor fla takes 1 - sigmoid(f) directly, not 1 - exp(logsigmoid(f)).
        if (!forget_.bounded()) kernels::apply(Elementwise::Sigmoid, f, key, cols);
        forget_.log_forget(f, f, cols);
        if (forget_.bounded()) kernels::apply(Elementwise::Exp, f, key, cols);
        k.row(t).array() = 1.0f - k.row(t).array();
      }
    });
  }


  Config cfg_;
  Linear q_proj_, f_proj_, i_proj_, o_proj_;
  RmsNorm g_norm_;
  std::vector<Conv1d> convs_;  // q, f, i with short_conv
  ForgetGate forget_;  // [H·dk]
  GlaRecurrence recurrence_;
};

}  // namespace glrnn
