#pragma once
// Matrix types shared by all layers, and the scratch arena that holds every temporary.
//
// The arena is sized by a dry run (docs/architecture.md §4): a measuring Scratch hands out each
// request as an allocation of its own, freed when its Frame ends, records the deepest the stack of
// requests went, and tells the kernels to skip their arithmetic; a real Scratch of exactly that
// size then serves every later call without allocating. So the size of a layer's temporaries is
// written in one place, the code that takes them. (The dry run never holds more than the real
// arena will, and reserves no address space beyond it: it works under emulators that commit what
// is reserved, strict overcommit, address-space limits and 32-bit address spaces.)

#include <algorithm>  // std::max, std::min
#include <cstddef>    // std::size_t, std::byte
#include <cstdint>    // std::int64_t, std::uint64_t
#include <limits>     // std::numeric_limits
#include <new>        // ::new, std::align_val_t
#include <string>     // std::to_string
#include <utility>    // std::exchange, std::pair
#include <vector>     // std::vector

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

/// Activations of a layer with heads laid out head by head, [heads, T, width]: each head's rows are
/// contiguous over the positions. A pass over one head's positions (the delta rule's chunks) then
/// reads one stream that the hardware prefetchers follow, where in the [T, heads·width] layout
/// each position's segment sits on a page of its own (docs/delta_net.md §2).
struct HeadRows {
  float* data = nullptr;
  std::int64_t rows = 0;         // positions
  std::int64_t heads = 0;
  std::int64_t width = 0;        // per head
  std::int64_t head_stride = 0;  // floats from one head's first row to the next's

  float* row(std::int64_t t, std::int64_t h) const { return data + h * head_stride + t * width; }
  /// Head h's rows t0 .. t0+n-1.
  MatMap block(std::int64_t h, std::int64_t t0, std::int64_t n) const { return MatMap(row(t0, h), n, width); }
  HeadRows middle_rows(std::int64_t t0, std::int64_t n) const { return {row(t0, 0), n, heads, width, head_stride}; }
  /// Every head's every row, [heads·T, width], for element-wise passes; needs heads packed back to back.
  MatMap all() const {
    GLRNN_CHECK(head_stride == rows * width, ShapeError, "HeadRows::all: the heads are not back to back");
    return MatMap(data, heads * rows, width);
  }
};

/// A stack of temporaries. Layers take buffers in `forward` and give them back when the `Frame`
/// they opened ends, so one arena serves every layer in turn and nothing is allocated after
/// construction.
class Scratch {
 public:
  static constexpr std::size_t kAlign = 64;  // every buffer starts on a cache line (and a 512-bit load)

  Scratch() = default;
  /// An arena of `bytes`; max_tokens: the longest chunk its owner runs through it.
  Scratch(std::size_t bytes, std::int64_t max_tokens)
      : data_(bytes ? static_cast<std::byte*>(::operator new(bytes, std::align_val_t{kAlign})) : nullptr),
        capacity_(bytes),
        max_tokens_(max_tokens) {}

  /// A measuring arena for a dry run, without a size: peak() is then the size a real one needs.
  static Scratch measuring(std::int64_t max_tokens) {
    Scratch s;
    s.capacity_ = std::numeric_limits<std::size_t>::max() / 2;
    s.measuring_ = true;
    s.max_tokens_ = max_tokens;
    return s;
  }

  Scratch(Scratch&& other) noexcept { *this = std::move(other); }
  Scratch& operator=(Scratch&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      capacity_ = std::exchange(other.capacity_, 0);
      top_ = std::exchange(other.top_, 0);
      peak_ = std::exchange(other.peak_, 0);
      max_tokens_ = other.max_tokens_;
      measuring_ = std::exchange(other.measuring_, false);
      measured_ = std::exchange(other.measured_, {});
    }
    return *this;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { release(); }

  std::size_t capacity() const { return capacity_; }
  std::int64_t max_tokens() const { return max_tokens_; }
  /// Kernels skip their arithmetic on a measuring arena (their results are not used).
  bool measuring() const { return measuring_; }
  /// The most bytes in use at once so far.
  std::size_t peak() const { return peak_; }
  std::size_t available() const { return capacity_ - top_; }

  /// n objects of a trivial type T, uninitialised, valid until the enclosing Frame ends.
  template <class T>
  T* array(std::size_t n) {
    static_assert(std::is_trivially_destructible_v<T> && alignof(T) <= kAlign, "scratch holds plain numbers");
    const std::size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
    GLRNN_CHECK(bytes <= capacity_ - top_, Error,
                "scratch arena of " + std::to_string(capacity_) + " bytes is too small: made for a shorter chunk?");
    std::byte* p = nullptr;
    if (measuring_) {
      measured_.reserve(measured_.size() + 1);  // so that a failed push_back cannot leak the buffer
      p = static_cast<std::byte*>(::operator new(std::max(bytes, kAlign), std::align_val_t{kAlign}));
      measured_.emplace_back(top_, p);
    } else {
      p = data_ + top_;
    }
    top_ += bytes;
    peak_ = std::max(peak_, top_);
    T* first = nullptr;
    for (std::size_t i = 0; i < n; ++i) {  // begins the objects' lifetime; compiles to nothing
      T* object = ::new (static_cast<void*>(p + i * sizeof(T))) T;
      if (i == 0) first = object;
    }
    return n ? first : reinterpret_cast<T*>(p);
  }

  /// A [rows, cols] float buffer with unspecified contents, valid until the enclosing Frame ends.
  MatMap matrix(Eigen::Index rows, Eigen::Index cols) {
    return MatMap(array<float>(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols)), rows, cols);
  }

  /// [heads, rows, width] floats with unspecified contents, the heads back to back.
  HeadRows head_rows(std::int64_t rows, std::int64_t heads, std::int64_t width) {
    float* p = array<float>(static_cast<std::size_t>(rows) * static_cast<std::size_t>(heads) * static_cast<std::size_t>(width));
    return {p, rows, heads, width, rows * width};
  }

  /// Returns every buffer taken after its creation when it goes out of scope.
  class Frame {
   public:
    explicit Frame(Scratch& s) : scratch_(s), saved_top_(s.top_) {}
    ~Frame() { scratch_.pop_to(saved_top_); }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;

   private:
    Scratch& scratch_;
    std::size_t saved_top_;
  };

 private:
  /// Gives back every buffer taken since the stack stood at `top`.
  void pop_to(std::size_t top) {
    while (!measured_.empty() && measured_.back().first >= top) {
      ::operator delete(measured_.back().second, std::align_val_t{kAlign});
      measured_.pop_back();
    }
    top_ = top;
  }

  void release() {
    pop_to(0);
    if (data_) ::operator delete(data_, std::align_val_t{kAlign});
    data_ = nullptr;
  }

  std::byte* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t top_ = 0;
  std::size_t peak_ = 0;
  std::int64_t max_tokens_ = 0;
  bool measuring_ = false;
  std::vector<std::pair<std::size_t, std::byte*>> measured_;  // a measuring arena's buffers: (top before, memory)
};

/// Views a vector as a one-row matrix, so a single position runs the sequence form.
inline Eigen::Map<const RowMatrixXf> as_row(const VecIn& x) { return {x.data(), 1, x.size()}; }
inline MatMap as_row(VecOut& y) { return {y.data(), 1, y.size()}; }

}  // namespace glrnn
