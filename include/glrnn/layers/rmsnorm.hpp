#pragma once
// RMSNorm: y = x * rsqrt(mean(x^2) + eps) * gain. Gemma stores the gain as a deviation from one
// (gain = 1 + w, docs/recurrent_gemma.md §4); HGRN2 stores it directly. And fla's gated output
// norms, which normalise runs of a row (heads) and multiply by a swish gate.

#include <cmath>    // std::sqrt
#include <cstdint>  // std::int64_t

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/tensor.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/kernels/elementwise.hpp"

namespace glrnn {

struct RmsNormConfig {
  std::int64_t width = 0;
  float eps = 1e-6f;
  bool unit_offset = true;  // true: gain = 1 + w (Gemma); false: gain = w
};

class RmsNorm {
 public:
  RmsNorm(const RmsNormConfig& cfg, const TensorView<const float>& weight)  // weight [width]
      : cfg_(cfg), gain_(cfg.width) {
    check_shape(weight.shape, {cfg.width}, "RMSNorm weight");
    // Precomputed in float32, as the reference adds the 1 in float32 (docs/recurrent_gemma.md §4).
    for (std::int64_t i = 0; i < cfg.width; ++i) gain_[i] = (cfg.unit_offset ? 1.0f : 0.0f) + weight.data[i];
  }

  const RmsNormConfig& config() const { return cfg_; }

  /// Y[T, width] = norm(X[T, width]) row by row (a prompt's rows split between threads); Y may alias X.
  void forward(const MatIn& x, MatOut y) const {
    parallel_for(0, x.rows(), 3 * cfg_.width, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t t = lo; t < hi; ++t) {
        const float mean_square = x.row(t).squaredNorm() / static_cast<float>(cfg_.width);
        const float inv_rms = 1.0f / std::sqrt(mean_square + cfg_.eps);
        y.row(t).array() = (x.row(t).array() * inv_rms) * gain_.transpose().array();
      }
    });
  }

 private:
  RmsNormConfig cfg_;
  Eigen::VectorXf gain_;  // [width]
};

namespace detail {
/// Row t of y: each run h of gain.size() values, read where head(t, h) points (y may hold it),
/// RMS-normalised and scaled by `gain`, times swish(gate) where there is a gate (made its swish).
template <class Head>
void gated_rms_norm_rows(Head&& head, MatMap* gate, const Eigen::RowVectorXf& gain, float eps, MatOut y) {
  const Eigen::Index width = gain.size();
  if (gate) kernels::apply(Elementwise::Silu, *gate);
  parallel_for(0, y.rows(), 4 * y.cols(), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t t = lo; t < hi; ++t)
      for (Eigen::Index h0 = 0; h0 < y.cols(); h0 += width) {
        const Eigen::Map<const Eigen::RowVectorXf> in(head(t, h0 / width), width);
        const float inv_rms = 1.0f / std::sqrt(in.squaredNorm() / static_cast<float>(width) + eps);
        auto out = y.row(t).segment(h0, width);
        out.array() = in.array() * inv_rms * gain.array();
        if (gate) out.array() *= gate->row(t).segment(h0, width).array();
      }
  });
}
}  // namespace detail

/// fla's output norms (FusedRMSNormGated, and RMSNorm without a gate): each run of gain.size()
/// values of a row of x is RMS-normalised (eps inside the root) and scaled by `gain`, then, with a
/// gate [rows, cols], multiplied by swish(gate) element by element, into y (which may be x); the
/// gate becomes its swish.
inline void gated_rms_norm(const MatIn& x, MatMap* gate, const Eigen::RowVectorXf& gain, float eps, MatOut y) {
  GLRNN_CHECK(y.rows() == x.rows() && y.cols() == x.cols(), ShapeError, "gated_rms_norm: x and y differ in shape");
  const auto head = [&](std::int64_t t, Eigen::Index h) { return x.data() + t * x.outerStride() + h * gain.size(); };
  detail::gated_rms_norm_rows(head, gate, gain, eps, y);
}

/// The same for activations laid out head by head, each head a run, into the rows of y.
inline void gated_rms_norm(const HeadRows& x, MatMap* gate, const Eigen::RowVectorXf& gain, float eps, MatOut y) {
  GLRNN_CHECK(x.width == gain.size() && y.rows() == x.rows && y.cols() == x.heads * x.width, ShapeError,
              "gated_rms_norm: the heads do not match the rows");
  detail::gated_rms_norm_rows([&](std::int64_t t, Eigen::Index h) { return x.row(t, h); }, gate, gain, eps, y);
}

}  // namespace glrnn
