#pragma once
// A generation request as the scheduler sees it, and the channel its results come back through:
// the HTTP thread that made the job waits on it; the scheduler thread publishes text deltas,
// usage and the end. Both sides hold it by shared_ptr, so whichever is done last frees it.

#include <algorithm>           // std::any_of
#include <atomic>              // std::atomic
#include <chrono>              // std::chrono::milliseconds, std::chrono::steady_clock
#include <condition_variable>  // std::condition_variable
#include <cstdint>             // std::int32_t, std::int64_t
#include <functional>          // std::function
#include <memory>              // std::shared_ptr
#include <mutex>               // std::mutex, std::lock_guard, std::unique_lock
#include <optional>            // std::optional
#include <string>              // std::string
#include <utility>             // std::move
#include <vector>              // std::vector

#include <glrnn/constrain/grammar.hpp>
#include <glrnn/sampling/logprobs.hpp>
#include <glrnn/sampling/sampler.hpp>

#include "api_error.hpp"

namespace glrnn::server {

struct GenerationParams {
  SamplerParams sampling;           // choice i samples with seed + i
  std::int64_t max_tokens = 16;
  std::int64_t n = 1;               // choices, all continuing one prefill
  std::vector<std::string> stop;    // stop strings
  std::int64_t logprobs = -1;       // -1: none; otherwise the number of alternatives per token
  bool ignore_eos = false;          // do not stop at the end-of-sequence or end-of-turn tokens
  std::shared_ptr<const Grammar> grammar;  // response_format, tools or grammar: the reply follows it
};

/// One generated token's log-probability and the most likely alternatives.
struct TokenInfo {
  std::int32_t id = -1;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;
};

/// What one step added to one choice. finish_reason is "stop" or "length" on its last delta.
struct ChoiceDelta {
  std::int64_t index = 0;
  std::string text;
  std::vector<TokenInfo> tokens;
  std::string finish_reason;
};

struct Usage {
  std::int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
};

/// The ids that follow the prompt when the reply with this text is sent back in the next request
/// (a chat's rendering of the assistant turn). Unset for plain completions.
using ReplyTail = std::function<std::vector<std::int32_t>(const std::string& reply_text)>;

class Job {
 public:
  enum class Status { Running, Finished, Failed };

  /// turn_ends: the lengths of the prompt's prefixes that end an earlier turn of a chat (where a
  /// reply's state was cached, maybe by another replica); empty for plain completions.
  Job(std::vector<std::int32_t> prompt, GenerationParams params, ReplyTail reply_tail = {},
      std::vector<std::size_t> turn_ends = {})
      : prompt_(std::move(prompt)),
        params_(std::move(params)),
        reply_tail_(std::move(reply_tail)),
        turn_ends_(std::move(turn_ends)) {
    choices_left = params_.n;
  }

  const std::vector<std::int32_t>& prompt() const { return prompt_; }
  const GenerationParams& params() const { return params_; }
  const ReplyTail& reply_tail() const { return reply_tail_; }
  const std::vector<std::size_t>& turn_ends() const { return turn_ends_; }

  // --- the HTTP thread --------------------------------------------------------------------------

  /// Waits up to `timeout` for news; moves the deltas published so far into `out`. A finished
  /// job reads as Running while its end is held (hold_end).
  Status wait(std::vector<ChoiceDelta>& out, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return !pending_.empty() || visible_status() != Status::Running; });
    return take(out);
  }

  /// The client went away: the scheduler drops the job at its next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  Usage usage() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return usage_;
  }
  /// Why the job failed (after Status::Failed).
  ApiError error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_.value_or(ApiError(500, "internal_error", "the job has not failed"));
  }

  // --- the scheduler thread -----------------------------------------------------------------

  void admitted(std::int64_t cached_tokens) {
    std::lock_guard<std::mutex> lock(mutex_);
    usage_.prompt_tokens = static_cast<std::int64_t>(prompt_.size());
    usage_.cached_tokens = cached_tokens;
  }

  /// One sampled token's delta (possibly without text: a byte of a character, a stop token).
  void publish(ChoiceDelta delta) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++usage_.completion_tokens;
      if (delta.text.empty() && delta.tokens.empty() && delta.finish_reason.empty()) return;
      pending_.push_back(std::move(delta));
    }
    changed_.notify_all();
  }

  void finish() { end(Status::Finished, std::nullopt); }

  /// Holds the end of a finished job back from the client until `until` or release_end(id):
  /// its reply's state is being brought to the shared tier, where the client's next turn may look
  /// for it on another replica as soon as it has the end. Deltas flow meanwhile. Returns the
  /// hold's id, for move_end_hold and release_end.
  std::size_t hold_end(std::chrono::steady_clock::time_point until) {
    std::lock_guard<std::mutex> lock(mutex_);
    end_holds_.push_back(until);
    return end_holds_.size() - 1;
  }
  void move_end_hold(std::size_t id, std::chrono::steady_clock::time_point until) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      end_holds_.at(id) = until;
    }
    changed_.notify_all();
  }
  void release_end(std::size_t id) { move_end_hold(id, std::chrono::steady_clock::time_point::min()); }

  void fail(ApiError error) { end(Status::Failed, std::move(error)); }
  bool ended() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_ != Status::Running;
  }

  /// Choices still decoding; the scheduler's own count.
  std::int64_t choices_left = 0;

 private:
  Status take(std::vector<ChoiceDelta>& out) {
    for (ChoiceDelta& d : pending_) out.push_back(std::move(d));
    pending_.clear();
    return visible_status();
  }
  Status visible_status() const {
    if (status_ != Status::Finished || end_holds_.empty()) return status_;
    const auto now = std::chrono::steady_clock::now();
    const bool held = std::any_of(end_holds_.begin(), end_holds_.end(), [&](auto until) { return now < until; });
    return held ? Status::Running : status_;
  }

  void end(Status status, std::optional<ApiError> error) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (status_ != Status::Running) return;
      status_ = status;
      error_ = std::move(error);
    }
    changed_.notify_all();
  }

  const std::vector<std::int32_t> prompt_;
  const GenerationParams params_;
  const ReplyTail reply_tail_;
  const std::vector<std::size_t> turn_ends_;
  std::atomic<bool> cancelled_{false};

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<ChoiceDelta> pending_;
  Usage usage_;
  Status status_ = Status::Running;
  std::optional<ApiError> error_;
  std::vector<std::chrono::steady_clock::time_point> end_holds_;  // until when each hold lasts
};

}  // namespace glrnn::server
