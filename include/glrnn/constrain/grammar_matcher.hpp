#pragma once
// Matching text against a Grammar one byte at a time, as a pushdown automaton with a set of stacks
// (one per way the text so far can be read; docs/constraints.md, "The matcher").
//
// A stack is a linked list of element positions: its top is the character set to match next, the
// nodes below are where to continue when the rule above them ends. Stacks are interned in
// GrammarStacks, so equal stacks are equal ids, sets of stacks are sorted id lists that compare
// and hash cheaply, and what follows a stack's top character is expanded once and remembered.
// Bytes are assembled into code points; a character split across tokens waits in Utf8Partial.

#include <algorithm>    // std::sort, std::unique
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t, std::uint32_t, std::uint64_t
#include <deque>        // std::deque
#include <memory>       // std::shared_ptr
#include <string>       // std::to_string
#include <string_view>  // std::string_view
#include <unordered_map>  // std::unordered_map
#include <unordered_set>  // std::unordered_set
#include <utility>      // std::move
#include <vector>       // std::vector

#include "glrnn/constrain/grammar.hpp"
#include "glrnn/core/error.hpp"

namespace glrnn {

/// The bytes of a UTF-8 character seen so far, when it is not yet complete.
struct Utf8Partial {
  std::uint32_t value = 0;     // the bits collected so far
  std::uint8_t remaining = 0;  // continuation bytes still expected
  std::uint8_t length = 0;     // the character's length in bytes
  bool operator==(const Utf8Partial& o) const { return value == o.value && remaining == o.remaining && length == o.length; }
};

/// The interned stacks of one grammar. Not thread-safe: one per matcher or per constraint.
class GrammarStacks {
 public:
  static constexpr std::uint32_t kAccepted = 0;  // the empty stack: the text so far is complete

  explicit GrammarStacks(std::shared_ptr<const Grammar> grammar, std::size_t max_stacks = std::size_t{1} << 20)
      : grammar_(std::move(grammar)), max_stacks_(max_stacks) {
    nodes_.push_back({kNoPosition, kAccepted});
    after_.emplace_back();
    for (std::uint32_t alternative : grammar_->alternatives(grammar_->root())) work_.push_back({alternative, kAccepted});
    expand(initial_);
  }

  const Grammar& grammar() const { return *grammar_; }
  /// The stacks before any text.
  const std::vector<std::uint32_t>& initial() const { return initial_; }

  /// Advances `from` by one byte into `to` (sorted ids); false when no stack survives. `to` must
  /// not alias `from`.
  bool step(const std::vector<std::uint32_t>& from, const Utf8Partial& partial, std::uint8_t byte,
            std::vector<std::uint32_t>& to, Utf8Partial& partial_out) {
    to.clear();
    partial_out = partial;
    if (!next_code_point(partial_out, byte)) return false;
    if (partial_out.remaining > 0) {
      // Keep the stacks while a character is incomplete, if some stack can still take one of
      // the code points it may become.
      // The bits so far fix a range of code points; the length fixes where valid ones start.
      static constexpr std::uint32_t kSmallest[5] = {0, 0, 0x80, 0x800, 0x10000};
      const std::uint32_t shift = 6u * partial_out.remaining;
      const std::uint32_t lo = std::max(partial_out.value << shift, kSmallest[partial_out.length]);
      const std::uint32_t hi = std::min((partial_out.value << shift) | ((1u << shift) - 1u), Grammar::kMaxCodePoint);
      for (std::uint32_t s : from) {
        if (s != kAccepted && grammar_->set_intersects(top_set(s), lo, hi)) {
          to = from;
          return true;
        }
      }
      return false;
    }
    const std::uint32_t cp = partial_out.value;
    partial_out = {};
    for (std::uint32_t s : from) {
      if (s == kAccepted || !grammar_->set_contains(top_set(s), cp)) continue;
      const std::vector<std::uint32_t>& next = after(s);
      to.insert(to.end(), next.begin(), next.end());
    }
    if (to.size() > 1) {
      std::sort(to.begin(), to.end());
      to.erase(std::unique(to.begin(), to.end()), to.end());
      GLRNN_CHECK(to.size() <= kMaxLiveStacks, InputError,
                  "grammar: the text can be read in more than " + std::to_string(kMaxLiveStacks) +
                      " ways at once (an ambiguous grammar)");
    }
    return !to.empty();
  }

 private:
  static constexpr std::uint32_t kNoPosition = 0xFFFFFFFFu;
  // Live stacks after one byte; JSON grammars need a handful, the bound stops pathological
  // ambiguity before it costs seconds per byte.
  static constexpr std::size_t kMaxLiveStacks = 4096;
  struct Node {
    std::uint32_t position;  // the element to match next in this stack's alternative
    std::uint32_t parent;    // the stack to continue with when the alternative ends
  };

  std::uint32_t top_set(std::uint32_t stack) const { return grammar_->element(nodes_[stack].position).value; }

  /// Adds one byte to a UTF-8 character; false for a byte no valid character has there.
  static bool next_code_point(Utf8Partial& p, std::uint8_t byte) {
    if (p.remaining == 0) {
      if (byte < 0x80) { p = {byte, 0, 1}; return true; }
      if (byte >= 0xC2 && byte <= 0xDF) { p = {byte & 0x1Fu, 1, 2}; return true; }
      if ((byte & 0xF0) == 0xE0) { p = {byte & 0x0Fu, 2, 3}; return true; }
      if (byte >= 0xF0 && byte <= 0xF4) { p = {byte & 0x07u, 3, 4}; return true; }
      return false;
    }
    if ((byte & 0xC0) != 0x80) return false;
    p.value = (p.value << 6) | (byte & 0x3Fu);
    --p.remaining;
    // Refuse overlong forms, surrogates and values past U+10FFFF as soon as they show.
    if (p.length == 3 && p.remaining == 1 && (p.value < 0x20 || (p.value >= 0x360 && p.value <= 0x37F))) return false;
    if (p.length == 4 && p.remaining == 2 && (p.value < 0x10 || p.value > 0x10F)) return false;
    return true;
  }

  std::uint32_t intern(std::uint32_t position, std::uint32_t parent) {
    const std::uint64_t key = (std::uint64_t{position} << 32) | parent;
    auto [it, added] = index_.emplace(key, static_cast<std::uint32_t>(nodes_.size()));
    if (added) {
      GLRNN_CHECK(nodes_.size() < max_stacks_, InputError,
                  "grammar: matching needs more than " + std::to_string(max_stacks_) + " stacks");
      nodes_.push_back({position, parent});
      after_.emplace_back();
    }
    return it->second;
  }

  /// The stacks after `stack`'s top character has matched, expanded once and kept.
  const std::vector<std::uint32_t>& after(std::uint32_t stack) {
    if (!after_[stack].known) {
      work_.push_back({nodes_[stack].position + 1, nodes_[stack].parent});
      std::vector<std::uint32_t> next;
      expand(next);
      after_[stack].stacks = std::move(next);
      after_[stack].known = true;
    }
    return after_[stack].stacks;
  }

  /// Expands the (position, parent) pairs in work_ until every stack's top is a character set
  /// (or the stack is empty); writes the sorted ids to `out`.
  void expand(std::vector<std::uint32_t>& out) {
    seen_.clear();
    while (!work_.empty()) {
      const Node n = work_.back();
      work_.pop_back();
      if (!seen_.insert((std::uint64_t{n.position} << 32) | n.parent).second) continue;
      const GrammarElement& e = grammar_->element(n.position);
      switch (e.kind) {
        case GrammarElement::Kind::End:
          if (n.parent == kAccepted) {
            out.push_back(kAccepted);
          } else {
            work_.push_back(nodes_[n.parent]);
          }
          break;
        case GrammarElement::Kind::Chars:
          out.push_back(intern(n.position, n.parent));
          break;
        case GrammarElement::Kind::Rule: {
          // A reference in tail position continues with the parent itself, so right recursion
          // (x*, a string's characters) keeps stacks from growing, and a cycle of tail
          // references meets a pair already seen.
          const bool tail = grammar_->element(n.position + 1).kind == GrammarElement::Kind::End;
          const std::uint32_t continuation = tail ? n.parent : intern(n.position + 1, n.parent);
          for (std::uint32_t alternative : grammar_->alternatives(e.value)) work_.push_back({alternative, continuation});
          break;
        }
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }

  struct After {
    bool known = false;
    std::vector<std::uint32_t> stacks;
  };

  std::shared_ptr<const Grammar> grammar_;
  std::size_t max_stacks_;
  std::vector<Node> nodes_;
  std::deque<After> after_;  // a deque: references stay valid while nodes are added
  std::unordered_map<std::uint64_t, std::uint32_t> index_;
  std::vector<Node> work_;
  std::unordered_set<std::uint64_t> seen_;
  std::vector<std::uint32_t> initial_;
};

/// Where one text stands in a grammar: the live stacks and an incomplete character.
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<GrammarStacks> stacks)
      : stacks_(std::move(stacks)), current_(stacks_->initial()) {}

  /// Consumes `bytes` if the grammar allows all of them; otherwise returns false and changes nothing.
  bool accept(std::string_view bytes) { return advance(bytes, true); }
  /// True when the grammar allows `bytes` next; changes nothing.
  bool allows(std::string_view bytes) { return advance(bytes, false); }

  /// True when the text so far is a complete sentence of the grammar.
  bool can_end() const {
    return partial_.remaining == 0 && !current_.empty() && current_.front() == GrammarStacks::kAccepted;
  }
  /// True when no character can follow (the text is complete and nothing may be added).
  bool finished() const {
    return partial_.remaining == 0 && current_.size() == 1 && current_.front() == GrammarStacks::kAccepted;
  }

  const std::vector<std::uint32_t>& stacks() const { return current_; }
  const Utf8Partial& partial() const { return partial_; }
  GrammarStacks& grammar_stacks() { return *stacks_; }

 private:
  bool advance(std::string_view bytes, bool commit) {
    scratch_a_ = current_;
    Utf8Partial partial = partial_;
    for (char c : bytes) {
      Utf8Partial next_partial;
      if (!stacks_->step(scratch_a_, partial, static_cast<std::uint8_t>(c), scratch_b_, next_partial)) return false;
      std::swap(scratch_a_, scratch_b_);
      partial = next_partial;
    }
    if (commit) {
      std::swap(current_, scratch_a_);
      partial_ = partial;
    }
    return true;
  }

  std::shared_ptr<GrammarStacks> stacks_;
  std::vector<std::uint32_t> current_;
  Utf8Partial partial_;
  std::vector<std::uint32_t> scratch_a_, scratch_b_;
};

/// True when the whole of `text` is a sentence of `grammar`.
inline bool grammar_accepts(const Grammar& grammar, std::string_view text) {
  // The stacks live only in this call: they borrow the grammar instead of copying it.
  GrammarMatcher matcher(std::make_shared<GrammarStacks>(std::shared_ptr<const Grammar>(&grammar, [](const Grammar*) {})));
  return matcher.accept(text) && matcher.can_end();
}

}  // namespace glrnn
