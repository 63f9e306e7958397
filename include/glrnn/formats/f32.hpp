#pragma once
// f32: float32 weights, as most checkpoints' F32 tensors store them; 32 bits per weight.

#include <cstdint>      // std::int64_t
#include <cstring>      // std::memcpy
#include <string_view>  // std::string_view

#include "glrnn/core/dtype.hpp"
#include "glrnn/formats/format.hpp"

namespace glrnn {

struct F32Format {
  using Unit = float;
  static constexpr std::string_view kName = "f32";
  static constexpr std::int64_t kBlockElements = 1;
  static constexpr Activations kActivations = Activations::Float32;
  static constexpr UnitLayout kLayout = UnitLayout::Float32;
  static constexpr DType kFileDType = DType::F32;

  static void quantize(const float* x, std::int64_t n, Unit* out) { std::memcpy(out, x, static_cast<std::size_t>(n) * sizeof(float)); }
  static void dequantize(const Unit* in, std::int64_t n, float* out) {
    std::memcpy(out, in, static_cast<std::size_t>(n) * sizeof(float));
  }
  /// Σ w[i] x[i] in double: the tests' reference for every path.
  static double reference_dot(const Unit* w, const float* x, std::int64_t n) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i]) * x[i];
    return sum;
  }
};

}  // namespace glrnn
