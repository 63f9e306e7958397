#pragma once
// q4: blocks of 32 weights, each an f16 scale and 32 4-bit indices into 16 fixed non-uniform
// levels: the levels of llama.cpp's IQ4_NL (denser near zero, where trained weights are), in the
// block layout of its Q4_0. 18 bytes per 32 weights: 4.5 bits per weight. A weight is
// scale * kLevels[index]. Byte i holds element i in its low nibble and element i + 16 in its
// high nibble, so one 16-byte load unpacks to the 32 elements in order and one byte shuffle turns
// indices into levels.

#include <cstdint>      // std::int8_t, std::uint8_t, std::int64_t
#include <string_view>  // std::string_view

#include "glrnn/core/dtype.hpp"
#include "glrnn/formats/format.hpp"
#include "glrnn/formats/level_grid.hpp"

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

  /// Where the extreme weight of a block is tried (formats/level_grid.hpp).
  static constexpr float kScaleEnds[4] = {-127.0f, 113.0f, -120.0f, 105.0f};

  static Unit quantize_block(const float* x) {
    const GridFit fit = fit_block_to_grid(x, kLevels, kScaleEnds);
    Unit b{fit.scale, {}};
    for (std::int64_t i = 0; i < kQuantBlock / 2; ++i)
      b.q[i] = static_cast<std::uint8_t>(fit.index[i] | (fit.index[i + kQuantBlock / 2] << 4));
    return b;
  }
  static void quantize(const float* x, std::int64_t n, Unit* out) { quantize_blocks<Q4Format>(x, n, out); }
  static float scale(const Unit& b) { return to_float(b.scale); }
  static void unpack(const Unit& b, std::int8_t* q) {
    for (std::int64_t i = 0; i < kQuantBlock / 2; ++i) {
      q[i] = kLevels[b.q[i] & 0x0f];
      q[i + kQuantBlock / 2] = kLevels[b.q[i] >> 4];
    }
  }
  static void dequantize(const Unit* in, std::int64_t n, float* out) { dequantize_blocks<Q4Format>(in, n, out); }
  static double reference_dot(const Unit* w, const std::int8_t* xq, const float* xscale, std::int64_t n) {
    return reference_block_dot<Q4Format>(w, xq, xscale, n / kQuantBlock);
  }
};

}  // namespace glrnn
