#pragma once
// Hands out typed, shape-checked views of a checkpoint's tensors. Large matrices come as the
// model's storage type T, zero-copy from the mapping when the file stores exactly T; small tensors
// (norm gains, biases, conv taps, RG-LRU parameters) always come as float32. Whatever must be
// widened or realigned is converted once here and owned by the store, so views stay valid as long
// as the store lives (models keep it by shared_ptr).

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uintptr_t
#include <cstring>      // std::memcpy
#include <memory>       // std::unique_ptr
#include <string>       // std::string
#include <type_traits>  // std::is_same_v
#include <vector>       // std::vector

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/tensor.hpp"
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

  /// A large tensor as storage type T. Throws if absent or of another shape.
  template <class T>
  TensorView<const T> matrix(const std::string& name, const Shape& expected) {
    const TensorInfo& t = checked(name, expected);
    if (t.dtype == dtype_of<T>::value && reinterpret_cast<std::uintptr_t>(t.data) % alignof(T) == 0)
      return {reinterpret_cast<const T*>(t.data), expected};
    if constexpr (std::is_same_v<T, float>) {
      return {widened(t), expected};
    } else {
      GLRNN_CHECK(t.dtype == dtype_of<T>::value, FormatError,
                  where(t) + " is " + std::string(dtype_name(t.dtype)) + ", but the model's matrices are " +
                      std::string(dtype_name(dtype_of<T>::value)));
      T* copy = allocate<T>(t.numel());  // same dtype, misaligned in the file
      std::memcpy(copy, t.data, t.nbytes);
      return {copy, expected};
    }
  }

  /// A small tensor as float32. Throws if absent or of another shape.
  TensorView<const float> vector(const std::string& name, const Shape& expected) {
    const TensorInfo& t = checked(name, expected);
    if (t.dtype == DType::F32 && reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) == 0)
      return {reinterpret_cast<const float*>(t.data), expected};
    return {widened(t), expected};
  }

  /// Like vector(), but an absent tensor gives an empty view.
  TensorView<const float> optional_vector(const std::string& name, const Shape& expected) {
    return has(name) ? vector(name, expected) : TensorView<const float>{};
  }

 private:
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

  /// The tensor converted to float32, element by element (memcpy: the file gives no alignment).
  const float* widened(const TensorInfo& t) {
    float* out = allocate<float>(t.numel());
    const std::size_t n = static_cast<std::size_t>(t.numel());
    switch (t.dtype) {
      case DType::F32:
        std::memcpy(out, t.data, n * sizeof(float));
        break;
      case DType::BF16:
        for (std::size_t i = 0; i < n; ++i) out[i] = to_float(load<bf16>(t.data, i));
        break;
      default:  // F16; checked() admits nothing else
        for (std::size_t i = 0; i < n; ++i) out[i] = to_float(load<f16>(t.data, i));
        break;
    }
    return out;
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
  std::vector<std::unique_ptr<float[]>> arena_;  // converted copies, referenced by the views
};

}  // namespace glrnn
