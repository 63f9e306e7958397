#pragma once
// Local sliding-window multi-query attention (docs/recurrent_gemma.md §8): a query at position t sees
// the keys at t-W < j <= t. Keys (after RoPE) and values live in a ring of W slots, position p in
// slot p mod W, so the state never grows. Prefill walks the chunk one query at a time through the
// same ring, which makes any chunking equal to one pass.

#include <algorithm>  // std::min, std::max
#include <cmath>      // std::sqrt
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int64_t
#include <utility>    // std::pair

#include "glrnn/layers/linear.hpp"
#include "glrnn/layers/rope.hpp"

namespace glrnn {

struct LocalAttentionConfig {
  std::int64_t hidden = 0;    // D
  std::int64_t heads = 1;     // H query heads
  std::int64_t kv_heads = 1;  // Hkv; H must be a multiple
  std::int64_t head_dim = 0;  // dh
  std::int64_t window = 0;    // W
  std::int64_t rotary_dims = 0;
  float rope_theta = 10000.0f;
  bool rope_bf16_frequencies = false;  // see Rope
};

struct LocalAttentionWeights {
  LinearWeights q_proj;  // [H·dh, D] (+ optional bias)
  LinearWeights k_proj;  // [Hkv·dh, D]
  LinearWeights v_proj;  // [Hkv·dh, D]
  LinearWeights o_proj;  // [D, H·dh] + [D]
};

/// K/V ring buffers. Slots holding positions before the current sequence start are never read:
/// visibility is derived from the position alone.
struct LocalAttentionState {
  RowMatrixXf keys;    // [W, Hkv·dh], after RoPE
  RowMatrixXf values;  // [W, Hkv·dh]

  explicit LocalAttentionState(const LocalAttentionConfig& cfg)
      : keys(RowMatrixXf::Zero(cfg.window, cfg.kv_heads * cfg.head_dim)),
        values(RowMatrixXf::Zero(cfg.window, cfg.kv_heads * cfg.head_dim)) {}
  static std::size_t bytes(const LocalAttentionConfig& cfg) {
    return 2 * static_cast<std::size_t>(cfg.window) * cfg.kv_heads * cfg.head_dim * sizeof(float);
  }
  std::size_t bytes() const { return static_cast<std::size_t>(keys.size() + values.size()) * sizeof(float); }
  void reset() {
    keys.setZero();
    values.setZero();
  }
  template <class F> void visit(F&& f) {
    f("attention_keys", keys.data(), keys.size());
    f("attention_values", values.data(), values.size());
  }
};

class LocalAttention {
 public:
  using State = LocalAttentionState;
  using Config = LocalAttentionConfig;
  using Weights = LocalAttentionWeights;

  LocalAttention(const Config& cfg, const Weights& w)
      : cfg_(cfg),
        q_proj_(cfg.hidden, cfg.heads * cfg.head_dim, w.q_proj, "q_proj"),
        k_proj_(cfg.hidden, cfg.kv_heads * cfg.head_dim, w.k_proj, "k_proj"),
        v_proj_(cfg.hidden, cfg.kv_heads * cfg.head_dim, w.v_proj, "v_proj"),
        o_proj_(cfg.heads * cfg.head_dim, cfg.hidden, w.o_proj, "o_proj"),
        rope_(cfg.head_dim, cfg.rotary_dims, cfg.rope_theta, cfg.rope_bf16_frequencies),
        scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(cfg.head_dim)))) {
    GLRNN_CHECK(cfg.window > 0 && cfg.kv_heads > 0 && cfg.heads % cfg.kv_heads == 0, ConfigError,
                "local attention needs window > 0 and heads divisible by kv_heads");
  }

  const Config& config() const { return cfg_; }
  State make_state() const { return State(cfg_); }
  std::size_t state_bytes() const { return State::bytes(cfg_); }

  /// Y[T, D] = attention(U[T, D]) for positions pos0 .. pos0+T-1, continuing from `state`.
  void forward(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    run(u, y, scratch, [&](Eigen::Index t) -> std::pair<State&, std::int64_t> { return {state, pos0 + t}; });
  }

  /// One position for each of B sequences: row b at positions[b] with state get(b).
  template <class GetState>
  void forward_batch(const MatIn& u, const std::int64_t* positions, GetState&& get, MatOut y, Scratch& scratch) const {
    run(u, y, scratch, [&](Eigen::Index b) -> std::pair<State&, std::int64_t> { return {get(b), positions[b]}; });
  }

 private:
  /// Projections for all rows at once, then row by row RoPE, the ring and attention;
  /// row_state(t) gives (state, position).
  template <class RowState>
  void run(const MatIn& u, MatOut y, Scratch& scratch, RowState&& row_state) const {
    const std::int64_t len = u.rows(), dh = cfg_.head_dim, W = cfg_.window;
    const std::int64_t group = cfg_.heads / cfg_.kv_heads;  // query heads per KV head
    Scratch::Frame frame(scratch);
    MatMap q = scratch.matrix(len, cfg_.heads * dh);
    MatMap k = scratch.matrix(len, cfg_.kv_heads * dh);
    MatMap v = scratch.matrix(len, cfg_.kv_heads * dh);
    MatMap out = scratch.matrix(len, cfg_.heads * dh);
    MatMap scores = scratch.matrix(group, W);
    q_proj_.forward(u, q, scratch);
    k_proj_.forward(u, k, scratch);
    v_proj_.forward(u, v, scratch);
    for (std::int64_t t = 0; t < len; ++t) {
      auto [state, pos] = row_state(t);
      if (!scratch.measuring()) {
        rope_.apply(q.row(t).data(), cfg_.heads, pos);
        rope_.apply(k.row(t).data(), cfg_.kv_heads, pos);
        state.keys.row(pos % W) = k.row(t);
        state.values.row(pos % W) = v.row(t);
      }
      // Positions max(0, pos-W+1) .. pos fill slots 0 .. visible-1 (all W slots once pos >= W-1);
      // a dry run sizes the scratch for a full window.
      const std::int64_t visible = scratch.measuring() ? W : std::min(pos + 1, W);
      for (std::int64_t g = 0; g < cfg_.kv_heads; ++g) {
        Eigen::Map<const RowMatrixXf> q_group(q.row(t).data() + g * group * dh, group, dh);
        Eigen::Map<RowMatrixXf> out_group(out.row(t).data() + g * group * dh, group, dh);
        auto s = scores.leftCols(visible);
        kernels::product(q_group, state.keys.block(0, g * dh, visible, dh), /*b_transposed=*/true, s, false, scratch);
        if (!scratch.measuring()) {
          s *= scale_;
          for (std::int64_t h = 0; h < group; ++h) {
            s.row(h).array() = (s.row(h).array() - s.row(h).maxCoeff()).exp();
            s.row(h) /= s.row(h).sum();
          }
        }
        kernels::product(s, state.values.block(0, g * dh, visible, dh), /*b_transposed=*/false, out_group, false, scratch);
      }
    }
    o_proj_.forward(out, y, scratch);
  }

  Config cfg_;
  Linear q_proj_, k_proj_, v_proj_, o_proj_;
  Rope rope_;
  float scale_;
};

}  // namespace glrnn
