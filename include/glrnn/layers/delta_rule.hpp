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
#include "glrnn/core/simd.hpp"  // GLRNN_KEEP_CALLS
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
  /// The chunk form's products: float32, or bf16 in the bf16-activation mode (docs/delta_net.md §2).
  kernels::Precision precision = kernels::Precision::Float32;

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
  using RowVectorMap = Eigen::Map<Eigen::RowVectorXf>;

 public:
  DeltaRule() = default;
  explicit DeltaRule(const DeltaRuleConfig& cfg) : cfg_(cfg) { cfg_.validate(); }

  const DeltaRuleConfig& config() const { return cfg_; }

  /// O [HV, T, dv] from q, k [H, T, dk] (keys normalised) and v [HV, T, dv], laid out head by head,
  /// beta [T, HV] and, gated, the log decay g [T, HV]; advances `state`. Chunk-parallel when T > 1
  /// and chunk_size > 0.
  void forward(const HeadRows& q, const HeadRows& k, const HeadRows& v, const MatMap& beta, const MatMap& g,
               RowMatrixXf& state, const HeadRows& o, Scratch& scratch, std::int64_t chunk_size) const {
    check_shapes(q, k, v, beta, o);
    const std::int64_t len = q.rows;
    if (chunk_size > 0 && len > 1) {
      prefill(q, k, v, beta, g, state, o, scratch, std::min(chunk_size, len));
    } else if (!scratch.measuring()) {
      token_by_token(q, k, v, beta, g, 0, len, state, o);
    }
  }

  /// Row t only: one decode step of one sequence (batched decode calls it per sequence).
  void step(const HeadRows& q, const HeadRows& k, const HeadRows& v, const MatMap& beta, const MatMap& g, std::int64_t t,
            RowMatrixXf& state, const HeadRows& o) const {
    check_shapes(q, k, v, beta, o);
    token_by_token(q, k, v, beta, g, t, t + 1, state, o);
  }

 private:
  void check_shapes(const HeadRows& q, const HeadRows& k, const HeadRows& v, const MatMap& beta, const HeadRows& o) const {
    const std::int64_t len = q.rows;
    GLRNN_CHECK(q.heads == cfg_.heads && k.heads == cfg_.heads && q.width == cfg_.key_dim && k.width == cfg_.key_dim &&
                    v.heads == cfg_.value_heads && o.heads == cfg_.value_heads && v.width == cfg_.value_dim &&
                    o.width == cfg_.value_dim && k.rows == len && v.rows == len && o.rows == len && beta.rows() == len &&
                    beta.cols() == cfg_.value_heads,
                ShapeError, "delta rule: the inputs' heads, widths or positions do not match its configuration");
  }

  std::int64_t key_head(std::int64_t j) const { return j / (cfg_.value_heads / cfg_.heads); }

  /// Rows [t0, t1) one position at a time. Value heads are independent, so each thread takes whole
  /// heads through every position: a large state (Gated DeltaNet-1.3B: 3 MB a layer) is read by
  /// every thread, and there is one hand-over per call, not one per position.
  void token_by_token(const HeadRows& q, const HeadRows& k, const HeadRows& v, const MatMap& beta, const MatMap& g,
                      std::int64_t t0, std::int64_t t1, RowMatrixXf& state, const HeadRows& o) const {
    const std::int64_t dk = cfg_.key_dim, dv = cfg_.value_dim;
    parallel_for(0, cfg_.value_heads, (t1 - t0) * 4 * dk * dv, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t j = lo; j < hi; ++j) {
        const std::int64_t h = key_head(j);
        auto S = state.middleRows(j * dk, dk);
        for (std::int64_t t = t0; t < t1; ++t) {
          if (cfg_.gated) S *= std::exp(g(t, j));
          const RowVectorMap kt(k.row(t, h), dk);
          RowVectorMap ot(o.row(t, j), dv);
          // ot holds u = β (v − S^T k) until the state is updated, then the output.
          ot.noalias() = kt * S;
          ot = beta(t, j) * (RowVectorMap(v.row(t, j), dv) - ot);
          S.noalias() += kt.transpose() * ot;
          ot.noalias() = cfg_.scale * (RowVectorMap(q.row(t, h), dk) * S);
        }
      }
    });
  }

  /// One value head's temporaries for a chunk of up to C positions.
  struct ChunkSpace {
    MatMap x;          // [2C, dk + dv]: [β ⊙ K | β ⊙ V] (solved in place to [W | U]) over scale · Q
    MatMap system;     // [2C, C]: the triangular system's coefficients over the outputs' weights
    MatMap state_parts;  // [2C, dv]: [W S; scale · (exp(c) ⊙ Q) S], then V' = U − W S over the outputs
    MatMap keys;       // [C, dk]: the keys decayed to the chunk's end (gated)
    MatMap logs;       // [2, C]: the cumulative log decays c_i, and one row's decays (gated)
    std::byte* work;
  };

  /// Every chunk of every value head. The heads are independent over the whole prompt, so each
  /// thread takes whole heads and runs their chunks in order: a head's state and temporaries stay
  /// in its core's caches, and the next chunk's rows are fetched while this one is computed.
  void prefill(const HeadRows& q, const HeadRows& k, const HeadRows& v, const MatMap& beta, const MatMap& g,
               RowMatrixXf& state, const HeadRows& o, Scratch& scratch, std::int64_t C) const {
    const std::int64_t len = q.rows, dk = cfg_.key_dim, dv = cfg_.value_dim, HV = cfg_.value_heads;
    Scratch::Frame frame(scratch);
    // Per value head j, rows j·2C .. (j+1)·2C of xs, systems and parts, j·C .. of keys, j·2 .. of logs.
    MatMap xs = scratch.matrix(HV * 2 * C, dk + dv), systems = scratch.matrix(HV * 2 * C, C),
           parts = scratch.matrix(HV * 2 * C, dv), keys = scratch.matrix(HV * C, dk), logs = scratch.matrix(HV * 2, C);
    // The products: two [2C, dk] by dk, [C, C] by C and the state's [dk, C] by C.
    const kernels::Precision precision = cfg_.precision;
    const std::size_t work_bytes = std::max({kernels::product_work_bytes(2 * C, dk, precision),
                                             kernels::product_work_bytes(C, C, precision),
                                             kernels::product_work_bytes(dk, C, precision)});
    std::byte* works = scratch.array<std::byte>(static_cast<std::size_t>(HV) * work_bytes);
    if (scratch.measuring()) return;
    parallel_for(0, HV, len * 4 * dk * dv, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t j = lo; j < hi; ++j) {
        ChunkSpace space{slice(xs, j * 2 * C, 2 * C), slice(systems, j * 2 * C, 2 * C), slice(parts, j * 2 * C, 2 * C),
                         slice(keys, j * C, C), slice(logs, j * 2, 2), works + static_cast<std::size_t>(j) * work_bytes};
        for (std::int64_t c0 = 0; c0 < len; c0 += C) {
          const std::int64_t n = std::min(C, len - c0);
          prefetch_rows(q, k, v, o, j, c0 + n, std::min(len, c0 + 2 * n));
          chunk(q, k, v, beta, g, j, c0, n, state.middleRows(j * dk, dk), o, space);
        }
      }
    });
  }

  static MatMap slice(MatMap& m, std::int64_t first, std::int64_t count) {
    return MatMap(m.data() + first * m.cols(), count, m.cols());
  }

  /// Asks for head j's rows of q, k, v (to read) and o (to write) at positions [t0, t1) in L2, ahead
  /// of the hardware prefetchers, which start again at every page.
  void prefetch_rows(const HeadRows& q, const HeadRows& k, const HeadRows& v, const HeadRows& o, std::int64_t j,
                     std::int64_t t0, std::int64_t t1) const {
    GLRNN_KEEP_CALLS();
    const std::int64_t dk = cfg_.key_dim, dv = cfg_.value_dim, h = key_head(j);
    constexpr std::int64_t kLine = 64 / sizeof(float);
    for (std::int64_t c = 0; c < (t1 - t0) * dk; c += kLine) {
      __builtin_prefetch(q.row(t0, h) + c, 0, 2);
      __builtin_prefetch(k.row(t0, h) + c, 0, 2);
    }
    for (std::int64_t c = 0; c < (t1 - t0) * dv; c += kLine) {
      __builtin_prefetch(v.row(t0, j) + c, 0, 2);
      __builtin_prefetch(o.row(t0, j) + c, 1, 2);
    }
  }

  /// Positions c0 .. c0+n-1 of value head j in matrix form (see the file comment).
  void chunk(const HeadRows& q, const HeadRows& k, const HeadRows& v, const MatMap& beta, const MatMap& g, std::int64_t j,
             std::int64_t c0, std::int64_t n, Eigen::Ref<RowMatrixXf> S, const HeadRows& o, ChunkSpace& space) const {
    const std::int64_t dk = cfg_.key_dim, dv = cfg_.value_dim, h = key_head(j);
    const MatMap kh = k.block(h, c0, n);
    auto x = space.x.topRows(2 * n);
    auto rhs = x.topRows(n);
    auto system = space.system.topLeftCorner(2 * n, n);
    auto coefficients = system.topRows(n);
    auto weights = system.bottomRows(n);
    auto corrected = space.state_parts.topRows(n);
    auto out = space.state_parts.middleRows(n, n);
    const auto left = x.leftCols(dk);  // [β ⊙ K; scale · Q], then [W; scale · exp(c) ⊙ Q]
    using Vector = Eigen::Map<Eigen::VectorXf>;
    using ConstVector = Eigen::Map<const Eigen::VectorXf>;
    for (std::int64_t i = 0; i < n; ++i) {
      const float b = beta(c0 + i, j);
      Vector(&rhs(i, 0), dk) = b * ConstVector(k.row(c0 + i, h), dk);
      Vector(&rhs(i, dk), dv) = b * ConstVector(v.row(c0 + i, j), dv);
      Vector(&x(n + i, 0), dk) = cfg_.scale * ConstVector(q.row(c0 + i, h), dk);
    }
    // [β K K^T; scale · Q K^T] in one product; the lower triangles are what the chunk uses.
    const kernels::Precision precision = cfg_.precision;
    kernels::product(left, kh, /*b_transposed=*/true, system, false, space.work, precision);
    auto cum = space.logs.row(0).head(n);
    if (cfg_.gated) {
      // Every factor exp(c_i − c_j) with i ≥ j; then the rows of K and Q take their exp(c_i).
      auto decay = space.logs.row(1);
      float running = 0.0f;
      for (std::int64_t i = 0; i < n; ++i) cum[i] = running += g(c0 + i, j);
      for (std::int64_t i = 0; i < n; ++i) {
        decay.head(i + 1).array() = (cum[i] - cum.head(i + 1).array()).exp();
        coefficients.row(i).head(i).array() *= decay.head(i).array();
        weights.row(i).head(i + 1).array() *= decay.head(i + 1).array();
        x.row(i).head(dk) *= std::exp(cum[i]);
        x.row(n + i).head(dk) *= std::exp(cum[i]);
      }
    }
    weights.template triangularView<Eigen::StrictlyUpper>().setZero();
    // (I + strictly_lower(diag(β) (K K^T ∘ decay))) [W | U] = [β ⊙ exp(c) ⊙ K | β ⊙ V], by forward
    // substitution: row i subtracts the rows before it, weighted by its coefficients.
    for (std::int64_t i = 1; i < n; ++i) rhs.row(i).noalias() -= coefficients.row(i).head(i) * rhs.topRows(i);
    // The state's parts of the corrections, W S, and of the outputs, scale · (exp(c) ⊙ Q) S. In bf16
    // one product rounds and packs S once for both; float32 reads S in place, where two products of
    // n rows ran 1-3% faster than one of 2n.
    if (precision == kernels::Precision::Bf16) {
      kernels::product(left, S, /*b_transposed=*/false, space.state_parts.topRows(2 * n), false, space.work, precision);
    } else {
      kernels::product(left.topRows(n), S, /*b_transposed=*/false, corrected, false, space.work, precision);
      kernels::product(left.bottomRows(n), S, /*b_transposed=*/false, out, false, space.work, precision);
    }
    corrected = rhs.rightCols(dv) - corrected;  // V' = U − W S
    // O = scale · [(exp(c) ⊙ Q) S + (Q K^T ∘ decay) V']
    kernels::product(weights, corrected, /*b_transposed=*/false, out, /*accumulate=*/true, space.work, precision);
    o.block(j, c0, n) = out;
    // S ← exp(c_n) S + (exp(c_n − c_i) ⊙ K)^T V'
    if (cfg_.gated) {
      auto keys = space.keys.topRows(n);
      const float last = cum[n - 1];
      for (std::int64_t i = 0; i < n; ++i) keys.row(i) = std::exp(last - cum[i]) * kh.row(i);
      kernels::transposed_product(keys, corrected, S, /*keep=*/std::exp(last), space.work, precision);
    } else {
      kernels::transposed_product(kh, corrected, S, /*keep=*/1.0f, space.work, precision);
    }
  }

  DeltaRuleConfig cfg_;
};

}  // namespace glrnn
