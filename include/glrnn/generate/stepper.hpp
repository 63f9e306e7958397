#pragma once
// Stepper: what runs sequences forward, shared by every loop that holds several (parallel
// continuations, the server's scheduler): the model, one scratch for prompt chunks, and the batch
// decoder that runs the pending token of every decoding Sequence in one step, each weight read
// once for all of them. Loops decide what to run; the Sequence decides what each token is.

#include <chrono>   // std::chrono::steady_clock
#include <cstdint>  // std::int32_t, std::int64_t
#include <string>   // std::to_string
#include <vector>   // std::vector

#include "glrnn/generate/batch.hpp"
#include "glrnn/generate/generate.hpp"
#include "glrnn/generate/session.hpp"
#include "glrnn/generate/sequence.hpp"
#include "glrnn/models/model.hpp"

namespace glrnn {

class Stepper {
 public:
  /// max_batch: sequences one decode step takes; max_chunk: prompt tokens one prefill call takes.
  Stepper(Model model, std::int64_t max_batch, std::int64_t max_chunk)
      : decoder_(std::move(model), max_batch), scratch_(decoder_.model().make_scratch(max_chunk)) {
    tokens_.reserve(static_cast<std::size_t>(max_batch));
    states_.reserve(static_cast<std::size_t>(max_batch));
  }

  const Model& model() const { return decoder_.model(); }
  std::int64_t max_batch() const { return decoder_.max_batch(); }
  std::int64_t max_chunk() const { return scratch_.max_tokens(); }

  /// Runs n prompt tokens on `state` in one forward pass (n <= max_chunk); with Logits::Last the
  /// last position's logits go to `logits` ([V]).
  void prefill(const std::int32_t* tokens, std::int64_t n, State& state, Logits mode, Eigen::VectorXf& logits) {
    GLRNN_CHECK(n <= max_chunk(), InputError,
                "a prefill chunk of " + std::to_string(n) + " tokens; this stepper takes " + std::to_string(max_chunk()));
    if (n == 0) return;
    decoder_.model().forward(tokens, n, state, scratch_, mode, MatMap(logits.data(), 1, logits.size()));
  }

  /// Runs the pending token of every sequence in one batched step; row r of the result holds
  /// sequences[r]'s logits (rows past the batch are stale). Throws InputError for a sequence
  /// without a pending token.
  const RowMatrixXf& decode(const std::vector<Sequence*>& sequences) {
    tokens_.clear();
    states_.clear();
    for (Sequence* s : sequences) {
      GLRNN_CHECK(s->pending().has_value(), InputError, "a sequence in the batch has no pending token");
      tokens_.push_back(*s->pending());
      states_.push_back(&s->state());
    }
    return decoder_.step(tokens_, states_);
  }

 private:
  BatchDecoder decoder_;
  Scratch scratch_;
  std::vector<std::int32_t> tokens_;
  std::vector<State*> states_;
};

/// Continues one prompt in samplers.size() ways: the prompt is prefilled once, its state forked
/// for every sequence, and the sequences step together, each with its own sampler (e.g. its own
/// seed); a sequence leaves the batch at a stop token. Each sampler continues where its sequence
/// left it. Returns the tokens of each continuation.
inline std::vector<std::vector<std::int32_t>> generate_parallel(const Model& model, const std::vector<std::int32_t>& prompt,
                                                                 std::vector<Sampler>& samplers,
                                                                 const GenerateOptions& options, GenerateStats& stats) {
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  const std::size_t n = samplers.size();
  GLRNN_CHECK(n > 0 && !prompt.empty(), InputError, "generate_parallel needs a prompt and at least one sampler");
  stats = {};
  stats.prompt_tokens = static_cast<std::int64_t>(prompt.size());
  Clock::time_point t0 = Clock::now();
  Session base(model);
  base.prefill(prompt);
  stats.prefill_seconds = seconds_since(t0);
  if (options.max_new_tokens <= 0) return std::vector<std::vector<std::int32_t>>(n);

  SequenceParams params;
  params.max_new_tokens = options.max_new_tokens;
  params.stop_tokens = options.stop_tokens;
  std::vector<Sequence> sequences;
  sequences.reserve(n);
  for (std::size_t b = 0; b < n; ++b) sequences.emplace_back(base.state().clone(), samplers[b], params, prompt);
  Eigen::MatrixXf logits = base.logits().replicate(1, static_cast<Eigen::Index>(n));  // [V, n]
  std::vector<std::vector<std::int32_t>> outputs(n);
  std::vector<std::size_t> running(n);
  for (std::size_t b = 0; b < n; ++b) running[b] = b;
  Stepper stepper(model, static_cast<std::int64_t>(n), 1);
  std::vector<Sequence*> batch;
  std::vector<std::size_t> still;  // the sequences that go on after this step; reused
  batch.reserve(n);
  still.reserve(n);
  t0 = Clock::now();
  while (!running.empty()) {
    batch.clear();
    still.clear();
    for (std::size_t b : running) {
      const SequenceEvent event = sequences[b].next(logits.col(static_cast<Eigen::Index>(b)));
      outputs[b].push_back(event.token);
      ++stats.generated_tokens;
      if (sequences[b].finished()) continue;
      still.push_back(b);
      batch.push_back(&sequences[b]);
    }
    running.swap(still);
    if (running.empty()) break;
    const RowMatrixXf& rows = stepper.decode(batch);
    for (std::size_t r = 0; r < running.size(); ++r)
      logits.col(static_cast<Eigen::Index>(running[r])) = rows.row(static_cast<Eigen::Index>(r)).transpose();
    stats.decode_steps += static_cast<std::int64_t>(running.size());
  }
  for (std::size_t b = 0; b < n; ++b) samplers[b] = sequences[b].sampler();
  stats.decode_seconds = seconds_since(t0);
  return outputs;
}

}  // namespace glrnn
