#pragma once
// A Hugging Face tokenizer of the SentencePiece-BPE family (Gemma, Llama 2, Mistral), applied the
// way the `tokenizers` library applies it:
//   1. added tokens are matched in the raw text (leftmost-longest), honouring lstrip, rstrip and
//      single_word; tokens marked `normalized` are matched after normalisation;
//   2. each remaining piece is normalised (Replace, Prepend), pre-tokenised (Split, Metaspace)
//      and encoded by the BPE model;
//   3. the post-processor template adds special tokens (<bos>) when asked.
// Decoding maps ids to pieces and runs the decoder chain (Replace, ByteFallback, Fuse, Strip,
// Metaspace). Build one with load_tokenizer (tokenizer_json.hpp).

#include <algorithm>      // std::max, std::reverse
#include <cstdint>        // std::int32_t, std::uint32_t
#include <map>            // std::map
#include <memory>         // std::unique_ptr
#include <string>         // std::string
#include <string_view>    // std::string_view
#include <unordered_map>  // std::unordered_map
#include <vector>         // std::vector

#include "glrnn/core/error.hpp"
#include "glrnn/tokenizer/bpe.hpp"
#include "glrnn/tokenizer/utf8.hpp"

namespace glrnn {

struct AddedToken {
  std::int32_t id = -1;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, normalized = false, single_word = false;
};

/// Normalizer steps, applied in order to each piece of text between added tokens.
struct NormalizerStep {
  enum class Kind { Replace, Prepend } kind;
  std::string pattern;  // Replace: the literal string replaced
  std::string content;  // Replace: its replacement; Prepend: the prefix
};

/// Pre-tokenizer steps; each splits every piece further.
struct PreTokenizerStep {
  enum class Kind { Split, Metaspace } kind = Kind::Split;
  enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous } behavior =
      Behavior::Isolated;
  enum class Prepend { Always, First, Never } prepend = Prepend::Always;
  std::string pattern;  // Split: the literal delimiter; Metaspace: the replacement ("▁")
  bool split = true;    // Metaspace: split on the replacement
};

/// Decoder steps, applied in order to the list of pieces.
struct DecoderStep {
  enum class Kind { Replace, ByteFallback, Fuse, Strip, Metaspace } kind = Kind::Fuse;
  std::string pattern, content;  // Replace; Strip: content is the stripped character; Metaspace: pattern
  int start = 0, stop = 0;       // Strip
  PreTokenizerStep::Prepend prepend = PreTokenizerStep::Prepend::Always;  // Metaspace
};

/// One item of the post-processor's template for a single sequence.
struct TemplateItem {
  bool is_sequence = false;       // the encoded text
  std::vector<std::int32_t> ids;  // otherwise: these special ids
};

class Tokenizer {
 public:
  Tokenizer() = default;
  Tokenizer(BpeModel model, std::vector<AddedToken> added, std::vector<NormalizerStep> normalizer,
            std::vector<PreTokenizerStep> pre_tokenizer, std::vector<TemplateItem> single_template,
            std::vector<DecoderStep> decoder)
      : model_(std::move(model)), added_(std::move(added)), normalizer_(std::move(normalizer)),
        pre_tokenizer_(std::move(pre_tokenizer)), template_(std::move(single_template)), decoder_(std::move(decoder)) {
    for (const DecoderStep& step : decoder_) byte_fallback_ |= step.kind == DecoderStep::Kind::ByteFallback;
    std::int32_t max_id = -1;
    for (const auto& [piece, id] : model_.vocab()) max_id = std::max(max_id, id);
    for (const AddedToken& t : added_) max_id = std::max(max_id, t.id);
    pieces_.resize(static_cast<std::size_t>(max_id + 1));
    special_.assign(pieces_.size(), false);
    for (const auto& [piece, id] : model_.vocab()) pieces_[static_cast<std::size_t>(id)] = piece;
    for (std::size_t i = 0; i < added_.size(); ++i) {
      const AddedToken& t = added_[i];
      pieces_[static_cast<std::size_t>(t.id)] = t.content;
      special_[static_cast<std::size_t>(t.id)] = t.special;
      (t.normalized ? normalized_trie_ : raw_trie_).insert(t.content, static_cast<std::int32_t>(i));
    }
  }

  /// Ids 0 .. vocab_size()-1 (model vocabulary and added tokens).
  std::int32_t vocab_size() const { return static_cast<std::int32_t>(pieces_.size()); }
  /// The piece of an id ("▁the", "<0x0A>", "<bos>"). Throws InputError outside the vocabulary.
  const std::string& piece(std::int32_t id) const {
    check_id(id);
    return pieces_[static_cast<std::size_t>(id)];
  }
  bool is_special(std::int32_t id) const { return id >= 0 && id < vocab_size() && special_[static_cast<std::size_t>(id)]; }
  /// The byte a byte-fallback piece ("<0xE4>") stands for when the decoder has ByteFallback, else -1.
  int byte_value(std::int32_t id) const {
    check_id(id);
    const std::string& p = pieces_[static_cast<std::size_t>(id)];
    if (!byte_fallback_ || p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return -1;
    const int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
  /// The id of a piece or added token, or -1.
  std::int32_t token_id(const std::string& piece) const {
    for (const AddedToken& t : added_)
      if (t.content == piece) return t.id;
    return model_.id_of(piece);
  }

  /// Text to ids. add_special: apply the post-processor template (e.g. prepend <bos>).
  /// match_added_tokens false treats added tokens' text as plain text (for untrusted input).
  std::vector<std::int32_t> encode(std::string_view text, bool add_special, bool match_added_tokens = true) const {
    std::vector<std::int32_t> body;
    for (const Piece& raw : split_added(text, raw_trie_, match_added_tokens)) {
      if (raw.added >= 0) {
        body.push_back(added_[static_cast<std::size_t>(raw.added)].id);
        continue;
      }
      const std::string normalized = normalize(raw.text);
      for (const Piece& p : split_added(normalized, normalized_trie_, match_added_tokens)) {
        if (p.added >= 0) {
          body.push_back(added_[static_cast<std::size_t>(p.added)].id);
          continue;
        }
        for (const std::string& word : pre_tokenize(p.text, raw.begin == 0 && p.begin == 0)) model_.encode(word, body);
      }
    }
    if (!add_special || template_.empty()) return body;
    std::vector<std::int32_t> out;
    for (const TemplateItem& item : template_) {
      if (item.is_sequence) out.insert(out.end(), body.begin(), body.end());
      else out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
    return out;
  }

  /// Ids to text through the decoder chain. Throws InputError for an id outside the vocabulary.
  std::string decode(const std::vector<std::int32_t>& ids, bool skip_special = false) const {
    std::vector<std::string> pieces;
    pieces.reserve(ids.size());
    for (std::int32_t id : ids) {
      check_id(id);
      if (skip_special && special_[static_cast<std::size_t>(id)]) continue;
      pieces.push_back(pieces_[static_cast<std::size_t>(id)]);
    }
    for (const DecoderStep& step : decoder_) pieces = apply(step, std::move(pieces));
    std::string text;
    for (const std::string& p : pieces) text += p;
    return text;
  }

 private:
  /// Added-token contents for leftmost-longest matching.
  class Trie {
   public:
    void insert(const std::string& key, std::int32_t value) {
      if (key.empty()) return;
      std::int32_t node = 0;
      for (unsigned char c : key) {
        auto it = nodes_[static_cast<std::size_t>(node)].children.find(c);
        if (it == nodes_[static_cast<std::size_t>(node)].children.end()) {
          nodes_.push_back({});
          it = nodes_[static_cast<std::size_t>(node)].children.emplace(c, static_cast<std::int32_t>(nodes_.size() - 1)).first;
        }
        node = it->second;
      }
      nodes_[static_cast<std::size_t>(node)].value = value;
    }
    bool empty() const { return nodes_.size() == 1; }
    /// The longest key starting at text[i]: (value, length), or (-1, 0).
    std::pair<std::int32_t, std::size_t> longest_at(std::string_view text, std::size_t i) const {
      std::pair<std::int32_t, std::size_t> best{-1, 0};
      std::int32_t node = 0;
      for (std::size_t k = i; k < text.size(); ++k) {
        const auto& children = nodes_[static_cast<std::size_t>(node)].children;
        const auto it = children.find(static_cast<unsigned char>(text[k]));
        if (it == children.end()) break;
        node = it->second;
        if (nodes_[static_cast<std::size_t>(node)].value >= 0) best = {nodes_[static_cast<std::size_t>(node)].value, k + 1 - i};
      }
      return best;
    }

   private:
    struct Node {
      std::map<unsigned char, std::int32_t> children;
      std::int32_t value = -1;
    };
    std::vector<Node> nodes_ = std::vector<Node>(1);
  };

  struct Piece {
    std::string text;
    std::size_t begin;       // offset in the string it was split from
    std::int32_t added = -1; // index into added_ when the piece is an added token
  };

  void check_id(std::int32_t id) const {
    GLRNN_CHECK(id >= 0 && id < vocab_size(), InputError,
                "token id " + std::to_string(id) + " is outside the tokenizer's vocabulary [0, " +
                    std::to_string(vocab_size()) + ")");
  }

  static std::uint32_t char_before(std::string_view text, std::size_t end) {
    std::size_t i = end;
    while (i > 0 && (static_cast<unsigned char>(text[i - 1]) & 0xC0) == 0x80 && end - i < 3) --i;
    if (i > 0) --i;
    return utf8::code_point(text, i);
  }

  /// Splits text into added tokens and the text between them (tokenizers' split_with_indices).
  std::vector<Piece> split_added(std::string_view text, const Trie& trie, bool enabled) const {
    std::vector<Piece> pieces;
    std::size_t emitted = 0;  // text before this offset is already in `pieces`
    for (std::size_t i = 0; enabled && !trie.empty() && i < text.size();) {
      const auto [index, length] = trie.longest_at(text, i);
      if (index < 0) {
        i += utf8::char_length(text, i);
        continue;
      }
      const AddedToken& t = added_[static_cast<std::size_t>(index)];
      std::size_t start = i, stop = i + length;
      if (t.single_word && ((start > 0 && utf8::is_word_char(char_before(text, start))) ||
                            (stop < text.size() && utf8::is_word_char(utf8::code_point(text, stop))))) {
        i += utf8::char_length(text, i);
        continue;
      }
      if (t.lstrip)
        while (start > emitted && utf8::is_whitespace(char_before(text, start))) start -= utf8::encode(char_before(text, start)).size();
      if (t.rstrip)
        while (stop < text.size() && utf8::is_whitespace(utf8::code_point(text, stop))) stop += utf8::char_length(text, stop);
      if (start > emitted) pieces.push_back({std::string(text.substr(emitted, start - emitted)), emitted});
      pieces.push_back({std::string(text.substr(start, stop - start)), start, index});
      emitted = i = stop;
    }
    if (emitted < text.size()) pieces.push_back({std::string(text.substr(emitted)), emitted});
    return pieces;
  }

  static void replace_all(std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    for (std::size_t hit; (hit = s.find(from, i)) != std::string::npos; i = hit + from.size()) {
      out.append(s, i, hit - i);
      out += to;
    }
    out.append(s, i, std::string::npos);
    s = std::move(out);
  }

  std::string normalize(std::string text) const {
    for (const NormalizerStep& step : normalizer_) {
      if (step.kind == NormalizerStep::Kind::Replace) replace_all(text, step.pattern, step.content);
      else if (!text.empty()) text = step.content + text;  // Prepend leaves empty text alone
    }
    return text;
  }

  /// at_start: the piece begins the input (Metaspace's prepend_scheme "first").
  std::vector<std::string> pre_tokenize(const std::string& text, bool at_start) const {
    std::vector<std::string> words{text};
    for (const PreTokenizerStep& step : pre_tokenizer_) {
      std::vector<std::string> next;
      for (std::size_t w = 0; w < words.size(); ++w) {
        if (step.kind == PreTokenizerStep::Kind::Split) {
          split(words[w], step.pattern, step.behavior, next);
          continue;
        }
        std::string word = words[w];
        replace_all(word, " ", step.pattern);
        const bool prepend = step.prepend == PreTokenizerStep::Prepend::Always ||
                             (step.prepend == PreTokenizerStep::Prepend::First && at_start && w == 0);
        if (prepend && word.compare(0, step.pattern.size(), step.pattern) != 0) word = step.pattern + word;
        if (step.split) split(word, step.pattern, PreTokenizerStep::Behavior::MergedWithNext, next);
        else next.push_back(word);
      }
      words = std::move(next);
    }
    return words;
  }

  /// Splits on every occurrence of `delim` with tokenizers' SplitDelimiterBehavior: e.g. for
  /// "the-final--countdown" and "-", MergedWithPrevious gives the- final- - countdown and
  /// MergedWithNext gives the -final - -countdown.
  static void split(const std::string& text, const std::string& delim, PreTokenizerStep::Behavior behavior,
                    std::vector<std::string>& out) {
    using B = PreTokenizerStep::Behavior;
    struct Segment {
      std::string text;
      bool is_delim;
    };
    std::vector<Segment> segments;  // the whole text, delimiters as their own segments
    std::size_t i = 0;
    for (std::size_t hit; !delim.empty() && (hit = text.find(delim, i)) != std::string::npos; i = hit + delim.size()) {
      if (hit > i) segments.push_back({text.substr(i, hit - i), false});
      segments.push_back({delim, true});
    }
    if (i < text.size()) segments.push_back({text.substr(i), false});

    std::vector<Segment> merged;
    bool previous_delim = false;
    if (behavior == B::MergedWithNext) {
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->is_delim && !previous_delim && !merged.empty()) merged.back().text = it->text + merged.back().text;
        else merged.push_back(*it);
        previous_delim = it->is_delim;
      }
      std::reverse(merged.begin(), merged.end());
    } else {
      for (const Segment& seg : segments) {
        const bool join = behavior == B::MergedWithPrevious ? seg.is_delim && !previous_delim
                          : behavior == B::Contiguous       ? seg.is_delim && previous_delim
                                                            : false;
        if (join && !merged.empty()) merged.back().text += seg.text;
        else merged.push_back(seg);
        previous_delim = seg.is_delim;
      }
    }
    for (Segment& seg : merged)
      if (!(behavior == B::Removed && seg.is_delim)) out.push_back(std::move(seg.text));
  }

  static std::vector<std::string> apply(const DecoderStep& step, std::vector<std::string> pieces) {
    using K = DecoderStep::Kind;
    switch (step.kind) {
      case K::Replace:
        for (std::string& p : pieces) replace_all(p, step.pattern, step.content);
        return pieces;
      case K::Fuse: {
        std::string all;
        for (const std::string& p : pieces) all += p;
        return {all};
      }
      case K::Strip:
        for (std::string& p : pieces) {
          std::size_t begin = 0, end = p.size();
          for (int k = 0; k < step.start && begin < end && p.compare(begin, step.content.size(), step.content) == 0; ++k)
            begin += step.content.size();
          for (int k = 0; k < step.stop && end - begin >= step.content.size() &&
                          p.compare(end - step.content.size(), step.content.size(), step.content) == 0;
               ++k)
            end -= step.content.size();
          p = p.substr(begin, end - begin);
        }
        return pieces;
      case K::Metaspace:
        for (std::size_t i = 0; i < pieces.size(); ++i) {
          replace_all(pieces[i], step.pattern, " ");
          if (i == 0 && step.prepend != PreTokenizerStep::Prepend::Never && !pieces[i].empty() && pieces[i][0] == ' ')
            pieces[i].erase(0, 1);
        }
        return pieces;
      case K::ByteFallback:
        return byte_fallback(std::move(pieces));
    }
    return pieces;
  }

  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }

  /// Runs of <0xXX> pieces become their bytes when those form valid UTF-8, else one U+FFFD per
  /// byte (as tokenizers' ByteFallback decoder).
  static std::vector<std::string> byte_fallback(std::vector<std::string> pieces) {
    std::vector<std::string> out;
    std::string bytes;
    const auto flush = [&] {
      if (bytes.empty()) return;
      if (utf8::is_valid(bytes)) {
        out.push_back(bytes);
      } else {
        for (std::size_t k = 0; k < bytes.size(); ++k) out.push_back("\xEF\xBF\xBD");
      }
      bytes.clear();
    };
    for (std::string& p : pieces) {
      if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && hex_digit(p[3]) >= 0 && hex_digit(p[4]) >= 0) {
        bytes += static_cast<char>(hex_digit(p[3]) * 16 + hex_digit(p[4]));
      } else {
        flush();
        out.push_back(std::move(p));
      }
    }
    flush();
    return out;
  }

  BpeModel model_;
  std::vector<AddedToken> added_;
  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  std::vector<TemplateItem> template_;
  std::vector<DecoderStep> decoder_;
  std::vector<std::string> pieces_;  // id -> piece
  std::vector<bool> special_;        // id -> special added token
  bool byte_fallback_ = false;       // the decoder turns <0xXX> pieces into bytes
  Trie raw_trie_, normalized_trie_;
};

}  // namespace glrnn
