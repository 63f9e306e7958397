#pragma once
// glrnn-bench prefill: the chunk-parallel prefill of a linear-attention or delta-rule family
// (HGRN2, GLA, RetNet, DeltaNet, Gated DeltaNet) against its token-by-token recurrence (same
// weights, the projections still batched), against the model stepped one token per forward (as a
// program that feeds a prompt like generated tokens would), and against the float32 FMA peak
// measured in the same process.

#include <algorithm>  // std::min, std::max
#include <cstdio>     // std::printf
#include <string>     // std::string
#include <vector>     // std::vector

#include "common.hpp"
#include "probes.hpp"

namespace glrnn::bench {

/// Tokens per second of a prompt fed one token per forward, each step reading every weight once.
/// Timed over `steps` tokens from the prompt's middle, where a hybrid's attention costs what it
/// costs on average; no logits are computed, as in a prefill.
inline double stepped_tokens_per_second(const glrnn::Model& model, const std::vector<std::int32_t>& prompt,
                                        std::int64_t steps = 32) {
  const std::int64_t n = static_cast<std::int64_t>(prompt.size()), start = std::max<std::int64_t>(0, (n - steps) / 2);
  steps = std::min(steps, n - start);
  glrnn::State state = model.make_state();
  glrnn::Scratch scratch = model.make_scratch(512);
  glrnn::RowMatrixXf no_logits(1, model.vocab_size());
  model.forward(prompt.data(), start, state, scratch, glrnn::Logits::None, no_logits);
  const Clock::time_point t0 = Clock::now();
  for (std::int64_t t = start; t < start + steps; ++t)
    model.forward(prompt.data() + t, 1, state, scratch, glrnn::Logits::None, no_logits);
  return static_cast<double>(steps) / seconds_since(t0);
}

/// Tokens per second of one layer's recurrence alone over n positions of random inputs shaped as
/// the family's, in the mixer's default chunks or (chunked false) token by token; 0 for a family
/// without a chunked form. The model-level figures hide the difference: the projections and MLPs
/// are most of the work. `precision`: the delta rule's chunk products (the bf16-activation mode's
/// is Bf16).
inline double recurrence_tokens_per_second(const std::string& config_path, std::int64_t n, bool chunked, int reps,
                                           glrnn::kernels::Precision precision = glrnn::kernels::Precision::Float32) {
  const glrnn::JsonConfig json = glrnn::JsonConfig::load(config_path);
  const std::string type = json.string("model_type");
  glrnn::Rng rng(11);
  const auto random_rows = [&](std::int64_t rows, std::int64_t cols, float lo, float hi) {
    glrnn::RowMatrixXf m(rows, cols);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = lo + (hi - lo) * static_cast<float>(rng.uniform());
    return m;
  };
  const auto random = [&](std::int64_t cols, float lo, float hi) { return random_rows(n, cols, lo, hi); };
  // One untimed run first: the output's pages are touched there, not in the timed ones.
  const auto time = [&](auto&& run) {
    run();
    return static_cast<double>(n) / median_seconds(reps, run);
  };
  if (type == "delta_net" || type == "gated_deltanet") {
    const glrnn::DeltaNetMixerConfig mixer = glrnn::DeltaNetConfig::from_json(json, {}, type == "gated_deltanet").mixer();
    glrnn::DeltaRuleConfig c = mixer.rule();
    c.precision = precision;
    const glrnn::DeltaRule rule(c);
    const std::int64_t chunk = chunked ? mixer.chunk_size : 0;
    // q, k, v and o head by head, as the mixer lays them out: [heads · n, width].
    glrnn::RowMatrixXf q = random_rows(c.heads * n, c.key_dim, -1, 1), k = random_rows(c.heads * n, c.key_dim, -1, 1),
                       v = random_rows(c.value_heads * n, c.value_dim, -1, 1), beta = random(c.value_heads, 0, 1),
                       g = random(c.value_heads, -0.1f, 0), o(c.value_heads * n, c.value_dim);
    k.rowwise().normalize();  // normalised keys, as the mixer's: a bounded state
    const auto heads = [n](glrnn::RowMatrixXf& m, std::int64_t count) {
      return glrnn::HeadRows{m.data(), n, count, m.cols(), n * m.cols()};
    };
    const glrnn::HeadRows Q = heads(q, c.heads), K = heads(k, c.heads), V = heads(v, c.value_heads), O = heads(o, c.value_heads);
    glrnn::MatMap B(beta.data(), n, beta.cols()), G(g.data(), n, g.cols());
    glrnn::RowMatrixXf state(c.state_rows(), c.value_dim);
    glrnn::Scratch meter = glrnn::Scratch::measuring(n);
    rule.forward(Q, K, V, B, G, state, O, meter, chunk);
    glrnn::Scratch scratch(meter.peak(), n);
    return time([&] {
      state.setZero();
      rule.forward(Q, K, V, B, G, state, O, scratch, chunk);
    });
  }
  glrnn::GlaRecurrenceConfig c;
  std::int64_t chunk = 0;
  if (type == "hgrn2") {
    const glrnn::Hgrn2MixerConfig mixer = glrnn::Hgrn2Config::from_json(json).mixer();
    c = mixer.recurrence();
    chunk = mixer.chunk_size;
  } else if (type == "gla" || type == "retnet") {
    const glrnn::GlaMixerConfig mixer =
        glrnn::GlaConfig::from_json(json, {}, type == "gla" ? glrnn::GlaDecay::LowRankGate : glrnn::GlaDecay::Retention).mixer();
    c = mixer.recurrence();
    chunk = mixer.chunk_size;
  } else {
    return 0.0;
  }
  if (!chunked) chunk = 0;
  const glrnn::GlaRecurrence recurrence(c);
  glrnn::RowMatrixXf q = random(c.heads * c.key_dim, -1, 1), g = random(c.state_heads * c.key_dim, -0.1f, 0),
                     k = random(c.kv_heads * c.key_dim, -1, 1), v = random(c.kv_heads * c.value_dim, -1, 1),
                     o(n, c.heads * c.value_dim);
  glrnn::MatMap Q(q.data(), n, q.cols()), G(g.data(), n, g.cols()), K(k.data(), n, k.cols()), V(v.data(), n, v.cols()),
      O(o.data(), n, o.cols());
  glrnn::RowMatrixXf state(c.state_rows(), c.value_dim);
  glrnn::Scratch meter = glrnn::Scratch::measuring(n);
  recurrence.forward(Q, G, K, V, state, O, meter, chunk);
  glrnn::Scratch scratch(meter.peak(), n);
  return time([&] {
    state.setZero();
    recurrence.forward(Q, G, K, V, state, O, scratch, chunk);
  });
}

inline void bench_prefill(const std::string& config_path, const std::vector<std::string>& types,
                          const std::vector<std::int64_t>& lengths, int reps, bool json) {
  const double fma_peak = measure_fma_gflops();
  nlohmann::json out = {{"config", config_path}, {"threads", glrnn::num_threads()},
                        {"kernels", std::string(glrnn::kernel_path_name(glrnn::kernel_path()))},
                        {"fma_peak_gflops", fma_peak}, {"results", nlohmann::json::array()}};
  if (!json) {
    std::printf("%s, %d threads, kernels %s; float32 FMA peak measured in this process: %.0f GFLOP/s\n\n",
                config_path.c_str(), glrnn::num_threads(), std::string(glrnn::kernel_path_name(glrnn::kernel_path())).c_str(),
                fma_peak);
    std::printf("| type | prompt | chunked tok/s | GFLOP/s (ratio to FMA peak) | token-by-token recurrence tok/s | speed-up "
                "| one token per forward tok/s | speed-up |\n|---|---|---|---|---|---|---|---|\n");
  }
  // The delta rule's chunk products in bf16 (the bf16-activation mode), where this path rounds them.
  const std::string type = glrnn::JsonConfig::load(config_path).string("model_type");
  const bool bf16_rows = (type == "delta_net" || type == "gated_deltanet") &&
                         glrnn::kernels::rounds_bf16_products(glrnn::kernel_path());
  std::vector<nlohmann::json> recurrence_rows;
  for (std::int64_t n : lengths) {
    const double c = recurrence_tokens_per_second(config_path, n, /*chunked=*/true, reps);
    const double s = recurrence_tokens_per_second(config_path, n, /*chunked=*/false, reps);
    if (c <= 0) continue;
    nlohmann::json row = {{"prompt_tokens", n}, {"chunked_tok_s", c}, {"sequential_tok_s", s}, {"speedup", c / s}};
    if (bf16_rows) {
      const double b = recurrence_tokens_per_second(config_path, n, true, reps, glrnn::kernels::Precision::Bf16);
      row["chunked_bf16_tok_s"] = b;
      row["bf16_speedup"] = b / s;
    }
    recurrence_rows.push_back(row);
  }
  out["recurrence_alone"] = recurrence_rows;
  for (const std::string& type : types) {
    // The same random weights twice: RandomStore's values depend only on the tensor's shape.
    glrnn::LoadOptions chunked_options, sequential_options;
    sequential_options.recurrence_chunk = 0;
    auto chunked_store = std::make_shared<RandomStore>(), sequential_store = std::make_shared<RandomStore>();
    const glrnn::Model chunked = build_random_model(config_path, recipe_named(type), chunked_store, chunked_options);
    const glrnn::Model sequential = build_random_model(config_path, recipe_named(type), sequential_store, sequential_options);
    // Of the prefill's matrix products (no head), as glrnn-bench decode counts them.
    const double flops_per_token = 2.0 * static_cast<double>(chunked_store->multiplied_elements(chunked.info()));
    for (std::int64_t n : lengths) {
      const std::vector<std::int32_t> prompt = random_tokens(n, chunked.vocab_size(), 3);
      const double c = prefill_tokens_per_second(chunked, prompt, reps);
      const double s = prefill_tokens_per_second(sequential, prompt, reps);
      const double stepped = stepped_tokens_per_second(chunked, prompt);
      const double gflops = c * flops_per_token / 1e9;
      out["results"].push_back({{"type", type}, {"prompt_tokens", n}, {"chunked_tok_s", c}, {"sequential_tok_s", s},
                                {"speedup", c / s}, {"stepped_tok_s", stepped}, {"speedup_over_stepped", c / stepped},
                                {"chunked_gflops", gflops}, {"ratio_to_fma_peak", gflops / fma_peak}});
      if (!json)
        std::printf("| %s | %lld | %.1f | %.0f (%.2f) | %.1f | %.2fx | %.1f | %.1fx |\n", type.c_str(),
                    static_cast<long long>(n), c, gflops, gflops / fma_peak, s, c / s, stepped, c / stepped);
    }
  }
  if (json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else if (!recurrence_rows.empty()) {
    std::printf("\nOne layer's recurrence alone (random inputs of its shapes, float32%s):\n\n"
                "| prompt | chunked tok/s | token-by-token tok/s | speed-up |%s\n|---|---|---|---|%s\n",
                bf16_rows ? "; and the chunk's products in bf16, as in the bf16-activation mode" : "",
                bf16_rows ? " chunked, bf16 products, tok/s | speed-up |" : "", bf16_rows ? "---|---|" : "");
    for (const nlohmann::json& r : recurrence_rows) {
      std::printf("| %lld | %.0f | %.0f | %.2fx |", static_cast<long long>(r["prompt_tokens"].get<std::int64_t>()),
                  r["chunked_tok_s"].get<double>(), r["sequential_tok_s"].get<double>(), r["speedup"].get<double>());
      if (bf16_rows) std::printf(" %.0f | %.2fx |", r["chunked_bf16_tok_s"].get<double>(), r["bf16_speedup"].get<double>());
      std::printf("\n");
    }
  }
}

}  // namespace glrnn::bench
