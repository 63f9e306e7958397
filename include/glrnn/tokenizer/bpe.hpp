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
#include <unordered_set>  // std::unordered_set
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
      merges_.insert(pair_key(ia, ib), Merge{static_cast<std::int32_t>(rank), merged});  // a later duplicate loses
      crossable_.insert(pair_key(static_cast<std::int32_t>(last_code_point(a)), static_cast<std::int32_t>(utf8::code_point(b, 0))));
    }
    for (const auto& [piece, id] : vocab_) {
      if (piece.size() != utf8::char_length(piece, 0)) continue;
      const std::uint32_t cp = utf8::code_point(piece, 0);
      if (cp < kDirectCodePoints && piece.size() == utf8::encode(cp).size()) direct_[cp] = id;
    }
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      byte_ids_[b] = id_of(name);
    }
  }

  /// The id of one character (a valid UTF-8 sequence or a single byte), or -1.
  std::int32_t char_id(std::string_view ch) const {
    if (ch.size() > 1 || static_cast<unsigned char>(ch[0]) < 0x80) {
      const std::uint32_t cp = utf8::code_point(ch, 0);
      if (cp < kDirectCodePoints) return direct_[cp];
    }
    return id_of(std::string(ch));
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
    // Merging is independent on the two sides of a boundary no merge can cross (no merge (A, B)
    // with A ending in the left character and B starting with the right one), so the word is
    // merged in such segments: the same result, with small queues instead of one of the size of
    // the text (a SentencePiece normaliser leaves whole paragraphs as one word).
    std::vector<Symbol> symbols;
    std::size_t begin = 0;
    std::uint32_t previous = 0;
    bool previous_known = false;  // a vocabulary character (byte-fallback ones may merge as bytes)
    for (std::size_t i = 0; i < word.size();) {
      const std::size_t len = utf8::char_length(word, i);
      const std::uint32_t cp = utf8::code_point(word, i);
      const bool known = char_id(word.substr(i, len)) >= 0;
      if (i > begin && previous_known && known && !crossable_.count(pair_key(static_cast<std::int32_t>(previous), static_cast<std::int32_t>(cp)))) {
        encode_segment(word.substr(begin, i - begin), symbols, out);
        begin = i;
      }
      previous = cp;
      previous_known = known;
      i += len;
    }
    encode_segment(word.substr(begin), symbols, out);
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
    std::int32_t left_id, right_id;  // the pair it merges, to recognise stale candidates
    // Lowest rank first, then leftmost, as the reference's heap orders them.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  void encode_segment(std::string_view segment, std::vector<Symbol>& symbols, std::vector<std::int32_t>& out) const {
    symbols.clear();
    split_into_symbols(segment, symbols);
    merge_all(symbols);
    for (std::int32_t i = 0; i >= 0 && i < static_cast<std::int32_t>(symbols.size()); i = symbols[i].next)
      out.push_back(symbols[i].id);
  }

  static std::uint32_t last_code_point(const std::string& piece) {
    std::size_t i = piece.size() - 1;
    while (i > 0 && (static_cast<unsigned char>(piece[i]) & 0xC0) == 0x80 && piece.size() - i < 4) --i;
    return utf8::char_length(piece, i) == piece.size() - i ? utf8::code_point(piece, i)
                                                           : static_cast<unsigned char>(piece.back());
  }

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
      const std::int32_t id = char_id(word.substr(i, len));
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

  const Merge* find_merge(std::int32_t a, std::int32_t b) const { return merges_.find(pair_key(a, b)); }

  /// Open-addressing hash table for the merge pairs: one probe sequence in one array, where a
  /// node-based map costs several cache misses per lookup (merging is dominated by lookups).
  class MergeTable {
   public:
    void reserve(std::size_t n) {
      std::size_t capacity = 16;
      while (capacity < 2 * n) capacity *= 2;
      slots_.assign(capacity, Slot{kEmpty, {}});
    }
    void insert(std::uint64_t key, Merge value) {
      for (std::size_t i = index(key);; i = (i + 1) & (slots_.size() - 1)) {
        if (slots_[i].key == key) return;  // keep the first (lowest rank) occurrence
        if (slots_[i].key == kEmpty) {
          slots_[i] = {key, value};
          return;
        }
      }
    }
    const Merge* find(std::uint64_t key) const {
      if (slots_.empty()) return nullptr;
      for (std::size_t i = index(key);; i = (i + 1) & (slots_.size() - 1)) {
        if (slots_[i].key == key) return &slots_[i].value;
        if (slots_[i].key == kEmpty) return nullptr;
      }
    }

   private:
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};  // no pair of valid ids has this key
    struct Slot {
      std::uint64_t key;
      Merge value;
    };
    std::size_t index(std::uint64_t key) const {
      return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & (slots_.size() - 1);
    }
    std::vector<Slot> slots_;
  };

  void merge_all(std::vector<Symbol>& symbols) const {
    std::priority_queue<Candidate> queue;
    const auto consider = [&](std::int32_t pos) {
      const std::int32_t next = symbols[pos].next;
      if (next < 0) return;
      if (const Merge* m = find_merge(symbols[pos].id, symbols[next].id))
        queue.push({m->rank, pos, m->id, symbols[pos].id, symbols[next].id});
    };
    for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i) consider(i);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& left = symbols[c.pos];
      if (!left.alive || left.next < 0) continue;
      // Skip candidates made stale by an earlier merge of either side.
      if (left.id != c.left_id || symbols[left.next].id != c.right_id) continue;
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
  static constexpr std::uint32_t kDirectCodePoints = 1 << 16;  // the Basic Multilingual Plane
  MergeTable merges_;
  std::unordered_set<std::uint64_t> crossable_;  // (last code point of A, first of B) over all merges (A, B)
  std::vector<std::int32_t> direct_ = std::vector<std::int32_t>(kDirectCodePoints, -1);  // code point -> id
  std::int32_t byte_ids_[256] = {};
  Options options_;
};

}  // namespace glrnn
