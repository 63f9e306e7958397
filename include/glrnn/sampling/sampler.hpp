#pragma once
// Choosing the next token from logits: greedy, or sampling after the transformers chain of
// processors (repetition penalty, temperature, top-k, top-p, min-p), with an explicitly seeded
// RNG so a seed reproduces a run on every platform. OpenAI's presence and frequency penalties
// come right after the repetition penalty, as vLLM applies them. Buffers are sized once per
// vocabulary.

#include <algorithm>  // std::nth_element, std::sort, std::max, std::min
#include <cmath>      // std::exp, std::isfinite
#include <cstdint>    // std::int32_t, std::int64_t, std::uint64_t
#include <numeric>    // std::iota
#include <string>     // std::to_string
#include <utility>    // std::pair
#include <vector>     // std::vector

#include <Eigen/Core>

#include "glrnn/core/error.hpp"
#include "glrnn/sampling/token_mask.hpp"

namespace glrnn {

struct SamplerParams {
  float temperature = 0.8f;        // 0: greedy (argmax)
  std::int64_t top_k = 40;         // 0: off
  float top_p = 0.95f;             // 1: off
  float min_p = 0.0f;              // 0: off
  float repetition_penalty = 1.0f; // 1: off; > 1 discourages tokens in `recent`
  float presence_penalty = 0.0f;   // 0: off; subtracted once from every token in `generated`
  float frequency_penalty = 0.0f;  // 0: off; subtracted once per occurrence in `generated`
  std::uint64_t seed = 0;
  std::vector<std::pair<std::int32_t, float>> logit_bias;  // (token, bias) added to the logits first (OpenAI)

  /// Throws InputError for values outside their ranges.
  void validate() const {
    for (const auto& [token, bias] : logit_bias)
      GLRNN_CHECK(token >= 0 && std::isfinite(bias), InputError,
                  "logit bias needs a token id >= 0 and a finite bias, got " + std::to_string(token));
    GLRNN_CHECK(temperature >= 0.0f, InputError, "temperature must be >= 0, got " + std::to_string(temperature));
    GLRNN_CHECK(top_k >= 0, InputError, "top-k must be >= 0, got " + std::to_string(top_k));
    GLRNN_CHECK(top_p > 0.0f && top_p <= 1.0f, InputError, "top-p must be in (0, 1], got " + std::to_string(top_p));
    GLRNN_CHECK(min_p >= 0.0f && min_p <= 1.0f, InputError, "min-p must be in [0, 1], got " + std::to_string(min_p));
    GLRNN_CHECK(repetition_penalty > 0.0f, InputError,
                "repetition penalty must be > 0, got " + std::to_string(repetition_penalty));
    GLRNN_CHECK(std::isfinite(presence_penalty) && std::isfinite(frequency_penalty), InputError,
                "presence and frequency penalties must be finite");
  }
};

/// xoshiro256** seeded through splitmix64: small, fast and identical on every platform.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (std::uint64_t& s : s_) {
      seed += 0x9e3779b97f4a7c15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      s = z ^ (z >> 31);
    }
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

class Sampler {
 public:
  Sampler(const SamplerParams& params, std::int64_t vocab_size) : params_(params), rng_(params.seed) {
    params.validate();
    candidates_.reserve(static_cast<std::size_t>(vocab_size));
    adjusted_.resize(vocab_size);
    counts_.assign(static_cast<std::size_t>(vocab_size), 0);
  }

  const SamplerParams& params() const { return params_; }

  /// Picks a token from logits [V]; `recent` are the tokens the repetition penalty applies to,
  /// `generated` those the presence and frequency penalties count (OpenAI: the output so far).
  /// With `allowed`, only its tokens are candidates, before every processor of the chain: top-k
  /// and top-p see the allowed tokens only. Throws InputError when `allowed` allows none.
  std::int32_t sample(const Eigen::Ref<const Eigen::VectorXf>& logits, const std::vector<std::int32_t>& recent = {},
                      const std::vector<std::int32_t>& generated = {}, const TokenMask* allowed = nullptr) {
    GLRNN_CHECK(logits.size() == adjusted_.size(), InputError, "logits size does not match the sampler's vocabulary");
    // A mask shorter than the logits refuses the ids past its end (a model's padding rows).
    GLRNN_CHECK(!allowed || allowed->size() <= adjusted_.size(), InputError,
                "the token mask is longer than the sampler's vocabulary");
    adjusted_ = logits;
    for (const auto& [token, bias] : params_.logit_bias)
      if (token < adjusted_.size()) adjusted_[token] += bias;
    if (params_.repetition_penalty != 1.0f) {
      // transformers: a seen token's logit is divided by the penalty if positive, multiplied if not.
      for (std::int32_t t : recent) {
        if (t < 0 || t >= adjusted_.size()) continue;
        float& z = adjusted_[t];
        z = z > 0.0f ? z / params_.repetition_penalty : z * params_.repetition_penalty;
      }
    }
    if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
      // OpenAI: logit -= count * frequency_penalty + (count > 0) * presence_penalty. Counted in a
      // vocabulary-sized buffer that is zeroed again on the way out, so nothing allocates.
      for (std::int32_t t : generated)
        if (t >= 0 && t < adjusted_.size()) ++counts_[static_cast<std::size_t>(t)];
      for (std::int32_t t : generated) {
        if (t < 0 || t >= adjusted_.size() || counts_[static_cast<std::size_t>(t)] == 0) continue;
        std::int32_t& count = counts_[static_cast<std::size_t>(t)];
        adjusted_[t] -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
        count = 0;
      }
    }
    if (params_.temperature <= 0.0f && !allowed) return argmax(adjusted_);
    candidates_.clear();
    const float temperature = params_.temperature > 0.0f ? params_.temperature : 1.0f;
    for (Eigen::Index i = 0; i < adjusted_.size(); ++i) {
      if (!allowed || allowed->allows(static_cast<std::int32_t>(i)))
        candidates_.push_back({static_cast<std::int32_t>(i), adjusted_[i] / temperature});
    }
    GLRNN_CHECK(!candidates_.empty(), InputError, "no token of the vocabulary is allowed here");
    if (params_.temperature <= 0.0f) {
      // The first allowed index of the largest logit, as argmax over the masked logits.
      const Candidate* best = &candidates_.front();
      for (const Candidate& c : candidates_) best = c.logit > best->logit ? &c : best;
      return best->id;
    }
    std::size_t keep = candidates_.size();
    sorted_ = 0;
    if (params_.top_k > 0 && static_cast<std::size_t>(params_.top_k) < keep) {
      keep = static_cast<std::size_t>(params_.top_k);
      sort_prefix(keep);
      candidates_.resize(keep);
    }
    // Softmax over the survivors, in double for a stable cumulative sum.
    double max_logit = candidates_.front().logit;
    for (const Candidate& c : candidates_) max_logit = std::max(max_logit, static_cast<double>(c.logit));
    double total = 0.0;
    for (Candidate& c : candidates_) total += (c.prob = std::exp(static_cast<double>(c.logit) - max_logit));
    for (Candidate& c : candidates_) c.prob /= total;
    // What follows walks the candidates most probable first, sorting only as far as it walks:
    // without top-k a vocabulary of 256k would otherwise be sorted for every token.
    if (params_.top_p < 1.0f) {
      // Smallest prefix whose mass reaches top_p; always at least one token.
      double mass = 0.0;
      std::size_t n = 0;
      while (n < candidates_.size() && mass < params_.top_p) mass += sorted(n++).prob;
      keep = n;
    }
    if (params_.min_p > 0.0f) {
      const double floor = params_.min_p * sorted(0).prob;
      std::size_t n = 1;
      while (n < keep && sorted(n).prob >= floor) ++n;
      keep = n;
    }
    double remaining = 0.0;
    for (std::size_t i = 0; i < keep; ++i) remaining += candidates_[i].prob;  // any order: a sum
    double r = rng_.uniform() * remaining;
    for (std::size_t i = 0; i < keep; ++i) {
      const Candidate& c = sorted(i);
      if (r < c.prob) return c.id;
      r -= c.prob;
    }
    return sorted(keep - 1).id;  // rounding left r just above the last probability
  }

  /// The first index of the largest logit, as torch.argmax.
  static std::int32_t argmax(const Eigen::Ref<const Eigen::VectorXf>& logits) {
    Eigen::Index best = 0;
    logits.maxCoeff(&best);
    return static_cast<std::int32_t>(best);
  }

 private:
  struct Candidate {
    std::int32_t id;
    float logit;
    double prob = 0.0;
  };
  /// Most probable first; ties by lower id, a total order, so the result does not depend on the
  /// sort algorithm or on how far it has gone.
  static bool better(const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }

  /// Puts the best n candidates first, in order (the first sorted_ already are).
  void sort_prefix(std::size_t n) {
    if (n <= sorted_) return;
    const auto first = candidates_.begin() + static_cast<std::ptrdiff_t>(sorted_);
    const auto middle = candidates_.begin() + static_cast<std::ptrdiff_t>(n);
    if (middle != candidates_.end()) std::nth_element(first, middle, candidates_.end(), better);
    std::sort(first, middle, better);
    sorted_ = n;
  }

  /// The candidate of rank i, sorting further in growing steps when the walk gets there.
  const Candidate& sorted(std::size_t i) {
    if (i >= sorted_) sort_prefix(std::min(candidates_.size(), std::max({i + 1, 2 * sorted_, std::size_t{256}})));
    return candidates_[i];
  }

  SamplerParams params_;
  Rng rng_;
  std::vector<Candidate> candidates_;
  std::size_t sorted_ = 0;  // candidates_[0, sorted_) are the best, in order
  Eigen::VectorXf adjusted_;
  std::vector<std::int32_t> counts_;  // [V], all zero between calls
};

}  // namespace glrnn
