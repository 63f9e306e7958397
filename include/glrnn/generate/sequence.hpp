#pragma once
// One sequence being generated: its state, the token sampled but not yet run, the sampler, the
// text decoder, the stop rules and an optional grammar. Every token loop (generate(), parallel
// continuations, glrnn-chat, the server's scheduler) feeds it logits and runs its pending token;
// it decides the token, the text the token releases and whether the sequence has finished
// (docs/architecture.md §10).

#include <algorithm>  // std::find
#include <cstdint>    // std::int32_t, std::int64_t
#include <limits>     // std::numeric_limits
#include <memory>     // std::shared_ptr, std::make_shared
#include <optional>   // std::optional
#include <string>     // std::string
#include <utility>    // std::move
#include <vector>     // std::vector

#include <Eigen/Core>

#include "glrnn/constrain/token_constraint.hpp"
#include "glrnn/generate/state_file.hpp"
#include "glrnn/generate/stop_strings.hpp"
#include "glrnn/models/model.hpp"
#include "glrnn/sampling/sampler.hpp"
#include "glrnn/tokenizer/stream_decoder.hpp"

namespace glrnn {

/// Why a sequence ended: Stop (a stop token, a stop string, or a grammar with nothing left to
/// add) or Length (the token limit or the model's context).
enum class FinishReason { None, Stop, Length };

inline const char* finish_reason_name(FinishReason reason) {
  return reason == FinishReason::Stop ? "stop" : reason == FinishReason::Length ? "length" : "";
}

/// The state-file metadata key of a sequence's pending token (sampled, not yet run): a restored
/// sequence runs it first, so it continues exactly where it stopped, with no replay.
constexpr const char* kPendingTokenKey = "glrnn.pending_token";

inline void set_pending_token(StateMetadata& metadata, std::int32_t token) { metadata[kPendingTokenKey] = std::to_string(token); }

/// The pending token a state file kept, if any (also under the keys glrnn-generate and glrnn-chat
/// wrote before the key was shared). Throws InputError for a value that is not a token id.
inline std::optional<std::int32_t> pending_token(const StateMetadata& metadata) {
  for (const char* key : {kPendingTokenKey, "glrnn-generate.pending_token", "glrnn-chat.unrun"}) {
    const auto it = metadata.find(key);
    if (it == metadata.end()) continue;
    const std::string& v = it->second;
    GLRNN_CHECK(!v.empty() && v.size() <= 9 && v.find_first_not_of("0123456789") == std::string::npos, InputError,
                "the state file's pending token '" + v.substr(0, 20) + "' is not a token id");
    return static_cast<std::int32_t>(std::stol(v));
  }
  return std::nullopt;
}

/// What a sequence must follow.
struct SequenceParams {
  std::int64_t max_new_tokens = 128;
  std::vector<std::int32_t> stop_tokens;   // end the sequence; never shown
  std::vector<std::string> stop_strings;   // end the text where one appears; never shown
  std::shared_ptr<const Grammar> grammar;  // when set, the text must be a sentence of it
  std::int64_t max_context = 0;            // 0: none; otherwise prompt + output stay within it
};

/// What one token did: its id, the text it released and, on the last one, why it ended.
struct SequenceEvent {
  std::int32_t token = -1;
  std::string text;
  FinishReason finish = FinishReason::None;
};

class Sequence {
 public:
  /// `history` is what the state has run (the prompt): the repetition penalty looks at it. Text
  /// and stop strings need a tokenizer; a grammar needs the tokenizer's vocabulary (built from
  /// the tokenizer when not given; give it to share one between sequences).
  Sequence(State state, Sampler sampler, SequenceParams params, std::vector<std::int32_t> history = {},
           const Tokenizer* tokenizer = nullptr, std::shared_ptr<const TokenVocabulary> vocabulary = {})
      : state_(std::move(state)), sampler_(std::move(sampler)), params_(std::move(params)),
        history_(std::move(history)), tokenizer_(tokenizer), stop_(params_.stop_strings) {
    GLRNN_CHECK(params_.max_new_tokens > 0, InputError, "a sequence needs max_new_tokens > 0");
    GLRNN_CHECK(tokenizer_ || params_.stop_strings.empty(), InputError, "stop strings need the tokenizer");
    GLRNN_CHECK(tokenizer_ || vocabulary || !params_.grammar, InputError, "a grammar needs the tokenizer or its vocabulary");
    if (tokenizer_) text_.emplace(*tokenizer_, /*skip_special=*/true);
    if (params_.grammar) {
      if (!vocabulary) vocabulary = TokenVocabulary::from_tokenizer(*tokenizer_);
      constraint_.emplace(params_.grammar, std::move(vocabulary), params_.stop_tokens);
    }
  }

  State& state() { return state_; }
  const State& state() const { return state_; }
  const SequenceParams& params() const { return params_; }
  const Sampler& sampler() const { return sampler_; }
  /// The prompt and the tokens generated so far.
  const std::vector<std::int32_t>& history() const { return history_; }
  const std::vector<std::int32_t>& generated() const { return generated_; }
  /// The token to run next: sampled and not yet in the state. None before the first next() and
  /// once the sequence has finished (its last token is never run: nothing would read its logits).
  std::optional<std::int32_t> pending() const { return pending_; }
  bool finished() const { return finish_ != FinishReason::None; }
  FinishReason finish_reason() const { return finish_; }

  /// Writes the state and the pending token (with `metadata`) to a state file; restore it with
  /// load_state and run pending_token(metadata) first.
  void save(const Model& model, const std::string& path, StateMetadata metadata = {}) {
    if (pending_) set_pending_token(metadata, *pending_);
    save_state(model, state_, path, metadata);
  }

  /// Chooses the next token from `logits` (those after the state's last token) and returns what
  /// it did. Throws InputError once finished, or when the grammar allows no token of the
  /// vocabulary here.
  SequenceEvent next(const Eigen::Ref<const Eigen::VectorXf>& logits) {
    GLRNN_CHECK(!finished(), InputError, "the sequence has finished");
    pending_.reset();
    const std::int32_t token = sample(logits);
    generated_.push_back(token);
    history_.push_back(token);
    if (constraint_) constraint_->accept(token);
    SequenceEvent event;
    event.token = token;
    if (std::find(params_.stop_tokens.begin(), params_.stop_tokens.end(), token) != params_.stop_tokens.end()) {
      event.text = flush_text();
      event.finish = FinishReason::Stop;
    } else {
      if (text_) event.text = stop_.push(text_->push(token));
      const bool at_limit = static_cast<std::int64_t>(generated_.size()) >= params_.max_new_tokens ||
                            (params_.max_context > 0 && static_cast<std::int64_t>(history_.size()) >= params_.max_context);
      const bool complete = constraint_ && constraint_->finished();
      if (!stop_.stopped() && (at_limit || complete)) event.text += flush_text();
      if (stop_.stopped() || complete) event.finish = FinishReason::Stop;
      else if (at_limit) event.finish = FinishReason::Length;
    }
    finish_ = event.finish;
    if (!finished()) pending_ = token;
    return event;
  }

 private:
  std::int32_t sample(const Eigen::Ref<const Eigen::VectorXf>& logits) {
    // Ids past the tokenizer's vocabulary (padding rows of the embedding) have no text.
    const bool padded = tokenizer_ && tokenizer_->vocab_size() < logits.size();
    if (padded) {
      padded_ = logits;
      padded_.tail(logits.size() - tokenizer_->vocab_size()).setConstant(-std::numeric_limits<float>::infinity());
    }
    const Eigen::Ref<const Eigen::VectorXf> source = padded ? Eigen::Ref<const Eigen::VectorXf>(padded_) : logits;
    if (constraint_) return sample_constrained(sampler_, *constraint_, source, history_, generated_);
    return sampler_.sample(source, history_, generated_);
  }

  std::string flush_text() {
    if (!text_) return {};
    std::string out = stop_.push(text_->flush());
    return out + stop_.flush();
  }

  State state_;
  Sampler sampler_;
  SequenceParams params_;
  std::vector<std::int32_t> history_, generated_;
  const Tokenizer* tokenizer_;
  std::optional<StreamDecoder> text_;
  StopStrings stop_;
  std::optional<TokenConstraint> constraint_;
  std::optional<std::int32_t> pending_;
  FinishReason finish_ = FinishReason::None;
  Eigen::VectorXf padded_;  // [V] the logits with padding ids masked, when the model has any
};

}  // namespace glrnn
