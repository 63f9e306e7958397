#pragma once
// glrnn-bench prefill: HGRN2 chunk-parallel prefill against the sequential recurrence.

#include <cstdio>  // std::printf

#include "common.hpp"

namespace glrnn::bench {

/// An HGRN2 model of the geometry with random bf16 weights and the given prefill chunk (0: the
/// sequential recurrence).
inline glrnn::Model hgrn2_with_chunk(const std::string& config_path, std::int64_t chunk) {
  glrnn::Hgrn2Config config = glrnn::Hgrn2Config::load(config_path);
  config.prefill_chunk = chunk;
  auto store = std::make_shared<RandomStore>();
  glrnn::TensorReader reader(*store, recipe_named("bf16"));
  glrnn::ModelInfo info;
  info.family = glrnn::Hgrn2Family::kName;
  info.vocab_size = config.vocab_size;
  return glrnn::Model(info, store, glrnn::Hgrn2Family::build(config, reader));
}

/// HGRN2 prefill: the chunk-parallel form against the sequential recurrence, same weights.
inline void bench_prefill(const std::string& config_path, const std::vector<std::int64_t>& lengths, int reps, bool json) {
  // The same random weights twice: RandomStore's values depend only on the tensor's shape.
  const glrnn::Model chunked = hgrn2_with_chunk(config_path, 64);
  const glrnn::Model sequential = hgrn2_with_chunk(config_path, 0);
  // One mixer layer alone, where the two forms differ (the model's time is mostly weight GEMMs).
  const glrnn::Hgrn2Config config = glrnn::Hgrn2Config::load(config_path);
  RandomStore store;
  glrnn::TensorReader reader(store, recipe_named("bf16"));
  const glrnn::Hgrn2Mixer mixer(config.mixer(), glrnn::hgrn2::mixer(reader, config, 1),
                                Eigen::VectorXf::Constant(config.forget_dim(), 0.5f));
  const auto mixer_tokens_per_second = [&](std::int64_t n, bool sequential_form) {
    RandomStore inputs;
    const glrnn::TensorView<const float> x = inputs.vector("x", {n, config.hidden_size});
    glrnn::Hgrn2MixerState state = mixer.make_state();
    glrnn::RowMatrixXf y(n, config.hidden_size);
    const Eigen::Map<const glrnn::RowMatrixXf> input(x.data, n, config.hidden_size);
    glrnn::Scratch meter = glrnn::Scratch::measuring(n);
    mixer.forward(input, 0, state, y, meter);
    glrnn::Scratch scratch(meter.peak(), n);
    return static_cast<double>(n) / median_seconds(reps, [&] {
             state.reset();
             if (sequential_form) mixer.forward_sequential(input, 0, state, y, scratch);
             else mixer.forward(input, 0, state, y, scratch);
           });
  };
  nlohmann::json out = {{"config", config_path}, {"threads", glrnn::num_threads()}, {"results", nlohmann::json::array()}};
  if (!json)
    std::printf("| prompt | model chunked tok/s | model sequential tok/s | speed-up | one mixer chunked tok/s | one mixer "
                "sequential tok/s | speed-up |\n|---|---|---|---|---|---|---|\n");
  for (std::int64_t n : lengths) {
    const std::vector<std::int32_t> prompt = random_tokens(n, chunked.vocab_size(), 3);
    const double c = prefill_tokens_per_second(chunked, prompt, reps);
    const double s = prefill_tokens_per_second(sequential, prompt, reps);
    const double mc = mixer_tokens_per_second(n, false), ms = mixer_tokens_per_second(n, true);
    out["results"].push_back({{"prompt_tokens", n}, {"repetitions", reps}, {"chunked_tok_s", c}, {"sequential_tok_s", s}, {"speedup", c / s},
                              {"mixer_chunked_tok_s", mc}, {"mixer_sequential_tok_s", ms}, {"mixer_speedup", mc / ms}});
    if (!json)
      std::printf("| %lld | %.1f | %.1f | %.2fx | %.0f | %.0f | %.2fx |\n", static_cast<long long>(n), c, s, c / s, mc, ms,
                  mc / ms);
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
}

}  // namespace glrnn::bench
