#pragma once
// Griffin's recurrent temporal block (docs/recurrent_gemma.md §7):
//   y = gelu_tanh(linear_y(u)),  x = RG-LRU(Conv1D(linear_x(u))),  out = linear_out(x * y)

#include <cstddef>    // std::size_t
#include <cstdint>    // std::int64_t

#include "glrnn/core/math.hpp"
#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/layers/conv1d.hpp"
#include "glrnn/layers/linear.hpp"
#include "glrnn/layers/rglru.hpp"

namespace glrnn {

struct RecurrentBlockConfig {
  std::int64_t hidden = 0;      // D
  std::int64_t lru_width = 0;   // Dr
  std::int64_t heads = 1;       // RG-LRU gate blocks
  std::int64_t conv_taps = 4;   // K
  Conv1dConfig conv() const { return {lru_width, conv_taps}; }
  RgLruConfig rglru() const { return {lru_width, heads}; }
};

struct RecurrentBlockWeights {
  LinearWeights linear_y, linear_x;  // [Dr, D] + [Dr]
  LinearWeights linear_out;          // [D, Dr] + [D]
  Conv1dWeights conv_1d;
  RgLruWeights rg_lru;
};

struct RecurrentBlockState {
  Conv1dState conv;
  RgLruState rglru;

  explicit RecurrentBlockState(const RecurrentBlockConfig& cfg) : conv(cfg.conv()), rglru(cfg.rglru()) {}
  static std::size_t bytes(const RecurrentBlockConfig& cfg) {
    return Conv1dState::bytes(cfg.conv()) + RgLruState::bytes(cfg.rglru());
  }
  std::size_t bytes() const { return conv.bytes() + rglru.bytes(); }
  void reset() {
    conv.reset();
    rglru.reset();
  }
  template <class F> void visit(F&& f) {
    conv.visit(f);
    rglru.visit(f);
  }
};

class RecurrentBlock {
 public:
  using State = RecurrentBlockState;
  using Config = RecurrentBlockConfig;
  using Weights = RecurrentBlockWeights;

  RecurrentBlock(const Config& cfg, const Weights& w)
      : cfg_(cfg),
        linear_y_(cfg.hidden, cfg.lru_width, w.linear_y, "linear_y"),
        linear_x_(cfg.hidden, cfg.lru_width, w.linear_x, "linear_x"),
        linear_out_(cfg.lru_width, cfg.hidden, w.linear_out, "linear_out"),
        conv_(cfg.conv(), w.conv_1d),
        rglru_(cfg.rglru(), w.rg_lru) {}

  const Config& config() const { return cfg_; }
  State make_state() const { return State(cfg_); }
  std::size_t state_bytes() const { return State::bytes(cfg_); }

  /// Y[T, D] = block(U[T, D]) for positions pos0 .. pos0+T-1, continuing from `state`.
  void forward(const MatIn& u, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    run(u, y, scratch, [&](MatIn branch, MatOut mixed) { conv_.forward(branch, pos0, state.conv, mixed); },
        [&](MatIn mixed, MatOut out) { rglru_.forward(mixed, pos0, state.rglru, out, scratch); });
  }

  /// One position for each of B sequences: row b at positions[b] with state get(b).
  template <class GetState>
  void forward_batch(const MatIn& u, const std::int64_t* positions, GetState&& get, MatOut y, Scratch& scratch) const {
    run(u, y, scratch,
        [&](MatIn branch, MatOut mixed) {
          conv_.forward_batch(branch, positions, [&](Eigen::Index b) -> Conv1dState& { return get(b).conv; }, mixed);
        },
        [&](MatIn mixed, MatOut out) {
          rglru_.forward_batch(mixed, positions, [&](Eigen::Index b) -> RgLruState& { return get(b).rglru; }, out, scratch);
        });
  }

 private:
  /// The block with its two stateful stages supplied by the caller (one sequence, or a batch).
  template <class Conv, class Recurrence>
  void run(const MatIn& u, MatOut y, Scratch& scratch, Conv&& conv, Recurrence&& recurrence) const {
    const std::int64_t len = u.rows();
    Scratch::Frame frame(scratch);
    MatMap gate = scratch.matrix(len, cfg_.lru_width);    // y branch
    MatMap branch = scratch.matrix(len, cfg_.lru_width);  // x branch before the conv
    MatMap mixed = scratch.matrix(len, cfg_.lru_width);   // conv output
    linear_y_.forward(u, gate, scratch);
    linear_x_.forward(u, branch, scratch);
    if (!scratch.measuring()) {
      kernels::apply(Elementwise::GeluTanh, gate);
      conv(branch, mixed);
    }
    recurrence(mixed, branch);
    if (!scratch.measuring()) branch.array() *= gate.array();
    linear_out_.forward(branch, y, scratch);
  }

  Config cfg_;
  Linear linear_y_, linear_x_, linear_out_;
  Conv1d conv_;
  RgLru rglru_;
};

}  // namespace glrnn
