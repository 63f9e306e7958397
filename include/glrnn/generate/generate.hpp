#pragma once
// The token loop: prefill the prompt, then sample and step until a stop token, the length limit
// or the callback says stop. The last sampled token is not run (nothing would read its logits).

#include <algorithm>   // std::find
#include <chrono>      // std::chrono::steady_clock
#include <cstdint>     // std::int32_t, std::int64_t
#include <functional>  // std::function
#include <memory>      // std::shared_ptr
#include <vector>      // std::vector

#include "glrnn/generate/session.hpp"
#include "glrnn/sampling/sampler.hpp"

namespace glrnn {

struct GenerateOptions {
  std::int64_t max_new_tokens = 128;
  std::vector<std::int32_t> stop_tokens;  // generation ends after emitting one of these
  std::shared_ptr<const Grammar> grammar;  // when set, the output is a sentence of it ...
  std::shared_ptr<const TokenVocabulary> vocabulary;  // ... read with these token bytes
};

struct GenerateStats {
  std::int64_t prompt_tokens = 0;
  std::int64_t generated_tokens = 0;
  std::int64_t decode_steps = 0;  // single-token forwards (generated tokens after the first)
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
  bool stopped_by_token = false;

  double prefill_tokens_per_second() const { return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0.0; }
  double decode_tokens_per_second() const { return decode_seconds > 0 ? decode_steps / decode_seconds : 0.0; }
};

/// Called with each generated token and the logits it was chosen from; return false to stop.
using TokenCallback = std::function<bool(std::int32_t token, const Eigen::VectorXf& logits)>;

/// Generates after `prompt` (run from the session's current position) with a Sequence on the
/// session's state; `sampler` continues from where the sequence left it. With `prompt_logits`,
/// the logits of every prompt position are written there ([P, V]). Throws InputError for an
/// empty prompt or a token outside the vocabulary.
inline GenerateStats generate(Session& session, const std::vector<std::int32_t>& prompt, Sampler& sampler,
                              const GenerateOptions& options, const TokenCallback& on_token,
                              RowMatrixXf* prompt_logits = nullptr) {
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  GLRNN_CHECK(!prompt.empty(), InputError, "the prompt has no tokens");
  GenerateStats stats;
  stats.prompt_tokens = static_cast<std::int64_t>(prompt.size());

  Clock::time_point t0 = Clock::now();
  if (prompt_logits) {
    session.prefill_all(prompt, *prompt_logits);
  } else {
    session.prefill(prompt);
  }
  const Eigen::VectorXf* logits = &session.logits();
  stats.prefill_seconds = seconds_since(t0);
  if (options.max_new_tokens <= 0) return stats;

  SequenceParams params;
  params.max_new_tokens = options.max_new_tokens;
  params.stop_tokens = options.stop_tokens;
  params.grammar = options.grammar;
  Sequence sequence(session.lend_state(), sampler, std::move(params), prompt, nullptr, options.vocabulary);
  t0 = Clock::now();
  try {
    for (;;) {
      const SequenceEvent event = sequence.next(*logits);
      ++stats.generated_tokens;
      stats.stopped_by_token = std::find(options.stop_tokens.begin(), options.stop_tokens.end(), event.token) !=
                               options.stop_tokens.end();
      if (!on_token(event.token, *logits) || sequence.finished()) break;
      logits = &session.step(sequence);
      ++stats.decode_steps;
    }
  } catch (...) {
    session.return_state(std::move(sequence.state()));
    throw;
  }
  session.return_state(std::move(sequence.state()));
  sampler = sequence.sampler();
  stats.decode_seconds = seconds_since(t0);
  return stats;
}

}  // namespace glrnn
