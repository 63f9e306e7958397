#pragma once
// The BPE model of Hugging Face tokenizers, SentencePiece flavour: characters, byte fallback to
// <0xXX> pieces, unknown-token fusion, then merges by rank. Merging uses a priority queue of
// candidate pairs over a linked list of symbols, so a word of n characters costs O(n log n).

#include <cstdint>        // std::int32_t, std::uint64_t
#include <cstdio>         // std::snprintf
#include <queue>          // std::priority_queue
#include <string>         // std::string
#include <string_view>    // std::string_view
#include <unordered_map>  // std::unordered_map
#include <utility>        // std::pair
#include <vector>         // std::vector

#include "glrnn/core/error.hpp"
#include "glrnn/tokenizer/utf8.hpp"

namespace glrnn {

class BpeModel {
 public:
  struct Options {
    bool byte_fallback = false;
    bool fuse_unk = false;
    bool ignore_merges = false;
    std::int32_t unk_id = -1;  // -1: no unknown token
  };

  BpeModel() = default;
  /// vocab: piece -> id; merges: pairs of pieces in rank order. Throws FormatError for a merge
  /// whose parts or result are not in the vocabulary.
  BpeModel(std::unordered_map<std::string, std::int32_t> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, Options options)
      : vocab_(std::move(vocab)), options_(options) {
    merges_.reserve(merges.size());
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [a, b] = merges[rank];
      const std::int32_t ia = id_of(a), ib = id_of(b), merged = id_of(a + b);
      GLRNN_CHECK(ia >= 0 && ib >= 0 && merged >= 0, FormatError,
                  "merge " + std::to_string(rank) + " ('" + a + "', '" + b + "') names a piece outside the vocabulary");
      merges_.emplace(pair_key(ia, ib), Merge{static_cast<std::int32_t>(rank), merged});
    }
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      byte_ids_[b] = id_of(name);
    }
  }

  /// The id of a piece, or -1.
  std::int32_t id_of(const std::string& piece) const {
    const auto it = vocab_.find(piece);
    return it == vocab_.end() ? -1 : it->second;
  }
  const std::unordered_map<std::string, std::int32_t>& vocab() const { return vocab_; }

  /// Appends the ids of one pre-tokenized word.
  void encode(std::string_view word, std::vector<std::int32_t>& out) const {
    if (word.empty()) return;
    if (options_.ignore_merges) {
      const std::int32_t whole = id_of(std::string(word));
      if (whole >= 0) {
        out.push_back(whole);
        return;
      }
    }
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());
    split_into_symbols(word, symbols);
    merge_all(symbols);
    for (std::int32_t i = 0; i >= 0 && i < static_cast<std::int32_t>(symbols.size()); i = symbols[i].next)
      out.push_back(symbols[i].id);
  }

 private:
  struct Merge {
    std::int32_t rank, id;
  };
  struct Symbol {
    std::int32_t id, prev, next;
    bool alive;
  };
  struct Candidate {
    std::int32_t rank, pos, id;
    // Lowest rank first, then leftmost, as the reference's heap orders them.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  // Characters (or invalid bytes) become pieces, else their bytes' <0xXX> pieces, else the unknown
  // token; consecutive unknowns fuse when fuse_unk. Mirrors tokenizers' BPE::merge_word.
  void split_into_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
    const auto add = [&](std::int32_t id) {
      const std::int32_t n = static_cast<std::int32_t>(symbols.size());
      symbols.push_back({id, n - 1, -1, true});
      if (n > 0) symbols[n - 1].next = n;
    };
    bool pending_unk = false;
    for (std::size_t i = 0; i < word.size();) {
      const std::size_t len = utf8::char_length(word, i);
      const std::int32_t id = id_of(std::string(word.substr(i, len)));
      if (id >= 0) {
        if (pending_unk) add(options_.unk_id);
        pending_unk = false;
        add(id);
      } else if (options_.byte_fallback && all_bytes_known(word.substr(i, len))) {
        for (std::size_t k = 0; k < len; ++k) add(byte_ids_[static_cast<unsigned char>(word[i + k])]);
      } else if (options_.unk_id >= 0) {
        if (pending_unk && !options_.fuse_unk) add(options_.unk_id);
        pending_unk = true;
      } else {
        throw InputError("the tokenizer has no piece, byte piece or unknown token for '" +
                         std::string(word.substr(i, len)) + "'");
      }
      i += len;
    }
    if (pending_unk) add(options_.unk_id);
  }

  bool all_bytes_known(std::string_view bytes) const {
    for (char c : bytes)
      if (byte_ids_[static_cast<unsigned char>(c)] < 0) return false;
    return true;
  }

  const Merge* find_merge(std::int32_t a, std::int32_t b) const {
    const auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  void merge_all(std::vector<Symbol>& symbols) const {
    std::priority_queue<Candidate> queue;
    const auto consider = [&](std::int32_t pos) {
      const std::int32_t next = symbols[pos].next;
      if (next < 0) return;
      if (const Merge* m = find_merge(symbols[pos].id, symbols[next].id)) queue.push({m->rank, pos, m->id});
    };
    for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i) consider(i);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& left = symbols[c.pos];
      if (!left.alive || left.next < 0) continue;
      // Skip candidates made stale by an earlier merge of either side.
      const Merge* m = find_merge(left.id, symbols[left.next].id);
      if (!m || m->rank != c.rank || m->id != c.id) continue;
      Symbol& right = symbols[left.next];
      right.alive = false;
      left.id = c.id;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = c.pos;
      if (left.prev >= 0) consider(left.prev);
      consider(c.pos);
    }
  }

  std::unordered_map<std::string, std::int32_t> vocab_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::int32_t byte_ids_[256] = {};
  Options options_;
};

}  // namespace glrnn
