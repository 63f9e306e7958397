#pragma once
// Log-probabilities of the model's next-token distribution: the log-softmax of the raw logits,
// before any sampling processor, which is what OpenAI's `logprobs` and vLLM report.

#include <algorithm>  // std::partial_sort
#include <cmath>      // std::exp, std::log
#include <cstdint>    // std::int32_t, std::int64_t
#include <string>     // std::to_string
#include <vector>     // std::vector

#include <Eigen/Core>

#include "glrnn/core/error.hpp"

namespace glrnn {

struct TokenLogprob {
  std::int32_t id = -1;
  float logprob = 0.0f;
};

/// log(sum(exp(logits))), in double so that a large vocabulary loses nothing. Throws InputError
/// for empty logits.
inline double log_sum_exp(const Eigen::Ref<const Eigen::VectorXf>& logits) {
  GLRNN_CHECK(logits.size() > 0, InputError, "log-probabilities of empty logits");
  const double max_logit = logits.maxCoeff();
  double total = 0.0;
  for (Eigen::Index i = 0; i < logits.size(); ++i) total += std::exp(static_cast<double>(logits[i]) - max_logit);
  return max_logit + std::log(total);
}

/// log softmax(logits)[token]. Throws InputError for a token outside the logits.
inline float token_logprob(const Eigen::Ref<const Eigen::VectorXf>& logits, std::int32_t token) {
  GLRNN_CHECK(token >= 0 && token < logits.size(), InputError,
              "token id " + std::to_string(token) + " is outside the logits [0, " + std::to_string(logits.size()) + ")");
  return static_cast<float>(static_cast<double>(logits[token]) - log_sum_exp(logits));
}

/// The n most probable tokens and their log-probabilities, most probable first; equal logits in
/// the order of their ids, so the list does not depend on the sort algorithm. n is clamped to
/// the vocabulary; n <= 0 gives an empty list.
inline std::vector<TokenLogprob> top_logprobs(const Eigen::Ref<const Eigen::VectorXf>& logits, std::int64_t n) {
  if (n <= 0) return {};
  const double normalizer = log_sum_exp(logits);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(logits.size()));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(i);
  const auto keep = static_cast<std::ptrdiff_t>(std::min<std::int64_t>(n, logits.size()));
  std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), [&](std::int32_t a, std::int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<TokenLogprob> top;
  top.reserve(static_cast<std::size_t>(keep));
  for (std::ptrdiff_t i = 0; i < keep; ++i) {
    const std::int32_t id = ids[static_cast<std::size_t>(i)];
    top.push_back({id, static_cast<float>(static_cast<double>(logits[id]) - normalizer)});
  }
  return top;
}

}  // namespace glrnn
