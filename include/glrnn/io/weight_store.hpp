#pragma once
// The tensors of a checkpoint as a TensorSource: typed, shape-checked views. A matrix comes in
// the format asked for, zero-copy from the mapping when the file stores exactly that (for the
// block formats: a converted file's U8 tensor of packed units); small tensors (norm gains,
// biases, conv taps, RG-LRU parameters) always come as float32. Whatever must be converted or
// realigned is converted once here and owned by the store, so views stay valid as long as the
// store lives (models keep it by shared_ptr). Integer matrices come in row groups, the kernels'
// layout (formats/row_groups.hpp), unless the caller asks for rows; a file that stores them the
// other way is regrouped here. The store records what it served: glrnn-convert writes exactly that.

#include <algorithm>    // std::max
#include <cstddef>      // std::size_t, std::byte
#include <cstdint>      // std::uintptr_t
#include <cstring>      // std::memcpy
#include <map>          // std::map
#include <memory>       // std::unique_ptr
#include <optional>     // std::optional
#include <string>       // std::string
#include <utility>      // std::move
#include <vector>       // std::vector

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/tensor.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/io/converted_file.hpp"
#include "glrnn/io/safetensors.hpp"
#include "glrnn/io/tensor_source.hpp"

namespace glrnn {

class WeightStore final : public TensorSource {
 public:
  /// path: a model folder (single or sharded safetensors) or one .safetensors file.
  /// packed: how each U8 tensor of packed units is stored (a converted file's metadata).
  explicit WeightStore(const std::string& path, std::map<std::string, PackedFormat> packed = {})
      : checkpoint_(path), packed_(std::move(packed)) {}
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  const Checkpoint& checkpoint() const { return checkpoint_; }
  bool has(const std::string& name) const override { return checkpoint_.find(name) != nullptr; }

  WeightMatrix matrix(const std::string& name, const Shape& shape, std::optional<WeightType> type,
                     RowOrder order) override {
    const TensorInfo& t = checkpoint_.get(name);
    const std::int64_t cols = shape.rank ? shape[shape.rank - 1] : 1, rows = cols ? shape.numel() / cols : 0;
    const std::optional<WeightType> stored = stored_format(t, shape, rows, cols);
    const RowOrder stored_order = t.dtype == DType::U8 ? packed_.at(t.name).order : RowOrder::Rows;
    // F16 has no kernels of its own: as stored, it is widened to f32.
    const WeightType target = type ? *type : stored.value_or(WeightType::F32);
    const FormatInfo& format = format_info(target);
    if (!format.groups_rows()) order = RowOrder::Rows;
    GLRNN_CHECK(format.holds_rows_of(cols), ShapeError,
                where(t) + " has rows of " + std::to_string(cols) + " elements, which do not split into " +
                    std::string(format.name) + " blocks of " + std::to_string(format.block_elements) +
                    "; use f32 or bf16 weights for this model");
    // A tied embedding is asked for twice (lookup and output head): converted once.
    if (const auto seen = served_.find(name);
        seen != served_.end() && seen->second.format == target && seen->second.order == order)
      return {seen->second.data, target, rows, cols, order};
    const std::size_t nbytes = static_cast<std::size_t>(rows) * format.row_bytes(cols);
    const void* data = nullptr;
    if (stored == target && stored_order == order) {
      data = reinterpret_cast<std::uintptr_t>(t.data) % format.unit_align == 0 ? static_cast<const void*>(t.data)
                                                                              : copy_of(t.data, nbytes);
    } else {
      data = converted(t, stored, stored_order, format, order, rows, cols);
    }
    const bool packed = format.file_dtype == DType::U8;
    served_.insert_or_assign(name, Served{packed ? DType::U8 : format.file_dtype,
                                          packed ? Shape{rows, static_cast<std::int64_t>(format.row_bytes(cols))} : shape,
                                          target, order, data, nbytes});
    return {data, target, rows, cols, order};
  }

  TensorView<const float> vector(const std::string& name, const Shape& expected) override {
    const TensorInfo& t = checked(name, expected);
    const float* data = t.dtype == DType::F32 && reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) == 0
                            ? reinterpret_cast<const float*>(t.data)
                            : widened(t);
    served_.insert_or_assign(name, Served{DType::F32, expected, std::nullopt, RowOrder::Rows, data,
                                          static_cast<std::size_t>(expected.numel()) * sizeof(float)});
    return {data, expected};
  }

  /// A tensor as the model took it: what glrnn-convert writes.
  struct Served {
    DType dtype;
    Shape shape;                      // as written; for packed formats [rows, bytes per row] of U8
    std::optional<WeightType> format; // the format of a matrix; empty for a float32 vector
    RowOrder order;                   // of a matrix's rows
    const void* data;
    std::size_t nbytes;
  };
  /// Every tensor handed out so far, by name.
  const std::map<std::string, Served>& served() const { return served_; }

 private:
  static std::string where(const TensorInfo& t) { return *t.file + ": tensor '" + t.name + "'"; }

  /// The format a matrix is stored in (empty for F16), after checking its shape and dtype.
  std::optional<WeightType> stored_format(const TensorInfo& t, const Shape& shape, std::int64_t rows, std::int64_t cols) const {
    if (t.dtype != DType::U8) {
      check_float(t, shape);
      if (t.dtype == DType::F16) return std::nullopt;
      return t.dtype == DType::BF16 ? WeightType::BF16 : WeightType::F32;
    }
    const auto known = packed_.find(t.name);
    GLRNN_CHECK(known != packed_.end(), FormatError,
                where(t) + " holds packed bytes (U8) but the file does not say in which weight format");
    const FormatInfo& format = format_info(known->second.format);
    const auto row_bytes = static_cast<std::int64_t>(format.row_bytes(cols));
    GLRNN_CHECK(format.holds_rows_of(cols) && t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == row_bytes,
                ShapeError, where(t) + " holds " + std::string(format.name) + " units of shape " + t.shape_str() +
                                ", expected [" + std::to_string(rows) + ", " + std::to_string(row_bytes) + "] for " +
                                shape.str());
    return known->second.format;
  }

  static void check_float(const TensorInfo& t, const Shape& expected) {
    bool same = static_cast<int>(t.shape.size()) == expected.rank;
    for (int i = 0; same && i < expected.rank; ++i) same = t.shape[static_cast<std::size_t>(i)] == expected[i];
    GLRNN_CHECK(same, ShapeError, where(t) + " has shape " + t.shape_str() + ", expected " + expected.str());
    GLRNN_CHECK(t.dtype == DType::F32 || t.dtype == DType::BF16 || t.dtype == DType::F16, FormatError,
                where(t) + " has dtype " + std::string(dtype_name(t.dtype)) + "; weights must be F32, BF16 or F16");
  }

  const TensorInfo& checked(const std::string& name, const Shape& expected) {
    const TensorInfo& t = checkpoint_.get(name);
    check_float(t, expected);
    return t;
  }

  /// The matrix in `format` and `order`. Row by row in parallel through float32 (no whole float
  /// copy), unless only the order differs: then units move and nothing is rounded again.
  const void* converted(const TensorInfo& t, std::optional<WeightType> stored, RowOrder stored_order,
                        const FormatInfo& format, RowOrder order, std::int64_t rows, std::int64_t cols) {
    const std::size_t nbytes = static_cast<std::size_t>(rows) * format.row_bytes(cols);
    std::byte* out = allocate(nbytes);
    std::unique_ptr<std::byte[]> rows_first;  // the units row after row, before grouping
    std::byte* units = out;
    if (order == RowOrder::Groups) {
      rows_first.reset(new std::byte[nbytes]);
      units = rows_first.get();
    }
    if (stored == format.type && stored_order == RowOrder::Rows) {
      std::memcpy(units, t.data, nbytes);
    } else {
      const std::size_t stored_row_bytes = stored ? format_info(*stored).row_bytes(cols) : 0;
      // A packed tensor as stored (its rows may be in groups); a float tensor is read element-wise.
      const std::optional<WeightMatrix> packed =
          t.dtype == DType::U8 ? std::optional<WeightMatrix>(WeightMatrix{t.data, *stored, rows, cols, stored_order})
                               : std::nullopt;
      parallel_for(0, rows, cols * 8, [&](std::int64_t lo, std::int64_t hi) {
        std::vector<float> row(static_cast<std::size_t>(cols));
        std::vector<std::byte> aligned(stored_row_bytes);  // the file gives no alignment
        for (std::int64_t r = lo; r < hi; ++r) {
          if (!packed) {
            widen_elements(t, r * cols, cols, row.data());
          } else if (r < packed->grouped_rows()) {
            packed->dequantize_row(r, row.data());  // reads a group's tiles byte by byte
          } else {
            std::memcpy(aligned.data(), packed->row(r), stored_row_bytes);
            format_info(*stored).dequantize(aligned.data(), cols, row.data());
          }
          format.quantize(row.data(), cols, units + r * static_cast<std::int64_t>(format.row_bytes(cols)));
        }
      });
    }
    if (order == RowOrder::Groups) format.group_rows(units, rows, cols, out);
    return out;
  }

  /// The tensor converted to float32.
  const float* widened(const TensorInfo& t) {
    auto* out = reinterpret_cast<float*>(allocate(static_cast<std::size_t>(t.numel()) * sizeof(float)));
    widen_elements(t, 0, t.numel(), out);
    return out;
  }

  const void* copy_of(const std::byte* data, std::size_t n) {
    std::byte* out = allocate(n);
    std::memcpy(out, data, n);
    return out;
  }

  /// Elements [first, first + n) of a F32, BF16 or F16 tensor as float32 (memcpy: the file gives no alignment).
  static void widen_elements(const TensorInfo& t, std::int64_t first, std::int64_t n, float* out) {
    const std::size_t begin = static_cast<std::size_t>(first), count = static_cast<std::size_t>(n);
    switch (t.dtype) {
      case DType::F32:
        std::memcpy(out, t.data + begin * sizeof(float), count * sizeof(float));
        break;
      case DType::BF16:
        for (std::size_t i = 0; i < count; ++i) out[i] = to_float(load<bf16>(t.data, begin + i));
        break;
      default:  // F16; check_float() admits nothing else
        for (std::size_t i = 0; i < count; ++i) out[i] = to_float(load<f16>(t.data, begin + i));
        break;
    }
  }

  template <class U>
  static U load(const std::byte* base, std::size_t i) {
    U u;
    std::memcpy(&u, base + i * sizeof(U), sizeof(U));
    return u;
  }

  /// Bytes owned by the store, aligned for any unit and for vector loads.
  std::byte* allocate(std::size_t n) {
    arena_.emplace_back(new std::max_align_t[(n + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t)]);
    return reinterpret_cast<std::byte*>(arena_.back().get());
  }

  Checkpoint checkpoint_;
  std::map<std::string, PackedFormat> packed_;
  std::map<std::string, Served> served_;
  std::vector<std::unique_ptr<std::max_align_t[]>> arena_;  // converted copies, referenced by the views
};

}  // namespace glrnn
