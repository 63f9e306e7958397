#pragma once
// Streaming detokenization: text is released as tokens arrive, never half a character.
//   - Byte-fallback tokens (<0xXX>) are assembled into UTF-8 characters, each released once
//     complete; a byte that cannot belong to a character becomes U+FFFD.
//   - Any other token is decoded after the previous such token, so decoders that strip a leading
//     space (Strip, Metaspace) act only where the text starts, as in one decode of everything.
// For valid text the concatenated output equals Tokenizer::decode of all the tokens. Where a byte
// run holds an invalid byte, one decode turns the whole run into U+FFFD, characters before the bad
// byte included; a stream has already printed those and prints them as they were.

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int32_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "glrnn/tokenizer/tokenizer.hpp"
#include "glrnn/tokenizer/utf8.hpp"

namespace glrnn {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true)
      : tokenizer_(&tokenizer), skip_special_(skip_special) {}

  /// Adds one token; returns the text it completes (possibly empty).
  std::string push(std::int32_t id) {
    if (skip_special_ && tokenizer_->is_special(id)) return {};
    const int byte = tokenizer_->byte_value(id);
    if (byte >= 0) {
      bytes_ += static_cast<char>(byte);
      return complete_characters();
    }
    std::string out = flush_bytes();
    if (previous_ < 0) {
      out += tokenizer_->decode({id}, skip_special_);
    } else {
      const std::string before = tokenizer_->decode({previous_}, skip_special_);
      const std::string both = tokenizer_->decode({previous_, id}, skip_special_);
      out += both.compare(0, before.size(), before) == 0 ? both.substr(before.size()) : tokenizer_->decode({id}, skip_special_);
    }
    previous_ = id;
    return out;
  }

  /// Whatever is still held back (an incomplete character, as U+FFFD), then a fresh start.
  std::string flush() {
    std::string out = flush_bytes();
    previous_ = -1;
    return out;
  }

 private:
  /// Releases the complete characters at the front of the pending bytes.
  std::string complete_characters() {
    std::string out;
    std::size_t i = 0;
    while (i < bytes_.size()) {
      const std::size_t n = utf8::char_length(bytes_, i);
      if (n > 1 || static_cast<unsigned char>(bytes_[i]) < 0x80) {
        out.append(bytes_, i, n);
        i += n;
      } else if (i + utf8::incomplete_tail(std::string_view(bytes_).substr(i)) == bytes_.size() &&
                 utf8::incomplete_tail(std::string_view(bytes_).substr(i)) > 0) {
        break;  // the start of a character whose other bytes have not come yet
      } else {
        out += "\xEF\xBF\xBD";  // a byte no character can start with or continue
        ++i;
      }
    }
    bytes_.erase(0, i);
    return out;
  }

  std::string flush_bytes() {
    std::string out = complete_characters();
    for (std::size_t i = 0; i < bytes_.size(); ++i) out += "\xEF\xBF\xBD";
    bytes_.clear();
    return out;
  }

  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string bytes_;            // byte-fallback bytes not yet forming a character
  std::int32_t previous_ = -1;   // the last token that was not a byte
};

}  // namespace glrnn
