// The element-wise functions of core/math.hpp, vectorised: written once against the primitives of
// core/simd.hpp and compiled for each SIMD path (kernels-inl.hpp includes this file). exp and
// log1p are the Cephes single-precision methods (range reduction by ln 2, then a polynomial on a
// short interval); the rest are built from them. Their error against the standard library is
// measured in tests/kernels/kernels_test.cpp and stated in docs/kernels.md §8. No include guard
// and no includes.

/// p · 2^n for integer lanes n in [-252, 254]: two factors, so that results below FLT_MIN come out
/// as the subnormal the exact product rounds to, and 2^128 · (p < 1) stays finite.
inline F scale_by_pow2(F p, I n) {
  const I half = shift_right_i32<1>(n);
  const F first = from_bits(shift_left_i32<23>(add_i32(half, set1_i32(127))));
  const F second = from_bits(shift_left_i32<23>(add_i32(sub_i32(n, half), set1_i32(127))));
  return mul(mul(p, first), second);
}

/// e^x, within 2 ulp of std::exp; 0 below -104, +inf above 89, NaN for NaN.
inline F exp_lanes(F x) {
  // Clamped with x second: x86's max and min then keep a NaN, as ARM's do.
  x = min(set1(89.0f), max(set1(-104.0f), x));
  const I n = round_to_i32(mul(x, set1(1.44269504088896341f)));  // x / ln 2
  const F nf = to_floats(n);
  // r = x - n ln 2, with ln 2 in two parts so that n · the first is exact: |r| <= ln 2 / 2.
  F r = fma(nf, set1(-0.693359375f), x);
  r = fma(nf, set1(2.12194440e-4f), r);
  F p = set1(1.9875691500e-4f);
  p = fma(p, r, set1(1.3981999507e-3f));
  p = fma(p, r, set1(8.3334519073e-3f));
  p = fma(p, r, set1(4.1665795894e-2f));
  p = fma(p, r, set1(1.6666665459e-1f));
  p = fma(p, r, set1(5.0000001201e-1f));
  p = fma(p, mul(r, r), add(r, set1(1.0f)));
  return scale_by_pow2(p, n);
}

/// log(1 + e) for e >= -1 (-inf at -1), within 2 ulp of std::log1p for e >= 0.
inline F log1p_lanes(F e) {
  const F u = add(set1(1.0f), e);
  // u = m · 2^k with m in [sqrt(1/2), sqrt(2)): the exponent of u / sqrt(1/2) (bits 0x3f3504f3).
  const I shifted = sub_i32(bits(u), set1_i32(0x3f3504f3));
  const I k = shift_right_i32<23>(shifted);
  const F m = from_bits(sub_i32(bits(u), shift_left_i32<23>(k)));
  const F kf = to_floats(k);
  const F f = sub(m, set1(1.0f));  // exact: m is within a factor 2 of 1
  const F f2 = mul(f, f);
  F p = set1(7.0376836292e-2f);
  p = fma(p, f, set1(-1.1514610310e-1f));
  p = fma(p, f, set1(1.1676998740e-1f));
  p = fma(p, f, set1(-1.2420140846e-1f));
  p = fma(p, f, set1(1.4249322787e-1f));
  p = fma(p, f, set1(-1.6668057665e-1f));
  p = fma(p, f, set1(2.0000714765e-1f));
  p = fma(p, f, set1(-2.4999993993e-1f));
  p = fma(p, f, set1(3.3333331174e-1f));
  // log(m) = f - f²/2 + f³ p(f); k ln 2 in two parts as in exp_lanes.
  F y = mul(mul(p, f2), f);
  y = fma(kf, set1(-2.12194440e-4f), y);
  y = fma(f2, set1(-0.5f), y);
  F log_u = add(f, y);
  log_u = fma(kf, set1(0.693359375f), log_u);
  // u rounded 1 + e: log(1 + e) = log(u) + (e - (u - 1)) / u to first order, exact where u = 1.
  const F lost = sub(e, sub(u, set1(1.0f)));
  const F result = add(log_u, div(lost, u));
  // u = 0 (e = -1) gives -inf; u = +inf passes through (bits beyond the mantissa's reach).
  return select_less(u, set1(1.17549435e-38f), set1(-__builtin_inff()),
                     select_less(set1(3.40282347e+38f), u, u, result));
}

/// tanh(x), within 3 ulp of std::tanh: for |x| below 0.625, where 1 - 2 / (e^2|x| + 1) would
/// cancel, Cephes' odd polynomial; tanh(|x|) either way, then x's sign (so tanh(-0) = -0).
inline F tanh_lanes(F x) {
  const F a = abs(x);
  const F z = mul(x, x);
  F p = set1(-5.70498872745e-3f);
  p = fma(p, z, set1(2.06390887954e-2f));
  p = fma(p, z, set1(-5.37397155531e-2f));
  p = fma(p, z, set1(1.33314422036e-1f));
  p = fma(p, z, set1(-3.33332819422e-1f));
  const F small = fma(mul(p, z), a, a);
  const F large = sub(set1(1.0f), div(set1(2.0f), add(exp_lanes(add(a, a)), set1(1.0f))));
  const F magnitude = select_less(a, set1(0.625f), small, large);
  return from_bits(or_i(bits(magnitude), and_i(bits(x), set1_i32(INT32_MIN))));
}

/// 1 / (1 + e^-x).
inline F sigmoid_lanes(F x) { return div(set1(1.0f), add(set1(1.0f), exp_lanes(sub(zero(), x)))); }

/// log(sigmoid(x)) = min(x, 0) - log(1 + e^-|x|), as core/math.hpp's log_sigmoid.
inline F log_sigmoid_lanes(F x) { return sub(min(zero(), x), log1p_lanes(exp_lanes(sub(zero(), abs(x))))); }

/// log(e^a + e^b) = max(a, b) + log(1 + e^-|a - b|), as core/math.hpp's log_add_exp.
inline F log_add_exp_lanes(F a, F b) {
  const F hi = max(b, a), lo = min(b, a);
  return add(hi, log1p_lanes(exp_lanes(sub(lo, hi))));
}

inline F apply_lanes(Elementwise f, F x) {
  switch (f) {
    case Elementwise::Exp: return exp_lanes(x);
    case Elementwise::Tanh: return tanh_lanes(x);
    case Elementwise::Sigmoid: return sigmoid_lanes(x);
    case Elementwise::Silu: return mul(x, sigmoid_lanes(x));
    case Elementwise::GeluTanh: {
      // 0.5 x (1 + tanh(y)) = x · sigmoid(2y), y = sqrt(2/pi) (x + 0.044715 x³): no cancellation
      // where tanh(y) nears -1.
      const F y2 = mul(mul(set1(2.0f * 0.7978845608028654f), x), fma(mul(set1(0.044715f), x), x, set1(1.0f)));
      return mul(x, sigmoid_lanes(y2));
    }
    case Elementwise::LogSigmoid: return log_sigmoid_lanes(x);
    case Elementwise::Softplus:  // PyTorch's threshold: the identity above 20
      return select_less(set1(20.0f), x, x, log1p_lanes(exp_lanes(x)));
  }
  return x;
}

/// The `count` <= kLanes floats at p as a vector, zeros past them (a row's tail); and its inverse.
/// Every row function below reads its tail this way, so an element's result does not depend on
/// where in the row it sits.
inline F load_lanes(const float* p, std::int64_t count) {
  if (count == kLanes) return load(p);
  float padded[kLanes] = {};
  std::memcpy(padded, p, sizeof(float) * static_cast<std::size_t>(count));
  return load(padded);
}
inline void store_lanes(float* p, F v, std::int64_t count) {
  if (count == kLanes) {
    store(p, v);
    return;
  }
  float lanes[kLanes];
  store(lanes, v);
  std::memcpy(p, lanes, sizeof(float) * static_cast<std::size_t>(count));
}

/// y[i] = f(x[i]) for i < n; y may be x.
template <Elementwise f>
inline void apply_row_of(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; i += kLanes) {
    const std::int64_t count = std::min<std::int64_t>(kLanes, n - i);
    store_lanes(y + i, apply_lanes(f, load_lanes(x + i, count)), count);
  }
}

inline void apply_row(Elementwise f, const float* x, float* y, std::int64_t n) {
  switch (f) {  // each function gets a loop of its own
    case Elementwise::Exp: return apply_row_of<Elementwise::Exp>(x, y, n);
    case Elementwise::Tanh: return apply_row_of<Elementwise::Tanh>(x, y, n);
    case Elementwise::Sigmoid: return apply_row_of<Elementwise::Sigmoid>(x, y, n);
    case Elementwise::Silu: return apply_row_of<Elementwise::Silu>(x, y, n);
    case Elementwise::GeluTanh: return apply_row_of<Elementwise::GeluTanh>(x, y, n);
    case Elementwise::LogSigmoid: return apply_row_of<Elementwise::LogSigmoid>(x, y, n);
    case Elementwise::Softplus: return apply_row_of<Elementwise::Softplus>(x, y, n);
  }
}

/// Σ_i a[i] · b[i] · e^(p[i] - q[i]) for i < n: the gated linear attention's decayed dot product
/// (layers/gla_recurrence.hpp). The padded tail adds 0 · 0 · e^0.
inline float decayed_dot_row(const float* a, const float* b, const float* p, const float* q, std::int64_t n) {
  F sum = zero();
  for (std::int64_t i = 0; i < n; i += kLanes) {
    const std::int64_t count = std::min<std::int64_t>(kLanes, n - i);
    sum = fma(mul(load_lanes(a + i, count), load_lanes(b + i, count)),
              exp_lanes(sub(load_lanes(p + i, count), load_lanes(q + i, count))), sum);
  }
  return hsum(sum);
}

/// y[i] = log(e^a[i] + e^b[i]) for i < n; y may be a or b.
inline void log_add_exp_row(const float* a, const float* b, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; i += kLanes) {
    const std::int64_t count = std::min<std::int64_t>(kLanes, n - i);
    store_lanes(y + i, log_add_exp_lanes(load_lanes(a + i, count), load_lanes(b + i, count)), count);
  }
}
