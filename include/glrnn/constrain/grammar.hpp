#pragma once
// A context-free grammar over Unicode code points, written in GBNF (llama.cpp's form; the syntax
// and its limits are in docs/constraints.md), compiled to a flat table that the matcher walks.
//
// Each rule is a list of alternatives; an alternative is a run of elements in `elements()` that
// ends with an End element. An element is a character set (sorted, disjoint code-point ranges;
// negation is resolved at parse time) or a reference to a rule. Groups and repetitions become
// generated rules: `x*` is `R ::= x R | ""`, `x{m,n}` is m copies of x and a chain of n - m
// optional ones. A grammar is refused when a rule is undefined, when a rule can reach itself
// without consuming a character (left recursion: the matcher would expand it forever), or when
// `root` can never finish.

#include <algorithm>    // std::sort, std::lower_bound, std::min
#include <array>        // std::array
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint32_t, std::uint64_t
#include <map>          // std::map
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move, std::pair
#include <vector>       // std::vector

#include "glrnn/core/error.hpp"
#include "glrnn/tokenizer/utf8.hpp"

namespace glrnn {

/// A closed range of code points.
struct CodeRange {
  std::uint32_t lo = 0;
  std::uint32_t hi = 0;
};

struct GrammarElement {
  enum class Kind : std::uint8_t { End, Chars, Rule };
  Kind kind = Kind::End;
  std::uint32_t value = 0;  // Chars: the set's index; Rule: the rule's index
};

/// Limits that keep a hostile grammar from taking unbounded time or memory to compile.
struct GrammarLimits {
  std::uint32_t max_repetition = 10000;     // the largest m or n in x{m,n}
  std::size_t max_elements = 4'000'000;     // elements after repetitions are expanded
  std::size_t max_nesting = 256;            // parentheses inside one another
};

class Grammar {
 public:
  static constexpr std::uint32_t kMaxCodePoint = 0x10FFFF;

  /// Parses GBNF text; `root` names the start rule. Throws InputError with the line and column.
  static Grammar parse(std::string_view text, std::string_view root = "root", const GrammarLimits& limits = {});

  std::uint32_t root() const { return root_; }
  std::size_t rule_count() const { return rule_alternatives_.size(); }
  /// Element positions where the alternatives of `rule` start.
  const std::vector<std::uint32_t>& alternatives(std::uint32_t rule) const { return rule_alternatives_[rule]; }
  const std::vector<GrammarElement>& elements() const { return elements_; }
  const GrammarElement& element(std::uint32_t position) const { return elements_[position]; }
  const std::string& rule_name(std::uint32_t rule) const { return rule_names_[rule]; }

  /// True when set `set` holds code point `cp`.
  bool set_contains(std::uint32_t set, std::uint32_t cp) const {
    if (cp < 128) return (ascii_[set][cp >> 6] >> (cp & 63)) & 1u;
    const std::vector<CodeRange>& ranges = sets_[set];
    // Ranges are sorted and disjoint: the first range whose end is >= cp decides.
    auto it = std::lower_bound(ranges.begin(), ranges.end(), cp,
                               [](const CodeRange& r, std::uint32_t c) { return r.hi < c; });
    return it != ranges.end() && it->lo <= cp;
  }
  /// True when set `set` holds some code point in [lo, hi].
  bool set_intersects(std::uint32_t set, std::uint32_t lo, std::uint32_t hi) const {
    const std::vector<CodeRange>& ranges = sets_[set];
    auto it = std::lower_bound(ranges.begin(), ranges.end(), lo,
                               [](const CodeRange& r, std::uint32_t c) { return r.hi < c; });
    return it != ranges.end() && it->lo <= hi;
  }

 private:
  class Parser;

  std::uint32_t add_set(std::vector<CodeRange> ranges, bool negated);
  void check_rules() const;

  std::vector<std::string> rule_names_;
  std::vector<std::vector<std::uint32_t>> rule_alternatives_;
  std::vector<GrammarElement> elements_;
  std::vector<std::vector<CodeRange>> sets_;
  std::vector<std::array<std::uint64_t, 2>> ascii_;  // per set: which of the 128 ASCII code points it holds
  std::map<std::vector<std::pair<std::uint32_t, std::uint32_t>>, std::uint32_t> set_index_;
  std::uint32_t root_ = 0;
};

namespace detail {

/// Builds a Grammar from GBNF text: rules as nested lists first, flattened at the end.
class GbnfParser {
 public:
  using Sequence = std::vector<GrammarElement>;
  using Alternatives = std::vector<Sequence>;

  GbnfParser(std::string_view text, const GrammarLimits& limits) : text_(text), limits_(limits) {}

  void parse() {
    skip_space(true);
    while (pos_ < text_.size()) {
      const std::size_t start = pos_;
      const std::string name = parse_name();
      skip_space(false);
      GLRNN_CHECK(text_.substr(pos_, 3) == "::=", InputError, error_at(pos_, "expected ::= after the rule name"));
      pos_ += 3;
      skip_space(true);
      const std::uint32_t rule = rule_index(name);
      GLRNN_CHECK(!defined_[rule], InputError, error_at(start, "rule " + name + " is defined twice"));
      defined_[rule] = true;
      rules_[rule] = parse_alternatives(false, 0);
      GLRNN_CHECK(pos_ >= text_.size() || text_[pos_] == '\n' || text_[pos_] == '\r', InputError,
                  error_at(pos_, "unexpected character"));
      skip_space(true);
    }
    for (std::size_t r = 0; r < rules_.size(); ++r)
      GLRNN_CHECK(defined_[r], InputError, "grammar: rule " + names_[r] + " is used but not defined");
  }

  std::vector<std::string> names_;
  std::vector<Alternatives> rules_;
  std::vector<std::pair<std::vector<CodeRange>, bool>> sets_;  // ranges, negated

 private:
  std::string error_at(std::size_t at, const std::string& what) const {
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') { ++line; column = 1; } else { ++column; }
    }
    return "grammar: line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + what;
  }

  static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  }

  /// Skips blanks and comments; newlines too when `newlines` (inside parentheses, after | or ::=).
  void skip_space(bool newlines) {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else if (newlines && (c == '\n' || c == '\r')) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  /// True when the next line (after blanks) continues the rule with `|`.
  bool continues_with_bar() const {
    std::size_t i = pos_;
    while (i < text_.size() && (text_[i] == ' ' || text_[i] == '\t' || text_[i] == '\n' || text_[i] == '\r')) ++i;
    return i < text_.size() && text_[i] == '|';
  }

  std::string parse_name() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    GLRNN_CHECK(pos_ > start, InputError, error_at(start, "expected a rule name"));
    return std::string(text_.substr(start, pos_ - start));
  }

  std::uint32_t rule_index(const std::string& name) {
    auto [it, added] = index_.emplace(name, static_cast<std::uint32_t>(names_.size()));
    if (added) {
      names_.push_back(name);
      rules_.emplace_back();
      defined_.push_back(false);
    }
    return it->second;
  }

  std::uint32_t new_rule(Alternatives alternatives) {
    // Generated names hold characters a GBNF name cannot, so they never meet a user's rule.
    const std::uint32_t rule = rule_index("<" + std::to_string(names_.size()) + ">");
    rules_[rule] = std::move(alternatives);
    defined_[rule] = true;
    return rule;
  }

  /// One character of a literal or class: a UTF-8 character or an escape.
  std::uint32_t parse_char() {
    GLRNN_CHECK(pos_ < text_.size(), InputError, error_at(pos_, "unexpected end of the grammar"));
    if (text_[pos_] != '\\') {
      const std::size_t n = utf8::char_length(text_, pos_);
      GLRNN_CHECK(n > 1 || static_cast<unsigned char>(text_[pos_]) < 0x80, InputError,
                  error_at(pos_, "the grammar is not valid UTF-8"));
      const std::uint32_t cp = utf8::code_point(text_, pos_);
      pos_ += n;
      return cp;
    }
    const std::size_t at = pos_++;
    GLRNN_CHECK(pos_ < text_.size(), InputError, error_at(at, "unfinished escape"));
    const char c = text_[pos_++];
    switch (c) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<std::uint32_t>(c);
      case 'x': return parse_hex(2, at);
      case 'u': return parse_hex(4, at);
      case 'U': return parse_hex(8, at);
      default: throw InputError(error_at(at, std::string("unknown escape \\") + c));
    }
  }

  std::uint32_t parse_hex(int digits, std::size_t at) {
    std::uint32_t value = 0;
    for (int i = 0; i < digits; ++i, ++pos_) {
      GLRNN_CHECK(pos_ < text_.size(), InputError, error_at(at, "unfinished hex escape"));
      const char c = text_[pos_];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      GLRNN_CHECK(d >= 0, InputError, error_at(at, "bad hex digit in escape"));
      value = value * 16 + static_cast<std::uint32_t>(d);
    }
    GLRNN_CHECK(value <= Grammar::kMaxCodePoint, InputError, error_at(at, "escape beyond U+10FFFF"));
    return value;
  }

  std::uint32_t add_set(std::vector<CodeRange> ranges, bool negated) {
    sets_.emplace_back(std::move(ranges), negated);
    return static_cast<std::uint32_t>(sets_.size() - 1);
  }

  void grow(std::size_t elements) {
    element_count_ += elements;
    GLRNN_CHECK(element_count_ <= limits_.max_elements, InputError,
                "grammar: more than " + std::to_string(limits_.max_elements) + " elements after expanding repetitions");
  }

  Alternatives parse_alternatives(bool nested, std::size_t depth) {
    GLRNN_CHECK(depth <= limits_.max_nesting, InputError, error_at(pos_, "parentheses nest too deeply"));
    Alternatives alternatives;
    alternatives.push_back(parse_sequence(nested, depth));
    while (pos_ < text_.size() && (text_[pos_] == '|' || (!nested && continues_with_bar()))) {
      skip_space(true);
      ++pos_;  // the '|'
      skip_space(true);
      alternatives.push_back(parse_sequence(nested, depth));
    }
    return alternatives;
  }

  Sequence parse_sequence(bool nested, std::size_t depth) {
    Sequence sequence;
    std::size_t last_start = 0;  // where the last symbol (the operand of a postfix) begins
    bool have_symbol = false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      const std::size_t at = pos_;
      if (c == '"') {
        ++pos_;
        last_start = sequence.size();
        while (pos_ < text_.size() && text_[pos_] != '"') {
          const std::uint32_t cp = parse_char();
          sequence.push_back({GrammarElement::Kind::Chars, add_set({{cp, cp}}, false)});
        }
        GLRNN_CHECK(pos_ < text_.size(), InputError, error_at(at, "unterminated string literal"));
        ++pos_;
        have_symbol = true;
      } else if (c == '[') {
        ++pos_;
        bool negated = pos_ < text_.size() && text_[pos_] == '^';
        if (negated) ++pos_;
        std::vector<CodeRange> ranges;
        while (pos_ < text_.size() && text_[pos_] != ']') {
          const std::uint32_t lo = parse_char();
          std::uint32_t hi = lo;
          if (pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] != ']') {
            ++pos_;
            hi = parse_char();
            GLRNN_CHECK(lo <= hi, InputError, error_at(at, "a character range runs backwards"));
          }
          ranges.push_back({lo, hi});
        }
        GLRNN_CHECK(pos_ < text_.size(), InputError, error_at(at, "unterminated character class"));
        ++pos_;
        last_start = sequence.size();
        sequence.push_back({GrammarElement::Kind::Chars, add_set(std::move(ranges), negated)});
        have_symbol = true;
      } else if (c == '.') {
        ++pos_;
        last_start = sequence.size();
        sequence.push_back({GrammarElement::Kind::Chars, add_set({}, true)});
        have_symbol = true;
      } else if (is_name_char(c)) {
        const std::string name = parse_name();
        last_start = sequence.size();
        sequence.push_back({GrammarElement::Kind::Rule, rule_index(name)});
        have_symbol = true;
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        Alternatives group = parse_alternatives(true, depth + 1);
        GLRNN_CHECK(pos_ < text_.size() && text_[pos_] == ')', InputError, error_at(at, "unclosed parenthesis"));
        ++pos_;
        last_start = sequence.size();
        sequence.push_back({GrammarElement::Kind::Rule, new_rule(std::move(group))});
        have_symbol = true;
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        GLRNN_CHECK(have_symbol, InputError, error_at(at, std::string("'") + c + "' follows nothing"));
        ++pos_;
        std::uint32_t min = 0, max = kUnbounded;
        if (c == '+') min = 1;
        if (c == '?') max = 1;
        if (c == '{') parse_bounds(at, min, max);
        repeat(sequence, last_start, min, max);
        have_symbol = false;  // x** is refused, as in llama.cpp
      } else {
        break;
      }
      skip_space(nested);
    }
    grow(sequence.size() + 1);
    return sequence;
  }

  static constexpr std::uint32_t kUnbounded = 0xFFFFFFFFu;

  std::uint32_t parse_count(std::size_t at) {
    const std::size_t start = pos_;
    std::uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + static_cast<std::uint64_t>(text_[pos_++] - '0');
      GLRNN_CHECK(value <= limits_.max_repetition, InputError,
                  error_at(at, "repetition count above " + std::to_string(limits_.max_repetition)));
    }
    GLRNN_CHECK(pos_ > start, InputError, error_at(at, "expected a number in {m,n}"));
    return static_cast<std::uint32_t>(value);
  }

  void parse_bounds(std::size_t at, std::uint32_t& min, std::uint32_t& max) {
    skip_space(false);
    min = max = parse_count(at);
    skip_space(false);
    if (pos_ < text_.size() && text_[pos_] == ',') {
      ++pos_;
      skip_space(false);
      max = pos_ < text_.size() && text_[pos_] == '}' ? kUnbounded : parse_count(at);
      skip_space(false);
    }
    GLRNN_CHECK(pos_ < text_.size() && text_[pos_] == '}', InputError, error_at(at, "expected } after {m,n"));
    ++pos_;
    GLRNN_CHECK(min <= max, InputError, error_at(at, "{m,n} with m > n"));
  }

  /// Replaces the symbol at sequence[from:] by m copies and the optional rest.
  void repeat(Sequence& sequence, std::size_t from, std::uint32_t min, std::uint32_t max) {
    const Sequence item(sequence.begin() + static_cast<std::ptrdiff_t>(from), sequence.end());
    sequence.resize(from);
    grow(item.size() * (min + (max == kUnbounded ? 1 : max - min)));
    for (std::uint32_t i = 0; i < min; ++i) sequence.insert(sequence.end(), item.begin(), item.end());
    if (max == kUnbounded) {
      // R ::= item R | ""
      const std::uint32_t rule = new_rule({});
      Sequence loop = item;
      loop.push_back({GrammarElement::Kind::Rule, rule});
      rules_[rule] = {loop, {}};
      sequence.push_back({GrammarElement::Kind::Rule, rule});
    } else if (max > min) {
      // R1 ::= item | "";  Rk ::= item R(k-1) | ""
      std::uint32_t inner = new_rule({item, {}});
      for (std::uint32_t k = 1; k < max - min; ++k) {
        Sequence step = item;
        step.push_back({GrammarElement::Kind::Rule, inner});
        inner = new_rule({step, {}});
      }
      sequence.push_back({GrammarElement::Kind::Rule, inner});
    }
  }

  std::string_view text_;
  GrammarLimits limits_;
  std::size_t pos_ = 0;
  std::size_t element_count_ = 0;
  std::map<std::string, std::uint32_t> index_;
  std::vector<bool> defined_;
};

}  // namespace detail

inline Grammar Grammar::parse(std::string_view text, std::string_view root, const GrammarLimits& limits) {
  detail::GbnfParser parser(text, limits);
  parser.parse();
  Grammar grammar;
  grammar.rule_names_ = std::move(parser.names_);
  std::uint32_t root_rule = 0;
  bool found = false;
  for (std::uint32_t r = 0; r < grammar.rule_names_.size(); ++r) {
    if (grammar.rule_names_[r] == root) { root_rule = r; found = true; }
  }
  GLRNN_CHECK(found, InputError, "grammar: no rule named " + std::string(root));
  grammar.root_ = root_rule;
  std::vector<std::uint32_t> set_of(parser.sets_.size());
  for (std::size_t i = 0; i < parser.sets_.size(); ++i)
    set_of[i] = grammar.add_set(std::move(parser.sets_[i].first), parser.sets_[i].second);
  grammar.rule_alternatives_.resize(parser.rules_.size());
  for (std::size_t r = 0; r < parser.rules_.size(); ++r) {
    for (const auto& alternative : parser.rules_[r]) {
      grammar.rule_alternatives_[r].push_back(static_cast<std::uint32_t>(grammar.elements_.size()));
      for (GrammarElement e : alternative) {
        if (e.kind == GrammarElement::Kind::Chars) e.value = set_of[e.value];
        grammar.elements_.push_back(e);
      }
      grammar.elements_.push_back({GrammarElement::Kind::End, 0});
    }
  }
  grammar.check_rules();
  return grammar;
}

inline std::uint32_t Grammar::add_set(std::vector<CodeRange> ranges, bool negated) {
  std::sort(ranges.begin(), ranges.end(), [](const CodeRange& a, const CodeRange& b) { return a.lo < b.lo; });
  std::vector<CodeRange> merged;
  for (const CodeRange& r : ranges) {
    if (!merged.empty() && r.lo <= merged.back().hi + 1) {
      merged.back().hi = std::max(merged.back().hi, r.hi);
    } else {
      merged.push_back(r);
    }
  }
  if (negated) {
    std::vector<CodeRange> complement;
    std::uint32_t next = 0;
    for (const CodeRange& r : merged) {
      if (r.lo > next) complement.push_back({next, r.lo - 1});
      next = r.hi + 1;
    }
    if (next <= kMaxCodePoint) complement.push_back({next, kMaxCodePoint});
    merged = std::move(complement);
  }
  std::vector<std::pair<std::uint32_t, std::uint32_t>> key;
  for (const CodeRange& r : merged) key.emplace_back(r.lo, r.hi);
  auto [it, added] = set_index_.emplace(std::move(key), static_cast<std::uint32_t>(sets_.size()));
  if (added) {
    std::array<std::uint64_t, 2> ascii{0, 0};
    for (const CodeRange& r : merged)
      for (std::uint32_t cp = r.lo; cp <= r.hi && cp < 128; ++cp) ascii[cp >> 6] |= std::uint64_t{1} << (cp & 63);
    sets_.push_back(std::move(merged));
    ascii_.push_back(ascii);
  }
  return it->second;
}

inline void Grammar::check_rules() const {
  const std::size_t n = rule_alternatives_.size();
  // Which rules can derive the empty string, and which can derive any finite string: a rule
  // qualifies once one of its alternatives has only qualifying references (and, for the empty
  // string, no characters). A work list over the references keeps this linear in the grammar.
  const auto fixpoint = [&](bool characters_allowed) {
    std::vector<bool> qualifies(n, false);
    std::vector<std::vector<std::pair<std::uint32_t, std::uint32_t>>> used_by(n);  // rule -> (rule, alternative)
    std::vector<std::vector<std::uint32_t>> pending(n);
    std::vector<std::uint32_t> work;
    for (std::uint32_t r = 0; r < n; ++r) {
      pending[r].assign(rule_alternatives_[r].size(), 0);
      for (std::uint32_t a = 0; a < rule_alternatives_[r].size(); ++a) {
        bool possible = true;
        for (std::uint32_t p = rule_alternatives_[r][a]; elements_[p].kind != GrammarElement::Kind::End; ++p) {
          if (elements_[p].kind == GrammarElement::Kind::Chars) {
            possible &= characters_allowed;
          } else {
            ++pending[r][a];
            used_by[elements_[p].value].emplace_back(r, a);
          }
        }
        if (!possible) pending[r][a] = 0xFFFFFFFFu;
        if (pending[r][a] == 0 && !qualifies[r]) { qualifies[r] = true; work.push_back(r); }
      }
    }
    while (!work.empty()) {
      const std::uint32_t s = work.back();
      work.pop_back();
      for (auto [r, a] : used_by[s]) {
        if (pending[r][a] == 0xFFFFFFFFu || pending[r][a] == 0) continue;
        if (--pending[r][a] == 0 && !qualifies[r]) { qualifies[r] = true; work.push_back(r); }
      }
    }
    return qualifies;
  };
  const std::vector<bool> nullable = fixpoint(false);
  const std::vector<bool> finite = fixpoint(true);
  GLRNN_CHECK(finite[root_], InputError, "grammar: rule " + rule_names_[root_] + " can never finish");
  // Left recursion: rule r reaches rule s before consuming a character. The matcher expands a
  // reference in tail position by reusing the parent stack, so a cycle of tail references ends
  // on a stack already seen; a cycle through any other reference pushes forever. So the grammar
  // is refused when a non-tail edge joins two rules of one strongly connected component.
  struct Edge {
    std::uint32_t to;
    bool tail;
  };
  std::vector<std::vector<Edge>> edges(n);
  for (std::uint32_t r = 0; r < n; ++r) {
    for (std::uint32_t a : rule_alternatives_[r]) {
      for (std::uint32_t p = a; elements_[p].kind == GrammarElement::Kind::Rule; ++p) {
        edges[r].push_back({elements_[p].value, elements_[p + 1].kind == GrammarElement::Kind::End});
        if (!nullable[elements_[p].value]) break;
      }
    }
  }
  // Tarjan's algorithm without recursion (rule chains from repetitions are thousands deep).
  constexpr std::uint32_t kUnvisited = 0xFFFFFFFFu;
  std::vector<std::uint32_t> index(n, kUnvisited), low(n, 0), component(n, kUnvisited), stack;
  std::vector<bool> on_stack(n, false);
  std::uint32_t counter = 0, components = 0;
  std::vector<std::pair<std::uint32_t, std::size_t>> frames;  // (rule, next edge)
  for (std::uint32_t start = 0; start < n; ++start) {
    if (index[start] != kUnvisited) continue;
    frames.push_back({start, 0});
    index[start] = low[start] = counter++;
    stack.push_back(start);
    on_stack[start] = true;
    while (!frames.empty()) {
      auto& [r, next] = frames.back();
      if (next < edges[r].size()) {
        const std::uint32_t s = edges[r][next++].to;
        if (index[s] == kUnvisited) {
          index[s] = low[s] = counter++;
          stack.push_back(s);
          on_stack[s] = true;
          frames.push_back({s, 0});
        } else if (on_stack[s]) {
          low[r] = std::min(low[r], index[s]);
        }
        continue;
      }
      const std::uint32_t done = r;
      if (low[done] == index[done]) {
        std::uint32_t member;
        do {
          member = stack.back();
          stack.pop_back();
          on_stack[member] = false;
          component[member] = components;
        } while (member != done);
        ++components;
      }
      frames.pop_back();
      if (!frames.empty()) low[frames.back().first] = std::min(low[frames.back().first], low[done]);
    }
  }
  for (std::uint32_t r = 0; r < n; ++r)
    for (const Edge& e : edges[r])
      GLRNN_CHECK(e.tail || component[e.to] != component[r], InputError,
                  "grammar: rule " + rule_names_[r] + " is left-recursive (it can reach itself before any character)");
}

}  // namespace glrnn
