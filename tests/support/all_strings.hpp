#pragma once
// Exhaustive inputs for matchers: every string over a small alphabet up to a length.

#include <cstddef>  // std::size_t
#include <string>   // std::string
#include <vector>   // std::vector

namespace glrnn::test {

/// Every string over `alphabet` of length 0 to `max_length`, shortest first.
inline std::vector<std::string> all_strings(const std::string& alphabet, std::size_t max_length) {
  std::vector<std::string> out{""};
  for (std::size_t begin = 0, length = 0; length < max_length; ++length) {
    const std::size_t end = out.size();
    for (std::size_t i = begin; i < end; ++i)
      for (char c : alphabet) out.push_back(out[i] + c);
    begin = end;
  }
  return out;
}

}  // namespace glrnn::test
