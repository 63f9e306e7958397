#pragma once
// Batched decoding: one step advances B independent sequences (each its own State and position)
// with every weight read once for all of them, so aggregate tokens/s grows with B where decode is
// bound by reading weights. Sequences join and leave between steps: a step takes whatever states
// it is given.

#include <chrono>     // std::chrono::steady_clock
#include <cstdint>    // std::int32_t, std::int64_t
#include <vector>     // std::vector

#include "glrnn/generate/generate.hpp"
#include "glrnn/generate/session.hpp"
#include "glrnn/models/model.hpp"
#include "glrnn/sampling/sampler.hpp"

namespace glrnn {

class BatchDecoder {
 public:
  /// max_batch: the most sequences one step may take; buffers are sized for it once.
  BatchDecoder(Model model, std::int64_t max_batch)
      : model_(std::move(model)), scratch_(model_.make_scratch(max_batch)),
        logits_(RowMatrixXf::Zero(max_batch, model_.vocab_size())) {}

  const Model& model() const { return model_; }
  std::int64_t max_batch() const { return scratch_.max_tokens(); }

  /// Runs tokens[b] on *states[b] for every b; returns the logits, row b for sequence b (rows
  /// beyond the batch are stale). Throws InputError for a batch too large, an empty or foreign
  /// state, a state given twice or a token outside the vocabulary.
  const RowMatrixXf& step(const std::vector<std::int32_t>& tokens, const std::vector<State*>& states) {
    GLRNN_CHECK(tokens.size() == states.size(), InputError, "a batch needs one token per state");
    GLRNN_CHECK(!tokens.empty() && static_cast<std::int64_t>(tokens.size()) <= max_batch(), InputError,
                "batch of " + std::to_string(tokens.size()) + " sequences; this decoder takes 1 to " +
                    std::to_string(max_batch()));
    for (State* s : states) GLRNN_CHECK(s != nullptr && s->valid(), InputError, "empty state in the batch");
    model_.forward_batch(tokens.data(), static_cast<std::int64_t>(tokens.size()), states.data(), scratch_, logits_);
    return logits_;
  }

 private:
  Model model_;
  Scratch scratch_;
  RowMatrixXf logits_;  // [max_batch, V]
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
  BatchDecoder decoder(model, static_cast<std::int64_t>(n));
  std::vector<std::int32_t> tokens;
  std::vector<State*> batch;
  std::vector<std::size_t> still;  // the sequences that go on after this step; reused
  tokens.reserve(n);
  batch.reserve(n);
  still.reserve(n);
  t0 = Clock::now();
  while (options.max_new_tokens > 0 && !running.empty()) {
    tokens.clear();
    batch.clear();
    still.clear();
    for (std::size_t b : running) {
      const SequenceEvent event = sequences[b].next(logits.col(static_cast<Eigen::Index>(b)));
      outputs[b].push_back(event.token);
      ++stats.generated_tokens;
      if (sequences[b].finished()) continue;
      still.push_back(b);
      tokens.push_back(*sequences[b].pending());
      batch.push_back(&sequences[b].state());
    }
    running.swap(still);
    if (running.empty()) break;
    const RowMatrixXf& rows = decoder.step(tokens, batch);
    for (std::size_t r = 0; r < running.size(); ++r)
      logits.col(static_cast<Eigen::Index>(running[r])) = rows.row(static_cast<Eigen::Index>(r)).transpose();
    stats.decode_steps += static_cast<std::int64_t>(running.size());
  }
  for (std::size_t b = 0; b < n; ++b) samplers[b] = sequences[b].sampler();
  stats.decode_seconds = seconds_since(t0);
  return outputs;
}

}  // namespace glrnn
