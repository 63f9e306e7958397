#pragma once
// Causal depthwise temporal convolution (docs/recurrent_gemma.md §7.1). Channel c at time t:
//   y_t[c] = bias[c] + sum_k w[c, 0, k] * x_{t-(K-1)+k}[c]
// Tap K-1 multiplies the current input; inputs before position 0 are zero.

#include <algorithm>  // std::min
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int64_t
#include <string>     // std::string

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/tensor.hpp"
#include "glrnn/core/threading.hpp"

namespace glrnn {

struct Conv1dConfig {
  std::int64_t channels = 0;  // Dr
  std::int64_t taps = 4;      // K
};

struct Conv1dWeights {
  TensorView<const float> weight;  // [channels, 1, taps], PyTorch depthwise Conv1d layout
  TensorView<const float> bias;    // [channels], or empty
};

/// The last K-1 inputs, oldest first. Rows for positions before 0 are never read (see forward).
struct Conv1dState {
  RowMatrixXf history;  // [taps - 1, channels]

  explicit Conv1dState(const Conv1dConfig& cfg) : history(RowMatrixXf::Zero(cfg.taps - 1, cfg.channels)) {}
  static std::size_t bytes(const Conv1dConfig& cfg) {
    return static_cast<std::size_t>(cfg.taps - 1) * cfg.channels * sizeof(float);
  }
  std::size_t bytes() const { return static_cast<std::size_t>(history.size()) * sizeof(float); }
  void reset() { history.setZero(); }
  template <class F> void visit(F&& f) { f("conv_history", history.data(), history.size()); }
};

class Conv1d {
 public:
  using State = Conv1dState;

  Conv1d(const Conv1dConfig& cfg, const Conv1dWeights& w) : cfg_(cfg), taps_(cfg.taps, cfg.channels),
                                                              bias_(Eigen::RowVectorXf::Zero(cfg.channels)) {
    check_shape(w.weight.shape, {cfg.channels, 1, cfg.taps}, "conv_1d weight");
    if (!w.bias.empty()) check_shape(w.bias.shape, {cfg.channels}, "conv_1d bias");
    // Stored [taps, channels] so each tap is a contiguous row over channels.
    for (std::int64_t c = 0; c < cfg.channels; ++c)
      for (std::int64_t k = 0; k < cfg.taps; ++k) taps_(k, c) = w.weight.data[c * cfg.taps + k];
    if (!w.bias.empty()) bias_ = Eigen::Map<const Eigen::RowVectorXf>(w.bias.data, cfg.channels);
  }

  const Conv1dConfig& config() const { return cfg_; }
  State make_state() const { return State(cfg_); }

  /// Y[T, channels] = conv(X) for positions pos0 .. pos0+T-1, continuing from `state`.
  /// Y must not alias X.
  void forward(const MatIn& x, std::int64_t pos0, State& state, MatOut y) const {
    // Each output row reads only inputs and the history (updated after), so a prompt's rows are
    // split between threads.
    parallel_for(0, x.rows(), 2 * cfg_.taps * cfg_.channels, [&](std::int64_t lo, std::int64_t hi) {
      convolve(x, pos0, state, lo, hi, 0, cfg_.channels, [&](std::int64_t t) { return &y(t, 0); });
    });
    remember(x, state);
  }

  /// The same, written head by head: y's heads of y.width channels cover the channels in order.
  void forward(const MatIn& x, std::int64_t pos0, State& state, const HeadRows& y) const {
    GLRNN_CHECK(y.heads * y.width == cfg_.channels && y.rows == x.rows(), ShapeError, "conv_1d: the heads do not cover the channels");
    // A few rows at a time for every head, so the rows read stay in L1 while each head takes its segment.
    constexpr std::int64_t kRowsPerBlock = 8;
    parallel_for(0, x.rows(), 2 * cfg_.taps * cfg_.channels, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t t0 = lo; t0 < hi; t0 += kRowsPerBlock)
        for (std::int64_t h = 0; h < y.heads; ++h)
          convolve(x, pos0, state, t0, std::min(hi, t0 + kRowsPerBlock), h * y.width, y.width,
                   [&](std::int64_t t) { return y.row(t, h); });
    });
    remember(x, state);
  }

  /// One position for each of B sequences: row b at positions[b] with state get(b).
  template <class GetState>
  void forward_batch(const MatIn& x, const std::int64_t* positions, GetState&& get, MatOut y) const {
    for (Eigen::Index b = 0; b < x.rows(); ++b) forward(x.middleRows(b, 1), positions[b], get(b), y.middleRows(b, 1));
  }
  template <class GetState>
  void forward_batch(const MatIn& x, const std::int64_t* positions, GetState&& get, const HeadRows& y) const {
    for (Eigen::Index b = 0; b < x.rows(); ++b) forward(x.middleRows(b, 1), positions[b], get(b), y.middle_rows(b, 1));
  }

 private:
  /// Output rows [t0, t1) of channels [c0, c0 + width), row t written where out(t) points.
  template <class Out>
  void convolve(const MatIn& x, std::int64_t pos0, const State& state, std::int64_t t0, std::int64_t t1, std::int64_t c0,
                std::int64_t width, Out&& out) const {
    const std::int64_t K = cfg_.taps;
    for (std::int64_t t = t0; t < t1; ++t) {
      Eigen::Map<Eigen::RowVectorXf> y(out(t), width);
      y = bias_.segment(c0, width);
      for (std::int64_t k = 0; k < K; ++k) {
        const std::int64_t j = t - (K - 1) + k;  // input index relative to this call
        if (pos0 + j < 0) continue;              // before the sequence start: zero padding
        const auto tap = taps_.row(k).segment(c0, width).array();
        if (j >= 0) {
          y.array() += tap * x.row(j).segment(c0, width).array();
        } else {
          y.array() += tap * state.history.row(K - 1 + j).segment(c0, width).array();
        }
      }
    }
  }

  /// Keeps the last K-1 inputs of (history, X).
  void remember(const MatIn& x, State& state) const {
    const std::int64_t T = x.rows(), K = cfg_.taps;
    const std::int64_t keep_old = std::max<std::int64_t>(0, K - 1 - T);
    for (std::int64_t r = 0; r < keep_old; ++r) state.history.row(r) = state.history.row(r + T);
    for (std::int64_t r = keep_old; r < K - 1; ++r) state.history.row(r) = x.row(T - (K - 1) + r);
  }

  Conv1dConfig cfg_;
  RowMatrixXf taps_;        // [taps, channels]
  Eigen::RowVectorXf bias_; // [channels]
};

}  // namespace glrnn
