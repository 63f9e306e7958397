#pragma once
// Matrix types shared by all layers and the scratch arena that holds every temporary, sized once.

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int64_t
#include <memory>   // std::unique_ptr
#include <new>      // std::align_val_t

#include <Eigen/Core>

#include "glrnn/core/error.hpp"

namespace glrnn {

/// Activations are [T, C] row-major: one row per position, as the checkpoints' [out, in] weights.
using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatIn = Eigen::Ref<const RowMatrixXf>;
using MatOut = Eigen::Ref<RowMatrixXf>;
using VecIn = Eigen::Ref<const Eigen::VectorXf>;
using VecOut = Eigen::Ref<Eigen::VectorXf>;
using MatMap = Eigen::Map<RowMatrixXf>;

/// A stack of float temporaries. Layers take buffers in `forward` and give them back when the
/// `Frame` they opened ends, so one arena serves every layer in turn and nothing is allocated
/// after construction. Each layer reports what it needs through `scratch_floats(max_tokens)`.
class Scratch {
 public:
  /// Floats a [rows, cols] buffer occupies, rounded up so every buffer starts 64-byte aligned.
  static constexpr std::size_t floats_for(Eigen::Index rows, Eigen::Index cols) {
    return (static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) + kAlignFloats - 1) /
           kAlignFloats * kAlignFloats;
  }

  Scratch() = default;
  /// max_tokens: the longest chunk the owner will run through it (models split longer inputs).
  Scratch(std::size_t floats, std::int64_t max_tokens)
      : data_(new (std::align_val_t{64}) float[floats]()), capacity_(floats), max_tokens_(max_tokens) {}

  std::size_t capacity() const { return capacity_; }
  std::int64_t max_tokens() const { return max_tokens_; }

  /// A [rows, cols] buffer with unspecified contents, valid until the enclosing Frame ends.
  MatMap matrix(Eigen::Index rows, Eigen::Index cols) {
    const std::size_t need = floats_for(rows, cols);
    GLRNN_CHECK(top_ + need <= capacity_, Error,
                "scratch arena too small: a layer asked for more than its scratch_floats() reported");
    float* p = data_.get() + top_;
    top_ += need;
    return MatMap(p, rows, cols);
  }

  /// Returns every buffer taken after its creation when it goes out of scope.
  class Frame {
   public:
    explicit Frame(Scratch& s) : scratch_(s), saved_top_(s.top_) {}
    ~Frame() { scratch_.top_ = saved_top_; }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;

   private:
    Scratch& scratch_;
    std::size_t saved_top_;
  };

 private:
  static constexpr std::size_t kAlignFloats = 16;
  struct AlignedDelete {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<float[], AlignedDelete> data_;
  std::size_t capacity_ = 0;
  std::size_t top_ = 0;
  std::int64_t max_tokens_ = 0;
};

/// Views a vector as a one-row matrix, so `step` can run the sequence form on one position.
inline Eigen::Map<const RowMatrixXf> as_row(const VecIn& x) { return {x.data(), 1, x.size()}; }
inline MatMap as_row(VecOut& y) { return {y.data(), 1, y.size()}; }

}  // namespace glrnn
