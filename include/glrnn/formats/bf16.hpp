#pragma once
// bf16: bfloat16 weights, as released RecurrentGemma and HGRN2 checkpoints store them; 16 bits per
// weight. The kernels widen them to float32 in registers (exact: a shift) and compute in float32.

#include <cstdint>      // std::int64_t
#include <string_view>  // std::string_view

#include "glrnn/core/dtype.hpp"
#include "glrnn/formats/format.hpp"

namespace glrnn {

struct Bf16Format {
  using Unit = bf16;
  static constexpr std::string_view kName = "bf16";
  static constexpr std::int64_t kBlockElements = 1;
  static constexpr Activations kActivations = Activations::Float32;
  static constexpr UnitLayout kLayout = UnitLayout::Bfloat16;
  static constexpr DType kFileDType = DType::BF16;

  /// Rounds to the nearest bf16, ties to even, as PyTorch's cast does.
  static void quantize(const float* x, std::int64_t n, Unit* out) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = to_bf16(x[i]);
  }
  static void dequantize(const Unit* in, std::int64_t n, float* out) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = to_float(in[i]);
  }
  static double reference_dot(const Unit* w, const float* x, std::int64_t n) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(to_float(w[i])) * x[i];
    return sum;
  }
};

}  // namespace glrnn
