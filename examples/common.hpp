#pragma once
// What the glrnn-* programs share: the error convention (one line on stderr, exit 1) and parsing.

#include <cstdint>    // std::int32_t
#include <cstdio>     // std::fprintf
#include <exception>  // std::exception
#include <string>     // std::string, std::stoll
#include <vector>     // std::vector

#include <CLI/CLI.hpp>

#include "glrnn/core/error.hpp"

namespace glrnn::tools {

/// Runs a tool's body. Any failure, a bad flag included, prints one line
/// "<tool>: error: <what>" on stderr and exits 1; --help prints the usage and exits 0.
template <class Body>
int run_tool(const char* tool, CLI::App& app, int argc, char** argv, Body&& body) {
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help
      return app.exit(e);
    }
    body();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
    return 1;
  }
}

/// "2,17,33" -> {2, 17, 33}. Throws InputError naming the bad item.
inline std::vector<std::int32_t> parse_token_ids(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    std::size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(begin, end - begin);
    std::size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    GLRNN_CHECK(used == item.size() && !item.empty() && value >= INT32_MIN && value <= INT32_MAX, InputError,
                "'" + item + "' in '" + text + "' is not a token id");
    ids.push_back(static_cast<std::int32_t>(value));
    begin = end + 1;
  }
  return ids;
}

}  // namespace glrnn::tools
