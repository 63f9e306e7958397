#pragma once
// Linear layer y = W x + b, with W stored [out, in] in any weight format.

#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/core/threading.hpp"
#include "glrnn/kernels/kernels.hpp"

namespace glrnn {

struct LinearWeights {
  WeightMatrix weight;           // [out, in]
  TensorView<const float> bias;  // [out], or empty for no bias
};

class Linear {
 public:
  Linear() = default;
  /// `name` only labels shape errors.
  Linear(std::int64_t in, std::int64_t out, const LinearWeights& w, const std::string& name) : w_(w) {
    check_shape(w.weight.shape(), {out, in}, name + ": weight");
    if (!w.bias.empty()) check_shape(w.bias.shape, {out}, name + ": bias");
  }

  std::int64_t in_features() const { return w_.weight.cols; }
  std::int64_t out_features() const { return w_.weight.rows; }
  const LinearWeights& weights() const { return w_; }

  /// Y[T, out] = X[T, in] W^T + b.
  void forward(const MatIn& x, MatOut y, Scratch& scratch) const {
    kernels::matmul(w_.weight, x, y, scratch);
    if (w_.bias.empty() || scratch.measuring()) return;
    // Row by row, which Eigen vectorises (the broadcast over a strided matrix it does one float at a
    // time), a prompt's rows split between threads.
    const Eigen::Map<const Eigen::RowVectorXf> bias(w_.bias.data, out_features());
    parallel_for(0, y.rows(), y.cols(), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t t = lo; t < hi; ++t) y.row(t) += bias;
    });
  }

 private:
  LinearWeights w_;
};

}  // namespace glrnn
