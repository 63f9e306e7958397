#pragma once
// int8: blocks of 32 weights, each an f16 scale and 32 int8 values in [-127, 127] (the layout of
// llama.cpp's Q8_0); a weight is scale * q. 34 bytes per 32 weights: 8.5 bits per weight.
// Quantizing costs about 0.4% relative error per weight on trained models, which perplexity does
// not see (README, "Weight formats").

#include <algorithm>    // std::clamp, std::max
#include <cmath>        // std::fabs, std::lround
#include <cstdint>      // std::int8_t, std::int64_t
#include <string_view>  // std::string_view

#include "glrnn/core/dtype.hpp"
#include "glrnn/formats/format.hpp"

namespace glrnn {

struct q8_block {
  f16 scale;
  std::int8_t q[kQuantBlock];
};
static_assert(sizeof(q8_block) == 34, "int8 blocks are packed as documented");

struct Int8Format {
  using Unit = q8_block;
  static constexpr std::string_view kName = "int8";
  static constexpr std::int64_t kBlockElements = kQuantBlock;
  static constexpr Activations kActivations = Activations::Int8Blocks;
  static constexpr UnitLayout kLayout = UnitLayout::Int8;
  static constexpr DType kFileDType = DType::U8;

  /// The scale is rounded to f16 first and the integers chosen against the rounded scale, so
  /// that scale * q is the nearest value the block can hold.
  static Unit quantize_block(const float* x) {
    float amax = 0.0f;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
    Unit b{to_f16(amax / 127.0f), {}};
    const float d = to_float(b.scale), inv = d > 0.0f ? 1.0f / d : 0.0f;
    for (std::int64_t i = 0; i < kQuantBlock; ++i)
      b.q[i] = static_cast<std::int8_t>(std::clamp<long>(std::lround(x[i] * inv), -127, 127));
    return b;
  }
  static void quantize(const float* x, std::int64_t n, Unit* out) {
    for (std::int64_t b = 0; b < n / kQuantBlock; ++b) out[b] = quantize_block(x + b * kQuantBlock);
  }
  static float scale(const Unit& b) { return to_float(b.scale); }
  static void unpack(const Unit& b, std::int8_t* q) {
    for (std::int64_t i = 0; i < kQuantBlock; ++i) q[i] = b.q[i];
  }
  static void dequantize(const Unit* in, std::int64_t n, float* out) {
    for (std::int64_t b = 0; b < n / kQuantBlock; ++b)
      for (std::int64_t i = 0; i < kQuantBlock; ++i) out[b * kQuantBlock + i] = scale(in[b]) * in[b].q[i];
  }
  static double reference_dot(const Unit* w, const std::int8_t* xq, const float* xscale, std::int64_t n) {
    return reference_block_dot<Int8Format>(w, xq, xscale, n / kQuantBlock);
  }
};

}  // namespace glrnn
