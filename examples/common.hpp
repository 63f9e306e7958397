#pragma once
// What the glrnn-* programs share: the error convention (one line on stderr, exit 1) and parsing.

#include <cstdint>    // std::int32_t
#include <cstdio>     // std::fprintf
#include <exception>  // std::exception
#include <fstream>    // std::ifstream
#include <sstream>    // std::ostringstream
#include <string>     // std::string, std::stoll
#include <vector>     // std::vector

#include <CLI/CLI.hpp>

#include "glrnn/core/error.hpp"
#include "glrnn/models/registry.hpp"
#include "glrnn/sampling/sampler.hpp"

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
    std::string what = e.what();  // one line, whatever the message holds
    for (char& c : what)
      if (c == '\n' || c == '\r') c = ' ';
    std::fprintf(stderr, "%s: error: %s\n", tool, what.c_str());
    return 1;
  } catch (...) {
    std::fprintf(stderr, "%s: error: unknown failure\n", tool);
    return 1;
  }
}

/// The sampling flags of generate and chat, with llama.cpp's spellings as aliases.
inline void add_sampling_options(CLI::App& app, SamplerParams& p) {
  app.add_option("--temperature,--temp", p.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  app.add_option("--top-k", p.top_k, "Keep the k most likely tokens; 0 = off")->capture_default_str();
  app.add_option("--top-p", p.top_p, "Nucleus sampling mass; 1 = off")->capture_default_str();
  app.add_option("--min-p", p.min_p, "Drop tokens below min-p x the top probability; 0 = off")->capture_default_str();
  app.add_option("--repeat-penalty,--repetition-penalty", p.repetition_penalty, "Repetition penalty; 1 = off")
      ->capture_default_str();
  app.add_option("-s,--seed", p.seed, "Random seed")->capture_default_str();
}

/// Model-loading flags shared by the tools.
inline void add_load_options(CLI::App& app, LoadOptions& options) {
  app.add_flag("--rope-bf16-frequencies", options.rope_bf16_frequencies,
               "Round RoPE frequencies to bf16, as a transformers model loaded in bf16 and upcast has them");
  app.add_option_function<std::string>(
         "--type",
         [&options](const std::string& name) {
           options.weight_type = parse_weight_type(name);
           if (!options.weight_type) throw CLI::ValidationError("--type", "'" + name + "' is not one of f32, bf16, int8, q4");
         },
         "Weight storage: f32, bf16, int8 or q4 (converted at load; default: as stored)");
}

/// A whole file as bytes. Throws IoError.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GLRNN_CHECK(in.good(), IoError, "cannot open '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  GLRNN_CHECK(!in.bad(), IoError, "cannot read '" + path + "'");
  return text.str();
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
