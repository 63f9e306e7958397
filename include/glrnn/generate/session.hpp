#pragma once
// Session: what a program holds to run one sequence: the model, its state, a scratch arena and
// the last logits. Everything is allocated on construction; prefill and step allocate nothing.

#include <cstdint>  // std::int32_t, std::int64_t
#include <string>   // std::string
#include <utility>  // std::move
#include <vector>   // std::vector

#include "glrnn/generate/sequence.hpp"
#include "glrnn/generate/state_file.hpp"
#include "glrnn/models/model.hpp"

namespace glrnn {

class Session {
 public:
  /// max_chunk: prompt positions processed per matrix product (longer prompts are split).
  explicit Session(Model model, std::int64_t max_chunk = 256)
      : model_(std::move(model)), state_(model_.make_state()), scratch_(model_.make_scratch(max_chunk)),
        logits_(Eigen::VectorXf::Zero(model_.vocab_size())) {}

  Session(Session&&) noexcept = default;
  Session& operator=(Session&&) noexcept = default;

  const Model& model() const { return model_; }
  State& state() { return state_; }
  const State& state() const { return state_; }
  std::int64_t position() const { return state_.position(); }
  /// Logits after the last token run (zeros before any).
  const Eigen::VectorXf& logits() const { return logits_; }

  /// Runs tokens from the current position on and returns the last position's logits.
  const Eigen::VectorXf& prefill(const std::vector<std::int32_t>& tokens) {
    model_.forward(tokens.data(), static_cast<std::int64_t>(tokens.size()), state_, scratch_, Logits::Last,
                   logits_row());
    return logits_;
  }

  /// Runs one token and returns its logits.
  const Eigen::VectorXf& step(std::int32_t token) {
    model_.forward(&token, 1, state_, scratch_, Logits::Last, logits_row());
    return logits_;
  }

  /// Runs a sequence's pending token on the sequence's own state (with this session's scratch)
  /// and returns its logits; see lend_state for a sequence that continues this session.
  const Eigen::VectorXf& step(Sequence& sequence) {
    GLRNN_CHECK(sequence.pending().has_value(), InputError, "the sequence has no pending token to run");
    const std::int32_t token = *sequence.pending();
    model_.forward(&token, 1, sequence.state(), scratch_, Logits::Last, logits_row());
    return logits_;
  }

  /// Hands this session's state to a sequence that continues from here; take it back with
  /// return_state. Until then the session has no state.
  State lend_state() { return std::move(state_); }
  void return_state(State state) { state_ = std::move(state); }

  /// Runs tokens and writes every position's logits to `out` (resized to [n, V]).
  void prefill_all(const std::vector<std::int32_t>& tokens, RowMatrixXf& out) {
    out.resize(static_cast<Eigen::Index>(tokens.size()), model_.vocab_size());
    model_.forward(tokens.data(), static_cast<std::int64_t>(tokens.size()), state_, scratch_, Logits::All, out);
    if (out.rows() > 0) logits_ = out.bottomRows(1).transpose();
  }

  /// An independent copy of this sequence (same model, cloned state) to branch from here.
  Session fork() const { return Session(*this); }

  /// Writes the state and `metadata` to a state file (generate/state_file.hpp).
  void save(const std::string& path, const StateMetadata& metadata = {}) { save_state(model_, state_, path, metadata); }

  /// Restores a state file written for this model; returns its metadata. The logits are not
  /// stored: run a token (e.g. one kept in the metadata) before sampling.
  StateMetadata load(const std::string& path) {
    StateMetadata metadata = load_state(model_, state_, path);
    logits_.setZero();
    return metadata;
  }

  /// Back to position 0 with a clean state.
  void reset() {
    state_.reset();
    logits_.setZero();
  }

 private:
  Session(const Session& other)
      : model_(other.model_), state_(other.state_.clone()),
        scratch_(model_.make_scratch(other.scratch_.max_tokens())), logits_(other.logits_) {}
  MatMap logits_row() { return MatMap(logits_.data(), 1, logits_.size()); }

  Model model_;
  State state_;
  Scratch scratch_;
  Eigen::VectorXf logits_;  // [V]
};

}  // namespace glrnn
