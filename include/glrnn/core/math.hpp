#pragma once
// Scalar functions with the exact formulas of the PyTorch reference.

#include <cmath>  // std::tanh, std::exp, std::log1p, std::frexp, std::ldexp, std::nearbyint

namespace glrnn {

/// GELU, tanh approximation (PyTorch's gelu(approximate="tanh"), HF's gelu_pytorch_tanh). The erf
/// form gives different bits (docs/recurrent_gemma.md §7).
inline float gelu_tanh(float x) {
  constexpr float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
  constexpr float kKappa = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kBeta * (x + kKappa * x * x * x)));
}

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

inline float silu(float x) { return x * sigmoid(x); }

/// PyTorch's softplus with its default threshold: the identity above 20.
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

/// log(sigmoid(x)), without overflow for large |x|.
inline float log_sigmoid(float x) { return x >= 0.0f ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }

/// log(exp(a) + exp(b)), without overflow.
inline float log_add_exp(float a, float b) {
  const float hi = a > b ? a : b, lo = a > b ? b : a;
  return hi + std::log1p(std::exp(lo - hi));
}

/// The element-wise functions the layers apply to whole rows of activations, vectorised on each
/// kernel path (kernels/elementwise.hpp); `apply` is their scalar reference.
enum class Elementwise { Exp, Tanh, Sigmoid, Silu, GeluTanh, LogSigmoid, Softplus };

inline float apply(Elementwise f, float x) {
  switch (f) {
    case Elementwise::Exp: return std::exp(x);
    case Elementwise::Tanh: return std::tanh(x);
    case Elementwise::Sigmoid: return sigmoid(x);
    case Elementwise::Silu: return silu(x);
    case Elementwise::GeluTanh: return gelu_tanh(x);
    case Elementwise::LogSigmoid: return log_sigmoid(x);
    case Elementwise::Softplus: return softplus(x);
  }
  return x;
}

/// Rounds a positive double to the nearest bfloat16 value (ties to even), directly from double as
/// torch.tensor(x, dtype=bfloat16) does; avoids a double rounding through float32.
inline float round_to_bf16(double x) {
  int exponent = 0;
  const double mantissa = std::frexp(x, &exponent);        // x = mantissa * 2^exponent, mantissa in [0.5, 1)
  const double kept = std::nearbyint(std::ldexp(mantissa, 8));  // 8 significant bits, ties to even
  return static_cast<float>(std::ldexp(kept, exponent - 8));
}

}  // namespace glrnn
