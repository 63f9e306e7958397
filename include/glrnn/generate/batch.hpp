#pragma once
// Batched decoding: one step advances B independent sequences (each its own State and position)
// with every weight read once for all of them, so aggregate tokens/s grows with B where decode is
// bound by reading weights. Sequences join and leave between steps: a step takes whatever states
// it is given.

#include <cstdint>    // std::int32_t, std::int64_t
#include <vector>     // std::vector

#include "glrnn/generate/session.hpp"
#include "glrnn/models/model.hpp"

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

}  // namespace glrnn
