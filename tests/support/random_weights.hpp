#pragma once
// Owned random tensors for building layers in tests without a checkpoint, and the measured
// scratch a layer needs for a test's inputs.

#include <cstddef>  // std::byte
#include <cstdint>  // std::int64_t
#include <deque>    // std::deque
#include <random>   // std::mt19937, std::normal_distribution
#include <vector>   // std::vector

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/dtype.hpp"
#include "glrnn/core/tensor.hpp"
#include "glrnn/formats/registry.hpp"

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

  /// A [rows, cols] weight matrix (shape's last dimension is cols) of such values, stored in
  /// `type`; for f32 the values are exactly tensor()'s.
  WeightMatrix weight(const Shape& shape, float std = 0.5f, WeightType type = WeightType::F32) {
    const TensorView<const float> values = tensor(shape, std);
    const std::int64_t cols = shape[shape.rank - 1], rows = shape.numel() / cols;
    const FormatInfo& format = format_info(type);
    std::vector<std::byte>& bytes = bytes_.emplace_back(static_cast<std::size_t>(rows) * format.row_bytes(cols));
    for (std::int64_t r = 0; r < rows; ++r) format.quantize(values.data + r * cols, cols, bytes.data() + r * format.row_bytes(cols));
    return {bytes.data(), type, rows, cols};
  }

  RowMatrixXf matrix(std::int64_t rows, std::int64_t cols, float std = 1.0f) {
    RowMatrixXf m(rows, cols);
    std::normal_distribution<float> normal(0.0f, std);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng_);
    return m;
  }

 private:
  std::mt19937 rng_;
  std::deque<std::vector<float>> floats_;  // deques: views stay valid as they grow
  std::deque<std::vector<std::byte>> bytes_;
};

/// The float32 values of a matrix stored as f32 (a test's naive reference reads them).
inline const float* f32(const WeightMatrix& m) {
  GLRNN_CHECK(m.type == WeightType::F32, Error, "the matrix is not stored as f32");
  return static_cast<const float*>(m.data);
}

/// A scratch measured by a dry run of `run(scratch)` for chunks of up to max_tokens positions.
template <class Run>
Scratch measured_scratch(std::int64_t max_tokens, Run&& run) {
  Scratch meter = Scratch::measuring(max_tokens);
  run(meter);
  return Scratch(meter.peak(), max_tokens);
}

/// The scratch a stateful layer needs for forward over up to max_tokens rows of in_width.
template <class Layer>
Scratch layer_scratch(const Layer& layer, std::int64_t max_tokens, std::int64_t in_width, std::int64_t out_width) {
  return measured_scratch(max_tokens, [&](Scratch& meter) {
    typename Layer::State state = layer.make_state();
    const RowMatrixXf x = RowMatrixXf::Zero(max_tokens, in_width);
    RowMatrixXf y(max_tokens, out_width);
    layer.forward(x, 0, state, y, meter);
  });
}

}  // namespace glrnn::test
