#pragma once
// glrnn-bench batch: aggregate decode tok/s of B sequences stepped together.

#include <cstdio>  // std::printf

#include "common.hpp"

namespace glrnn::bench {

/// Batched decode: B sequences (at a short prompt's position) stepped together; the median step.
inline void bench_batch(const std::string& config_path, const glrnn::WeightRecipe& recipe,
                        const std::vector<std::int64_t>& sizes, int steps, bool json) {
  const auto [model, bytes] = random_model(config_path, recipe);
  const std::int64_t largest = *std::max_element(sizes.begin(), sizes.end());
  glrnn::BatchDecoder decoder(model, largest);
  std::vector<glrnn::State> states;
  glrnn::Session start(model);
  start.prefill(random_tokens(8, model.vocab_size(), 4));
  for (std::int64_t b = 0; b < largest; ++b) states.push_back(start.state().clone());
  nlohmann::json out = {{"config", config_path}, {"threads", glrnn::num_threads()}, {"weights", recipe.name},
                        {"bytes_per_step", bytes}, {"state_bytes_per_sequence", model.state_bytes()},
                        {"results", nlohmann::json::array()}};
  if (!json)
    std::printf("| batch | step ms | aggregate tok/s | tok/s per sequence | speed-up over B=1 |\n|---|---|---|---|---|\n");
  double single = 0.0;
  for (std::int64_t batch : sizes) {
    std::vector<glrnn::State*> members;
    for (std::int64_t b = 0; b < batch; ++b) members.push_back(&states[static_cast<std::size_t>(b)]);
    const std::vector<std::int32_t> tokens = random_tokens(batch, model.vocab_size(), 5);
    decoder.step(tokens, members);  // warm-up
    const double seconds = median_seconds(steps, [&] { decoder.step(tokens, members); });
    const double aggregate = static_cast<double>(batch) / seconds;
    if (batch == sizes.front()) single = aggregate / static_cast<double>(batch);
    out["results"].push_back({{"batch", batch}, {"step_seconds", seconds}, {"aggregate_tok_s", aggregate}});
    if (!json)
      std::printf("| %lld | %.1f | %.2f | %.2f | %.2fx |\n", static_cast<long long>(batch), seconds * 1e3, aggregate,
                  aggregate / static_cast<double>(batch), aggregate / single);
  }
  if (json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("\nmemory per sequence: %zu bytes of state%s, weights %.2f GB shared\n", model.state_bytes(),
                model.info().state_bytes_per_position
                    ? (" + " + std::to_string(model.info().state_bytes_per_position) + " per position").c_str()
                    : " (fixed)",
                static_cast<double>(bytes) / 1e9);
  }
}

}  // namespace glrnn::bench
