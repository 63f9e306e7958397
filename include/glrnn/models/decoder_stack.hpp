#pragma once
// A decoder language model as a composition of layers: embedding, residual blocks of any of the
// given types (in any order), a final norm and an output head (docs/architecture.md §3).
// RecurrentGemma is DecoderStack<RmsNorm, LinearHead, ResidualBlock<RmsNorm, RecurrentBlock, Mlp>,
// ResidualBlock<RmsNorm, Attention, Mlp>>; a user can assemble another stack from the same pieces.

#include <algorithm>  // std::min
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int32_t, std::int64_t
#include <limits>     // std::numeric_limits
#include <string>     // std::to_string
#include <utility>    // std::move
#include <variant>    // std::variant, std::visit
#include <vector>     // std::vector

#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/layers/embedding.hpp"
#include "glrnn/layers/layer_interface.hpp"
#include "glrnn/layers/linear.hpp"

namespace glrnn {

/// Which logits a forward pass computes: none (the head is skipped), the last position's, or all.
enum class Logits { None, Last, All };

/// The output head: a linear map to the vocabulary, optionally soft-capped (cap · tanh(z / cap)).
class LinearHead {
 public:
  /// soft_cap 0 disables the cap.
  LinearHead(Linear projection, float soft_cap = 0.0f) : projection_(std::move(projection)), soft_cap_(soft_cap) {}

  std::int64_t in_features() const { return projection_.in_features(); }
  std::int64_t vocab_size() const { return projection_.out_features(); }

  void forward(const MatIn& h, MatOut logits, Scratch& scratch) const {
    projection_.forward(h, logits, scratch);
    if (soft_cap_ > 0.0f && !scratch.measuring()) {
      logits /= soft_cap_;
      kernels::apply(Elementwise::Tanh, logits);
      logits *= soft_cap_;
    }
  }

 private:
  Linear projection_;
  float soft_cap_;
};

template <class FinalNorm, class Head, class... Blocks>
class DecoderStack {
  static_assert(is_norm_v<FinalNorm>, "FinalNorm needs forward(MatIn, MatOut) const (layers/layer_interface.hpp)");

 public:
  using Block = std::variant<Blocks...>;
  using BlockState = std::variant<typename Blocks::State...>;

  /// Everything a sequence carries between calls: one state per block and the next position.
  /// Its size is fixed by the configuration. Copies are explicit (`clone`): a state can be large.
  struct State {
    std::int64_t position = 0;
    std::vector<BlockState> blocks;

    State() = default;
    State(State&&) noexcept = default;
    State& operator=(State&&) noexcept = default;
    State clone() const { return State(*this); }

    std::size_t bytes() const {
      std::size_t n = 0;
      for (const BlockState& b : blocks) n += std::visit([](const auto& s) { return s.bytes(); }, b);
      return n;
    }
    void reset() {
      position = 0;
      for (BlockState& b : blocks) std::visit([](auto& s) { s.reset(); }, b);
    }
    /// Makes room in growing caches for `positions` positions, so that running up to there
    /// allocates nothing. Throws InputError past a maximum context.
    void reserve(std::int64_t positions) {
      for_each_growing_cache([&](auto& s) { s.reserve(positions); });
    }
    /// Sets the next position of a state about to be restored: growing caches make room for it.
    void set_position(std::int64_t p) {
      for_each_growing_cache([&](auto& s) { s.resize_to(p); });
      position = p;
    }
    template <class F>
    void for_each_growing_cache(F&& f) {
      for (BlockState& b : blocks)
        std::visit(
            [&](auto& s) {
              if constexpr (is_growing_state_v<std::decay_t<decltype(s)>>) f(s);
            },
            b);
    }
    /// Calls f(name, float* data, size, block index) for every buffer, block by block.
    template <class F> void visit_blocks(F&& f) {
      for (std::size_t i = 0; i < blocks.size(); ++i)
        std::visit([&](auto& s) { s.visit([&](const char* name, float* data, Eigen::Index n) { f(name, data, n, i); }); },
                   blocks[i]);
    }

   private:
    State(const State&) = default;
  };

  DecoderStack(Embedding embedding, std::vector<Block> blocks, FinalNorm final_norm, Head head)
      : embedding_(std::move(embedding)), blocks_(std::move(blocks)), final_norm_(std::move(final_norm)),
        head_(std::move(head)) {
    for (const Block& b : blocks_)
      max_positions_ = std::min(max_positions_, std::visit([](const auto& blk) { return blk.max_positions(); }, b));
    GLRNN_CHECK(head_.in_features() == hidden(), ShapeError,
                "output head takes " + std::to_string(head_.in_features()) + " inputs, expected hidden size " +
                    std::to_string(hidden()));
  }

  std::int64_t vocab_size() const { return head_.vocab_size(); }
  std::int64_t hidden() const { return embedding_.hidden(); }
  const std::vector<Block>& blocks() const { return blocks_; }
  /// The most positions a sequence may reach: the smallest limit of its blocks (full attention's
  /// maximum context), else unbounded.
  std::int64_t max_positions() const { return max_positions_; }

  State make_state() const {
    State s;
    s.blocks.reserve(blocks_.size());
    for (const Block& b : blocks_) std::visit([&](const auto& blk) { s.blocks.emplace_back(blk.make_state()); }, b);
    return s;
  }

  /// Bytes of one State, from the configuration alone (nothing is allocated).
  std::size_t state_bytes() const {
    std::size_t n = 0;
    for (const Block& b : blocks_) n += std::visit([](const auto& blk) { return blk.state_bytes(); }, b);
    return n;
  }

  /// Bytes of scratch for chunks (or batches) of up to max_tokens positions: a dry run of both
  /// forms on a measuring arena (core/buffer.hpp) records the most they hold at once.
  std::size_t scratch_bytes(std::int64_t max_tokens) const {
    GLRNN_CHECK(max_tokens > 0, InputError, "max_tokens must be positive");
    Scratch meter = Scratch::measuring(max_tokens);
    State state = make_state();
    const std::vector<std::int32_t> tokens(static_cast<std::size_t>(max_tokens), 0);
    const MatMap no_logits(nullptr, max_tokens, vocab_size());  // a measuring head writes nothing
    forward(tokens.data(), max_tokens, state, meter, Logits::All, no_logits);
    forward_batch(tokens.data(), max_tokens, [&](Eigen::Index) -> State& { return state; }, meter, no_logits);
    return meter.peak();
  }

  /// A scratch arena for chunks of up to max_tokens positions; longer inputs are split.
  Scratch make_scratch(std::int64_t max_tokens) const { return Scratch(scratch_bytes(max_tokens), max_tokens); }

  /// Runs tokens[0..n) from state.position on, advancing the state. Logits::Last writes the last
  /// position's logits to row 0 of `logits` ([1, V] at least); Logits::All writes row t for
  /// token t ([n, V]). Throws InputError for a token outside the vocabulary, before any work.
  void forward(const std::int32_t* tokens, std::int64_t n, State& state, Scratch& scratch, Logits mode,
               MatOut logits) const {
    GLRNN_CHECK(n > 0, InputError, "no tokens to run");
    GLRNN_CHECK(state.blocks.size() == blocks_.size(), InputError, "state does not belong to this model");
    GLRNN_CHECK(mode == Logits::None || logits.cols() == vocab_size(), InputError, "logits buffer has the wrong width");
    GLRNN_CHECK(mode != Logits::All || logits.rows() >= n, InputError, "logits buffer has too few rows");
    GLRNN_CHECK(mode != Logits::Last || logits.rows() >= 1, InputError, "logits buffer has no row");
    GLRNN_CHECK(scratch.measuring() || n <= max_positions_ - state.position, InputError,
                "the sequence would reach position " + std::to_string(state.position + n) +
                    ", past the model's maximum context of " + std::to_string(max_positions_) + " positions");
    for (std::int64_t i = 0; i < n; ++i)
      GLRNN_CHECK(tokens[i] >= 0 && tokens[i] < embedding_.vocab_size(), InputError,
                  "token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                      " is outside the vocabulary [0, " + std::to_string(embedding_.vocab_size()) + ")");
    const std::int64_t chunk = scratch.max_tokens();
    for (std::int64_t begin = 0; begin < n; begin += chunk) {
      const std::int64_t count = std::min(chunk, n - begin);
      Scratch::Frame frame(scratch);
      MatMap h = scratch.matrix(count, hidden());
      if (!scratch.measuring())
        for (std::int64_t t = 0; t < count; ++t) embedding_.lookup(tokens[begin + t], h.row(t).data());
      for (std::size_t l = 0; l < blocks_.size(); ++l) {
        std::visit(
            [&](const auto& block) {
              using S = typename std::decay_t<decltype(block)>::State;
              block.forward(h, state.position, std::get<S>(state.blocks[l]), scratch);
            },
            blocks_[l]);
      }
      state.position += count;
      if (mode == Logits::All) {
        head(h, logits.middleRows(begin, count), scratch);
      } else if (mode == Logits::Last && begin + count == n) {
        head(h.bottomRows(1), logits.topRows(1), scratch);
      }
    }
  }

  /// One token for each of B sequences, each with its own state (and position), in one pass: every
  /// weight matrix is read once per step for the whole batch. Writes row b of `logits` ([B, V])
  /// and advances each state by one position. Throws InputError before any work for a token
  /// outside the vocabulary, a state given twice or a batch larger than the scratch was made for.
  /// get(b) gives sequence b's State.
  template <class GetState>
  void forward_batch(const std::int32_t* tokens, std::int64_t batch, GetState&& get, Scratch& scratch,
                     MatOut logits) const {
    GLRNN_CHECK(batch > 0 && batch <= scratch.max_tokens(), InputError,
                "batch of " + std::to_string(batch) + " sequences; the scratch holds " + std::to_string(scratch.max_tokens()));
    GLRNN_CHECK(logits.rows() >= batch && logits.cols() == vocab_size(), InputError, "logits buffer has the wrong shape");
    for (std::int64_t b = 0; b < batch; ++b) {
      GLRNN_CHECK(get(b).blocks.size() == blocks_.size(), InputError,
                  "state " + std::to_string(b) + " does not belong to this model");
      GLRNN_CHECK(scratch.measuring() || get(b).position < max_positions_, InputError,
                  "sequence " + std::to_string(b) + " is at the model's maximum context of " +
                      std::to_string(max_positions_) + " positions");
      GLRNN_CHECK(tokens[b] >= 0 && tokens[b] < embedding_.vocab_size(), InputError,
                  "token id " + std::to_string(tokens[b]) + " of sequence " + std::to_string(b) +
                      " is outside the vocabulary [0, " + std::to_string(embedding_.vocab_size()) + ")");
      // A dry run lets one state stand for all (its results are not used).
      for (std::int64_t other = 0; other < b && !scratch.measuring(); ++other)
        GLRNN_CHECK(&get(other) != &get(b), InputError, "the same state appears twice in a batch");
    }
    Scratch::Frame frame(scratch);
    MatMap h = scratch.matrix(batch, hidden());
    std::int64_t* positions = scratch.array<std::int64_t>(static_cast<std::size_t>(batch));
    for (std::int64_t b = 0; b < batch; ++b) {
      if (!scratch.measuring()) embedding_.lookup(tokens[b], h.row(b).data());
      positions[b] = get(b).position;
    }
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      std::visit(
          [&](const auto& block) {
            using S = typename std::decay_t<decltype(block)>::State;
            block.forward_batch(h, positions, [&](Eigen::Index b) -> S& { return std::get<S>(get(b).blocks[l]); },
                                scratch);
          },
          blocks_[l]);
    }
    for (std::int64_t b = 0; b < batch && !scratch.measuring(); ++b) ++get(b).position;
    head(h, logits.topRows(batch), scratch);
  }

 private:
  void head(const MatIn& h, MatOut logits, Scratch& scratch) const {
    Scratch::Frame frame(scratch);
    MatMap normed = scratch.matrix(h.rows(), hidden());
    if (!scratch.measuring()) final_norm_.forward(h, normed);
    head_.forward(normed, logits, scratch);
  }

  Embedding embedding_;
  std::vector<Block> blocks_;
  std::int64_t max_positions_ = std::numeric_limits<std::int64_t>::max();
  FinalNorm final_norm_;
  Head head_;
};

}  // namespace glrnn
