#pragma once
// The gated-linear-attention recurrence shared by HGRN2, GLA and RetNet (docs/gla.md §1). Per state
// head s, with a decay per key channel:
//   S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t        (S: dk x dv, float32)
//   o_t = scale · q_t S_t                          (the updated state is read)
// A decay per head (RetNet) is the same recurrence with every channel of g equal.
//
// Heads: H query heads, Hkv key/value heads (H a multiple: grouped queries), and Hs state heads,
// either Hkv (the decay comes with the keys: GLA, HGRN2, so the queries of a group read one state)
// or H (the decay belongs to the query head: RetNet, so each query head keeps its own state).
//
// Prefill runs chunk-parallel: within a chunk of C positions the outputs are matrix products
// (intra-chunk causal attention with decay, plus the state carried in) and the state passes from
// chunk to chunk. Every exponential it evaluates has a non-positive argument: between sub-blocks
// the decay is split at the position just before the query sub-block, and the diagonal sub-blocks
// are evaluated element by element. So it is as stable as the sequential form, which single
// positions and batched decode use.

#include <algorithm>  // std::min, std::max
#include <cstddef>    // std::byte, std::size_t
#include <cstdint>    // std::int64_t
#include <string>     // std::to_string

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/kernels/kernels.hpp"

namespace glrnn {

struct GlaRecurrenceConfig {
  std::int64_t heads = 1;        // H query heads
  std::int64_t kv_heads = 1;     // Hkv key/value heads
  std::int64_t state_heads = 1;  // Hs: Hkv or H (see the file comment)
  std::int64_t key_dim = 0;      // dk per head
  std::int64_t value_dim = 0;    // dv per head
  float scale = 1.0f;            // applied to the queries

  std::int64_t state_rows() const { return state_heads * key_dim; }
  void validate() const {
    GLRNN_CHECK(heads > 0 && kv_heads > 0 && heads % kv_heads == 0 && key_dim > 0 && value_dim > 0, ConfigError,
                "gated linear attention needs positive sizes and heads (" + std::to_string(heads) +
                    ") divisible by key/value heads (" + std::to_string(kv_heads) + ")");
    GLRNN_CHECK(state_heads == kv_heads || state_heads == heads, ConfigError,
                "gated linear attention keeps a state per key/value head or per query head");
  }
};

/// The recurrence over projected inputs; the layers around it own the state matrix [Hs·dk, dv]
/// (so each names it in state files) and the projections, gates and norms.
class GlaRecurrence {
 public:
  GlaRecurrence() = default;
  explicit GlaRecurrence(const GlaRecurrenceConfig& cfg) : cfg_(cfg) { cfg_.validate(); }

  const GlaRecurrenceConfig& config() const { return cfg_; }

  /// O[T, H·dv] from q [T, H·dk], log decay g [T, Hs·dk], k [T, Hkv·dk] and v [T, Hkv·dv],
  /// advancing `state`; chunk-parallel when T > 1 and chunk_size > 0 (sequential otherwise).
  void forward(const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, RowMatrixXf& state, MatMap& o,
               Scratch& scratch, std::int64_t chunk_size) const {
    const std::int64_t len = q.rows();
    if (chunk_size > 0 && len > 1) {
      for (std::int64_t c0 = 0; c0 < len; c0 += chunk_size)
        chunk(q, g, k, v, c0, std::min(chunk_size, len - c0), state, o, scratch);
    } else if (!scratch.measuring()) {
      token_by_token(q, g, k, v, 0, len, state, o);
    }
  }

  /// Row t only: one decode step of one sequence (batched decode calls it per sequence).
  void step(const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, std::int64_t t, RowMatrixXf& state,
            MatMap& o) const {
    token_by_token(q, g, k, v, t, t + 1, state, o);
  }

 private:
  std::int64_t kv_of_state(std::int64_t s) const { return s * cfg_.kv_heads / cfg_.state_heads; }
  std::int64_t queries_per_state() const { return cfg_.heads / cfg_.state_heads; }
  std::int64_t first_query(std::int64_t s) const { return s * queries_per_state(); }

  /// Rows [t0, t1) one position at a time. Heads are independent, so each thread takes whole state
  /// heads through every position: a large state (RetNet-1.3B: 4 MB a layer) is read by every
  /// thread, and there is one hand-over per call, not one per position.
  void token_by_token(const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, std::int64_t t0,
                      std::int64_t t1, RowMatrixXf& state, MatMap& o) const {
    parallel_for(0, cfg_.state_heads, (t1 - t0) * 3 * cfg_.key_dim * cfg_.value_dim,
                 [&](std::int64_t lo, std::int64_t hi) {
                   for (std::int64_t s = lo; s < hi; ++s)
                     for (std::int64_t t = t0; t < t1; ++t) step_head(q, g, k, v, t, s, state, o);
                 });
  }

  /// Position t of state head s and its queries.
  void step_head(const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, std::int64_t t, std::int64_t s,
                 RowMatrixXf& state, MatMap& o) const {
    const std::int64_t dk = cfg_.key_dim, dv = cfg_.value_dim;
    const float* log_decay = g.row(t).data() + s * dk;
    const float* key = k.row(t).data() + kv_of_state(s) * dk;
    const auto value = v.row(t).segment(kv_of_state(s) * dv, dv);
    for (std::int64_t h = first_query(s); h < first_query(s) + queries_per_state(); ++h)
      o.row(t).segment(h * dv, dv).setZero();
    // One pass over the state, which is as large as a layer's weights in 4 bits: each row
    // decays, takes its key-value product and adds its share of every query's output.
    constexpr std::int64_t kRows = 16;
    float decay[kRows];
    for (std::int64_t c0 = 0; c0 < dk; c0 += kRows) {
      const std::int64_t rows = std::min(kRows, dk - c0);
      kernels::apply(Elementwise::Exp, log_decay + c0, decay, rows);
      for (std::int64_t c = c0; c < c0 + rows; ++c) {
        auto row = state.row(s * dk + c);
        row = decay[c - c0] * row + key[c] * value;
        for (std::int64_t h = first_query(s); h < first_query(s) + queries_per_state(); ++h)
          o.row(t).segment(h * dv, dv) += q(t, h * dk + c) * row;
      }
    }
    for (std::int64_t h = first_query(s); h < first_query(s) + queries_per_state(); ++h)
      o.row(t).segment(h * dv, dv) *= cfg_.scale;
  }

  /// One thread's buffers for a chunk of n positions (see chunk_head), carved from `bytes(n, dk)`
  /// bytes at `base`.
  struct ChunkSpace {
    MatMap cum, scaled_q, scaled_k, attn;
    std::byte* work;  // the products' work memory

    static std::size_t floats(std::int64_t rows, std::int64_t cols) {
      return static_cast<std::size_t>(rows * cols + 15) / 16 * 16;  // whole cache lines
    }
    static std::size_t bytes(std::int64_t n, std::int64_t dk) {
      return sizeof(float) * (3 * floats(n, dk) + floats(n, n)) +
             (kernels::product_work_bytes(std::max(n, dk), std::max(n, dk)) + Scratch::kAlign - 1) / Scratch::kAlign * Scratch::kAlign;
    }
    ChunkSpace(std::byte* base, std::int64_t n, std::int64_t dk)
        : cum(take(base, n, dk)),
          scaled_q(take(base, n, dk)),
          scaled_k(take(base, n, dk)),
          attn(take(base, n, n)),
          work(base) {}

   private:
    static MatMap take(std::byte*& base, std::int64_t rows, std::int64_t cols) {
      float* p = reinterpret_cast<float*>(base);
      base += sizeof(float) * floats(rows, cols);
      return MatMap(p, rows, cols);
    }
  };

  /// Positions c0 .. c0+n-1 in matrix form (see the file comment). State heads are independent:
  /// threads take whole heads, each with its own buffers.
  void chunk(const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, std::int64_t c0, std::int64_t n,
             RowMatrixXf& state, MatMap& o, Scratch& scratch) const {
    const std::int64_t dk = cfg_.key_dim, dv = cfg_.value_dim;
    Scratch::Frame frame(scratch);
    // Buffers for as many threads as the machine has, so a later set_num_threads still fits.
    const int threads = std::max(num_threads(), detail::hardware_threads());
    const std::size_t space_bytes = ChunkSpace::bytes(n, dk);
    std::byte* spaces = scratch.array<std::byte>(space_bytes * static_cast<std::size_t>(threads));
    if (scratch.measuring()) return;
    const std::int64_t flops_per_head = 2 * n * queries_per_state() * (n * (dk + dv) + 2 * dk * dv);
    parallel_chunks(0, cfg_.state_heads, flops_per_head, std::min(num_threads(), threads),
                    [&](int thread, std::int64_t lo, std::int64_t hi) {
                      ChunkSpace space(spaces + space_bytes * static_cast<std::size_t>(thread), n, dk);
                      for (std::int64_t s = lo; s < hi; ++s) chunk_head(q, g, k, v, c0, n, s, state, o, space);
                    });
  }

  /// chunk() for state head s.
  void chunk_head(const MatMap& q, const MatMap& g, const MatMap& k, const MatMap& v, std::int64_t c0, std::int64_t n,
                  std::int64_t s, RowMatrixXf& state, MatMap& o, ChunkSpace& space) const {
    constexpr std::int64_t kBlock = 16;  // sub-block of the intra-chunk attention
    const std::int64_t dk = cfg_.key_dim, dv = cfg_.value_dim;
    MatMap &cum = space.cum, &scaled_q = space.scaled_q, &scaled_k = space.scaled_k, &attn = space.attn;
    const auto kh = k.block(c0, kv_of_state(s) * dk, n, dk);
    const auto vh = v.block(c0, kv_of_state(s) * dv, n, dv);
    auto S = state.middleRows(s * dk, dk);
    cum.row(0) = g.block(c0, s * dk, 1, dk);
    for (std::int64_t i = 1; i < n; ++i) cum.row(i) = cum.row(i - 1) + g.block(c0 + i, s * dk, 1, dk);
    for (std::int64_t h = first_query(s); h < first_query(s) + queries_per_state(); ++h) {
      const auto qh = q.block(c0, h * dk, n, dk);
      auto oh = o.block(c0, h * dv, n, dv);
      // The state carried in, decayed to each position.
      exp_of(cum, scaled_q);
      scaled_q.array() *= qh.array();
      attn.setZero();
      kernels::product(scaled_q, S, /*b_transposed=*/false, oh, false, space.work);
      for (std::int64_t i0 = 0; i0 < n; i0 += kBlock) {
        const std::int64_t i1 = std::min(n, i0 + kBlock);
        if (i0 > 0) {
          // Keys before the block: split the decay at position i0-1, so both factors are <= 1.
          const auto ref = cum.row(i0 - 1);
          auto q_block = scaled_q.middleRows(i0, i1 - i0);
          auto k_before = scaled_k.topRows(i0);
          q_block = cum.middleRows(i0, i1 - i0).rowwise() - ref;
          exp_of(q_block, q_block);
          q_block.array() *= qh.middleRows(i0, i1 - i0).array();
          k_before = (-cum.topRows(i0)).rowwise() + ref;
          exp_of(k_before, k_before);
          k_before.array() *= kh.topRows(i0).array();
          kernels::product(scaled_q.middleRows(i0, i1 - i0), scaled_k.topRows(i0), /*b_transposed=*/true,
                           attn.block(i0, 0, i1 - i0, i0), false, space.work);
        }
        for (std::int64_t i = i0; i < i1; ++i)
          for (std::int64_t j = i0; j <= i; ++j)
            attn(i, j) = kernels::decayed_dot(qh.row(i).data(), kh.row(j).data(), cum.row(i).data(), cum.row(j).data(), dk);
      }
      kernels::product(attn, vh, /*b_transposed=*/false, oh, /*accumulate=*/true, space.work);
      oh *= cfg_.scale;
    }
    // State at the chunk's end: decay all of it, add every key-value pair decayed to the end.
    const auto last = cum.row(n - 1);
    scaled_k = (-cum).rowwise() + last;
    exp_of(scaled_k, scaled_k);
    scaled_k.array() *= kh.array();
    S.array().colwise() *= last.transpose().array().exp();
    kernels::transposed_product(scaled_k, vh, S, /*keep=*/1.0f, space.work);
  }

  /// out = e^x for whole rows of a chunk's buffers (contiguous), on this thread.
  template <class In, class Out>
  static void exp_of(const In& x, Out& out) {
    kernels::apply(Elementwise::Exp, x.data(), out.data(), x.size());
  }

  GlaRecurrenceConfig cfg_;
};

}  // namespace glrnn
