#pragma once
// Partial rotary position embedding with rotate-half pairing (docs/recurrent_gemma.md §8.1): the first
// `rotated` dims of each head turn by pos · inv_freq, element i paired with i + rotated/2; the
// remaining dims pass through.

#include <cmath>    // std::pow, std::cos, std::sin
#include <cstdint>  // std::int64_t
#include <string>   // std::to_string

#include <Eigen/Core>

#include "glrnn/core/error.hpp"
#include "glrnn/core/math.hpp"

namespace glrnn {

class Rope {
 public:
  Rope() = default;
  /// rotated: dims turned per head (head_dim × partial_rotary_factor); theta: the RoPE base.
  /// bf16_frequencies rounds the inverse frequencies to bfloat16, as a transformers model whose
  /// rotary buffer was cast to bf16 (loaded in bf16, then upcast) computes them.
  Rope(std::int64_t head_dim, std::int64_t rotated, float theta, bool bf16_frequencies = false)
      : head_dim_(head_dim), half_(rotated / 2) {
    GLRNN_CHECK(rotated >= 0 && rotated % 2 == 0 && rotated <= head_dim, ConfigError,
                "rotary dims " + std::to_string(rotated) + " must be even and at most head_dim " +
                    std::to_string(head_dim));
    inv_freq_.resize(half_);
    // float32 throughout, in the reference's order: 1 / theta^(2i / rotated).
    for (std::int64_t i = 0; i < half_; ++i) {
      inv_freq_[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rotated));
      if (bf16_frequencies) inv_freq_[i] = round_to_bf16(inv_freq_[i]);
    }
  }

  /// Rotates `heads` consecutive heads of head_dim floats in place for position `pos`.
  void apply(float* x, std::int64_t heads, std::int64_t pos) const {
    const float p = static_cast<float>(pos);  // the reference casts positions to float32
    for (std::int64_t i = 0; i < half_; ++i) {
      const float angle = p * inv_freq_[i];
      const float c = std::cos(angle), s = std::sin(angle);
      for (std::int64_t h = 0; h < heads; ++h) {
        float* head = x + h * head_dim_;
        const float a = head[i], b = head[i + half_];
        head[i] = a * c - b * s;
        head[i + half_] = b * c + a * s;
      }
    }
  }

 private:
  std::int64_t head_dim_ = 0, half_ = 0;
  Eigen::VectorXf inv_freq_;  // [rotated / 2]
};

}  // namespace glrnn
