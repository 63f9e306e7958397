#pragma once
// A grammar applied to one sequence's tokens: which tokens may come next (a mask, from one walk
// of the vocabulary's trie with the matcher), and the matcher moved on by each token taken.
// End tokens are allowed exactly when the text so far is a complete sentence. Masks are kept by
// matcher state, since structured text returns to the same states again and again (inside a
// string, between items); docs/constraints.md, "Masks", has the costs.

#include <cstddef>      // std::size_t
#include <cstdint>      // std::int32_t, std::uint32_t
#include <memory>       // std::shared_ptr, std::make_shared
#include <string>       // std::string
#include <unordered_map>  // std::unordered_map
#include <utility>      // std::move
#include <vector>       // std::vector

#include "glrnn/constrain/grammar_matcher.hpp"
#include "glrnn/constrain/token_vocabulary.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/sampling/sampler.hpp"
#include "glrnn/sampling/token_mask.hpp"

namespace glrnn {

class TokenConstraint {
 public:
  /// `end_tokens` are the tokens that end the sequence (allowed once the grammar is complete).
  TokenConstraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocabulary> vocabulary,
                  std::vector<std::int32_t> end_tokens)
      : vocabulary_(std::move(vocabulary)),
        matcher_(std::make_shared<GrammarStacks>(std::move(grammar))),
        end_tokens_(std::move(end_tokens)),
        states_(vocabulary_->max_depth() + 1),
        partials_(vocabulary_->max_depth() + 1) {}

  /// True when `token` may come next. Cheaper than mask() for one token.
  bool allows(std::int32_t token) {
    if (is_end(token)) return matcher_.can_end();
    if (token < 0 || token >= vocabulary_->size() || vocabulary_->bytes(token).empty()) return false;
    return matcher_.allows(vocabulary_->bytes(token));
  }

  /// The tokens that may come next.
  const TokenMask& mask() {
    std::string key(reinterpret_cast<const char*>(matcher_.stacks().data()),
                    matcher_.stacks().size() * sizeof(std::uint32_t));
    const Utf8Partial& p = matcher_.partial();
    key.append(reinterpret_cast<const char*>(&p.value), sizeof p.value);
    key.push_back(static_cast<char>(p.remaining));
    key.push_back(static_cast<char>(p.length));
    auto it = masks_.find(key);
    if (it != masks_.end()) return it->second;
    if (masks_.size() >= kMaxCachedMasks) masks_.clear();
    TokenMask& mask = masks_[key];
    compute_mask(mask);
    return mask;
  }

  /// Moves the matcher past `token`; throws InputError if the grammar does not allow it.
  void accept(std::int32_t token) {
    if (is_end(token)) {
      GLRNN_CHECK(matcher_.can_end(), InputError, "an end token came before the grammar was complete");
      ended_ = true;
      return;
    }
    GLRNN_CHECK(token >= 0 && token < vocabulary_->size() && !vocabulary_->bytes(token).empty() &&
                    matcher_.accept(vocabulary_->bytes(token)),
                InputError, "token " + std::to_string(token) + " does not follow the grammar here");
  }

  /// Drops the masks kept so far (glrnn-bench measures a mask's cost without them).
  void forget_masks() { masks_.clear(); }

  /// True when the text is a complete sentence of the grammar.
  bool can_end() const { return matcher_.can_end(); }
  /// True when nothing can follow: the text is complete and the grammar allows no more.
  bool finished() const { return ended_ || matcher_.finished(); }

 private:
  static constexpr std::size_t kMaxCachedMasks = 256;

  bool is_end(std::int32_t token) const {
    for (std::int32_t t : end_tokens_)
      if (t == token) return true;
    return false;
  }

  void compute_mask(TokenMask& mask) {
    mask.clear(vocabulary_->size());
    GrammarStacks& stacks = matcher_.grammar_stacks();
    states_[0] = matcher_.stacks();
    partials_[0] = matcher_.partial();
    const std::vector<TokenVocabulary::TrieNode>& trie = vocabulary_->trie();
    const std::vector<std::int32_t>& tokens = vocabulary_->trie_tokens();
    for (std::size_t i = 0; i < trie.size();) {
      const TokenVocabulary::TrieNode& node = trie[i];
      if (!stacks.step(states_[node.depth - 1], partials_[node.depth - 1], node.byte, states_[node.depth],
                       partials_[node.depth])) {
        i = node.subtree_end;  // no token under this prefix can follow
        continue;
      }
      for (std::uint32_t k = node.tokens_begin; k < node.tokens_end; ++k) mask.allow(tokens[k]);
      ++i;
    }
    if (matcher_.can_end())
      for (std::int32_t t : end_tokens_)
        if (t >= 0 && t < vocabulary_->size()) mask.allow(t);
  }

  std::shared_ptr<const TokenVocabulary> vocabulary_;
  GrammarMatcher matcher_;
  std::vector<std::int32_t> end_tokens_;
  bool ended_ = false;
  std::unordered_map<std::string, TokenMask> masks_;
  std::vector<std::vector<std::uint32_t>> states_;  // [max depth + 1] stacks after each trie depth
  std::vector<Utf8Partial> partials_;
};

/// Samples under a constraint. Greedy sampling first tries the unconstrained choice, which the
/// grammar allows most of the time; it is the masked argmax whenever allowed, so the result is the
/// same as masking first. Otherwise the mask goes in before the sampler's chain.
inline std::int32_t sample_constrained(Sampler& sampler, TokenConstraint& constraint,
                                       const Eigen::Ref<const Eigen::VectorXf>& logits,
                                       const std::vector<std::int32_t>& recent = {},
                                       const std::vector<std::int32_t>& generated = {}) {
  if (sampler.params().temperature <= 0.0f) {
    const std::int32_t token = sampler.sample(logits, recent, generated);
    if (constraint.allows(token)) return token;
  }
  return sampler.sample(logits, recent, generated, &constraint.mask());
}

}  // namespace glrnn
