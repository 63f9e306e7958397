#pragma once
// The layer interface as compile-time checks (docs/architecture.md §3). A sequence mixer (a
// temporal block: RecurrentBlock, Attention, Hgrn2Mixer, ...) has
//   State                      fixed-size per-sequence buffers with reset(), bytes(), visit(f)
//   make_state(), state_bytes()   the second from the configuration alone, without allocating
//   forward(X[T, D], pos0, state, Y[T, D], scratch)            T positions from `state`
//   forward_batch(X[B, D], positions, get_state, Y[B, D], scratch)   one position of B sequences
// A mixer whose state grows with the position (full attention) also has max_positions(), the most
// positions a sequence may reach, and its State has reserve(positions) (room to grow into) and
// resize_to(positions) (for restoring a saved one).
// A channel mixer (Mlp, NoChannelMixer) has forward(X[T, D], Y[T, D], scratch); a norm (RmsNorm,
// NoNorm) has forward(X, Y) with Y allowed to alias X. All of them are const and allocate nothing:
// their temporaries come from the Scratch, whose size a dry run measures.

#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t
#include <type_traits>  // std::is_same_v, std::void_t, std::declval

#include "glrnn/core/buffer.hpp"

namespace glrnn {

namespace detail {
struct AnyStateGetter {  // stands for forward_batch's get(b) -> State&
  template <class State>
  struct Of {
    State& operator()(Eigen::Index) const;
  };
};
struct BufferVisitor {
  void operator()(const char*, float*, Eigen::Index) const;
};

template <class M, class = void>
struct is_sequence_mixer : std::false_type {};
template <class M>
struct is_sequence_mixer<
    M, std::void_t<typename M::State,
                   decltype(std::declval<typename M::State&>().reset()),
                   decltype(std::declval<typename M::State&>().visit(BufferVisitor{})),
                   decltype(std::declval<const M&>().forward(std::declval<const MatIn&>(), std::int64_t{},
                                                             std::declval<typename M::State&>(), std::declval<MatOut>(),
                                                             std::declval<Scratch&>())),
                   decltype(std::declval<const M&>().forward_batch(
                       std::declval<const MatIn&>(), std::declval<const std::int64_t*>(),
                       AnyStateGetter::Of<typename M::State>{}, std::declval<MatOut>(), std::declval<Scratch&>()))>>
    : std::bool_constant<
          std::is_same_v<decltype(std::declval<const M&>().make_state()), typename M::State> &&
          std::is_same_v<decltype(std::declval<const M&>().state_bytes()), std::size_t> &&
          std::is_same_v<decltype(std::declval<const typename M::State&>().bytes()), std::size_t>> {};

template <class M, class = void>
struct has_position_limit : std::false_type {};
template <class M>
struct has_position_limit<M, std::void_t<decltype(std::declval<const M&>().max_positions())>> : std::true_type {};

template <class S, class = void>
struct is_growing_state : std::false_type {};
template <class S>
struct is_growing_state<S, std::void_t<decltype(std::declval<S&>().resize_to(std::int64_t{}))>> : std::true_type {};

template <class C, class = void>
struct is_channel_mixer : std::false_type {};
template <class C>
struct is_channel_mixer<C, std::void_t<decltype(std::declval<const C&>().forward(
                               std::declval<const MatIn&>(), std::declval<MatOut>(), std::declval<Scratch&>()))>>
    : std::true_type {};

template <class N, class = void>
struct is_norm : std::false_type {};
template <class N>
struct is_norm<N, std::void_t<decltype(std::declval<const N&>().forward(std::declval<const MatIn&>(), std::declval<MatOut>()))>>
    : std::true_type {};
}  // namespace detail

template <class M>
constexpr bool is_sequence_mixer_v = detail::is_sequence_mixer<M>::value;
template <class M>
constexpr bool has_position_limit_v = detail::has_position_limit<M>::value;
template <class S>
constexpr bool is_growing_state_v = detail::is_growing_state<S>::value;
template <class C>
constexpr bool is_channel_mixer_v = detail::is_channel_mixer<C>::value;
template <class N>
constexpr bool is_norm_v = detail::is_norm<N>::value;

/// The identity as a norm, for blocks and stacks without one.
struct NoNorm {
  void forward(const MatIn& x, MatOut y) const {
    if (x.data() != y.data()) y = x;
  }
};

/// A residual block without a channel mixer (MLP): the block is h += mixer(norm(h)) alone.
struct NoChannelMixer {
  void forward(const MatIn&, MatOut, Scratch&) const {}
};

}  // namespace glrnn
