#pragma once
// Owned random tensors for building layers in tests without a checkpoint.

#include <cstdint>  // std::int64_t
#include <deque>    // std::deque
#include <random>   // std::mt19937, std::normal_distribution
#include <vector>   // std::vector

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/dtype.hpp"
#include "glrnn/core/tensor.hpp"

namespace glrnn::test {

/// Hands out tensors of N(mean, std) values that live as long as the arena.
class RandomWeights {
 public:
  explicit RandomWeights(unsigned seed) : rng_(seed) {}

  TensorView<const float> tensor(const Shape& shape, float std = 0.5f, float mean = 0.0f) {
    std::vector<float>& v = floats_.emplace_back(static_cast<std::size_t>(shape.numel()));
    std::normal_distribution<float> normal(mean, std);
    for (float& x : v) x = normal(rng_);
    return {v.data(), shape};
  }

  /// The same kind of tensor stored as bf16 (its values are then exactly representable).
  TensorView<const bf16> tensor_bf16(const Shape& shape, float std = 0.5f) {
    const TensorView<const float> f = tensor(shape, std);
    std::vector<bf16>& v = bf16s_.emplace_back(static_cast<std::size_t>(shape.numel()));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = to_bf16(f.data[i]);
    return {v.data(), shape};
  }

  RowMatrixXf matrix(std::int64_t rows, std::int64_t cols, float std = 1.0f) {
    RowMatrixXf m(rows, cols);
    std::normal_distribution<float> normal(0.0f, std);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng_);
    return m;
  }

 private:
  std::mt19937 rng_;
  std::deque<std::vector<float>> floats_;  // deque: views stay valid as it grows
  std::deque<std::vector<bf16>> bf16s_;
};

}  // namespace glrnn::test
