#pragma once
// Hands out typed, shape-checked views of a checkpoint's tensors. Large matrices come as the
// model's storage type T, zero-copy from the mapping when the file stores exactly T; small tensors
// (norm gains, biases, conv taps, RG-LRU parameters) always come as float32. Whatever must be
// widened or realigned is converted once here and owned by the store, so views stay valid as long
// as the store lives (models keep it by shared_ptr).

#include <algorithm>    // std::max
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uintptr_t
#include <cstring>      // std::memcpy
#include <map>          // std::map
#include <memory>       // std::unique_ptr
#include <string>       // std::string
#include <type_traits>  // std::is_same_v
#include <vector>       // std::vector

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/quant.hpp"
#include "glrnn/core/tensor.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/io/safetensors.hpp"

namespace glrnn {

class WeightStore {
 public:
  /// path: a model folder (single or sharded safetensors) or one .safetensors file.
  explicit WeightStore(const std::string& path) : checkpoint_(path) {}
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  const Checkpoint& checkpoint() const { return checkpoint_; }
  bool has(const std::string& name) const { return checkpoint_.find(name) != nullptr; }

  /// The storage type that holds every matrix losslessly: BF16 when all tensors of rank >= 2 are
  /// BF16, F32 otherwise (F16 and mixed files are widened).
  DType matrix_storage() const {
    for (const TensorInfo* t : checkpoint_.all())
      if (t->shape.size() >= 2 && t->dtype != DType::BF16) return DType::F32;
    return DType::BF16;
  }

  /// A large tensor as storage type T. Zero-copy when the file stores exactly T (for a block
  /// format: a converted file's U8 tensor of packed blocks); otherwise converted once, here.
  /// Throws if absent or of another shape.
  template <class T>
  TensorView<const T> matrix(const std::string& name, const Shape& expected) {
    // A tied embedding is asked for twice (lookup and output head): convert it once.
    constexpr DType stored = dtype_of<T>::value;
    const auto seen = served_.find(name);
    if (seen != served_.end() && seen->second.dtype == stored && seen->second.logical == expected)
      return {static_cast<const T*>(seen->second.data), expected};
    const TensorView<const T> view = matrix_view<T>(name, expected);
    if constexpr (is_block_format_v<T>) {
      const std::int64_t rows = expected[0];
      record(name, DType::U8, {rows, expected.numel() / rows / kQuantBlock * static_cast<std::int64_t>(sizeof(T))},
             expected, view.data, static_cast<std::size_t>(expected.numel() / kQuantBlock) * sizeof(T));
    } else {
      record(name, stored, expected, expected, view.data, static_cast<std::size_t>(expected.numel()) * sizeof(T));
    }
    return view;
  }

  /// A small tensor as float32. Throws if absent or of another shape.
  TensorView<const float> vector(const std::string& name, const Shape& expected) {
    const TensorInfo& t = checked(name, expected);
    const float* data = t.dtype == DType::F32 && reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) == 0
                            ? reinterpret_cast<const float*>(t.data)
                            : widened(t);
    record(name, DType::F32, expected, expected, data, static_cast<std::size_t>(expected.numel()) * sizeof(float));
    return {data, expected};
  }

  /// Like vector(), but an absent tensor gives an empty view.
  TensorView<const float> optional_vector(const std::string& name, const Shape& expected) {
    return has(name) ? vector(name, expected) : TensorView<const float>{};
  }

  /// A tensor as the model took it: what glrnn-convert writes.
  struct Served {
    DType dtype;
    Shape shape;    // as written; for block formats [rows, bytes per row] of U8
    Shape logical;  // as the model asked for it
    const void* data;
    std::size_t nbytes;
  };
  /// Every tensor handed out so far, by name.
  const std::map<std::string, Served>& served() const { return served_; }

 private:
  void record(const std::string& name, DType dtype, const Shape& shape, const Shape& logical, const void* data,
              std::size_t nbytes) {
    served_.emplace(name, Served{dtype, shape, logical, data, nbytes});
  }

  template <class T>
  TensorView<const T> matrix_view(const std::string& name, const Shape& expected) {
    if constexpr (is_block_format_v<T>) {
      const TensorInfo& t = checkpoint_.get(name);
      if (t.dtype == DType::U8) return packed_blocks<T>(t, expected);
    }
    const TensorInfo& t = checked(name, expected);
    if constexpr (!is_block_format_v<T>) {
      if (t.dtype == dtype_of<T>::value) {
        if (reinterpret_cast<std::uintptr_t>(t.data) % alignof(T) == 0) return {reinterpret_cast<const T*>(t.data), expected};
        T* copy = allocate<T>(t.numel());  // same dtype, misaligned in the file
        std::memcpy(copy, t.data, t.nbytes);
        return {copy, expected};
      }
    }
    if constexpr (std::is_same_v<T, float>) {
      return {widened(t), expected};
    } else {
      return {converted<T>(t, expected), expected};
    }
  }

  static std::string where(const TensorInfo& t) { return *t.file + ": tensor '" + t.name + "'"; }

  const TensorInfo& checked(const std::string& name, const Shape& expected) {
    const TensorInfo& t = checkpoint_.get(name);
    bool same = static_cast<int>(t.shape.size()) == expected.rank;
    for (int i = 0; same && i < expected.rank; ++i) same = t.shape[static_cast<std::size_t>(i)] == expected[i];
    GLRNN_CHECK(same, ShapeError, where(t) + " has shape " + t.shape_str() + ", expected " + expected.str());
    GLRNN_CHECK(t.dtype == DType::F32 || t.dtype == DType::BF16 || t.dtype == DType::F16, FormatError,
                where(t) + " has dtype " + std::string(dtype_name(t.dtype)) + "; weights must be F32, BF16 or F16");
    return t;
  }

  /// A converted file's packed blocks: U8 of shape [rows, blocks per row * block bytes].
  template <class T>
  TensorView<const T> packed_blocks(const TensorInfo& t, const Shape& expected) {
    const std::int64_t rows = expected[0], cols = expected.numel() / std::max<std::int64_t>(rows, 1);
    const std::int64_t row_bytes = cols / kQuantBlock * static_cast<std::int64_t>(sizeof(T));
    GLRNN_CHECK(cols % kQuantBlock == 0 && t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == row_bytes,
                ShapeError, where(t) + " holds packed blocks of shape " + t.shape_str() + ", expected [" +
                                std::to_string(rows) + ", " + std::to_string(row_bytes) + "] for " + expected.str());
    if (reinterpret_cast<std::uintptr_t>(t.data) % alignof(T) == 0) return {reinterpret_cast<const T*>(t.data), expected};
    T* copy = allocate<T>(expected.numel() / kQuantBlock);
    std::memcpy(copy, t.data, t.nbytes);
    return {copy, expected};
  }

  /// The tensor rounded to bf16 or quantized to a block format, row by row in parallel.
  template <class T>
  const T* converted(const TensorInfo& t, const Shape& expected) {
    const std::int64_t rows = expected[0], cols = expected.numel() / std::max<std::int64_t>(rows, 1);
    constexpr std::int64_t per_unit = elements_per_unit_v<T>;
    GLRNN_CHECK(cols % per_unit == 0, ShapeError,
                where(t) + " has rows of " + std::to_string(cols) + " elements, which do not split into blocks of " +
                    std::to_string(per_unit) + "; use f32 or bf16 weights for this model");
    T* out = allocate<T>(expected.numel() / per_unit);
    parallel_for(0, rows, cols * 8, [&](std::int64_t lo, std::int64_t hi) {
      std::vector<float> row(static_cast<std::size_t>(cols));  // one row at a time: no full float copy
      for (std::int64_t r = lo; r < hi; ++r) {
        widen_elements(t, r * cols, cols, row.data());
        for (std::int64_t u = 0; u < cols / per_unit; ++u) {
          if constexpr (is_block_format_v<T>) out[r * (cols / per_unit) + u] = quantize_block<T>(row.data() + u * per_unit);
          else out[r * cols + u] = to_bf16(row[static_cast<std::size_t>(u)]);
        }
      }
    });
    return out;
  }

  /// The tensor converted to float32.
  const float* widened(const TensorInfo& t) {
    float* out = allocate<float>(t.numel());
    widen_elements(t, 0, t.numel(), out);
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
      default:  // F16; checked() admits nothing else
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

  template <class U>
  U* allocate(std::int64_t n) {
    arena_.emplace_back(new float[(static_cast<std::size_t>(n) * sizeof(U) + sizeof(float) - 1) / sizeof(float)]);
    return reinterpret_cast<U*>(arena_.back().get());
  }

  Checkpoint checkpoint_;
  std::map<std::string, Served> served_;
  std::vector<std::unique_ptr<float[]>> arena_;  // converted copies, referenced by the views
};

}  // namespace glrnn
