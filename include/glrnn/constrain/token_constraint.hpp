#pragma once
// A grammar applied to one sequence's tokens: which tokens may come next (a mask, from one walk
// of the vocabulary's trie with the matcher), and the matcher moved on by each token taken.
// End tokens are allowed exactly when the text so far is a complete sentence. Masks are kept by
// matcher state, since structured text returns to the same states again and again (inside a
// string, between items), and so are the walk's transitions; docs/constraints.md, "Masks".

#include <array>        // std::array
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
        ids_(vocabulary_->max_depth() + 1) {}

  /// True when `token` may come next. Cheaper than mask() for one token.
  bool allows(std::int32_t token) {
    if (is_end(token)) return matcher_.can_end();
    if (token < 0 || token >= vocabulary_->size() || vocabulary_->bytes(token).empty()) return false;
    return matcher_.allows(vocabulary_->bytes(token));
  }

  /// The tokens that may come next.
  const TokenMask& mask() {
    if (walk_states_.size() > kMaxWalkStates) forget_masks();  // masks are kept by walk-state id
    const std::int32_t state = walk_state(matcher_.stacks(), matcher_.partial());
    auto it = masks_.find(state);
    if (it != masks_.end()) return it->second;
    if (masks_.size() >= kMaxCachedMasks) masks_.clear();
    TokenMask& mask = masks_[state];
    compute_mask(state, mask);
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

  /// Drops the masks and walk transitions kept so far (glrnn-bench measures a mask's cost
  /// without them).
  void forget_masks() {
    masks_.clear();
    walk_states_.clear();
    walk_index_.clear();
  }

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

  static std::string state_key(const std::vector<std::uint32_t>& stacks, const Utf8Partial& p) {
    std::string key(reinterpret_cast<const char*>(stacks.data()), stacks.size() * sizeof(std::uint32_t));
    key.append(reinterpret_cast<const char*>(&p.value), sizeof p.value);
    key.push_back(static_cast<char>(p.remaining));
    key.push_back(static_cast<char>(p.length));
    return key;
  }

  /// The walk's state `stacks` + `p` as an id, added when new.
  std::int32_t walk_state(const std::vector<std::uint32_t>& stacks, const Utf8Partial& p) {
    auto [it, added] = walk_index_.emplace(state_key(stacks, p), static_cast<std::int32_t>(walk_states_.size()));
    if (added) {
      walk_states_.push_back({stacks, p, {}});
      walk_states_.back().next.fill(kUnknown);
    }
    return it->second;
  }

  /// The state after `byte` from state `id` (kDead when no stack takes it), stepped once and kept.
  std::int32_t walk_step(std::int32_t id, std::uint8_t byte) {
    std::int32_t next = walk_states_[static_cast<std::size_t>(id)].next[byte];
    if (next != kUnknown) return next;
    Utf8Partial partial;
    const bool alive = matcher_.grammar_stacks().step(walk_states_[static_cast<std::size_t>(id)].stacks,
                                                      walk_states_[static_cast<std::size_t>(id)].partial, byte, step_to_, partial);
    next = alive ? walk_state(step_to_, partial) : kDead;
    walk_states_[static_cast<std::size_t>(id)].next[byte] = next;
    return next;
  }

  /// One walk of the trie: a node no state can reach skips its subtree. Matcher states and their
  /// transitions by byte are kept across walks, so once the walk has met a state, each node
  /// costs one table read (docs/constraints.md, "Masks").
  void compute_mask(std::int32_t state, TokenMask& mask) {
    mask.clear(vocabulary_->size());
    ids_[0] = state;
    const std::vector<TokenVocabulary::TrieNode>& trie = vocabulary_->trie();
    const std::vector<std::int32_t>& tokens = vocabulary_->trie_tokens();
    for (std::size_t i = 0; i < trie.size();) {
      const TokenVocabulary::TrieNode& node = trie[i];
      const std::int32_t id = walk_step(ids_[node.depth - 1], node.byte);
      if (id == kDead) {
        i = node.subtree_end;  // no token under this prefix can follow
        continue;
      }
      ids_[node.depth] = id;
      for (std::uint32_t k = node.tokens_begin, end = vocabulary_->tokens_end(i); k < end; ++k) mask.allow(tokens[k]);
      ++i;
    }
    if (matcher_.can_end())
      for (std::int32_t t : end_tokens_)
        if (t >= 0 && t < vocabulary_->size()) mask.allow(t);
  }

  static constexpr std::int32_t kUnknown = -2, kDead = -1;
  static constexpr std::size_t kMaxWalkStates = 4096;  // about 1 KiB each; dropped all at once past this
  struct WalkState {
    std::vector<std::uint32_t> stacks;
    Utf8Partial partial;
    std::array<std::int32_t, 256> next;  // state after each byte: an id, kDead or kUnknown
  };

  std::shared_ptr<const TokenVocabulary> vocabulary_;
  GrammarMatcher matcher_;
  std::vector<std::int32_t> end_tokens_;
  bool ended_ = false;
  std::unordered_map<std::int32_t, TokenMask> masks_;  // by walk-state id
  std::vector<WalkState> walk_states_;
  std::unordered_map<std::string, std::int32_t> walk_index_;
  std::vector<std::int32_t> ids_;          // [max depth + 1] the walk's state after each trie depth
  std::vector<std::uint32_t> step_to_;     // scratch of walk_step
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
