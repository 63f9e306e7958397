#pragma once
// Block-quantized weight formats. A row of `in` weights is in/32 consecutive blocks, each one f16
// scale and 32 small integers; a weight is scale * q. The blocks are what the decode kernels read,
// so a converted file maps them directly.
//   q8_0: int8 in [-127, 127], 34 bytes per 32 weights (8.5 bits per weight).
//   q4_0: 4-bit indices into 16 fixed non-uniform int8 levels (kQ4Levels), 18 bytes per 32 weights
//         (4.5 bits per weight). Byte i holds element i in its low nibble and element i + 16 in its
//         high nibble, so one 16-byte load unpacks to the 32 elements in order, and one byte
//         shuffle turns indices into levels.

#include <algorithm>    // std::clamp, std::max
#include <cmath>        // std::fabs, std::lround
#include <cstdint>      // std::int8_t, std::uint8_t, std::int64_t
#include <cstring>      // std::memcpy
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <type_traits>  // std::is_same_v
#include <utility>      // std::pair

#include "glrnn/core/dtype.hpp"

namespace glrnn {

constexpr std::int64_t kQuantBlock = 32;

struct q8_0 {
  f16 scale;
  std::int8_t q[kQuantBlock];
};
struct q4_0 {
  f16 scale;
  std::uint8_t q[kQuantBlock / 2];
};
static_assert(sizeof(q8_0) == 34 && sizeof(q4_0) == 18, "blocks must be packed as documented");

template <class T>
constexpr bool is_block_format_v = std::is_same_v<T, q8_0> || std::is_same_v<T, q4_0>;

/// Storage for the few matrices that are not used as plain linear maps (RG-LRU's block-diagonal
/// gates): bf16 in a model whose matrices are blocks.
template <class T>
using dense_storage_t = std::conditional_t<is_block_format_v<T>, bf16, T>;

/// Logical elements per stored unit of T (1 for float and bf16, 32 for a block).
template <class T>
constexpr std::int64_t elements_per_unit_v = is_block_format_v<T> ? kQuantBlock : 1;

/// Converted files store packed blocks as U8 tensors of [rows, bytes per row].
template <> struct dtype_of<q8_0> { static constexpr DType value = DType::U8; };
template <> struct dtype_of<q4_0> { static constexpr DType value = DType::U8; };

/// The storage types of a model's matrices, by their command-line names.
enum class WeightType { F32, BF16, Q8_0, Q4_0 };

inline std::string_view weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::F32: return "f32";
    case WeightType::BF16: return "bf16";
    case WeightType::Q8_0: return "int8";
    case WeightType::Q4_0: return "q4";
  }
  return "?";
}

inline std::optional<WeightType> parse_weight_type(std::string_view name) {
  for (WeightType t : {WeightType::F32, WeightType::BF16, WeightType::Q8_0, WeightType::Q4_0})
    if (weight_type_name(t) == name) return t;
  return std::nullopt;
}

template <class T> struct weight_type_of;
template <> struct weight_type_of<float> { static constexpr WeightType value = WeightType::F32; };
template <> struct weight_type_of<bf16> { static constexpr WeightType value = WeightType::BF16; };
template <> struct weight_type_of<q8_0> { static constexpr WeightType value = WeightType::Q8_0; };
template <> struct weight_type_of<q4_0> { static constexpr WeightType value = WeightType::Q4_0; };

/// Rounds to the nearest f16, ties to even; values beyond the f16 range become infinity.
inline f16 to_f16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return f16{static_cast<std::uint16_t>(sign | 0x7e00u)};  // NaN
  if (magnitude >= 0x477ff000u) return f16{static_cast<std::uint16_t>(sign | 0x7c00u)};  // rounds past 65504
  if (magnitude < 0x38800000u) {  // below the smallest normal f16: a subnormal, in units of 2^-24
    float m;
    std::memcpy(&m, &magnitude, sizeof m);
    return f16{static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(m * 16777216.0f)))};
  }
  const std::uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);  // to even on the dropped 13 bits
  return f16{static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13))};
}

/// Quantizes 32 floats. The scale is rounded to f16 first and the integers chosen against the
/// rounded scale, so that scale * q is the nearest value the block can hold.
inline q8_0 quantize_block_q8(const float* x) {
  float amax = 0.0f;
  for (std::int64_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
  q8_0 b{to_f16(amax / 127.0f), {}};
  const float d = to_float(b.scale), inv = d > 0.0f ? 1.0f / d : 0.0f;
  for (std::int64_t i = 0; i < kQuantBlock; ++i)
    b.q[i] = static_cast<std::int8_t>(std::clamp<long>(std::lround(x[i] * inv), -127, 127));
  return b;
}

/// The 16 levels of q4_0, denser near zero where trained weights are: the non-uniform grid of
/// llama.cpp's IQ4_NL, fitted to normally distributed values. Against 16 evenly spaced levels it
/// roughly halves the perplexity cost of 4-bit weights on the demo models.
constexpr std::int8_t kQ4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/// Index of the level nearest to v (in level units), by binary search over the midpoints.
inline std::uint8_t nearest_q4_level(float v) {
  int lo = 0, hi = 15;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (v > 0.5f * static_cast<float>(kQ4Levels[mid] + kQ4Levels[mid + 1])) lo = mid + 1;
    else hi = mid;
  }
  return static_cast<std::uint8_t>(lo);
}

/// Least-squares 4-bit quantization: starting from scales that map the element of largest
/// magnitude to either end of the grid, each candidate's levels are fitted once more with the
/// optimal scale sum(x l) / sum(l^2), and the candidate with the least squared error wins.
inline q4_0 quantize_block_q4(const float* x) {
  float extreme = 0.0f;
  for (std::int64_t i = 0; i < kQuantBlock; ++i)
    if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
  struct Fit {
    q4_0 block;
    float error, xl, ll;  // squared error, sum(x l), sum(l^2)
  };
  const auto encode = [&](float scale) {
    Fit fit{{to_f16(scale), {}}, 0.0f, 0.0f, 0.0f};
    const float d = to_float(fit.block.scale), inv = d != 0.0f ? 1.0f / d : 0.0f;
    std::uint8_t index[kQuantBlock];
    for (std::int64_t i = 0; i < kQuantBlock; ++i) {
      index[i] = nearest_q4_level(x[i] * inv);
      const float level = kQ4Levels[index[i]], e = x[i] - d * level;
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

inline void dequantize_block(const q8_0& b, float* out) {
  const float d = to_float(b.scale);
  for (std::int64_t i = 0; i < kQuantBlock; ++i) out[i] = d * static_cast<float>(b.q[i]);
}

inline void dequantize_block(const q4_0& b, float* out) {
  const float d = to_float(b.scale);
  for (std::int64_t i = 0; i < kQuantBlock / 2; ++i) {
    out[i] = d * static_cast<float>(kQ4Levels[b.q[i] & 0x0f]);
    out[i + kQuantBlock / 2] = d * static_cast<float>(kQ4Levels[b.q[i] >> 4]);
  }
}

template <class Block>
inline Block quantize_block(const float* x) {
  if constexpr (std::is_same_v<Block, q8_0>) return quantize_block_q8(x);
  else return quantize_block_q4(x);
}

}  // namespace glrnn
