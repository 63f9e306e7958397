#pragma once
// q4: blocks of 32 weights, each an f16 scale and 32 4-bit indices into 16 fixed non-uniform
// levels: the levels of llama.cpp's IQ4_NL (denser near zero, where trained weights are), in the
// block layout of its Q4_0. 18 bytes per 32 weights: 4.5 bits per weight. A weight is
// scale * kLevels[index]. Byte i holds element i in its low nibble and element i + 16 in its
// high nibble, so one 16-byte load unpacks to the 32 elements in order and one byte shuffle turns
// indices into levels.

#include <cmath>        // std::fabs
#include <cstdint>      // std::int8_t, std::uint8_t, std::int64_t
#include <string_view>  // std::string_view

#include "glrnn/core/dtype.hpp"
#include "glrnn/formats/format.hpp"

namespace glrnn {

struct q4_block {
  f16 scale;
  std::uint8_t q[kQuantBlock / 2];
};
static_assert(sizeof(q4_block) == 18, "q4 blocks are packed as documented");

struct Q4Format {
  using Unit = q4_block;
  static constexpr std::string_view kName = "q4";
  static constexpr std::int64_t kBlockElements = kQuantBlock;
  static constexpr Activations kActivations = Activations::Int8Blocks;
  static constexpr UnitLayout kLayout = UnitLayout::Nibbles;
  static constexpr DType kFileDType = DType::U8;
  /// IQ4_NL's grid, fitted to normally distributed values. Against 16 evenly spaced levels it
  /// roughly halves the perplexity cost of 4-bit weights on the demo models.
  static constexpr std::int8_t kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

  /// Index of the level nearest to v (in level units), by binary search over the midpoints.
  static std::uint8_t nearest_level(float v) {
    int lo = 0, hi = 15;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (v > 0.5f * static_cast<float>(kLevels[mid] + kLevels[mid + 1])) lo = mid + 1;
      else hi = mid;
    }
    return static_cast<std::uint8_t>(lo);
  }

  /// Least squares: starting from scales that map the element of largest magnitude to either
  /// end of the grid, each candidate's levels are fitted once more with the optimal scale
  /// sum(x l) / sum(l^2), and the candidate with the least squared error wins.
  static Unit quantize_block(const float* x) {
    float extreme = 0.0f;
    for (std::int64_t i = 0; i < kQuantBlock; ++i)
      if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
    struct Fit {
      Unit block;
      float error, xl, ll;  // squared error, sum(x l), sum(l^2)
    };
    const auto encode = [&](float s) {
      Fit fit{{to_f16(s), {}}, 0.0f, 0.0f, 0.0f};
      const float d = to_float(fit.block.scale), inv = d != 0.0f ? 1.0f / d : 0.0f;
      std::uint8_t index[kQuantBlock];
      for (std::int64_t i = 0; i < kQuantBlock; ++i) {
        index[i] = nearest_level(x[i] * inv);
        const float level = kLevels[index[i]], e = x[i] - d * level;
        fit.error += e * e;
        fit.xl += x[i] * level;
        fit.ll += level * level;
      }
      for (std::int64_t i = 0; i < kQuantBlock / 2; ++i)
        fit.block.q[i] = static_cast<std::uint8_t>(index[i] | (index[i + kQuantBlock / 2] << 4));
      return fit;
    };
    Fit best = encode(extreme / -127.0f);
    for (float end : {-127.0f, 113.0f, -120.0f, 105.0f}) {
      const Fit first = encode(extreme / end);
      const Fit refined = first.ll > 0.0f ? encode(first.xl / first.ll) : first;
      for (const Fit& candidate : {first, refined})
        if (candidate.error < best.error) best = candidate;
    }
    return best.block;
  }
  static void quantize(const float* x, std::int64_t n, Unit* out) {
    for (std::int64_t b = 0; b < n / kQuantBlock; ++b) out[b] = quantize_block(x + b * kQuantBlock);
  }
  static float scale(const Unit& b) { return to_float(b.scale); }
  static void unpack(const Unit& b, std::int8_t* q) {
    for (std::int64_t i = 0; i < kQuantBlock / 2; ++i) {
      q[i] = kLevels[b.q[i] & 0x0f];
      q[i + kQuantBlock / 2] = kLevels[b.q[i] >> 4];
    }
  }
  static void dequantize(const Unit* in, std::int64_t n, float* out) {
    std::int8_t q[kQuantBlock];
    for (std::int64_t b = 0; b < n / kQuantBlock; ++b) {
      unpack(in[b], q);
      for (std::int64_t i = 0; i < kQuantBlock; ++i) out[b * kQuantBlock + i] = scale(in[b]) * q[i];
    }
  }
  static double reference_dot(const Unit* w, const std::int8_t* xq, const float* xscale, std::int64_t n) {
    return reference_block_dot<Q4Format>(w, xq, xscale, n / kQuantBlock);
  }
};

}  // namespace glrnn
