#pragma once
// Linear layer y = W x + b with W stored [out, in] in any storage type T.

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <string>   // std::string

#include "glrnn/core/kernels.hpp"

namespace glrnn {

template <class T>
struct LinearWeights {
  TensorView<const T> weight;     // [out, in]
  TensorView<const float> bias;   // [out], or empty for no bias
};

template <class T>
class Linear {
 public:
  Linear() = default;
  /// `name` only labels shape errors.
  Linear(std::int64_t in, std::int64_t out, const LinearWeights<T>& w, const std::string& name) : w_(w) {
    GLRNN_CHECK(w.weight.shape == (Shape{out, in}), ShapeError,
                name + ": weight has shape " + w.weight.shape.str() + ", expected " + Shape{out, in}.str());
    GLRNN_CHECK(w.bias.empty() || w.bias.shape == Shape{out}, ShapeError,
                name + ": bias has shape " + w.bias.shape.str() + ", expected " + Shape{out}.str());
  }

  std::int64_t in_features() const { return w_.weight.row_size(); }
  std::int64_t out_features() const { return w_.weight.rows(); }
  const LinearWeights<T>& weights() const { return w_; }

  std::size_t scratch_floats() const { return kernels::matmul_scratch_floats(w_.weight); }

  /// Y[T, out] = X[T, in] W^T + b.
  void forward(const MatIn& x, MatOut y, Scratch& scratch) const {
    kernels::matmul(w_.weight, x, y, scratch);
    if (!w_.bias.empty())
      y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(w_.bias.data, out_features());
  }

 private:
  LinearWeights<T> w_;
};

}  // namespace glrnn
