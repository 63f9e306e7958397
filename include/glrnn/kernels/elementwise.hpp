#pragma once
// The element-wise functions of activations (core/math.hpp's Elementwise: exp, sigmoid, SiLU,
// GeLU's tanh form, logsigmoid, softplus, and logaddexp) on the kernel path chosen at run time, so
// that a program built without -march computes them as fast as glrnn's own. The SIMD paths'
// versions (kernels/elementwise-inl.hpp) are within a few ulp of the standard library's, the
// portable path is the library's (docs/kernels.md §8). The callers split long rows between threads.

#include <cstdint>  // std::int64_t

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/math.hpp"
#include "glrnn/kernels/kernels.hpp"

namespace glrnn::kernels {

/// y[i] = f(x[i]) for i < n; y may be x.
inline void apply(Elementwise f, const float* x, float* y, std::int64_t n) {
  path_kernels(kernel_path()).apply(f, x, y, n);
}

/// x = f(x), element by element, in place.
inline void apply(Elementwise f, MatOut x) {
  const auto& k = path_kernels(kernel_path());
  if (x.outerStride() == x.cols()) k.apply(f, x.data(), x.data(), x.size());
  else
    for (Eigen::Index r = 0; r < x.rows(); ++r) k.apply(f, x.row(r).data(), x.row(r).data(), x.cols());
}

/// y[i] = log(e^a[i] + e^b[i]) for i < n; y may be a or b.
inline void log_add_exp(const float* a, const float* b, float* y, std::int64_t n) {
  path_kernels(kernel_path()).log_add_exp(a, b, y, n);
}

}  // namespace glrnn::kernels
