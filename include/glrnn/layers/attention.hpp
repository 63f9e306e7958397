#pragma once
// Softmax attention with grouped key/value heads and rotary embeddings (docs/recurrent_gemma.md §8,
// docs/hybrid_attention.md), over a sliding window or over the whole past:
// - window W > 0: a query at position t sees the keys at t-W < j <= t. Keys (after RoPE) and
//   values live in a ring of W slots, position p in slot p mod W, so the state never grows.
// - window 0: a query sees every key before it. Position p is row p of a cache that grows with the
//   sequence, in steps that double its rows, up to the maximum context chosen at load; the state's
//   size is then a function of the position (AttentionState::bytes_at).
// Prefill walks the chunk one query at a time through the same cache, which makes any chunking
// equal to one pass. Keys beyond kTile are read tile by tile with a running softmax, so scratch
// does not grow with the context.

#include <algorithm>  // std::min, std::max
#include <cmath>      // std::sqrt, std::exp
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int64_t
#include <limits>     // std::numeric_limits
#include <string>     // std::to_string
#include <utility>    // std::pair

#include "glrnn/layers/linear.hpp"
#include "glrnn/layers/rope.hpp"

namespace glrnn {

struct AttentionConfig {
  std::int64_t hidden = 0;    // D
  std::int64_t heads = 1;     // H query heads
  std::int64_t kv_heads = 1;  // Hkv; H must be a multiple
  std::int64_t head_dim = 0;  // dh
  std::int64_t window = 0;    // W; 0 attends to every earlier position
  std::int64_t rotary_dims = 0;
  float rope_theta = 10000.0f;
  bool rope_bf16_frequencies = false;  // see Rope
  std::int64_t max_context = 0;        // window 0: the most positions the cache may hold

  std::int64_t kv_width() const { return kv_heads * head_dim; }
};

struct AttentionWeights {
  LinearWeights q_proj;  // [H·dh, D] (+ optional bias)
  LinearWeights k_proj;  // [Hkv·dh, D] (+ optional bias)
  LinearWeights v_proj;  // [Hkv·dh, D] (+ optional bias)
  LinearWeights o_proj;  // [D, H·dh] (+ optional bias)
};

/// The keys (after RoPE) and values: a ring of W rows, or (window 0) rows 0 .. length-1 of a cache
/// whose capacity grows. Slots holding positions before the current sequence start are never read:
/// visibility is derived from the position alone.
struct AttentionState {
  RowMatrixXf keys;         // [rows, Hkv·dh]
  RowMatrixXf values;       // [rows, Hkv·dh]
  std::int64_t length = 0;  // window 0: positions held
  std::int64_t window = 0, max_context = 0;

  explicit AttentionState(const AttentionConfig& cfg)
      : keys(RowMatrixXf::Zero(cfg.window, cfg.kv_width())),
        values(RowMatrixXf::Zero(cfg.window, cfg.kv_width())),
        window(cfg.window),
        max_context(cfg.max_context) {}
  /// Bytes at position 0 (a growing cache holds nothing yet).
  static std::size_t bytes(const AttentionConfig& cfg) { return bytes_at(cfg, 0); }
  /// Bytes of the keys and values once `position` positions have run.
  static std::size_t bytes_at(const AttentionConfig& cfg, std::int64_t position) {
    const std::int64_t rows = cfg.window > 0 ? cfg.window : position;
    return 2 * static_cast<std::size_t>(rows) * cfg.kv_width() * sizeof(float);
  }
  std::size_t bytes() const { return static_cast<std::size_t>(keys.size() + values.size()) * sizeof(float); }
  void reset() {
    if (window > 0) {
      keys.setZero();
      values.setZero();
    } else {
      length = 0;
      keys.resize(0, keys.cols());
      values.resize(0, values.cols());
    }
  }
  /// Restoring a saved state: make room for `positions` positions (their contents come next).
  void resize_to(std::int64_t positions) {
    if (window > 0) return;
    reserve(positions);
    length = positions;
  }
  /// Room for exactly `positions` positions if it has less (window 0). Throws InputError past the
  /// maximum context.
  void reserve(std::int64_t positions) {
    if (window > 0 || positions <= keys.rows()) return;
    GLRNN_CHECK(positions <= max_context, InputError,
                "attention cache needs " + std::to_string(positions) + " positions, past the maximum context of " +
                    std::to_string(max_context) + " chosen at load");
    keys.conservativeResize(positions, keys.cols());
    values.conservativeResize(positions, values.cols());
  }
  /// Room for `positions` positions as a sequence grows: doubling, so that the copies cost O(1)
  /// per position.
  void grow_to(std::int64_t positions) {
    if (window > 0 || positions <= keys.rows()) return;
    constexpr std::int64_t kFirstRows = 256;
    reserve(std::max<std::int64_t>(positions, std::min(max_context, std::max(2 * keys.rows(), kFirstRows))));
  }
  template <class F> void visit(F&& f) {
    const std::int64_t rows = window > 0 ? keys.rows() : length;
    f("attention_keys", keys.data(), rows * keys.cols());
    f("attention_values", values.data(), rows * values.cols());
  }
};

class Attention {
 public:
  using State = AttentionState;
  using Config = AttentionConfig;
  using Weights = AttentionWeights;

  Attention(const Config& cfg, const Weights& w)
      : cfg_(cfg),
        q_proj_(cfg.hidden, cfg.heads * cfg.head_dim, w.q_proj, "q_proj"),
        k_proj_(cfg.hidden, cfg.kv_width(), w.k_proj, "k_proj"),
        v_proj_(cfg.hidden, cfg.kv_width(), w.v_proj, "v_proj"),
        o_proj_(cfg.heads * cfg.head_dim, cfg.hidden, w.o_proj, "o_proj"),
        rope_(cfg.head_dim, cfg.rotary_dims, cfg.rope_theta, cfg.rope_bf16_frequencies),
        scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(cfg.head_dim)))) {
    GLRNN_CHECK(cfg.window >= 0 && cfg.kv_heads > 0 && cfg.heads % cfg.kv_heads == 0, ConfigError,
                "attention needs a window >= 0 and heads divisible by kv_heads");
    GLRNN_CHECK(cfg.window > 0 || cfg.max_context > 0, ConfigError, "full attention needs a maximum context");
  }

  const Config& config() const { return cfg_; }
  State make_state() const { return State(cfg_); }
  std::size_t state_bytes() const { return State::bytes(cfg_); }
  /// The most positions a sequence may reach (DecoderStack refuses longer ones up front).
  std::int64_t max_positions() const {
    return cfg_.window > 0 ? std::numeric_limits<std::int64_t>::max() : cfg_.max_context;
  }

  /// Y[T, D] = attention(U[T, D]) for positions pos0 .. pos0+T-1, continuing from `state`.
  void forward(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    if (!scratch.measuring()) state.grow_to(pos0 + u.rows());
    run(u, y, scratch, [&](Eigen::Index t) -> std::pair<State&, std::int64_t> { return {state, pos0 + t}; });
  }

  /// One position for each of B sequences: row b at positions[b] with state get(b).
  template <class GetState>
  void forward_batch(const MatIn& u, const std::int64_t* positions, GetState&& get, MatOut y, Scratch& scratch) const {
    if (!scratch.measuring())
      for (Eigen::Index b = 0; b < u.rows(); ++b) get(b).grow_to(positions[b] + 1);
    run(u, y, scratch, [&](Eigen::Index b) -> std::pair<State&, std::int64_t> { return {get(b), positions[b]}; });
  }

 private:
  static constexpr std::int64_t kTile = 2048;  // keys per softmax tile: RecurrentGemma's window fits one

  /// Projections for all rows at once, then row by row RoPE, the cache and attention;
  /// row_state(t) gives (state, position).
  template <class RowState>
  void run(const MatIn& u, MatOut y, Scratch& scratch, RowState&& row_state) const {
    const std::int64_t len = u.rows(), dh = cfg_.head_dim, W = cfg_.window;
    const std::int64_t group = cfg_.heads / cfg_.kv_heads;  // query heads per KV head
    const std::int64_t most_visible = W > 0 ? W : cfg_.max_context;
    Scratch::Frame frame(scratch);
    MatMap q = scratch.matrix(len, cfg_.heads * dh);
    MatMap k = scratch.matrix(len, cfg_.kv_width());
    MatMap v = scratch.matrix(len, cfg_.kv_width());
    MatMap out = scratch.matrix(len, cfg_.heads * dh);
    MatMap scores = scratch.matrix(group, std::max(group, std::min(most_visible, kTile)));
    float* running_max = scratch.array<float>(static_cast<std::size_t>(group));
    float* running_sum = scratch.array<float>(static_cast<std::size_t>(group));
    q_proj_.forward(u, q, scratch);
    k_proj_.forward(u, k, scratch);
    v_proj_.forward(u, v, scratch);
    for (std::int64_t t = 0; t < len; ++t) {
      // Named, not a structured binding: C++17 lets no lambda capture a binding (clang enforces it).
      const auto row = row_state(t);
      State& state = row.first;
      const std::int64_t pos = row.second;
      const std::int64_t slot = W > 0 ? pos % W : pos;
      if (!scratch.measuring()) {
        rope_.apply(q.row(t).data(), cfg_.heads, pos);
        rope_.apply(k.row(t).data(), cfg_.kv_heads, pos);
        state.keys.row(slot) = k.row(t);
        state.values.row(slot) = v.row(t);
        if (W == 0) state.length = std::max(state.length, pos + 1);
      }
      // A window's positions max(0, pos-W+1) .. pos fill slots 0 .. visible-1 (all W slots once
      // pos >= W-1); without a window, slots 0 .. pos.
      const std::int64_t visible = std::min(pos + 1, most_visible);
      for (std::int64_t g = 0; g < cfg_.kv_heads; ++g) {
        Eigen::Map<const RowMatrixXf> q_group(q.row(t).data() + g * group * dh, group, dh);
        Eigen::Map<RowMatrixXf> out_group(out.row(t).data() + g * group * dh, group, dh);
        if (scratch.measuring()) {
          // A dry run holds no keys; a product's scratch depends only on the head dimension.
          kernels::product(q_group, q_group, /*b_transposed=*/true, scores.leftCols(group), false, scratch);
          continue;
        }
        const auto keys = [&](std::int64_t j0, std::int64_t n) { return state.keys.block(j0, g * dh, n, dh); };
        const auto values = [&](std::int64_t j0, std::int64_t n) { return state.values.block(j0, g * dh, n, dh); };
        if (visible <= kTile) {
          // One tile: the plain softmax, normalised before the product.
          auto s = scores.leftCols(visible);
          kernels::product(q_group, keys(0, visible), /*b_transposed=*/true, s, false, scratch);
          s *= scale_;
          for (std::int64_t h = 0; h < group; ++h) {
            s.row(h).array() = (s.row(h).array() - s.row(h).maxCoeff()).exp();
            s.row(h) /= s.row(h).sum();
          }
          kernels::product(s, values(0, visible), /*b_transposed=*/false, out_group, false, scratch);
          continue;
        }
        // Several tiles: a running maximum and sum per query head rescale what came before.
        for (std::int64_t h = 0; h < group; ++h) {
          running_max[h] = -std::numeric_limits<float>::infinity();
          running_sum[h] = 0.0f;
        }
        out_group.setZero();
        for (std::int64_t j0 = 0; j0 < visible; j0 += kTile) {
          const std::int64_t n = std::min(kTile, visible - j0);
          auto s = scores.leftCols(n);
          kernels::product(q_group, keys(j0, n), /*b_transposed=*/true, s, false, scratch);
          s *= scale_;
          for (std::int64_t h = 0; h < group; ++h) {
            const float new_max = std::max(running_max[h], s.row(h).maxCoeff());
            const float carried = std::exp(running_max[h] - new_max);
            s.row(h).array() = (s.row(h).array() - new_max).exp();
            running_sum[h] = running_sum[h] * carried + s.row(h).sum();
            running_max[h] = new_max;
            out_group.row(h) *= carried;
          }
          kernels::product(s, values(j0, n), /*b_transposed=*/false, out_group, /*accumulate=*/true, scratch);
        }
        for (std::int64_t h = 0; h < group; ++h) out_group.row(h) /= running_sum[h];
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
