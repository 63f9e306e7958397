#pragma once
// Measurements for the tools' stats lines.

#include <cstddef>  // std::size_t
#include <cstdio>   // std::snprintf
#include <string>   // std::string

#include <sys/resource.h>  // getrusage

#include "glrnn/core/cpu.hpp"
#include "glrnn/generate/generate.hpp"

namespace glrnn {

/// Peak resident set size of this process so far, in bytes (0 where unknown).
inline std::size_t peak_rss_bytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
#if defined(__APPLE__)
  return static_cast<std::size_t>(usage.ru_maxrss);  // macOS reports bytes
#else
  return static_cast<std::size_t>(usage.ru_maxrss) * 1024;  // Linux and the BSDs report KiB
#endif
}

/// "prefill: 40 tokens, 1234.5 tok/s | decode: 31 tokens, 456.7 tok/s | state: 123456 bytes | peak RSS: 12.3 MiB |
/// kernels: avx512vnni"
inline std::string format_stats(const GenerateStats& s, std::size_t state_bytes) {
  char line[320];
  std::snprintf(line, sizeof line,
                "prefill: %lld tokens, %.1f tok/s | decode: %lld tokens, %.1f tok/s | state: %zu bytes | peak RSS: "
                "%.1f MiB | kernels: %s",
                static_cast<long long>(s.prompt_tokens), s.prefill_tokens_per_second(),
                static_cast<long long>(s.decode_steps), s.decode_tokens_per_second(), state_bytes,
                static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0), std::string(kernel_path_name(kernel_path())).c_str());
  return line;
}

}  // namespace glrnn
