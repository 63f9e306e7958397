#pragma once
// The element-wise functions of activations (core/math.hpp's Elementwise: exp, tanh, sigmoid, SiLU,
// GeLU's tanh form, logsigmoid, softplus; and logaddexp, and gated linear attention's decayed dot
// product) on the kernel path chosen at run time, so that a program built without -march computes
// them as fast as glrnn's own. The SIMD paths' versions (kernels/elementwise-inl.hpp) are within a
// few ulp of the standard library's, the portable path is the library's (docs/kernels.md §8).

#include <cstdint>  // std::int64_t

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/math.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/kernels/kernels.hpp"

namespace glrnn::kernels {

/// y[i] = f(x[i]) for i < n; y may be x.
inline void apply(Elementwise f, const float* x, float* y, std::int64_t n) {
  path_kernels(kernel_path()).apply(f, x, y, n);
}

/// x = f(x), element by element, in place; a prompt's rows are split between threads.
inline void apply(Elementwise f, MatOut x) {
  const auto& k = path_kernels(kernel_path());
  constexpr std::int64_t kCyclesPerValue = 4;  // a vector of GeLU is about 40 instructions
  parallel_for(0, x.rows(), kCyclesPerValue * x.cols(), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo; r < hi; ++r) k.apply(f, x.row(r).data(), x.row(r).data(), x.cols());
  });
}

/// y[i] = log(e^a[i] + e^b[i]) for i < n; y may be a or b.
inline void log_add_exp(const float* a, const float* b, float* y, std::int64_t n) {
  path_kernels(kernel_path()).log_add_exp(a, b, y, n);
}

/// Σ a[i] · b[i] · e^(p[i] - q[i]) for i < n.
inline float decayed_dot(const float* a, const float* b, const float* p, const float* q, std::int64_t n) {
  return path_kernels(kernel_path()).decayed_dot(a, b, p, q, n);
}

}  // namespace glrnn::kernels
