#pragma once
// Scoring text: the negative log-likelihood of each token given the ones before it, accumulated
// in double (sums over many tokens lose precision in float).

#include <algorithm>  // std::min
#include <cmath>      // std::exp, std::log
#include <cstdint>    // std::int32_t, std::int64_t
#include <vector>     // std::vector

#include "glrnn/generate/session.hpp"

namespace glrnn {

struct NllSum {
  double nll = 0.0;         // sum of -log p(token | prefix)
  std::int64_t tokens = 0;  // tokens predicted
  double mean() const { return tokens ? nll / static_cast<double>(tokens) : 0.0; }
  double perplexity() const { return std::exp(mean()); }
};

/// -log softmax(logits)[target], in double.
inline double token_nll(const Eigen::Ref<const Eigen::RowVectorXf>& logits, std::int32_t target) {
  const double max = logits.maxCoeff();
  double sum = 0.0;
  for (Eigen::Index i = 0; i < logits.size(); ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  return std::log(sum) + max - static_cast<double>(logits[target]);
}

/// Runs tokens[0..n-1) from the session's position and adds the NLL of predicting tokens[1..n)
/// to `sum`, in chunks of `chunk` positions (bounding the [chunk, V] logits buffer). With `top1`,
/// also appends each position's most likely token (to compare weight formats).
inline void score_tokens(Session& session, const std::vector<std::int32_t>& tokens, std::int64_t chunk, NllSum& sum,
                         std::vector<std::int32_t>* top1 = nullptr) {
  GLRNN_CHECK(chunk > 0, InputError, "chunk must be positive");
  RowMatrixXf logits;
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  for (std::int64_t begin = 0; begin + 1 < n; begin += chunk) {
    const std::int64_t end = std::min(n - 1, begin + chunk);
    session.prefill_all(std::vector<std::int32_t>(tokens.begin() + begin, tokens.begin() + end), logits);
    for (std::int64_t t = begin; t < end; ++t) {
      sum.nll += token_nll(logits.row(t - begin), tokens[static_cast<std::size_t>(t + 1)]);
      if (top1) {
        Eigen::Index best = 0;
        logits.row(t - begin).maxCoeff(&best);
        top1->push_back(static_cast<std::int32_t>(best));
      }
    }
    sum.tokens += end - begin;
  }
}

}  // namespace glrnn
