#pragma once
// A vocabulary as a constraint sees it: the bytes each token adds to the text, and a trie of
// those byte strings so that one walk decides every token at once (docs/constraints.md,
// "Masks"). Built once per tokenizer and shared by every constrained sequence.

#include <algorithm>    // std::sort, std::min
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int32_t, std::uint8_t, std::uint16_t, std::uint32_t
#include <memory>       // std::shared_ptr, std::make_shared
#include <string>       // std::string, std::to_string
#include <utility>      // std::move
#include <vector>       // std::vector

#include "glrnn/core/error.hpp"
#include "glrnn/tokenizer/tokenizer.hpp"

namespace glrnn {

class TokenVocabulary {
 public:
  /// One node per distinct non-empty prefix of a token's bytes, in depth-first order, so a
  /// subtree is the range [index, subtree_end) and a walk skips it by jumping.
  /// 12 bytes: a walk reads every live node, so the trie's size is most of its cost.
  struct TrieNode {
    std::uint32_t subtree_end = 0;   // one past this node's last descendant
    std::uint32_t tokens_begin = 0;  // tokens whose bytes end here: trie_tokens()[tokens_begin,
                                     // the next node's tokens_begin)
    std::uint16_t depth = 0;         // 1 for a first byte
    std::uint8_t byte = 0;
  };

  /// `bytes[id]` is what token `id` adds to the text; an empty string marks a token that text
  /// never contains (special and control tokens): a grammar never allows it.
  explicit TokenVocabulary(std::vector<std::string> bytes) : bytes_(std::move(bytes)) { build_trie(); }

  /// The bytes each token adds in the middle of a text, as the stream decoder prints them:
  /// byte-fallback tokens are their byte, others decode after a plain token so that decoders
  /// that strip a leading space act as they do mid-text.
  static std::shared_ptr<const TokenVocabulary> from_tokenizer(const Tokenizer& tokenizer) {
    const std::int32_t n = tokenizer.vocab_size();
    std::int32_t anchor = -1;  // a token that decodes to plain text on its own
    for (std::int32_t id : tokenizer.encode("a", false, false)) anchor = id;
    const std::string anchor_text = anchor >= 0 ? tokenizer.decode({anchor}) : std::string();
    std::vector<std::string> bytes(static_cast<std::size_t>(n));
    for (std::int32_t id = 0; id < n; ++id) {
      if (tokenizer.is_special(id)) continue;
      const int byte = tokenizer.byte_value(id);
      if (byte >= 0) {
        bytes[static_cast<std::size_t>(id)] = std::string(1, static_cast<char>(byte));
      } else if (anchor >= 0) {
        const std::string both = tokenizer.decode({anchor, id});
        bytes[static_cast<std::size_t>(id)] = both.compare(0, anchor_text.size(), anchor_text) == 0
                                                  ? both.substr(anchor_text.size())
                                                  : tokenizer.decode({id});
      } else {
        bytes[static_cast<std::size_t>(id)] = tokenizer.decode({id});
      }
    }
    return std::make_shared<const TokenVocabulary>(std::move(bytes));
  }

  std::int32_t size() const { return static_cast<std::int32_t>(bytes_.size()); }
  const std::string& bytes(std::int32_t id) const { return bytes_[static_cast<std::size_t>(id)]; }
  const std::vector<TrieNode>& trie() const { return trie_; }
  /// One past the last of node i's tokens in trie_tokens(): tokens are stored in the nodes' order.
  std::uint32_t tokens_end(std::size_t i) const {
    return i + 1 < trie_.size() ? trie_[i + 1].tokens_begin : static_cast<std::uint32_t>(trie_tokens_.size());
  }
  const std::vector<std::int32_t>& trie_tokens() const { return trie_tokens_; }
  std::uint32_t max_depth() const { return max_depth_; }

 private:
  void build_trie() {
    std::vector<std::int32_t> order;
    for (std::int32_t id = 0; id < size(); ++id)
      if (!bytes(id).empty()) order.push_back(id);
    std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      return bytes(a) < bytes(b) || (bytes(a) == bytes(b) && a < b);
    });
    // In sorted order a token's node is on the path of the token before it or new, and a string
    // that is a prefix of another comes first, so every node's tokens are one run, stored before
    // the next node is made.
    std::vector<std::uint32_t> path;  // node index per depth - 1
    const std::string* previous = nullptr;
    for (std::int32_t id : order) {
      const std::string& s = bytes(id);
      std::size_t common = 0;
      if (previous) {
        const std::size_t limit = std::min({s.size(), previous->size(), path.size()});
        while (common < limit && s[common] == (*previous)[common]) ++common;
      }
      while (path.size() > common) {
        trie_[path.back()].subtree_end = static_cast<std::uint32_t>(trie_.size());
        path.pop_back();
      }
      GLRNN_CHECK(s.size() <= 0xFFFF, InputError, "token " + std::to_string(id) + " is longer than 65535 bytes");
      for (std::size_t d = common; d < s.size(); ++d) {
        TrieNode node;
        node.byte = static_cast<std::uint8_t>(s[d]);
        node.depth = static_cast<std::uint16_t>(d + 1);
        node.tokens_begin = static_cast<std::uint32_t>(trie_tokens_.size());
        path.push_back(static_cast<std::uint32_t>(trie_.size()));
        trie_.push_back(node);
        max_depth_ = std::max<std::uint32_t>(max_depth_, node.depth);
      }
      trie_tokens_.push_back(id);  // the last node made, or the same bytes as the token before
      previous = &s;
    }
    while (!path.empty()) {
      trie_[path.back()].subtree_end = static_cast<std::uint32_t>(trie_.size());
      path.pop_back();
    }
  }

  std::vector<std::string> bytes_;
  std::vector<TrieNode> trie_;
  std::vector<std::int32_t> trie_tokens_;
  std::uint32_t max_depth_ = 0;
};

}  // namespace glrnn
