#pragma once
// Element types of stored tensors and their exact conversions to float32.

#include <cmath>        // std::ldexp, std::nearbyint
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint16_t, std::uint32_t
#include <cstring>      // std::memcpy
#include <optional>     // std::optional
#include <string_view>  // std::string_view

namespace glrnn {

/// bfloat16 as stored in checkpoints: the upper 16 bits of an IEEE binary32.
struct bf16 {
  std::uint16_t bits;
};

/// IEEE binary16 as stored in checkpoints.
struct f16 {
  std::uint16_t bits;
};

inline float to_float(float x) { return x; }

/// Exact: a bf16 is a float32 with its low 16 mantissa bits zero.
inline float to_float(bf16 x) {
  const std::uint32_t u = static_cast<std::uint32_t>(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// Exact, including subnormals, infinities and NaN.
inline float to_float(f16 x) {
  const std::uint32_t sign = (x.bits & 0x8000u) << 16;
  const std::uint32_t exponent = (x.bits >> 10) & 0x1fu;
  const std::uint32_t mantissa = x.bits & 0x3ffu;
  std::uint32_t u;
  if (exponent == 0x1f) {
    u = sign | 0x7f800000u | (mantissa << 13);  // inf or NaN, payload kept
  } else if (exponent != 0) {
    u = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  } else {
    // zero or subnormal: mantissa * 2^-24, exactly representable in float32
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    std::memcpy(&u, &magnitude, sizeof u);
    u |= sign;
  }
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// Rounds to the nearest bf16, ties to even (as PyTorch's float -> bfloat16 cast). NaN stays NaN.
inline bf16 to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<std::uint16_t>((u >> 16) | 0x0040u)};
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<std::uint16_t>((u + rounding) >> 16)};
}

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

/// The tensor element types of the safetensors format.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2 };

/// Size of one element in bytes.
inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: case DType::U64: return 8;
    case DType::F32: case DType::I32: case DType::U32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: case DType::U16: return 2;
    case DType::I8: case DType::U8: case DType::BOOL: case DType::F8_E4M3: case DType::F8_E5M2: return 1;
  }
  return 0;
}

/// The safetensors spelling of a dtype ("F32", "BF16", ...).
inline std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U64: return "U64";
    case DType::U32: return "U32";
    case DType::U16: return "U16";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
    case DType::F8_E4M3: return "F8_E4M3";
    case DType::F8_E5M2: return "F8_E5M2";
  }
  return "?";
}

/// Parses a safetensors dtype string; nullopt when unknown.
inline std::optional<DType> parse_dtype(std::string_view name) {
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16,
                  DType::I8, DType::U64, DType::U32, DType::U16, DType::U8, DType::BOOL, DType::F8_E4M3,
                  DType::F8_E5M2}) {
    if (dtype_name(t) == name) return t;
  }
  return std::nullopt;
}

/// The DType tag of a storage type usable for weights.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::BF16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::F16; };

}  // namespace glrnn
