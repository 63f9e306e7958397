#pragma once
// Which tokens of a vocabulary may come next: one bit per token. A constraint writes it, the
// sampler reads it before its chain of processors (docs/constraints.md, "Masks").

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int32_t, std::uint64_t
#include <vector>   // std::vector

namespace glrnn {

class TokenMask {
 public:
  /// Makes the mask `vocab_size` tokens long with every token refused.
  void clear(std::int32_t vocab_size) {
    size_ = vocab_size;
    words_.assign((static_cast<std::size_t>(vocab_size) + 63) / 64, 0);
  }
  void allow(std::int32_t token) { words_[static_cast<std::size_t>(token) >> 6] |= std::uint64_t{1} << (token & 63); }
  bool allows(std::int32_t token) const {
    return token >= 0 && token < size_ && ((words_[static_cast<std::size_t>(token) >> 6] >> (token & 63)) & 1u);
  }
  std::int32_t size() const { return size_; }
  /// How many tokens are allowed.
  std::int64_t count() const {
    std::int64_t n = 0;
    for (std::uint64_t w : words_) n += __builtin_popcountll(w);
    return n;
  }

 private:
  std::int32_t size_ = 0;
  std::vector<std::uint64_t> words_;
};

}  // namespace glrnn
