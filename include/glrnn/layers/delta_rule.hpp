#pragma once
// The (gated) delta rule of DeltaNet and Gated DeltaNet (docs/delta_net.md §1). Per value head j,
// with its key/query head h(j), normalised keys k_t, values v_t, a step size β_t and (gated) a log
// decay g_t ≤ 0:
//   S ← exp(g_t) S                           (gated only)
//   u_t = β_t (v_t − S^T k_t)                 the correction of what S recalls for k_t
//   S ← S + k_t u_t^T                         S: dk x dv, float32
//   o_t = scale · S^T q_t                      the updated state is read
//
// Prefill runs the chunk-parallel (WY / UT) form: within a chunk of n positions with cumulative
// log decays c_i, the n corrections solve one unit-lower-triangular system, and the outputs and
// the new state are matrix products (docs/delta_net.md §2). Every exponential it evaluates is of
// c_i − c_j with i ≥ j, or of c_i itself: none has a positive argument, so it is as stable as the
// recurrence that single positions and batched decode run.

#include <algorithm>  // std::min, std::max
#include <cstddef>    // std::byte, std::size_t
#include <cmath>      // std::exp
#include <cstdint>    // std::int64_t
#include <string>     // std::to_string

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/kernels/kernels.hpp"

namespace glrnn {

struct DeltaRuleConfig {
  std::int64_t heads = 1;        // H key/query heads
  std::int64_t value_heads = 1;  // HV value heads, each with its own state; a multiple of H
  std::int64_t key_dim = 0;      // dk per head
  std::int64_t value_dim = 0;    // dv per head
  bool gated = false;            // a log decay per value head and position (Gated DeltaNet)
  float scale = 1.0f;            // applied to the queries

  std::int64_t state_rows() const { return value_heads * key_dim; }
  void validate() const {
    GLRNN_CHECK(heads > 0 && value_heads > 0 && value_heads % heads == 0 && key_dim > 0 && value_dim > 0, ConfigError,
                "the delta rule needs positive sizes and value heads (" + std::to_string(value_heads) +
                    ") that are a multiple of the key heads (" + std::to_string(heads) + ")");
  }
};

/// The recurrence over prepared inputs; the mixer around it owns the state [HV·dk, dv] and the
/// projections, convolutions, normalisation and gates.
class DeltaRule {
 public:
  DeltaRule() = default;
  explicit DeltaRule(const DeltaRuleConfig& cfg) : cfg_(cfg) { cfg_.validate(); }

  const DeltaRuleConfig& config() const { return cfg_; }

  /// O[T, HV·dv] from q, k [T, H·dk] (keys normalised), v [T, HV·dv], beta [T, HV] and, gated, the
  /// log decay g [T, HV]; advances `state`. Chunk-parallel when T > 1 and chunk_size > 0.
  void forward(const MatMap& q, const MatMap& k, const MatMap& v, const MatMap& beta, const MatMap& g,
               RowMatrixXf& state, MatMap& o, Scratch& scratch, std::int64_t chunk_size) const {
    const std::int64_t len = q.rows();
    if (chunk_size > 0 && len > 1) {
      for (std::int64_t c0 = 0; c0 < len; c0 += chunk_size)
        chunk(q, k, v, beta, g, c0, std::min(chunk_size, len - c0), state, o, scratch);
    } else if (!scratch.measuring()) {
      for (std::int64_t t = 0; t < len; ++t) step(q, k, v, beta, g, t, state, o);
    }
  }

  /// Row t only: one decode step of one sequence (batched decode calls it per sequence).
  void step(const MatMap& q, const MatMap& k, const MatMap& v, const MatMap& beta, const MatMap& g, std::int64_t t,
            RowMatrixXf& state, MatMap& o) const {
    const std::int64_t dk = cfg_.key_dim, dv = cfg_.value_dim;
    // Value heads are independent: a large state (Gated DeltaNet-1.3B: 3 MB a layer) is read by every thread.
    parallel_for(0, cfg_.value_heads, 4 * dk * dv, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t j = lo; j < hi; ++j) {
        const std::int64_t h = key_head(j);
        auto S = state.middleRows(j * dk, dk);
        if (cfg_.gated) S *= std::exp(g(t, j));
        const auto kt = k.row(t).segment(h * dk, dk);
        auto ot = o.row(t).segment(j * dv, dv);
        // ot holds u = β (v − S^T k) until the state is updated, then the output.
        ot.noalias() = kt * S;
        ot = beta(t, j) * (v.row(t).segment(j * dv, dv) - ot);
        S.noalias() += kt.transpose() * ot;
        ot.noalias() = cfg_.scale * (q.row(t).segment(h * dk, dk) * S);
      }
    });
  }

 private:
  std::int64_t key_head(std::int64_t j) const { return j / (cfg_.value_heads / cfg_.heads); }

  /// Positions c0 .. c0+n-1 in matrix form, every value head (see the file comment). Each head
  /// has its own temporaries, so the heads run on parallel threads.
  void chunk(const MatMap& q, const MatMap& k, const MatMap& v, const MatMap& beta, const MatMap& g, std::int64_t c0,
             std::int64_t n, RowMatrixXf& state, MatMap& o, Scratch& scratch) const {
    const std::int64_t dk = cfg_.key_dim, dv = cfg_.value_dim, HV = cfg_.value_heads;
    Scratch::Frame frame(scratch);
    // Per value head j, rows j·n .. (j+1)·n (keys_t: j·dk .. (j+1)·dk) of:
    MatMap decays = scratch.matrix(HV * n, n);     // exp(c_i − c_j) for i ≥ j, 0 above
    MatMap systems = scratch.matrix(HV * n, n);    // K K^T, then Q K^T ∘ decay
    MatMap rhss = scratch.matrix(HV * n, dv + dk); // [β ⊙ V | β ⊙ exp(c) ⊙ K], solved in place: [U | W]
    MatMap corrected = scratch.matrix(HV * n, dv); // the corrected values V' = U − W S
    MatMap scaleds = scratch.matrix(HV * n, dk);   // exp(c) ⊙ Q
    MatMap keys_ts = scratch.matrix(HV * dk, n);   // the keys decayed to the chunk's end, transposed
    MatMap cums = scratch.matrix(HV, n);           // c_i
    // The products' inner sizes are dk and n.
    const std::size_t work_bytes = std::max(kernels::product_work_bytes(dk), kernels::product_work_bytes(n));
    std::byte* works = scratch.array<std::byte>(static_cast<std::size_t>(HV) * work_bytes);
    if (scratch.measuring()) return;
    parallel_for(0, HV, 4 * n * dk * dv, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t j = lo; j < hi; ++j) {
        const std::int64_t h = key_head(j);
        const auto qh = q.block(c0, h * dk, n, dk);
        const auto kh = k.block(c0, h * dk, n, dk);
        const auto vh = v.block(c0, j * dv, n, dv);
        auto oh = o.block(c0, j * dv, n, dv);
        auto S = state.middleRows(j * dk, dk);
        auto decay = decays.middleRows(j * n, n);
        auto system = systems.middleRows(j * n, n);
        auto rhs = rhss.middleRows(j * n, n);
        auto values = corrected.middleRows(j * n, n);
        auto scaled = scaleds.middleRows(j * n, n);
        auto keys_t = keys_ts.middleRows(j * dk, dk);
        auto cum = cums.row(j);
        std::byte* work = works + static_cast<std::size_t>(j) * work_bytes;
        const auto U = rhs.leftCols(dv);
        const auto W = rhs.rightCols(dk);
        float running = 0.0f;
        for (std::int64_t i = 0; i < n; ++i) cum[i] = running += cfg_.gated ? g(c0 + i, j) : 0.0f;
        for (std::int64_t i = 0; i < n; ++i) {
          decay.row(i).head(i + 1).array() = (cum[i] - cum.head(i + 1).array()).exp();
          decay.row(i).tail(n - i - 1).setZero();
          const float b = beta(c0 + i, j);
          rhs.row(i).head(dv) = b * vh.row(i);
          rhs.row(i).tail(dk) = (b * std::exp(cum[i])) * kh.row(i);
          scaled.row(i) = std::exp(cum[i]) * qh.row(i);
        }
        kernels::product(kh, kh, /*b_transposed=*/true, system, false, work);
        // (I + strictly_lower(diag(β) (K K^T ∘ decay))) [U | W] = [β ⊙ V | β ⊙ exp(c) ⊙ K], by
        // forward substitution: row i subtracts the rows before it, over all dv + dk columns
        // (measured as fast as inverting the n x n system and multiplying).
        for (std::int64_t i = 1; i < n; ++i)
          for (std::int64_t jj = 0; jj < i; ++jj)
            rhs.row(i) -= (beta(c0 + i, j) * system(i, jj) * decay(i, jj)) * rhs.row(jj);
        kernels::product(W, S, /*b_transposed=*/false, values, false, work);  // W S
        values = U - values;
        // O = (exp(c) ⊙ Q) S + (Q K^T ∘ decay) V'
        kernels::product(scaled, S, /*b_transposed=*/false, oh, false, work);
        kernels::product(qh, kh, /*b_transposed=*/true, system, false, work);
        system.array() *= decay.array();
        kernels::product(system, values, /*b_transposed=*/false, oh, /*accumulate=*/true, work);
        oh *= cfg_.scale;
        // S ← exp(c_n) S + (exp(c_n − c_i) ⊙ K)^T V'
        const float last = cum[n - 1];
        for (std::int64_t i = 0; i < n; ++i) keys_t.col(i) = std::exp(last - cum[i]) * kh.row(i).transpose();
        S *= std::exp(last);
        kernels::product(keys_t, values, /*b_transposed=*/false, S, /*accumulate=*/true, work);
      }
    });
  }

  DeltaRuleConfig cfg_;
};

}  // namespace glrnn
