#pragma once
// Pre-norm residual block (docs/recurrent_gemma.md §5): h += mixer(norm(h)); h += channel(norm'(h)).
// The norm, the sequence mixer and the channel mixer are parameters: RecurrentGemma's blocks are
// ResidualBlock<RmsNorm, RecurrentBlock, Mlp> and <RmsNorm, Attention, Mlp>; a block with
// NoChannelMixer skips the second half, one with NoNorm its norms.

#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t
#include <limits>       // std::numeric_limits
#include <type_traits>  // std::is_same_v
#include <utility>      // std::move

#include "glrnn/core/threading.hpp"
#include "glrnn/layers/layer_interface.hpp"

namespace glrnn {

template <class Norm, class Mixer, class ChannelMixer>
class ResidualBlock {
  static_assert(is_norm_v<Norm>, "Norm needs forward(MatIn, MatOut) const (layers/layer_interface.hpp)");
  static_assert(is_sequence_mixer_v<Mixer>, "Mixer lacks part of the sequence-mixer interface (layers/layer_interface.hpp)");
  static_assert(is_channel_mixer_v<ChannelMixer>, "ChannelMixer needs forward(MatIn, MatOut, Scratch&) const");
  static constexpr bool kHasChannelMixer = !std::is_same_v<ChannelMixer, NoChannelMixer>;

 public:
  using State = typename Mixer::State;

  /// hidden: the width of the residual stream.
  ResidualBlock(std::int64_t hidden, Norm mixer_norm, Mixer mixer, Norm channel_norm = {}, ChannelMixer channel = {})
      : hidden_(hidden), mixer_norm_(std::move(mixer_norm)), mixer_(std::move(mixer)),
        channel_norm_(std::move(channel_norm)), channel_(std::move(channel)) {}

  const Mixer& mixer() const { return mixer_; }
  State make_state() const { return mixer_.make_state(); }
  std::size_t state_bytes() const { return mixer_.state_bytes(); }
  std::int64_t hidden() const { return hidden_; }
  /// The most positions a sequence may reach: the mixer's limit if it has one (a growing cache).
  std::int64_t max_positions() const {
    if constexpr (has_position_limit_v<Mixer>) {
      return mixer_.max_positions();
    } else {
      return std::numeric_limits<std::int64_t>::max();
    }
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
    MatMap normed = scratch.matrix(h.rows(), hidden_);
    MatMap branch = scratch.matrix(h.rows(), hidden_);
    const bool measuring = scratch.measuring();
    if (!measuring) mixer_norm_.forward(h, normed);
    mix(normed, branch);
    if (!measuring) add(h, branch);
    if constexpr (kHasChannelMixer) {
      if (!measuring) channel_norm_.forward(h, normed);
      channel_.forward(normed, branch, scratch);
      if (!measuring) add(h, branch);
    }
  }

  /// h += branch, a prompt's rows split between threads.
  static void add(MatOut h, const MatMap& branch) {
    parallel_for(0, h.rows(), 2 * h.cols(), [&](std::int64_t lo, std::int64_t hi) {
      h.middleRows(lo, hi - lo) += branch.middleRows(lo, hi - lo);
    });
  }

  std::int64_t hidden_;
  Norm mixer_norm_;
  Mixer mixer_;
  Norm channel_norm_;
  ChannelMixer channel_;
};

}  // namespace glrnn
