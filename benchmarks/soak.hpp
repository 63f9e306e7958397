#pragma once
// glrnn-bench soak: one state generating a million tokens with a real model. Reports tok/s and
// RSS every interval and checks the two promises of a fixed-state model in a long-running program:
// memory stays flat and the numbers stay finite.

#include <cmath>    // std::isfinite
#include <cstdio>   // std::printf
#include <string>   // std::string

#include "common.hpp"

namespace glrnn::bench {

/// Returns false when the logits went non-finite or RSS grew by more than 1% after the first
/// interval (the first one includes start-up effects such as page faults of the weights).
inline bool bench_soak(const std::string& model_path, std::int64_t tokens, std::int64_t interval, bool json) {
  const glrnn::Model model = glrnn::load_model(model_path);
  glrnn::Session session(model);
  glrnn::SamplerParams params;
  params.temperature = 1.0f;  // sample the whole distribution: the run wanders like real use
  params.top_k = 0;
  params.top_p = 1.0f;
  params.seed = 42;
  glrnn::Sampler sampler(params, model.vocab_size());
  const std::vector<std::int32_t> no_history;

  nlohmann::json out = {{"model", model_path}, {"tokens", tokens}, {"threads", glrnn::num_threads()},
                        {"state_bytes", model.state_bytes()}, {"reports", nlohmann::json::array()}};
  if (!json) std::printf("| tokens | position | tok/s (interval) | RSS MB | non-finite logits |\n|---|---|---|---|---|\n");
  const Eigen::VectorXf* logits = &session.prefill({model.info().bos_token_id});
  std::int64_t non_finite = 0;
  std::size_t first_rss = 0, max_rss = 0;
  Clock::time_point t0 = Clock::now();
  for (std::int64_t done = 1; done <= tokens; ++done) {
    const std::int32_t token = sampler.sample(*logits, no_history);
    logits = &session.step(token);
    if (!logits->allFinite()) ++non_finite;
    if (done % interval != 0 && done != tokens) continue;
    const double tok_s = static_cast<double>(done % interval ? done % interval : interval) / seconds_since(t0);
    const std::size_t rss = current_rss_bytes();
    if (first_rss == 0) first_rss = rss;
    max_rss = std::max(max_rss, rss);
    out["reports"].push_back({{"tokens", done}, {"position", session.position()}, {"tok_s", tok_s}, {"rss_bytes", rss},
                              {"non_finite_steps", non_finite}});
    if (!json)
      std::printf("| %lld | %lld | %.0f | %.2f | %lld |\n", static_cast<long long>(done),
                  static_cast<long long>(session.position()), tok_s, static_cast<double>(rss) / 1e6,
                  static_cast<long long>(non_finite));
    std::fflush(stdout);
    t0 = Clock::now();
  }
  const double growth = static_cast<double>(max_rss) / static_cast<double>(first_rss) - 1.0;
  const bool ok = non_finite == 0 && growth <= 0.01;
  out["rss_growth_after_first_report"] = growth;
  out["passed"] = ok;
  if (json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("\nRSS growth after the first report: %.3f%% (limit 1%%); non-finite steps: %lld -> %s\n", growth * 100,
                static_cast<long long>(non_finite), ok ? "PASS" : "FAIL");
  }
  return ok;
}

}  // namespace glrnn::bench
