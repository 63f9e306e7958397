#pragma once
// Non-owning typed views of tensors (weights in a mapped file or in an arena) and their shapes.

#include <array>             // std::array
#include <cstdint>           // std::int64_t
#include <initializer_list>  // std::initializer_list
#include <string>            // std::string

#include "glrnn/core/error.hpp"

namespace glrnn {

/// A tensor shape of rank 0 to 4, outermost dimension first (PyTorch order). Rank 0 is a scalar.
struct Shape {
  static constexpr int kMaxRank = 4;
  std::array<std::int64_t, kMaxRank> dims{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> d) {
    GLRNN_CHECK(d.size() <= kMaxRank, ShapeError, "glrnn supports tensors of rank 4 at most");
    for (std::int64_t x : d) dims[rank++] = x;
  }
  std::int64_t operator[](int i) const { return dims[i]; }
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
      if (a.dims[i] != b.dims[i]) return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }
  /// "[2560, 1, 4]"
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
  }
};

/// A view of a contiguous row-major tensor of T owned elsewhere (small weights are
/// `TensorView<const float>`; matrices in any weight format are WeightMatrix, formats/registry.hpp).
template <class T>
struct TensorView {
  T* data = nullptr;
  Shape shape;

  bool empty() const { return data == nullptr; }
  std::int64_t numel() const { return shape.numel(); }
  /// Rows of the outermost dimension: [out, in] -> out.
  std::int64_t rows() const { return shape.rank == 0 ? 1 : shape[0]; }
  /// Elements per outermost row: [out, in] -> in; [H, bw, bw] -> bw * bw.
  std::int64_t row_size() const { return shape.rank == 0 ? 1 : numel() / shape[0]; }
  T* row(std::int64_t r) const { return data + r * row_size(); }
};

/// Throws ShapeError "WHAT has shape [..], expected [..]" unless a weight has the shape a layer wants.
inline void check_shape(const Shape& got, const Shape& want, const std::string& what) {
  GLRNN_CHECK(got == want, ShapeError, what + " has shape " + got.str() + ", expected " + want.str());
}

}  // namespace glrnn
