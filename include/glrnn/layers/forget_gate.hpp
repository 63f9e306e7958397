#pragma once
// The forget gate of fla's HGRN and HGRN2 (docs/hgrn2.md §4): log f = logsigmoid(x), or with the
// layer's learned floor lb, log(lb + (1 - lb) sigmoid(x)) evaluated in log space as fla does:
// logaddexp(log lb, log1p(-lb) + logsigmoid(x)).

#include <cstdint>  // std::int64_t
#include <string>   // std::to_string
#include <utility>  // std::move

#include <Eigen/Core>

#include "glrnn/core/error.hpp"
#include "glrnn/core/math.hpp"
#include "glrnn/kernels/elementwise.hpp"

namespace glrnn {

class ForgetGate {
 public:
  ForgetGate() = default;
  /// lower_bound: the floor per channel [width], or empty for none.
  ForgetGate(Eigen::VectorXf lower_bound, std::int64_t width) : lower_bound_(std::move(lower_bound)) {
    GLRNN_CHECK(lower_bound_.size() == 0 || lower_bound_.size() == width, ShapeError,
                "forget-gate lower bound has " + std::to_string(lower_bound_.size()) + " values, expected " +
                    std::to_string(width));
    if (bounded()) {
      log_bound_ = lower_bound_.array().log();
      log_open_ = (-lower_bound_.array()).log1p();
    }
  }

  bool bounded() const { return lower_bound_.size() > 0; }

  /// log f for the raw gates x of every channel, into out (which may be x).
  void log_forget(const float* x, float* out, std::int64_t width) const {
    kernels::apply(Elementwise::LogSigmoid, x, out, width);
    if (!bounded()) return;
    for (std::int64_t c = 0; c < width; ++c) out[c] += log_open_[c];
    kernels::log_add_exp(log_bound_.data(), out, out, width);
  }

 private:
  Eigen::VectorXf lower_bound_, log_bound_, log_open_;  // [width]: lb, log(lb), log(1 - lb)
};

}  // namespace glrnn
