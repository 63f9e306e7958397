#pragma once
// What every weight format provides (docs/kernels.md §2), and the activations the integer
// formats multiply. A format is one header under formats/ with a traits struct:
//
//   struct XFormat {
//     using Unit = ...;                          // what is stored per block (a float for f32)
//     static constexpr std::string_view kName;   // --type, ModelInfo and converted files
//     static constexpr std::int64_t kBlockElements;  // weights per Unit
//     static constexpr Activations kActivations; // what the kernels multiply it with
//     static constexpr UnitLayout kLayout;       // the class of Unit it stores
//     static void quantize(const float* x, std::int64_t n, Unit* out);    // n: a multiple of kBlockElements
//     static void dequantize(const Unit* in, std::int64_t n, float* out);
//     static double reference_dot(const Unit* w, ..., std::int64_t n);   // scalar, the tests' reference
//   };
//
// Integer formats also give `scale(unit)` and `unpack(unit, int8[32])`, and their SIMD decoding in
// a codec beside the header (formats/<name>-inl.hpp, see kernels/kernels-inl.hpp). The
// registration line is in formats/registry.hpp.

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int8_t, std::int32_t, std::int64_t

namespace glrnn {

/// Weights per block of the integer formats, and per block of quantized activations.
constexpr std::int64_t kQuantBlock = 32;

/// What a format's weights are multiplied with: float32 activations, or activations quantized
/// to int8 blocks of 32 with a float scale each (the integer formats: an int8 x int8 product
/// summed in int32 within a block is exact, and one float multiply per block applies both scales).
enum class Activations { Float32, Int8Blocks };

/// The class of a stored unit, which the row-group layout (formats/row_groups.hpp) and the
/// kernels' scale reads go by; a format of layout Other has no codec and runs everywhere through
/// its scalar unpack.
enum class UnitLayout {
  Float32,   // one float
  Bfloat16,  // one bf16
  Int8,      // f16 scale, then 32 int8 weights
  Nibbles,   // f16 scale, then 16 bytes: element i in the low nibble of byte i, i + 16 in the high one,
             // each an index into the format's kLevels
  NibblesFifthBit,  // f16 scale, 4 bytes of fifth bits (bit i: element i's), then 16 bytes as Nibbles;
                    // the 5-bit index i stands for the weight i - 16
  Other,
};

/// Whether a unit starts with its block's f16 scale, which the kernels then read directly.
constexpr bool leads_with_f16_scale(UnitLayout layout) {
  return layout == UnitLayout::Int8 || layout == UnitLayout::Nibbles || layout == UnitLayout::NibblesFifthBit;
}

/// `levels` + 128 as unsigned bytes: a codec's lookup table that gives the weights + 128 directly.
template <std::size_t N>
struct Plus128 {
  std::int8_t v[N] = {};
  constexpr explicit Plus128(const std::int8_t (&levels)[N]) {
    for (std::size_t i = 0; i < N; ++i) v[i] = static_cast<std::int8_t>(levels[i] ^ -128);
  }
};

/// Rows of activations quantized for the integer formats: per row, int8 values and, per block of
/// 32, the scale and the sum of the block's int8 values (the kernels that add 128 to make an
/// operand unsigned subtract 128 times it). q16 holds the same values widened to int16 for the
/// kernels that multiply pairs of int16 (CPUs without VNNI), and lane_offset, for one row, -128
/// times the sum of each 4 consecutive values (VNNI's matrix-vector kernels); each is null where
/// unused.
struct QuantizedRows {
  const std::int8_t* q = nullptr;             // [rows, cols] at stride q_stride
  const std::int16_t* q16 = nullptr;          // [rows, cols] at stride q_stride, or null
  const float* scale = nullptr;               // [rows, cols / 32] at stride block_stride
  const std::int32_t* sum = nullptr;          // [rows, cols / 32] at stride block_stride
  const std::int32_t* lane_offset = nullptr;  // [cols / 4] for row 0, or null
  std::int64_t rows = 0, cols = 0, q_stride = 0, block_stride = 0;

  const std::int8_t* row_q(std::int64_t r) const { return q + r * q_stride; }
  const std::int16_t* row_q16(std::int64_t r) const { return q16 + r * q_stride; }
  const float* row_scale(std::int64_t r) const { return scale + r * block_stride; }
  const std::int32_t* row_sum(std::int64_t r) const { return sum + r * block_stride; }
};

/// The scalar reference of an integer format's dot product with quantized activations: per block
/// the exact int32 sum of the int8 products, times both scales, summed in double. Every kernel
/// path computes the same block sums exactly; only the order of the float sums differs.
template <class Format>
double reference_block_dot(const typename Format::Unit* w, const std::int8_t* xq, const float* xscale,
                           std::int64_t blocks) {
  double sum = 0.0;
  std::int8_t q[kQuantBlock];
  for (std::int64_t b = 0; b < blocks; ++b) {
    Format::unpack(w[b], q);
    std::int32_t s = 0;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) s += q[i] * xq[b * kQuantBlock + i];
    sum += static_cast<double>(Format::scale(w[b])) * static_cast<double>(xscale[b]) * s;
  }
  return sum;
}

/// quantize() and dequantize() of a block format from its quantize_block(), unpack() and scale().
template <class Format>
void quantize_blocks(const float* x, std::int64_t n, typename Format::Unit* out) {
  for (std::int64_t b = 0; b < n / kQuantBlock; ++b) out[b] = Format::quantize_block(x + b * kQuantBlock);
}
template <class Format>
void dequantize_blocks(const typename Format::Unit* in, std::int64_t n, float* out) {
  std::int8_t q[kQuantBlock];
  for (std::int64_t b = 0; b < n / kQuantBlock; ++b) {
    Format::unpack(in[b], q);
    const float d = Format::scale(in[b]);
    for (std::int64_t i = 0; i < kQuantBlock; ++i) out[b * kQuantBlock + i] = d * q[i];
  }
}

}  // namespace glrnn
