#pragma once
// UTF-8 stepping that never fails: an invalid or truncated sequence counts as one-byte characters,
// which the BPE's byte fallback then spells as <0xXX> tokens (never undefined behaviour).

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint32_t
#include <string>       // std::string
#include <string_view>  // std::string_view

namespace glrnn::utf8 {

/// Length in bytes of the character starting at text[i]: 1 to 4 for a valid sequence (no
/// overlongs, surrogates or code points above U+10FFFF), 1 for anything else.
inline std::size_t char_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) { n = 2; min = 0x80; }
  else if ((b0 & 0xF0) == 0xE0) { n = 3; min = 0x800; }
  else if ((b0 & 0xF8) == 0xF0) { n = 4; min = 0x10000; }
  else return 1;
  if (i + n > text.size()) return 1;
  std::uint32_t cp = b0 & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 1;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 1;
  return n;
}

/// The code point of the character at text[i] (of length char_length), or the byte itself when
/// invalid.
inline std::uint32_t code_point(std::string_view text, std::size_t i) {
  const std::size_t n = char_length(text, i);
  const unsigned char b0 = static_cast<unsigned char>(text[i]);
  if (n == 1) return b0;
  std::uint32_t cp = b0 & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  return cp;
}

/// True when every byte belongs to a valid sequence.
inline bool is_valid(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = char_length(text, i);
    if (n == 1 && static_cast<unsigned char>(text[i]) >= 0x80) return false;
    i += n;
  }
  return true;
}

/// Bytes at the end of `text` that start a valid sequence not yet complete (0 to 3).
inline std::size_t incomplete_tail(std::string_view text) {
  for (std::size_t back = 1; back <= 3 && back <= text.size(); ++back) {
    const unsigned char b = static_cast<unsigned char>(text[text.size() - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back
    if (b == 0xC0 || b == 0xC1 || b >= 0xF5) return 0;  // never the lead byte of a valid character
    const std::size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/// Rust's char::is_whitespace (Unicode White_Space).
inline bool is_whitespace(std::uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// A word character for added tokens' single_word rule: ASCII letters, digits and '_', and every
/// non-ASCII character that is not whitespace (an approximation of Unicode alphanumerics).
inline bool is_word_char(std::uint32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return !is_whitespace(c);
}

/// Encodes one code point.
inline std::string encode(std::uint32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

}  // namespace glrnn::utf8
