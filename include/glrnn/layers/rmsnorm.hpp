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

/// fla's output norms (FusedRMSNormGated, and RMSNorm without a gate): each run of gain.size()
/// values of a row is RMS-normalised (eps inside the root) and scaled by `gain`, then, with a gate
/// [rows, cols], multiplied by swish(gate) element by element. In place; the gate becomes its swish.
inline void gated_rms_norm(MatOut x, MatMap* gate, const Eigen::RowVectorXf& gain, float eps) {
  const Eigen::Index width = gain.size();
  if (gate) kernels::apply(Elementwise::Silu, *gate);
  parallel_for(0, x.rows(), 4 * x.cols(), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t t = lo; t < hi; ++t)
      for (Eigen::Index h0 = 0; h0 < x.cols(); h0 += width) {
        auto head = x.row(t).segment(h0, width);
        const float inv_rms = 1.0f / std::sqrt(head.squaredNorm() / static_cast<float>(width) + eps);
        head.array() = head.array() * inv_rms * gain.array();
        if (gate) head.array() *= gate->row(t).segment(h0, width).array();
      }
  });
}

}  // namespace glrnn
