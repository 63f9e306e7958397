#pragma once
// Pre-norm residual block (recurrentgemma.md §5): h += mixer(norm(h)); h += mlp(norm(h)).
// Any temporal mixer with the layer interface (State, make_state, scratch_floats, forward) fits.

#include <algorithm>  // std::max
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int64_t
#include <utility>    // std::move

#include "glrnn/layers/mlp.hpp"
#include "glrnn/layers/rmsnorm.hpp"

namespace glrnn {

template <class T, class Mixer>
class ResidualBlock {
 public:
  using State = typename Mixer::State;

  ResidualBlock(RmsNorm mixer_norm, Mixer mixer, RmsNorm mlp_norm, Mlp<T> mlp)
      : mixer_norm_(std::move(mixer_norm)), mixer_(std::move(mixer)), mlp_norm_(std::move(mlp_norm)),
        mlp_(std::move(mlp)) {}

  const Mixer& mixer() const { return mixer_; }
  State make_state() const { return mixer_.make_state(); }
  std::int64_t hidden() const { return mixer_norm_.config().width; }

  std::size_t scratch_floats(std::int64_t max_tokens) const {
    return 2 * Scratch::floats_for(max_tokens, hidden()) +
           std::max(mixer_.scratch_floats(max_tokens), mlp_.scratch_floats(max_tokens));
  }

  /// Advances H[T, D] in place through the block, for positions pos0 .. pos0+T-1.
  void forward(MatOut h, std::int64_t pos0, State& state, Scratch& scratch) const {
    run(h, scratch, [&](const MatIn& normed, MatOut branch) { mixer_.forward(normed, pos0, state, branch, scratch); });
  }

  /// One position for each of B sequences: row b at positions[b] with state get(b).
  template <class GetState>
  void forward_batch(MatOut h, const std::int64_t* positions, GetState&& get, Scratch& scratch) const {
    run(h, scratch, [&](const MatIn& normed, MatOut branch) {
      mixer_.forward_batch(normed, positions, get, branch, scratch);
    });
  }

 private:
  template <class Mix>
  void run(MatOut h, Scratch& scratch, Mix&& mix) const {
    Scratch::Frame frame(scratch);
    MatMap normed = scratch.matrix(h.rows(), hidden());
    MatMap branch = scratch.matrix(h.rows(), hidden());
    mixer_norm_.forward(h, normed);
    mix(normed, branch);
    h += branch;
    mlp_norm_.forward(h, normed);
    mlp_.forward(normed, branch, scratch);
    h += branch;
  }

  RmsNorm mixer_norm_;
  Mixer mixer_;
  RmsNorm mlp_norm_;
  Mlp<T> mlp_;
};

}  // namespace glrnn
