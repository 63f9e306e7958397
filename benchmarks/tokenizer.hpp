#pragma once
// glrnn-bench tokenizer: tokenizer.json load time and encode throughput.

#include <cstdio>  // std::printf

#include <glrnn/tools/cli.hpp>

#include "common.hpp"

namespace glrnn::bench {

inline void bench_tokenizer(const std::string& tokenizer_path, const std::string& text_path, double megabytes, int reps,
                     bool json) {
  glrnn::Tokenizer tokenizer;
  const double load_s = median_seconds(reps, [&] { tokenizer = glrnn::load_tokenizer(tokenizer_path); });
  // The text repeated up to the requested size, cut at a line end.
  const std::string sample = glrnn::tools::read_file(text_path);
  GLRNN_CHECK(!sample.empty(), glrnn::InputError, "'" + text_path + "' is empty");
  std::string text;
  while (static_cast<double>(text.size()) < megabytes * 1e6) text += sample;
  text.resize(std::min(text.size(), text.find('\n', static_cast<std::size_t>(megabytes * 1e6)) + 1));
  std::size_t tokens = 0;
  const double encode_s = median_seconds(reps, [&] { tokens = tokenizer.encode(text, false).size(); });
  const double mb_s = static_cast<double>(text.size()) / 1e6 / encode_s;
  if (json) {
    std::printf("%s\n", nlohmann::json{{"tokenizer", tokenizer_path}, {"load_seconds", load_s}, {"text_bytes", text.size()},
                                        {"tokens", tokens}, {"encode_seconds", encode_s}, {"encode_mb_s", mb_s},
                                        {"repetitions", reps}}.dump(2).c_str());
    return;
  }
  std::printf("| tokenizer | load s | text MB | tokens | encode s | MB/s |\n|---|---|---|---|---|---|\n");
  std::printf("| %s | %.3f | %.2f | %zu | %.3f | %.2f |\n", tokenizer_path.c_str(), load_s,
              static_cast<double>(text.size()) / 1e6, tokens, encode_s, mb_s);
}

}  // namespace glrnn::bench
