#pragma once
// Shared by the libFuzzer targets: inputs as files (the loaders read paths), and the rule that bad
// input may only fail with a glrnn::Error; any other exception is a finding.

#include <unistd.h>  // getpid

#include <cstddef>    // std::size_t
#include <cstdint>    // std::uint8_t
#include <cstdio>     // std::fprintf
#include <cstdlib>    // std::abort
#include <exception>  // std::exception
#include <fstream>    // std::ofstream
#include <string>     // std::string

#include "glrnn/core/error.hpp"

namespace glrnn::fuzz {

/// Writes the input to a per-process file in /dev/shm and returns its path.
inline std::string as_file(const std::uint8_t* data, std::size_t size, const char* suffix) {
  const std::string path = "/dev/shm/glrnn-fuzz-" + std::to_string(getpid()) + suffix;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

/// Runs body; a glrnn::Error is the expected outcome for bad input, anything else aborts.
template <class Body>
void expect_only_glrnn_errors(Body&& body) {
  try {
    body();
  } catch (const glrnn::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-glrnn exception: %s\n", e.what());
    std::abort();
  }
}

}  // namespace glrnn::fuzz
