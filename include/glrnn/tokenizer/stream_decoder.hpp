#pragma once
// Streaming detokenization: text is released as tokens arrive, but never half a character. The
// window keeps the last released token as context, so decoders that strip a leading space act as
// they would on the whole sequence (the approach of tokenizers' DecodeStream).

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int32_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "glrnn/tokenizer/tokenizer.hpp"

namespace glrnn {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true)
      : tokenizer_(&tokenizer), skip_special_(skip_special) {}

  /// Adds one token; returns the text it completes (possibly empty).
  std::string push(std::int32_t id) {
    window_.push_back(id);
    const std::string text = tokenizer_->decode(window_, skip_special_);
    const bool grew = text.size() > released_.size() && text.compare(0, released_.size(), released_) == 0;
    // A trailing U+FFFD is a byte run not yet complete; give it up to 4 bytes before printing it.
    if (!grew || (ends_with_replacement(text) && window_.size() - context_ <= kMaxHeldTokens)) return {};
    std::string out = text.substr(released_.size());
    window_.erase(window_.begin(), window_.end() - 1);
    context_ = 1;
    released_ = tokenizer_->decode(window_, skip_special_);
    return out;
  }

  /// Whatever is still held back, then a fresh start.
  std::string flush() {
    const std::string text = tokenizer_->decode(window_, skip_special_);
    std::string out = text.size() > released_.size() ? text.substr(released_.size()) : std::string();
    window_.clear();
    released_.clear();
    context_ = 0;
    return out;
  }

 private:
  static constexpr std::size_t kMaxHeldTokens = 4;  // a UTF-8 character has at most 4 bytes
  static bool ends_with_replacement(const std::string& s) {
    return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
  }

  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::vector<std::int32_t> window_;  // the context token (once something was released), then held ones
  std::size_t context_ = 0;           // tokens of window_ already released
  std::string released_;              // decode of the context
};

}  // namespace glrnn
