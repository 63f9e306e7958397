#pragma once
// glrnn-bench decode: decode and prefill speed per weight recipe for a real geometry with random
// weights, against the machine's limits measured in the same process with the same threads and
// instruction set (probes.hpp): decode against the streaming read bandwidth (it reads every
// weight once per token), prefill against the float32 FMA peak (it is arithmetic). Shared machines
// are noisy, and their bandwidth moves between minutes: with --rounds, each type's GB/s is also
// given as a fraction of bf16's, measured in interleaved rounds (bf16, int8, ..., bf16, int8,
// ...), the median of the ratios within a round, which neither moves.

#include <algorithm>  // std::find_if, std::none_of
#include <cstdio>  // std::printf
#include <map>     // std::map
#include <memory>  // std::shared_ptr
#include <optional>  // std::optional

#include "common.hpp"
#include "probes.hpp"

namespace glrnn::bench {

struct DecodeResult {
  std::string type;
  double decode_tok_s = 0, bytes_per_token = 0, achieved_gb_s = 0, bits_per_weight = 0;
  ReadBandwidth bandwidth;                        // streaming read, measured right before the steps
  double ratio_to_bf16 = 0;                       // GB/s over bf16's, interleaved rounds (0: not measured)
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
  r.bandwidth = measure_read_bandwidth();  // right before the steps: the same machine state
  reset_peak_rss();  // the probe's buffer is freed: from here on the peak is decode's own
  std::size_t next = 1;
  r.decode_tok_s = 1.0 / median_seconds(steps, [&] { session.step(tokens[next++]); });
  r.achieved_gb_s = r.bytes_per_token * r.decode_tok_s / 1e9;
  // Peak RSS of decode: the weights, one state and the scratch (prefill's larger scratch comes after).
  r.peak_rss_bytes = peak_rss_bytes();
  for (std::int64_t n : prompt_lengths)
    r.prefill_tok_s[n] = prefill_tokens_per_second(model, random_tokens(n, model.vocab_size(), 1), 3);
  return r;
}

/// Each type's decode GB/s over bf16's, from `rounds` interleaved rounds of `steps` steps each: the
/// median over the rounds of the ratio within a round. Holds every type's model at once (and
/// bf16's, when the types leave it out).
inline std::vector<double> ratios_to_bf16(const std::string& config_path, const std::vector<glrnn::WeightRecipe>& types,
                                          int rounds, int steps) {
  struct Run {
    std::shared_ptr<RandomStore> store = std::make_shared<RandomStore>();
    std::optional<glrnn::Model> model;
    std::optional<glrnn::Session> session;
    double gb_s = 0;  // this round's
  };
  std::vector<glrnn::WeightRecipe> order = types;
  const auto is_bf16 = [](const glrnn::WeightRecipe& r) { return r.name == "bf16"; };
  if (std::none_of(order.begin(), order.end(), is_bf16)) order.insert(order.begin(), recipe_named("bf16"));
  const std::size_t added = order.size() - types.size();  // order[added + t] is types[t]
  const std::size_t bf16 = static_cast<std::size_t>(std::find_if(order.begin(), order.end(), is_bf16) - order.begin());
  std::vector<Run> runs(order.size());
  const std::vector<std::int32_t> tokens = random_tokens(std::int64_t{steps} * rounds + 2, 256, 3);
  for (std::size_t t = 0; t < order.size(); ++t) {
    runs[t].model.emplace(build_random_model(config_path, order[t], runs[t].store));
    runs[t].session.emplace(*runs[t].model);
    runs[t].session->step(tokens[0]);  // first touch of every page
  }
  std::vector<std::vector<double>> ratios(order.size());
  for (int round = 0; round < rounds; ++round) {
    for (Run& run : runs) {
      std::size_t next = 1 + static_cast<std::size_t>(round * steps);
      const double step_seconds = median_seconds(steps, [&] { run.session->step(tokens[next++]); });
      run.gb_s = static_cast<double>(run.store->total_bytes()) / step_seconds / 1e9;
    }
    for (std::size_t t = 0; t < order.size(); ++t) ratios[t].push_back(runs[t].gb_s / runs[bf16].gb_s);
  }
  std::vector<double> medians;  // in the order of `types`
  for (std::size_t t = 0; t < types.size(); ++t) medians.push_back(median(ratios[added + t]));
  return medians;
}

inline void bench_decode(const std::string& config_path, const std::vector<glrnn::WeightRecipe>& types, int steps,
                         const std::vector<std::int64_t>& prompt_lengths, int rounds, bool json) {
  const int threads = glrnn::num_threads();
  const std::string kernels(glrnn::kernel_path_name(glrnn::kernel_path()));
  const double fma_gflops = measure_fma_gflops(), int8_gops = measure_int8_gops();
  std::vector<DecodeResult> results;
  for (const glrnn::WeightRecipe& type : types) results.push_back(bench_type(config_path, type, steps, prompt_lengths));
  if (rounds > 0) {
    const std::vector<double> ratios = ratios_to_bf16(config_path, types, rounds, steps);
    for (std::size_t t = 0; t < results.size(); ++t) results[t].ratio_to_bf16 = ratios[t];
  }
  const std::int64_t main_prompt = prompt_lengths.empty() ? 0 : prompt_lengths.front();
  if (json) {
    nlohmann::json out = {{"config", config_path},          {"threads", threads},
                          {"kernels", kernels},             {"measured_fma_gflops", fma_gflops},
                          {"measured_int8_gops", int8_gops}, {"results", nlohmann::json::array()}};
    for (const DecodeResult& r : results) {
      nlohmann::json item = {{"type", r.type}, {"decode_tok_s", r.decode_tok_s}, {"bytes_per_token", r.bytes_per_token},
                             {"bits_per_weight", r.bits_per_weight}, {"achieved_gb_s", r.achieved_gb_s},
                             {"measured_bandwidth_gb_s", r.bandwidth.gb_s},
                             {"measured_bandwidth_streams_per_thread", r.bandwidth.streams},
                             {"measured_bandwidth_prefetch", r.bandwidth.prefetch},
                             {"ratio_to_bandwidth", r.achieved_gb_s / r.bandwidth.gb_s},
                             {"prefill_flops_per_token", r.flops_per_token}, {"peak_rss_bytes", r.peak_rss_bytes}};
      if (rounds > 0) item["gb_s_ratio_to_bf16_interleaved"] = r.ratio_to_bf16;
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
  std::printf("| type | bits/weight | decode tok/s | bytes/token | GB/s | streaming read GB/s (streams, prefetch) | ratio |%s",
              rounds > 0 ? " GB/s over bf16's (interleaved) |" : "");
  for (std::int64_t n : prompt_lengths) std::printf(" prefill tok/s (%lld) |", static_cast<long long>(n));
  std::printf(" prefill GFLOP/s (%lld) | ratio to FMA peak | peak RSS |\n|---|---|---|---|---|---|---|%s",
              static_cast<long long>(main_prompt), rounds > 0 ? "---|" : "");
  for (std::size_t i = 0; i < prompt_lengths.size(); ++i) std::printf("---|");
  std::printf("---|---|---|\n");
  for (const DecodeResult& r : results) {
    std::printf("| %s | %.2f | %.2f | %.3g | %.1f | %.1f (%d, %s) | %.2f |", r.type.c_str(), r.bits_per_weight, r.decode_tok_s,
                r.bytes_per_token, r.achieved_gb_s, r.bandwidth.gb_s, r.bandwidth.streams, r.bandwidth.prefetch ? "on" : "off",
                r.achieved_gb_s / r.bandwidth.gb_s);
    if (rounds > 0) std::printf(" %.2f |", r.ratio_to_bf16);
    for (std::int64_t n : prompt_lengths) std::printf(" %.1f |", r.prefill_tok_s.count(n) ? r.prefill_tok_s.at(n) : 0.0);
    std::printf(" %.0f | %.2f | %.2f GB |\n", r.prefill_gflops(main_prompt), r.prefill_gflops(main_prompt) / fma_gflops,
                static_cast<double>(r.peak_rss_bytes) / 1e9);
  }
}

}  // namespace glrnn::bench
