#pragma once
// fla's DeltaNet and GatedDeltaNet token mixers (docs/delta_net.md §3): q/k/v projections through
// short convolutions, normalised queries and keys, a step size β per value head from b_proj, the
// delta rule (layers/delta_rule.hpp), an RMSNorm per value head (times swish(g_proj x) with the
// output gate) and o_proj. Gated DeltaNet adds a decay per value head,
//   g = −exp(A_log) · softplus(a_proj x + dt_bias),
// and may have more value heads than key heads (each key head serves a group of value heads).

#include <cmath>    // std::exp, std::sqrt
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <string>   // std::to_string
#include <vector>   // std::vector

#include "glrnn/core/math.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/layers/conv1d.hpp"
#include "glrnn/layers/delta_rule.hpp"
#include "glrnn/layers/linear.hpp"
#include "glrnn/layers/recurrent_state.hpp"
#include "glrnn/layers/rmsnorm.hpp"

namespace glrnn {

/// DeltaNet's `qk_activation` (Gated DeltaNet always uses SiLU).
enum class QkActivation { Silu, Relu, EluPlusOne, Identity };
/// DeltaNet's `qk_norm` (Gated DeltaNet always uses L2).
enum class QkNorm { L2, Sum };

struct DeltaNetMixerConfig {
  std::int64_t hidden = 0;       // D
  std::int64_t heads = 1;        // H key/query heads
  std::int64_t value_heads = 1;  // HV value heads (= H for DeltaNet)
  std::int64_t key_dim = 0;      // dk per head
  std::int64_t value_dim = 0;    // dv per head
  bool gated = false;            // Gated DeltaNet's decay
  QkActivation qk_activation = QkActivation::Silu;
  QkNorm qk_norm = QkNorm::L2;
  bool use_beta = true;          // β = sigmoid(b_proj x); else 1
  bool allow_neg_eigval = false; // β doubled (eigenvalues of I − β k k^T down to −1)
  bool short_conv = true;
  std::int64_t conv_size = 4;
  bool output_gate = false;      // the norm's output times swish(g_proj x)
  float norm_eps = 1e-5f;
  std::int64_t chunk_size = 32;  // prefill chunk (measured fastest: docs/delta_net.md §2); 0 runs prefill sequentially
  kernels::Precision precision = kernels::Precision::Float32;  // the chunk's products (DeltaRuleConfig)

  std::int64_t k_width() const { return heads * key_dim; }
  std::int64_t v_width() const { return value_heads * value_dim; }
  Conv1dConfig conv(std::int64_t channels) const { return {channels, conv_size}; }
  /// The states [HV·dk, dv] and, with short convolutions, the q, k and v histories.
  RecurrentStateShape state_shape() const {
    return {value_heads * key_dim, value_dim, {conv(k_width()), conv(k_width()), conv(v_width())}, short_conv ? 3u : 0u};
  }
  DeltaRuleConfig rule() const {
    DeltaRuleConfig r;
    r.heads = heads;
    r.value_heads = value_heads;
    r.key_dim = key_dim;
    r.value_dim = value_dim;
    r.gated = gated;
    r.precision = precision;
    r.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(key_dim)));
    return r;
  }
};

struct DeltaNetMixerWeights {
  LinearWeights q_proj, k_proj;  // [H·dk, D]
  LinearWeights v_proj;          // [HV·dv, D]
  LinearWeights g_proj;          // [HV·dv, D], with the output gate
  LinearWeights o_proj;          // [D, HV·dv]
  TensorView<const float> b_proj;   // [HV, D] with use_beta (float32: a few rows that set step sizes)
  TensorView<const float> a_proj;   // gated: [HV, D]
  TensorView<const float> a_log;    // gated: [HV]
  TensorView<const float> dt_bias;  // gated: [HV]
  TensorView<const float> o_norm;   // [dv]
  Conv1dWeights q_conv, k_conv, v_conv;  // with short_conv: [C, 1, conv_size]
};

/// The delta rule's states [HV·dk, dv] (value head j is rows j·dk .. (j+1)·dk), float32 whatever
/// the weights; plus the q, k and v convolution histories.
struct DeltaNetMixerState : RecurrentState {
  explicit DeltaNetMixerState(const DeltaNetMixerConfig& cfg) : RecurrentState("delta_state", cfg.state_shape()) {}
  static std::size_t bytes(const DeltaNetMixerConfig& cfg) { return RecurrentState::bytes(cfg.state_shape()); }
  using RecurrentState::bytes;
};

class DeltaNetMixer {
 public:
  using State = DeltaNetMixerState;
  using Config = DeltaNetMixerConfig;
  using Weights = DeltaNetMixerWeights;

  DeltaNetMixer(const Config& cfg, const Weights& w)
      : cfg_(cfg),
        q_proj_(cfg.hidden, cfg.k_width(), w.q_proj, "attn.q_proj"),
        k_proj_(cfg.hidden, cfg.k_width(), w.k_proj, "attn.k_proj"),
        v_proj_(cfg.hidden, cfg.v_width(), w.v_proj, "attn.v_proj"),
        o_proj_(cfg.v_width(), cfg.hidden, w.o_proj, "attn.o_proj"),
        rule_(cfg.rule()) {
    const std::int64_t HV = cfg.value_heads;
    check_shape(w.o_norm.shape, {cfg.value_dim}, "attn.o_norm.weight");
    norm_gain_ = Eigen::Map<const Eigen::RowVectorXf>(w.o_norm.data, cfg.value_dim);
    if (cfg.output_gate) g_proj_ = Linear(cfg.hidden, cfg.v_width(), w.g_proj, "attn.g_proj");
    if (cfg.use_beta) {
      check_shape(w.b_proj.shape, {HV, cfg.hidden}, "attn.b_proj.weight");
      b_proj_ = Eigen::Map<const RowMatrixXf>(w.b_proj.data, HV, cfg.hidden);
    }
    if (cfg.gated) {
      check_shape(w.a_proj.shape, {HV, cfg.hidden}, "attn.a_proj.weight");
      check_shape(w.a_log.shape, {HV}, "attn.A_log");
      check_shape(w.dt_bias.shape, {HV}, "attn.dt_bias");
      a_proj_ = Eigen::Map<const RowMatrixXf>(w.a_proj.data, HV, cfg.hidden);
      // −exp(A_log) in float32, as fla's kernel computes it.
      decay_rate_ = -Eigen::Map<const Eigen::RowVectorXf>(w.a_log.data, HV).array().exp();
      dt_bias_ = Eigen::Map<const Eigen::RowVectorXf>(w.dt_bias.data, HV);
    }
    if (cfg.short_conv) {
      convs_.emplace_back(cfg.conv(cfg.k_width()), w.q_conv);
      convs_.emplace_back(cfg.conv(cfg.k_width()), w.k_conv);
      convs_.emplace_back(cfg.conv(cfg.v_width()), w.v_conv);
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
        [&](int which, MatIn raw, const HeadRows& out) {
          convs_[static_cast<std::size_t>(which)].forward_batch(
              raw, positions, [&](Eigen::Index b) -> Conv1dState& { return get(b).convs[static_cast<std::size_t>(which)]; },
              out);
        },
        [&](const HeadRows& q, const HeadRows& k, const HeadRows& v, const MatMap& beta, const MatMap& g, const HeadRows& o) {
          if (scratch.measuring()) return;
          for (Eigen::Index b = 0; b < u.rows(); ++b) rule_.step(q, k, v, beta, g, b, get(b).state, o);
        });
  }

 private:
  void run(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    mix(
        u, y, scratch,
        [&](int which, MatIn raw, const HeadRows& out) {
          convs_[static_cast<std::size_t>(which)].forward(raw, pos0, state.convs[static_cast<std::size_t>(which)], out);
        },
        [&](const HeadRows& q, const HeadRows& k, const HeadRows& v, const MatMap& beta, const MatMap& g, const HeadRows& o) {
          rule_.forward(q, k, v, beta, g, state.state, o, scratch, cfg_.chunk_size);
        });
  }

  /// Projections through the convolutions (conv(which, raw, out)), activation and normalisation of
  /// q and k, β and the decay, the rule (supplied: one sequence or a batch), the norm, o_proj.
  /// q, k, v and o are laid out head by head, as the rule reads them (HeadRows).
  template <class Conv, class Rule>
  void mix(const MatIn& u, MatOut y, Scratch& scratch, Conv&& conv, Rule&& rule) const {
    const std::int64_t len = u.rows(), H = cfg_.heads, HV = cfg_.value_heads, dk = cfg_.key_dim, dv = cfg_.value_dim;
    const bool measuring = scratch.measuring();
    Scratch::Frame frame(scratch);
    HeadRows q = scratch.head_rows(len, H, dk);
    HeadRows k = scratch.head_rows(len, H, dk);
    HeadRows v = scratch.head_rows(len, HV, dv);
    MatMap beta = scratch.matrix(len, HV);
    MatMap g = scratch.matrix(len, HV);  // log decay (gated)
    HeadRows o = scratch.head_rows(len, HV, dv);
    const bool silu_qk = cfg_.qk_activation == QkActivation::Silu;
    project(q_proj_, u, q, scratch, 0, silu_qk, conv);
    project(k_proj_, u, k, scratch, 1, silu_qk, conv);
    project(v_proj_, u, v, scratch, 2, true, conv);
    if (cfg_.use_beta) kernels::product(u, b_proj_, /*b_transposed=*/true, beta, false, scratch);
    if (cfg_.gated) kernels::product(u, a_proj_, /*b_transposed=*/true, g, false, scratch);
    if (!measuring) {
      activate_and_normalise(q);
      activate_and_normalise(k);
      const float beta_scale = cfg_.allow_neg_eigval ? 2.0f : 1.0f;
      if (cfg_.use_beta) {
        beta = beta.unaryExpr([beta_scale](float x) { return beta_scale * sigmoid(x); });
      } else {
        beta.setConstant(beta_scale);
      }
      if (cfg_.gated)
        for (Eigen::Index t = 0; t < len; ++t)
          for (Eigen::Index j = 0; j < HV; ++j) g(t, j) = decay_rate_[j] * softplus(g(t, j) + dt_bias_[j]);
    }
    rule(q, k, v, beta, g, o);
    norm_then_project(o, u, cfg_.output_gate ? &g_proj_ : nullptr, norm_gain_, cfg_.norm_eps, o_proj_, y, scratch);
  }

  /// out = proj(u) by heads, through the short convolution when the layer has them, then SiLU if
  /// `silu` (fla's convolutions carry the activation; without them it follows the projection).
  template <class Conv>
  void project(const Linear& proj, const MatIn& u, const HeadRows& out, Scratch& scratch, int which, bool silu_after,
               Conv& conv) const {
    Scratch::Frame frame(scratch);
    MatMap raw = scratch.matrix(u.rows(), out.heads * out.width);
    proj.forward(u, raw, scratch);
    if (scratch.measuring()) return;
    if (cfg_.short_conv) {
      conv(which, raw, out);
    } else {
      parallel_for(0, raw.rows(), raw.cols(), [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t h = 0; h < out.heads; ++h) out.block(h, lo, hi - lo) = raw.block(lo, h * out.width, hi - lo, out.width);
      });
    }
    if (silu_after) kernels::apply(Elementwise::Silu, out.all());
  }

  /// q or k by heads: DeltaNet's other activations, then each head's row normalised: L2 as fla's
  /// kernel (x / sqrt(Σx² + 1e-6)) or by its sum; the rows split between threads.
  void activate_and_normalise(const HeadRows& x) const {
    MatMap rows = x.all();
    parallel_for(0, rows.rows(), 4 * rows.cols(), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t r = lo; r < hi; ++r) {
        auto head = rows.row(r);
        switch (cfg_.qk_activation) {
          case QkActivation::Relu: head = head.cwiseMax(0.0f); break;
          case QkActivation::EluPlusOne: head = head.unaryExpr([](float a) { return a > 0.0f ? a + 1.0f : std::exp(a); }); break;
          case QkActivation::Silu:
          case QkActivation::Identity: break;
        }
        if (cfg_.qk_norm == QkNorm::L2) {
          head /= std::sqrt(head.squaredNorm() + 1e-6f);
        } else {
          head /= head.sum();
        }
      }
    });
  }

  Config cfg_;
  Linear q_proj_, k_proj_, v_proj_, g_proj_, o_proj_;
  DeltaRule rule_;
  Eigen::RowVectorXf norm_gain_;           // [dv]
  RowMatrixXf b_proj_, a_proj_;            // [HV, D]
  Eigen::RowVectorXf decay_rate_, dt_bias_;  // [HV]: −exp(A_log), dt_bias
  std::vector<Conv1d> convs_;              // q, k, v with short_conv
};

}  // namespace glrnn
