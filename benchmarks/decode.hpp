#pragma once
// glrnn-bench decode: decode and prefill speed per weight recipe for a real geometry with random
// weights, against the machine's limits measured in the same process with the same threads and
// instruction set (probes.hpp): decode against the streaming read bandwidth (it reads every
// weight once per token), prefill against the float32 FMA peak (it is arithmetic). Shared machines
// are noisy; the ratios are what to compare.

#include <cstdio>  // std::printf
#include <map>     // std::map

#include "common.hpp"
#include "probes.hpp"

namespace glrnn::bench {

struct DecodeResult {
  std::string type;
  double decode_tok_s = 0, bytes_per_token = 0, achieved_gb_s = 0, bits_per_weight = 0;
  double bandwidth_gb_s = 0;                     // streaming read, measured right before the steps
  double flops_per_token = 0;                    // of the prefill's matrix products (no head)
  std::map<std::int64_t, double> prefill_tok_s;  // by prompt length
  std::size_t peak_rss_bytes = 0;
  double prefill_gflops(std::int64_t n) const {
    const auto it = prefill_tok_s.find(n);
    return it == prefill_tok_s.end() ? 0.0 : it->second * flops_per_token / 1e9;
  }
};

inline DecodeResult bench_type(const std::string& config_path, const glrnn::WeightRecipe& recipe, int steps,
                               const std::vector<std::int64_t>& prompt_lengths) {
  auto store = std::make_shared<RandomStore>();
  glrnn::Model model = build_random_model(config_path, recipe, store);
  DecodeResult r;
  r.type = recipe.name;
  r.bytes_per_token = static_cast<double>(store->total_bytes());
  r.bits_per_weight = store->bits_per_weight();
  r.flops_per_token = 2.0 * static_cast<double>(store->multiplied_elements(model.info()));

  glrnn::Session session(model);
  const std::vector<std::int32_t> tokens = random_tokens(steps + 2, model.vocab_size(), 2);
  session.step(tokens[0]);  // warm-up: first touch of every page
  r.bandwidth_gb_s = measure_read_bandwidth();  // right before the steps: the same machine state
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
    r.prefill_tok_s[n] = prefill_tokens_per_second(model, random_tokens(n, model.vocab_size(), 1), 3);
  return r;
}

inline void bench_decode(const std::string& config_path, const std::vector<glrnn::WeightRecipe>& types, int steps,
                         const std::vector<std::int64_t>& prompt_lengths, bool json) {
  const int threads = glrnn::num_threads();
  const std::string kernels(glrnn::kernel_path_name(glrnn::kernel_path()));
  const double fma_gflops = measure_fma_gflops(), int8_gops = measure_int8_gops();
  std::vector<DecodeResult> results;
  for (const glrnn::WeightRecipe& type : types) results.push_back(bench_type(config_path, type, steps, prompt_lengths));
  const std::int64_t main_prompt = prompt_lengths.empty() ? 0 : prompt_lengths.front();
  if (json) {
    nlohmann::json out = {{"config", config_path},          {"threads", threads},
                          {"kernels", kernels},             {"measured_fma_gflops", fma_gflops},
                          {"measured_int8_gops", int8_gops}, {"results", nlohmann::json::array()}};
    for (const DecodeResult& r : results) {
      nlohmann::json item = {{"type", r.type}, {"decode_tok_s", r.decode_tok_s}, {"bytes_per_token", r.bytes_per_token},
                             {"bits_per_weight", r.bits_per_weight}, {"achieved_gb_s", r.achieved_gb_s},
                             {"measured_bandwidth_gb_s", r.bandwidth_gb_s},
                             {"ratio_to_bandwidth", r.achieved_gb_s / r.bandwidth_gb_s},
                             {"prefill_flops_per_token", r.flops_per_token}, {"peak_rss_bytes", r.peak_rss_bytes}};
      for (const auto& [n, tok_s] : r.prefill_tok_s) {
        item["prefill_tok_s_" + std::to_string(n)] = tok_s;
        item["prefill_gflops_" + std::to_string(n)] = r.prefill_gflops(n);
        item["prefill_ratio_to_fma_peak_" + std::to_string(n)] = r.prefill_gflops(n) / fma_gflops;
      }
      out["results"].push_back(item);
    }
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("%s, %d threads, kernels %s; measured in this process: float32 FMA peak %.0f GFLOP/s, int8 dot peak "
              "%.0f GOP/s\n\n",
              config_path.c_str(), threads, kernels.c_str(), fma_gflops, int8_gops);
  std::printf("| type | bits/weight | decode tok/s | bytes/token | GB/s | streaming read GB/s | ratio |");
  for (std::int64_t n : prompt_lengths) std::printf(" prefill tok/s (%lld) |", static_cast<long long>(n));
  std::printf(" prefill GFLOP/s (%lld) | ratio to FMA peak | peak RSS |\n|---|---|---|---|---|---|---|",
              static_cast<long long>(main_prompt));
  for (std::size_t i = 0; i < prompt_lengths.size(); ++i) std::printf("---|");
  std::printf("---|---|---|\n");
  for (const DecodeResult& r : results) {
    std::printf("| %s | %.2f | %.2f | %.3g | %.1f | %.1f | %.2f |", r.type.c_str(), r.bits_per_weight, r.decode_tok_s,
                r.bytes_per_token, r.achieved_gb_s, r.bandwidth_gb_s, r.achieved_gb_s / r.bandwidth_gb_s);
    for (std::int64_t n : prompt_lengths) std::printf(" %.1f |", r.prefill_tok_s.count(n) ? r.prefill_tok_s.at(n) : 0.0);
    std::printf(" %.0f | %.2f | %.2f GB |\n", r.prefill_gflops(main_prompt), r.prefill_gflops(main_prompt) / fma_gflops,
                static_cast<double>(r.peak_rss_bytes) / 1e9);
  }
}

}  // namespace glrnn::bench
