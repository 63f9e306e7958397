#pragma once
// fla's GatedLinearAttention and MultiScaleRetention token mixers (docs/gla.md §2, docs/retnet.md §2):
// query/key/value projections (keys and values with grouped heads), optional short convolutions
// with SiLU, an optional feature map on queries and keys, the gated-linear-attention recurrence
// (layers/gla_recurrence.hpp), an RMSNorm per head times a swish output gate, and o_proj. The two
// differ only in their decay:
//   GLA:       g = logsigmoid(W_up W_down x + b) / 16 per key channel, optionally clamped below;
//              the state is kept per key/value head.
//   retention: the fixed per-head log(1 - 2^(-5-h)), with rotary embeddings on queries and keys;
//              the state is kept per query head (each has its own decay).

#include <cmath>    // std::log, std::pow, std::sqrt, std::max
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "glrnn/core/math.hpp"
#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/layers/conv1d.hpp"
#include "glrnn/layers/gla_recurrence.hpp"
#include "glrnn/layers/linear.hpp"
#include "glrnn/layers/recurrent_state.hpp"
#include "glrnn/layers/rmsnorm.hpp"
#include "glrnn/layers/rope.hpp"

namespace glrnn {

enum class GlaDecay { LowRankGate, Retention };

/// fla's ACT2FN entries that a feature map may name (docs/gla.md §2).
enum class FeatureMap { None, Relu, Sigmoid, Silu, SquaredRelu, LogSigmoid };

inline float apply_feature_map(FeatureMap map, float x) {
  switch (map) {
    case FeatureMap::None: return x;
    case FeatureMap::Relu: return x > 0.0f ? x : 0.0f;
    case FeatureMap::Sigmoid: return sigmoid(x);
    case FeatureMap::Silu: return silu(x);
    case FeatureMap::SquaredRelu: return x > 0.0f ? x * x : 0.0f;
    case FeatureMap::LogSigmoid: return log_sigmoid(x);
  }
  return x;
}

struct GlaMixerConfig {
  std::int64_t hidden = 0;     // D
  std::int64_t heads = 1;      // H query heads
  std::int64_t kv_heads = 1;   // Hkv key/value heads
  std::int64_t key_dim = 0;    // dk per head
  std::int64_t value_dim = 0;  // dv per head
  GlaDecay decay = GlaDecay::LowRankGate;
  std::int64_t gate_rank = 16;            // GLA: width of the low-rank decay projection
  float gate_logit_normalizer = 16.0f;    // GLA: logsigmoid(...) / this
  bool clamp = false;                     // GLA: clamp the log decay below at clamp_min
  float clamp_min = 0.0f;
  FeatureMap feature_map = FeatureMap::None;
  bool short_conv = false;                // causal convolutions (then SiLU) on q, k and v
  std::int64_t conv_size = 4;
  bool output_gate = true;                // the norm's output times swish(g_proj x)
  float norm_eps = 1e-6f;
  float rope_theta = 10000.0f;            // retention's rotary base
  std::int64_t chunk_size = 64;           // prefill chunk; 0 runs prefill sequentially

  std::int64_t q_width() const { return heads * key_dim; }
  std::int64_t k_width() const { return kv_heads * key_dim; }
  std::int64_t v_width() const { return kv_heads * value_dim; }
  std::int64_t o_width() const { return heads * value_dim; }
  std::int64_t state_heads() const { return decay == GlaDecay::Retention ? heads : kv_heads; }
  Conv1dConfig conv(std::int64_t channels) const { return {channels, conv_size}; }
  /// The state [Hs·dk, dv] and, with short convolutions, the q, k and v histories.
  RecurrentStateShape state_shape() const {
    return {state_heads() * key_dim, value_dim, {conv(q_width()), conv(k_width()), conv(v_width())}, short_conv ? 3u : 0u};
  }
  GlaRecurrenceConfig recurrence() const {
    GlaRecurrenceConfig r;
    r.heads = heads;
    r.kv_heads = kv_heads;
    r.state_heads = state_heads();
    r.key_dim = key_dim;
    r.value_dim = value_dim;
    r.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(key_dim)));
    return r;
  }
};

struct GlaMixerWeights {
  LinearWeights q_proj;  // [H·dk, D]
  LinearWeights k_proj;  // [Hkv·dk, D]
  LinearWeights v_proj;  // [Hkv·dv, D]
  LinearWeights g_proj;  // [H·dv, D], with the output gate only
  LinearWeights o_proj;  // [D, H·dv]
  TensorView<const float> gate_down;     // GLA: [rank, D]
  TensorView<const float> gate_up;       // GLA: [Hkv·dk, rank]
  TensorView<const float> gate_up_bias;  // GLA: [Hkv·dk]
  TensorView<const float> g_norm;        // [dv], or empty for a norm without weight
  Conv1dWeights q_conv, k_conv, v_conv;  // with short_conv only: [C, 1, conv_size]
};

/// The recurrent state [Hs·dk, dv] (state head s is rows s·dk .. (s+1)·dk), float32 whatever the
/// weights; plus the q, k and v convolution histories with short convolutions.
struct GlaMixerState : RecurrentState {
  explicit GlaMixerState(const GlaMixerConfig& cfg) : RecurrentState("gla_state", cfg.state_shape()) {}
  static std::size_t bytes(const GlaMixerConfig& cfg) { return RecurrentState::bytes(cfg.state_shape()); }
  using RecurrentState::bytes;
};

class GlaMixer {
 public:
  using State = GlaMixerState;
  using Config = GlaMixerConfig;
  using Weights = GlaMixerWeights;

  GlaMixer(const Config& cfg, const Weights& w)
      : cfg_(cfg),
        q_proj_(cfg.hidden, cfg.q_width(), w.q_proj, "attn.q_proj"),
        k_proj_(cfg.hidden, cfg.k_width(), w.k_proj, "attn.k_proj"),
        v_proj_(cfg.hidden, cfg.v_width(), w.v_proj, "attn.v_proj"),
        o_proj_(cfg.o_width(), cfg.hidden, w.o_proj, "attn.o_proj"),
        recurrence_(cfg.recurrence()),
        norm_gain_(Eigen::RowVectorXf::Ones(cfg.value_dim)) {
    if (cfg.output_gate) g_proj_ = Linear(cfg.hidden, cfg.o_width(), w.g_proj, "attn.g_proj");
    if (!w.g_norm.empty()) {
      check_shape(w.g_norm.shape, {cfg.value_dim}, "attn output norm");
      norm_gain_ = Eigen::Map<const Eigen::RowVectorXf>(w.g_norm.data, cfg.value_dim);
    }
    if (cfg.short_conv) {
      convs_.emplace_back(cfg.conv(cfg.q_width()), w.q_conv);
      convs_.emplace_back(cfg.conv(cfg.k_width()), w.k_conv);
      convs_.emplace_back(cfg.conv(cfg.v_width()), w.v_conv);
    }
    if (cfg.decay == GlaDecay::LowRankGate) {
      const Shape down{cfg.gate_rank, cfg.hidden}, up{cfg.k_width(), cfg.gate_rank}, bias{cfg.k_width()};
      GLRNN_CHECK(w.gate_down.shape == down && w.gate_up.shape == up && w.gate_up_bias.shape == bias, ShapeError,
                  "attn.gk_proj has shapes " + w.gate_down.shape.str() + ", " + w.gate_up.shape.str() + ", " +
                      w.gate_up_bias.shape.str() + "; expected " + down.str() + ", " + up.str() + ", " + bias.str());
      gate_down_ = Eigen::Map<const RowMatrixXf>(w.gate_down.data, cfg.gate_rank, cfg.hidden);
      gate_up_ = Eigen::Map<const RowMatrixXf>(w.gate_up.data, cfg.k_width(), cfg.gate_rank);
      gate_bias_ = Eigen::Map<const Eigen::RowVectorXf>(w.gate_up_bias.data, cfg.k_width());
    } else {
      GLRNN_CHECK(cfg.key_dim % 2 == 0, ConfigError, "retention needs an even key dimension per head for its rotary embedding");
      rope_ = Rope(cfg.key_dim, cfg.key_dim, cfg.rope_theta);
      // log(1 - 2^(-5-h)) in float32, as fla computes its g_gamma.
      head_log_decay_.resize(cfg.heads);
      for (std::int64_t h = 0; h < cfg.heads; ++h)
        head_log_decay_[h] = std::log(1.0f - std::pow(2.0f, -5.0f - static_cast<float>(h)));
    }
  }

  const Config& config() const { return cfg_; }
  State make_state() const { return State(cfg_); }
  std::size_t state_bytes() const { return State::bytes(cfg_); }

  /// Y[T, D] = mixer(U[T, D]) for positions pos0 .. pos0+T-1, continuing from `state`.
  void forward(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    run(u, pos0, state, y, scratch);
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
        [&](Eigen::Index t) { return positions[t]; },
        [&](const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, MatMap& o) {
          if (scratch.measuring()) return;
          for (Eigen::Index b = 0; b < u.rows(); ++b) recurrence_.step(q, g, k, v, b, get(b).state, o);
        });
  }

 private:
  void run(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    mix(
        u, y, scratch,
        [&](int which, MatIn raw, MatOut out) {
          convs_[static_cast<std::size_t>(which)].forward(raw, pos0, state.convs[static_cast<std::size_t>(which)], out);
        },
        [&](Eigen::Index t) { return pos0 + t; },
        [&](const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, MatMap& o) {
          recurrence_.forward(q, g, k, v, state.state, o, scratch, cfg_.chunk_size);
        });
  }

  /// Projections (through conv(which, raw, out) with short convolutions), decay, feature map and
  /// rotary embedding (position(t) of row t), the recurrence (supplied: one sequence or a batch),
  /// gated norm, o_proj.
  template <class Conv, class Position, class Recurrence>
  void mix(const MatIn& u, MatOut y, Scratch& scratch, Conv&& conv, Position&& position, Recurrence&& recurrence) const {
    const std::int64_t len = u.rows();
    const bool measuring = scratch.measuring();
    Scratch::Frame frame(scratch);
    MatMap q = scratch.matrix(len, cfg_.q_width());
    MatMap k = scratch.matrix(len, cfg_.k_width());
    MatMap v = scratch.matrix(len, cfg_.v_width());
    MatMap g = scratch.matrix(len, cfg_.state_heads() * cfg_.key_dim);  // log decay
    MatMap o = scratch.matrix(len, cfg_.o_width());
    project(q_proj_, u, q, scratch, 0, conv);
    project(k_proj_, u, k, scratch, 1, conv);
    project(v_proj_, u, v, scratch, 2, conv);
    decay(u, g, scratch);
    if (!measuring) {
      if (cfg_.feature_map != FeatureMap::None) {
        const FeatureMap map = cfg_.feature_map;
        q = q.unaryExpr([map](float x) { return apply_feature_map(map, x); });
        k = k.unaryExpr([map](float x) { return apply_feature_map(map, x); });
      }
      if (cfg_.decay == GlaDecay::Retention) {
        for (Eigen::Index t = 0; t < len; ++t) {
          rope_.apply(q.row(t).data(), cfg_.heads, position(t));
          rope_.apply(k.row(t).data(), cfg_.kv_heads, position(t));
        }
      }
    }
    recurrence(q, g, k, v, o);
    norm_then_project(o, u, cfg_.output_gate ? &g_proj_ : nullptr, norm_gain_, cfg_.norm_eps, o_proj_, y, scratch);
  }

  /// out = proj(u), then the short convolution and SiLU when the layer has them.
  template <class Conv>
  void project(const Linear& proj, const MatIn& u, MatOut out, Scratch& scratch, int which, Conv& conv) const {
    project_then_convolve(proj, u, out, scratch, cfg_.short_conv, [&](MatIn raw, MatOut convolved) {
      conv(which, raw, convolved);
      kernels::apply(Elementwise::Silu, convolved);
    });
  }

  /// The log decay per state-head channel (see the file comment).
  void decay(const MatIn& u, MatMap& g, Scratch& scratch) const {
    if (cfg_.decay == GlaDecay::Retention) {
      if (scratch.measuring()) return;
      for (std::int64_t h = 0; h < cfg_.heads; ++h) g.middleCols(h * cfg_.key_dim, cfg_.key_dim).setConstant(head_log_decay_[h]);
      return;
    }
    Scratch::Frame frame(scratch);
    MatMap low = scratch.matrix(u.rows(), cfg_.gate_rank);
    kernels::product(u, gate_down_, /*b_transposed=*/true, low, false, scratch);
    kernels::product(low, gate_up_, /*b_transposed=*/true, g, false, scratch);
    if (scratch.measuring()) return;
    g.rowwise() += gate_bias_;
    kernels::apply(Elementwise::LogSigmoid, g);
    g /= cfg_.gate_logit_normalizer;
    if (cfg_.clamp) g = g.cwiseMax(cfg_.clamp_min);
  }

  Config cfg_;
  Linear q_proj_, k_proj_, v_proj_, g_proj_, o_proj_;
  GlaRecurrence recurrence_;
  Eigen::RowVectorXf norm_gain_;          // [dv]
  std::vector<Conv1d> convs_;             // q, k, v with short_conv
  RowMatrixXf gate_down_, gate_up_;       // GLA: [rank, D], [Hkv·dk, rank] (float32: small, and 16 columns fit no block)
  Eigen::RowVectorXf gate_bias_;          // GLA: [Hkv·dk]
  Rope rope_;                             // retention
  Eigen::VectorXf head_log_decay_;        // retention: [H]
};

}  // namespace glrnn
