#pragma once
// glrnn-bench decode: decode and prefill speed per weight type for a real geometry with random
// weights, against the machine's read bandwidth measured in the same process (shared machines
// are noisy; the ratio is what to compare).

#include <cstdio>  // std::printf
#include <map>     // std::map

#include "common.hpp"

namespace glrnn::bench {

struct DecodeResult {
  std::string type;
  double decode_tok_s = 0, bytes_per_token = 0, achieved_gb_s = 0;
  double bandwidth_gb_s = 0;       // plain streaming sum, one stream per thread
  double best_bandwidth_gb_s = 0;  // the same with 4 streams per thread (more on some machines)
  std::map<std::int64_t, double> prefill_tok_s;  // by prompt length
  std::size_t peak_rss_bytes = 0;
};

inline DecodeResult bench_type(const std::string& config_path, const glrnn::WeightRecipe& recipe, int steps,
                               const std::vector<std::int64_t>& prompt_lengths) {
  auto [model, bytes] = random_model(config_path, recipe);
  DecodeResult r;
  r.type = recipe.name;
  r.bytes_per_token = static_cast<double>(bytes);

  glrnn::Session session(model);
  const std::vector<std::int32_t> tokens = random_tokens(steps + 2, model.vocab_size(), 2);
  session.step(tokens[0]);  // warm-up: first touch of every page
  // Right before the steps: the same machine state.
  r.bandwidth_gb_s = measure_read_bandwidth(glrnn::num_threads(), 1);
  r.best_bandwidth_gb_s = measure_read_bandwidth(glrnn::num_threads(), 4);
  reset_peak_rss();  // the probe's buffer is freed: from here on the peak is decode's own
  std::vector<double> step_seconds;
  for (int i = 1; i <= steps; ++i) {
    const Clock::time_point t0 = Clock::now();
    session.step(tokens[static_cast<std::size_t>(i)]);
    step_seconds.push_back(seconds_since(t0));
  }
  r.decode_tok_s = 1.0 / median(step_seconds);
  r.achieved_gb_s = r.bytes_per_token * r.decode_tok_s / 1e9;
  // Peak RSS of decode: the weights, one state and the scratch (prefill's larger scratch comes after).
  r.peak_rss_bytes = peak_rss_bytes();
  for (std::int64_t n : prompt_lengths)
    r.prefill_tok_s[n] = prefill_tokens_per_second(model, random_tokens(n, model.vocab_size(), 1));
  return r;
}

inline void bench_decode(const std::string& config_path, const std::vector<glrnn::WeightRecipe>& types, int steps,
                         const std::vector<std::int64_t>& prompt_lengths, bool json) {
  const int threads = glrnn::num_threads();
  const double single_thread_gb_s = measure_read_bandwidth(1, 1);
  std::vector<DecodeResult> results;
  for (const glrnn::WeightRecipe& type : types) results.push_back(bench_type(config_path, type, steps, prompt_lengths));
  const auto prefill = [](const DecodeResult& r, std::int64_t n) {
    const auto it = r.prefill_tok_s.find(n);
    return it == r.prefill_tok_s.end() ? 0.0 : it->second;
  };
  if (json) {
    nlohmann::json out = {{"config", config_path}, {"threads", threads},
                          {"single_thread_bandwidth_gb_s", single_thread_gb_s}, {"results", nlohmann::json::array()}};
    for (const DecodeResult& r : results) {
      nlohmann::json item = {{"type", r.type}, {"decode_tok_s", r.decode_tok_s}, {"bytes_per_token", r.bytes_per_token},
                             {"achieved_gb_s", r.achieved_gb_s}, {"measured_bandwidth_gb_s", r.bandwidth_gb_s},
                             {"ratio_to_bandwidth", r.achieved_gb_s / r.bandwidth_gb_s},
                             {"best_bandwidth_gb_s", r.best_bandwidth_gb_s},
                             {"ratio_to_best_bandwidth", r.achieved_gb_s / r.best_bandwidth_gb_s},
                             {"peak_rss_bytes", r.peak_rss_bytes}};
      for (const auto& [n, tok_s] : r.prefill_tok_s) item["prefill_tok_s_" + std::to_string(n)] = tok_s;
      out["results"].push_back(item);
    }
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("%s, %d threads; read bandwidth with 1 thread %.1f GB/s\n\n", config_path.c_str(), threads, single_thread_gb_s);
  std::printf("| type | decode tok/s | bytes/token | GB/s | streaming sum GB/s (%d threads) | ratio | 4-stream sum GB/s | ratio |",
              threads);
  for (std::int64_t n : prompt_lengths) std::printf(" prefill tok/s (%lld) |", static_cast<long long>(n));
  std::printf(" peak RSS |\n|---|---|---|---|---|---|---|---|");
  for (std::size_t i = 0; i < prompt_lengths.size(); ++i) std::printf("---|");
  std::printf("---|\n");
  for (const DecodeResult& r : results) {
    std::printf("| %s | %.2f | %.3g | %.1f | %.1f | %.2f | %.1f | %.2f |", r.type.c_str(), r.decode_tok_s, r.bytes_per_token,
                r.achieved_gb_s, r.bandwidth_gb_s, r.achieved_gb_s / r.bandwidth_gb_s, r.best_bandwidth_gb_s,
                r.achieved_gb_s / r.best_bandwidth_gb_s);
    for (std::int64_t n : prompt_lengths) std::printf(" %.1f |", prefill(r, n));
    std::printf(" %.2f GB |\n", static_cast<double>(r.peak_rss_bytes) / 1e9);
  }
}

}  // namespace glrnn::bench
