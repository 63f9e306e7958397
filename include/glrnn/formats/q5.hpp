#pragma once
// q5: blocks of 32 weights, each an f16 scale and 32 5-bit indices i, the weight scale * (i - 16)
// (evenly spaced levels: at 32 levels a grid fitted to normally distributed values is within a
// level's width of even, docs/kernels.md §5). The four bytes after the scale hold the indices'
// fifth bits (bit i of the little-endian word: element i), then 16 bytes hold their low four bits
// as q4 does (element i in the low nibble of byte i, i + 16 in the high one). 22 bytes per 32
// weights: 5.5 bits per weight. Against q4 it costs a quarter of the quantization error: the
// HGRN2 demo loses 2.5% of perplexity instead of 9% (README, "Weight formats").

#include <cstdint>      // std::int8_t, std::uint8_t, std::uint32_t, std::int64_t
#include <string_view>  // std::string_view

#include "glrnn/core/dtype.hpp"
#include "glrnn/formats/format.hpp"
#include "glrnn/formats/level_grid.hpp"

namespace glrnn {

struct q5_block {
  f16 scale;
  std::uint8_t fifth_bits[4];
  std::uint8_t q[kQuantBlock / 2];
};
static_assert(sizeof(q5_block) == 22, "q5 blocks are packed as documented");

struct Q5Format {
  using Unit = q5_block;
  static constexpr std::string_view kName = "q5";
  static constexpr std::int64_t kBlockElements = kQuantBlock;
  static constexpr Activations kActivations = Activations::Int8Blocks;
  static constexpr UnitLayout kLayout = UnitLayout::NibblesFifthBit;
  static constexpr DType kFileDType = DType::U8;
  static constexpr std::int8_t kLevels[32] = {-16, -15, -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3, -2, -1,
                                              0,   1,   2,   3,   4,   5,   6,   7,  8,  9,  10, 11, 12, 13, 14, 15};
  /// Where the extreme weight of a block is tried (formats/level_grid.hpp).
  static constexpr float kScaleEnds[4] = {-16.0f, 15.0f, -15.5f, 14.5f};

  static Unit quantize_block(const float* x) {
    const GridFit fit = fit_block_to_grid(x, kLevels, kScaleEnds);
    Unit b{fit.scale, {}, {}};
    std::uint32_t fifth = 0;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) fifth |= static_cast<std::uint32_t>(fit.index[i] >> 4) << i;
    for (int i = 0; i < 4; ++i) b.fifth_bits[i] = static_cast<std::uint8_t>(fifth >> (8 * i));
    for (std::int64_t i = 0; i < kQuantBlock / 2; ++i)
      b.q[i] = static_cast<std::uint8_t>((fit.index[i] & 0x0f) | ((fit.index[i + kQuantBlock / 2] & 0x0f) << 4));
    return b;
  }
  static void quantize(const float* x, std::int64_t n, Unit* out) { quantize_blocks<Q5Format>(x, n, out); }
  static float scale(const Unit& b) { return to_float(b.scale); }
  static void unpack(const Unit& b, std::int8_t* q) {
    std::uint32_t fifth = 0;
    for (int i = 0; i < 4; ++i) fifth |= static_cast<std::uint32_t>(b.fifth_bits[i]) << (8 * i);
    for (std::int64_t i = 0; i < kQuantBlock / 2; ++i) {
      const int low = b.q[i] & 0x0f, high = b.q[i] >> 4;
      q[i] = kLevels[low | (((fifth >> i) & 1u) << 4)];
      q[i + kQuantBlock / 2] = kLevels[high | (((fifth >> (i + kQuantBlock / 2)) & 1u) << 4)];
    }
  }
  static void dequantize(const Unit* in, std::int64_t n, float* out) { dequantize_blocks<Q5Format>(in, n, out); }
  static double reference_dot(const Unit* w, const std::int8_t* xq, const float* xscale, std::int64_t n) {
    return reference_block_dot<Q5Format>(w, xq, xscale, n / kQuantBlock);
  }
};

}  // namespace glrnn
