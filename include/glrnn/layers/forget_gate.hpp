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

  /// log f for the raw gate x of channel c.
  float log_forget(float x, Eigen::Index c) const {
    return bounded() ? log_add_exp(log_bound_[c], log_open_[c] + log_sigmoid(x)) : log_sigmoid(x);
  }

 private:
  Eigen::VectorXf lower_bound_, log_bound_, log_open_;  // [width]: lb, log(lb), log(1 - lb)
};

}  // namespace glrnn
