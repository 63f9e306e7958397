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
#include "glrnn/formats/row_groups.hpp"

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
  /// For formats that can be stored in row groups (formats/row_groups.hpp), else null: a
  /// [rows, cols] matrix row after row -> row groups, and row r of one as float32.
  void (*group_rows)(const void* in, std::int64_t rows, std::int64_t cols, std::byte* out) = nullptr;
  void (*dequantize_grouped_row)(const void* data, std::int64_t rows, std::int64_t cols, std::int64_t r, float* out) = nullptr;

  bool groups_rows() const { return group_rows != nullptr; }

  bool holds_rows_of(std::int64_t cols) const { return cols % block_elements == 0; }
  std::size_t row_bytes(std::int64_t cols) const { return static_cast<std::size_t>(cols / block_elements) * unit_bytes; }
};

namespace detail {
template <class Format>
FormatInfo make_format_info(WeightType type) {
  using Unit = typename Format::Unit;
  FormatInfo info{type,
                  Format::kName,
                  Format::kBlockElements,
                  sizeof(Unit),
                  alignof(Unit),
                  Format::kActivations,
                  Format::kFileDType,
                  [](const float* x, std::int64_t n, void* out) { Format::quantize(x, n, static_cast<Unit*>(out)); },
                  [](const void* in, std::int64_t n, float* out) { Format::dequantize(static_cast<const Unit*>(in), n, out); }};
  if constexpr (groups_rows(Format::kLayout)) {
    info.group_rows = [](const void* in, std::int64_t rows, std::int64_t cols, std::byte* out) {
      glrnn::group_rows<Format>(static_cast<const Unit*>(in), rows, cols / kQuantBlock, out);
    };
    info.dequantize_grouped_row = [](const void* data, std::int64_t rows, std::int64_t cols, std::int64_t r, float* out) {
      glrnn::dequantize_grouped_row<Format>(static_cast<const std::byte*>(data), rows, cols / kQuantBlock, r, out);
    };
  }
  return info;
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
  RowOrder order = RowOrder::Rows;
  /// Multiplied with activations rounded to bf16 (bf16 weights only; LoadOptions::bf16_activations).
  bool bf16_activations = false;

  bool empty() const { return data == nullptr; }
  Shape shape() const { return {rows, cols}; }
  std::size_t row_bytes() const { return format_info(type).row_bytes(cols); }
  std::size_t bytes() const { return static_cast<std::size_t>(rows) * row_bytes(); }
  /// Rows [0, grouped_rows()) are in row groups, the rest row after row.
  std::int64_t grouped_rows() const { return order == RowOrder::Groups ? rows / kRowGroup * kRowGroup : 0; }
  /// Where row r starts: the whole row for r >= grouped_rows(), else its group (row r / 16 · 16).
  const std::byte* row(std::int64_t r) const {
    if (r < grouped_rows()) r = r / kRowGroup * kRowGroup;
    return static_cast<const std::byte*>(data) + r * static_cast<std::int64_t>(row_bytes());
  }
  /// Rows [first, first + count) as a matrix of their own; in row groups `first` must start a
  /// group and `count` end one or the matrix.
  WeightMatrix row_range(std::int64_t first, std::int64_t count) const {
    GLRNN_CHECK(first >= 0 && count >= 0 && first + count <= rows, ShapeError, "rows outside the matrix");
    GLRNN_CHECK(first >= grouped_rows() || (first % kRowGroup == 0 && (count % kRowGroup == 0 || first + count == rows)),
                ShapeError, "rows of a matrix in row groups split inside a group");
    return {row(first), type, count, cols, first < grouped_rows() ? order : RowOrder::Rows, bf16_activations};
  }
  /// Row r as float32 (n = cols).
  void dequantize_row(std::int64_t r, float* out) const {
    const FormatInfo& format = format_info(type);
    if (r >= grouped_rows()) format.dequantize(row(r), cols, out);
    else format.dequantize_grouped_row(data, rows, cols, r, out);
  }
};

}  // namespace glrnn
