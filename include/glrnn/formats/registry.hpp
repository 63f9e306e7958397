#pragma once
// The weight formats glrnn knows, as one list: a format is its header under formats/ plus one line
// of GLRNN_WEIGHT_FORMATS (docs/kernels.md §2). WeightType, the run-time format table, the kernel
// tables (kernels/kernels.hpp) and the tests' loops over formats are all made from the list.

#include <array>        // std::array
#include <cstddef>      // std::size_t, std::byte
#include <cstdint>      // std::int64_t
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/core/tensor.hpp"
#include "glrnn/formats/bf16.hpp"
#include "glrnn/formats/f32.hpp"
#include "glrnn/formats/format.hpp"
#include "glrnn/formats/int8.hpp"
#include "glrnn/formats/q4.hpp"
#include "glrnn/formats/q5.hpp"

/// X(enum value, traits struct), in the order of WeightType.
#define GLRNN_WEIGHT_FORMATS(X) \
  X(F32, F32Format)             \
  X(BF16, Bf16Format)           \
  X(Int8, Int8Format)           \
  X(Q4, Q4Format)               \
  X(Q5, Q5Format)

namespace glrnn {

/// The storage format of a weight matrix.
enum class WeightType {
#define GLRNN_FORMAT_ENUM(value, Format) value,
  GLRNN_WEIGHT_FORMATS(GLRNN_FORMAT_ENUM)
#undef GLRNN_FORMAT_ENUM
};

constexpr WeightType kWeightTypes[] = {
#define GLRNN_FORMAT_VALUE(value, Format) WeightType::value,
    GLRNN_WEIGHT_FORMATS(GLRNN_FORMAT_VALUE)
#undef GLRNN_FORMAT_VALUE
};
constexpr std::size_t kWeightTypeCount = sizeof kWeightTypes / sizeof kWeightTypes[0];

/// Calls f(Format{}) with the traits struct of `type`.
template <class F>
decltype(auto) with_format(WeightType type, F&& f) {
  switch (type) {
#define GLRNN_FORMAT_CASE(value, Format) \
  case WeightType::value: return f(Format{});
    GLRNN_WEIGHT_FORMATS(GLRNN_FORMAT_CASE)
#undef GLRNN_FORMAT_CASE
  }
  throw Error("unknown weight type");
}

/// A format's traits as run-time values.
struct FormatInfo {
  WeightType type;
  std::string_view name;           // --type, ModelInfo, converted files
  std::int64_t block_elements;     // weights per stored unit
  std::size_t unit_bytes;
  std::size_t unit_align;          // what a zero-copy view of a mapped file needs
  Activations activations;
  DType file_dtype;                // how converted files store it (U8: packed units)
  void (*quantize)(const float* x, std::int64_t n, void* out);      // n: a multiple of block_elements
  void (*dequantize)(const void* in, std::int64_t n, float* out);

  bool holds_rows_of(std::int64_t cols) const { return cols % block_elements == 0; }
  std::size_t row_bytes(std::int64_t cols) const { return static_cast<std::size_t>(cols / block_elements) * unit_bytes; }
};

namespace detail {
template <class Format>
FormatInfo make_format_info(WeightType type) {
  using Unit = typename Format::Unit;
  return {type,
          Format::kName,
          Format::kBlockElements,
          sizeof(Unit),
          alignof(Unit),
          Format::kActivations,
          Format::kFileDType,
          [](const float* x, std::int64_t n, void* out) { Format::quantize(x, n, static_cast<Unit*>(out)); },
          [](const void* in, std::int64_t n, float* out) { Format::dequantize(static_cast<const Unit*>(in), n, out); }};
}
}  // namespace detail

inline const FormatInfo& format_info(WeightType type) {
  static const std::array<FormatInfo, kWeightTypeCount> table = {
#define GLRNN_FORMAT_INFO(value, Format) detail::make_format_info<Format>(WeightType::value),
      GLRNN_WEIGHT_FORMATS(GLRNN_FORMAT_INFO)
#undef GLRNN_FORMAT_INFO
  };
  return table[static_cast<std::size_t>(type)];
}

inline std::string_view weight_type_name(WeightType type) { return format_info(type).name; }

inline std::optional<WeightType> parse_weight_type(std::string_view name) {
  for (WeightType t : kWeightTypes)
    if (weight_type_name(t) == name) return t;
  return std::nullopt;
}

/// "f32, bf16, int8, q4, q5", for messages and --help.
inline std::string weight_type_names() {
  std::string names;
  for (WeightType t : kWeightTypes) names += (names.empty() ? "" : ", ") + std::string(weight_type_name(t));
  return names;
}

/// A [rows, cols] weight matrix in one of the formats, owned elsewhere (a mapped file, a store's
/// arena). The format is a run-time tag, read once per matrix product (docs/kernels.md §1).
struct WeightMatrix {
  const void* data = nullptr;
  WeightType type = WeightType::F32;
  std::int64_t rows = 0, cols = 0;

  bool empty() const { return data == nullptr; }
  Shape shape() const { return {rows, cols}; }
  std::size_t row_bytes() const { return format_info(type).row_bytes(cols); }
  std::size_t bytes() const { return static_cast<std::size_t>(rows) * row_bytes(); }
  const std::byte* row(std::int64_t r) const { return static_cast<const std::byte*>(data) + r * row_bytes(); }
  /// Row r as float32 (n = cols).
  void dequantize_row(std::int64_t r, float* out) const { format_info(type).dequantize(row(r), cols, out); }
};

}  // namespace glrnn
