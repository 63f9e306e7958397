#pragma once
// JSON Schema -> GBNF grammar text, for constrained decoding (the grammar engine is
// constrain/grammar.hpp). The grammar's rule `root` matches exactly the JSON texts, written in the
// layout below, whose values validate against the schema. Whatever this compiler cannot express
// exactly is refused with an InputError naming the keyword and its JSON pointer, never ignored.
//
// Layout of the accepted text (a grammar has to pick spellings where JSON allows many):
// - No whitespace before or after the value; between two tokens up to kJsonMaxWhitespace
//   characters of " \t\n\r", so that a model cannot emit spaces forever.
// - Numbers per RFC 8259 with at most kJsonMaxIntegerDigits digits before the point,
//   kJsonMaxFractionDigits after it and kJsonMaxExponentDigits in the exponent. A value of type
//   "integer" is written `-?(0|[1-9][0-9]*)` and never as -0, 1.0 or 1e2 (which JSON Schema also
//   counts as integers). A number under minimum/maximum/exclusive* has no exponent and is never
//   spelled -0 or -0.0; its bounds are compared exactly as the decimals their shortest spelling
//   writes (1.1 is 11/10, not the nearest double).
// - Strings: where only their length counts, any JSON string (escapes \" \\ \/ \b \f \n \r \t
//   \uXXXX, surrogates only in pairs), the length counted in code points (a pair is one). Where
//   their characters count (pattern, format, enum, const, object keys), every character is
//   written as nlohmann's dump() writes it: raw UTF-8, except \" \\ \b \f \n \r \t and \u00xx
//   (lower-case hex) for the other control characters.
// - enum and const values are written as their compact text: dump()'s, except that a number with
//   an integral value is written as an integer (1 for 1.0); an object in one keeps its key order.
// - Object members come in this order: the names of `properties`, in order (where several
//   subschemas apply, through allOf, $ref or the branch of anyOf/oneOf the value takes, in the
//   order in which a depth-first walk of those subschemas meets them); then the names of
//   `required` that no `properties` declares, in order; then additional members, if allowed, in
//   any order. A required name must appear, an optional one may. An additional member never
//   repeats a declared name; that two additional members differ is not checked (JSON leaves
//   duplicate names undefined).
// - format is asserted (not an annotation): date (RFC 3339 full-date, years 0001 to 9999, days per
//   month and leap years exact), time (full-time: seconds 00 to 59, no leap second, at most
//   kJsonMaxSecondFractionDigits fraction digits, offset Z or +hh:mm), date-time (date, T or t,
//   time; z for Z too), uuid (8-4-4-4-12 hex digits, either case), ipv4 (dotted quad, no leading
//   zeros). Every other format is refused.
// - pattern is ECMA-262's syntax, unanchored as JSON Schema says, over code points (as with the u
//   flag): literals and escapes, ., classes with ranges and \d \w \s \D \W \S, groups ( ) (?: )
//   (?<name> ), |, * + ? {m} {m,} {m,n}, and ^ and $ only at the start and end of a top-level
//   alternative. Backreferences, lookaround, lazy and possessive quantifiers, word boundaries,
//   \p{...}, \u{...} and inline flags are refused by name.
//
// Keywords: type, enum, const, properties, required, additionalProperties, items (a schema; an
// array is a tuple, as in draft-07), prefixItems, additionalItems (after a tuple), minItems,
// maxItems, minLength, maxLength, pattern, format, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum (also draft-04's boolean form), anyOf, oneOf (only where its branches are
// provably disjoint: different types, different enum/const values, or a required property with
// such values or that the other branch's additionalProperties forbids; refused otherwise), allOf
// (merged), $ref to a JSON pointer inside the schema (~0 ~1 and %-escapes; the root's $id may
// prefix it; recursion becomes recursive rules; a cycle that consumes nothing is refused), $defs
// and definitions, boolean schemas. Under a $schema of draft-04, -06 or -07, $ref replaces its
// sibling keywords as those drafts say; otherwise (2019-09, 2020-12, no $schema) they apply too.
// enum and const combine with type and the checks of kEnumCheckedKeywords; any other keyword
// beside them that concerns one of their values is refused. pattern takes minLength/maxLength
// only where its own lengths imply them or it is one anchored repetition of a class (^[a-z]+$).
// The annotations of kJsonSchemaAnnotations are ignored on purpose. A key that is no keyword of
// any draft is accepted only where it just holds subschemas that a $ref points into (as $defs
// does). Every other keyword is refused by name: uniqueItems, contains, not, if/then/else,
// dependencies, dependentRequired, patternProperties, propertyNames, min/maxProperties,
// multipleOf, unevaluated*, content*, $anchor, $dynamicRef, a $id below the root, ...
//
// A schema that no value meets is refused ("accepts no value"), and a subschema that no finite
// value meets (a required self-reference) is treated as false, so the grammar has no dead end a
// model could follow forever.

#include <algorithm>    // std::sort, std::max, std::min, std::find, std::unique
#include <cctype>       // std::isxdigit
#include <cmath>        // std::abs, std::ceil, std::floor, std::isfinite
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t, std::uint32_t, std::uint64_t
#include <cstdio>       // std::snprintf
#include <map>          // std::map
#include <optional>     // std::optional
#include <set>          // std::set
#include <string>       // std::string, std::to_string
#include <string_view>  // std::string_view
#include <utility>      // std::pair, std::move
#include <vector>       // std::vector

#include <nlohmann/json.hpp>  // nlohmann::ordered_json

#include "glrnn/core/error.hpp"
#include "glrnn/tokenizer/utf8.hpp"

namespace glrnn {

/// Nesting of the schema document (JSON levels; a schema level is about two).
inline constexpr int kJsonSchemaMaxNesting = 128;
/// Size of the emitted grammar text.
inline constexpr std::size_t kJsonSchemaMaxGrammarBytes = std::size_t{1} << 20;
/// Values of one enum.
inline constexpr std::size_t kJsonSchemaMaxEnumValues = 10000;
/// Largest finite minItems, maxItems, minLength, maxLength and pattern repetition count.
inline constexpr std::int64_t kJsonSchemaMaxRepetition = 10000;
/// Whitespace characters between two tokens.
inline constexpr int kJsonMaxWhitespace = 20;
/// Digits of a number's integer part, fraction and exponent.
inline constexpr int kJsonMaxIntegerDigits = 20;
inline constexpr int kJsonMaxFractionDigits = 20;
inline constexpr int kJsonMaxExponentDigits = 3;
/// Digits of the fraction of a second in format time and date-time.
inline constexpr int kJsonMaxSecondFractionDigits = 9;

/// Keywords that never change validity, skipped wherever they appear ($id only at the root).
inline constexpr const char* kJsonSchemaAnnotations[] = {
    "title", "description", "default", "examples", "$comment", "readOnly", "writeOnly", "deprecated", "$schema", "$id",
};

/// Keywords beside enum or const that are checked on each value (the others are refused).
inline constexpr const char* kEnumCheckedKeywords[] = {
    "type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
    "maxLength", "minItems", "maxItems", "required",
};

namespace detail {

using SchemaJson = nlohmann::ordered_json;

[[noreturn]] inline void schema_error(const std::string& message) { throw InputError("json schema: " + message); }

/// " at /a/b" or " at the root", for messages.
inline std::string schema_where(const std::string& path) { return path.empty() ? " at the root" : " at " + path; }

[[noreturn]] inline void schema_unsupported(const std::string& what, const std::string& path) {
  schema_error(what + schema_where(path) + " is not supported");
}

inline std::string pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

/// Canonical JSON pointers name schema nodes: "" is the root, "/properties/a~1b" a property.
inline std::string child_path(const std::string& path, std::string_view key) { return path + "/" + pointer_token(key); }
inline std::string child_path(const std::string& path, std::string_view key, std::size_t index) {
  return child_path(path, key) + "/" + std::to_string(index);
}

// ---- Character sets --------------------------------------------------------------------------

inline constexpr std::uint32_t kMaxCodePoint = 0x10FFFF;

struct CharRange {
  std::uint32_t lo, hi;  // inclusive
};
/// Sorted, disjoint, non-adjacent ranges of code points.
using CharSet = std::vector<CharRange>;

inline CharSet normalized(CharSet s) {
  std::sort(s.begin(), s.end(), [](const CharRange& a, const CharRange& b) { return a.lo < b.lo; });
  CharSet out;
  for (const CharRange& r : s) {
    if (!out.empty() && r.lo <= out.back().hi + 1) out.back().hi = std::max(out.back().hi, r.hi);
    else out.push_back(r);
  }
  return out;
}

inline CharSet complement(const CharSet& s) {
  CharSet out;
  std::uint32_t next = 0;
  for (const CharRange& r : s) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return out;
}

inline CharSet unite(CharSet a, const CharSet& b) {
  a.insert(a.end(), b.begin(), b.end());
  return normalized(std::move(a));
}

inline CharSet subtract(const CharSet& a, const CharSet& b) { return complement(unite(complement(a), b)); }

inline bool contains(const CharSet& s, std::uint32_t c) {
  for (const CharRange& r : s)
    if (c >= r.lo && c <= r.hi) return true;
  return false;
}

/// The characters a JSON string escapes: controls, '"' and '\\'.
inline const CharSet kEscapedChars{{0x00, 0x1F}, {'"', '"'}, {'\\', '\\'}};

inline const CharSet& surrogates() {
  static const CharSet s{{0xD800, 0xDFFF}};
  return s;
}

// ---- GBNF text -------------------------------------------------------------------------------

inline std::string hex_escape(std::uint32_t c) {
  char buf[12];
  if (c < 0x80) std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(c));
  else if (c <= 0xFFFF) std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(c));
  else std::snprintf(buf, sizeof buf, "\\U%08X", static_cast<unsigned>(c));
  return buf;
}

inline bool is_ascii_alnum(std::uint32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// A GBNF string literal of UTF-8 text: printable ASCII as is, everything else escaped.
inline std::string gbnf_literal(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8::char_length(text, i);
    const std::uint32_t c = utf8::code_point(text, i);
    i += n;
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
    else out += hex_escape(c);
  }
  return out + "\"";
}

/// A GBNF character class, written negated when that is shorter. Surrogates never occur in the
/// text, so they may be counted in or out.
inline std::string gbnf_class(const CharSet& set) {
  const CharSet positive = subtract(set, surrogates());
  const CharSet negative = subtract(complement(set), surrogates());
  const bool negate = negative.size() < positive.size();
  std::string out = negate ? "[^" : "[";
  for (const CharRange& r : negate ? negative : positive) {
    const auto one = [](std::uint32_t c) { return is_ascii_alnum(c) ? std::string(1, static_cast<char>(c)) : hex_escape(c); };
    out += one(r.lo);
    if (r.hi != r.lo) out += (r.hi == r.lo + 1 ? "" : "-") + one(r.hi);
  }
  return out + "]";
}

/// Whether a GBNF expression is one primary (a name, literal, class or parenthesized group) that a
/// postfix operator may follow: no space or '|' outside literals, classes and parentheses, and no
/// postfix operator already at its end.
inline bool gbnf_is_primary(const std::string& e) {
  if (e.empty() || e.back() == '*' || e.back() == '+' || e.back() == '?' || e.back() == '}') return false;
  int depth = 0;
  bool in_literal = false, in_class = false;
  for (std::size_t i = 0; i < e.size(); ++i) {
    const char c = e[i];
    if (in_literal || in_class) {
      if (c == '\\') ++i;
      else if (in_literal && c == '"') in_literal = false;
      else if (in_class && c == ']') in_class = false;
      continue;
    }
    if (c == '"') in_literal = true;
    else if (c == '[') in_class = true;
    else if (c == '(') ++depth;
    else if (c == ')') --depth;
    else if (depth == 0 && (c == ' ' || c == '|')) return false;
  }
  return true;
}

/// The expression without the parentheses around all of it, if it has them.
inline std::string gbnf_unwrap(const std::string& e) {
  if (e.size() > 4 && e.compare(0, 2, "( ") == 0 && e.compare(e.size() - 2, 2, " )") == 0 && gbnf_is_primary(e))
    return e.substr(2, e.size() - 4);
  return e;
}

/// The expression as one primary, in parentheses where it is not one.
inline std::string gbnf_primary(const std::string& e) { return gbnf_is_primary(e) ? e : "( " + e + " )"; }

/// Alternatives as one sequence-safe expression: "( a | b )", or the one alternative alone.
inline std::string gbnf_group(const std::vector<std::string>& alternatives) {
  if (alternatives.size() == 1) return alternatives[0];
  std::string out = "(";
  for (std::size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : " ") + alternatives[i];
  return out + " )";
}

/// Alternatives for a rule's body (top level only).
inline std::string gbnf_join(const std::vector<std::string>& alternatives) {
  std::string out;
  for (std::size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : "") + alternatives[i];
  return out;
}

/// `item` repeated min..max times (max < 0: unbounded); "" for exactly zero times.
inline std::string gbnf_repeat(const std::string& item, std::int64_t min, std::int64_t max) {
  if (max == 0) return "";
  if (min == 1 && max == 1) return item;
  const std::string p = gbnf_primary(item);
  if (min == 0 && max == 1) return p + "?";
  if (min == 0 && max < 0) return p + "*";
  if (min == 1 && max < 0) return p + "+";
  if (min == max) return p + "{" + std::to_string(min) + "}";
  return p + "{" + std::to_string(min) + "," + (max < 0 ? "" : std::to_string(max)) + "}";
}

/// Sequence-safe parts in sequence (empty parts, the empty word, dropped).
inline std::string gbnf_sequence(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) {
    if (p.empty()) continue;
    out += (out.empty() ? "" : " ") + p;
  }
  return out;
}

inline constexpr const char* kGbnfQuote = R"("\"")";      // a JSON string's quote
inline constexpr const char* kGbnfSeparator = R"(ws "," ws)";

/// The canonical (shortest, nlohmann dump()) encoding inside a JSON string of code point c.
inline std::string canonical_char_text(std::uint32_t c) {
  switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case 0x08: return "\\b";
    case 0x09: return "\\t";
    case 0x0A: return "\\n";
    case 0x0C: return "\\f";
    case 0x0D: return "\\r";
    default: break;
  }
  if (c < 0x20) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
    return buf;
  }
  return utf8::encode(c);
}

/// GBNF alternatives for one character of `set` written canonically inside a JSON string; empty
/// when the set is empty.
inline std::vector<std::string> canonical_char_alternatives(const CharSet& set) {
  std::vector<std::string> alts;
  const CharSet raw = subtract(subtract(set, CharSet{{0x00, 0x1F}, {'"', '"'}, {'\\', '\\'}}), surrogates());
  if (!raw.empty()) alts.push_back(gbnf_class(raw));
  for (std::uint32_t c : {std::uint32_t{'"'}, std::uint32_t{'\\'}, std::uint32_t{0x08}, std::uint32_t{0x09},
                          std::uint32_t{0x0A}, std::uint32_t{0x0C}, std::uint32_t{0x0D}})
    if (contains(set, c)) alts.push_back(gbnf_literal(canonical_char_text(c)));
  // The other control characters, as "\\u00" and two lower-case hex digits.
  for (std::uint32_t high = 0; high < 2; ++high) {
    std::string digits;
    for (std::uint32_t low = 0; low < 16; ++low) {
      const std::uint32_t c = high * 16 + low;
      if (c == 0x08 || c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D || !contains(set, c)) continue;
      digits += "0123456789abcdef"[low];
    }
    if (digits.empty()) continue;
    const std::string prefix = gbnf_literal(high ? "\\u001" : "\\u000");
    alts.push_back(digits.size() == 1 ? gbnf_literal(std::string(high ? "\\u001" : "\\u000") + digits) : prefix + " [" + digits + "]");
  }
  return alts;
}

// ---- JSON values -----------------------------------------------------------------------------

enum JsonTypeBit : unsigned {
  kTypeNull = 1,
  kTypeBoolean = 2,
  kTypeObject = 4,
  kTypeArray = 8,
  kTypeString = 16,
  kTypeInteger = 32,   // numbers with an integral value
  kTypeFraction = 64,  // the other numbers
  kTypeAll = 127,
  kTypeNumber = kTypeInteger | kTypeFraction,
};

inline unsigned json_type_bit(const SchemaJson& v) {
  switch (v.type()) {
    case SchemaJson::value_t::null: return kTypeNull;
    case SchemaJson::value_t::boolean: return kTypeBoolean;
    case SchemaJson::value_t::object: return kTypeObject;
    case SchemaJson::value_t::array: return kTypeArray;
    case SchemaJson::value_t::string: return kTypeString;
    case SchemaJson::value_t::number_integer:
    case SchemaJson::value_t::number_unsigned: return kTypeInteger;
    case SchemaJson::value_t::number_float: {
      const double d = v.get<double>();
      return std::isfinite(d) && d == std::floor(d) ? kTypeInteger : kTypeFraction;
    }
    default: return 0;
  }
}

inline unsigned json_type_bits(const std::string& name, const std::string& path) {
  if (name == "null") return kTypeNull;
  if (name == "boolean") return kTypeBoolean;
  if (name == "object") return kTypeObject;
  if (name == "array") return kTypeArray;
  if (name == "string") return kTypeString;
  if (name == "integer") return kTypeInteger;
  if (name == "number") return kTypeNumber;
  schema_error("unknown type \"" + name + "\"" + schema_where(path));
}

/// JSON Schema equality: numbers by value, objects regardless of key order.
inline bool json_equal(const SchemaJson& a, const SchemaJson& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_number_float() || b.is_number_float()) return a.get<double>() == b.get<double>();
    if (a.is_number_unsigned() != b.is_number_unsigned()) {
      const SchemaJson& s = a.is_number_unsigned() ? b : a;
      const SchemaJson& u = a.is_number_unsigned() ? a : b;
      return s.get<std::int64_t>() >= 0 && static_cast<std::uint64_t>(s.get<std::int64_t>()) == u.get<std::uint64_t>();
    }
    return a == b;
  }
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!json_equal(a[i], b[i])) return false;
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !json_equal(it.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

/// An integral double within this magnitude is written as an integer.
inline constexpr double kExactIntegerDouble = 9007199254740992.0;  // 2^53

/// The compact text of a value in the layout of the header comment.
inline std::string canonical_json(const SchemaJson& v) {
  switch (v.type()) {
    case SchemaJson::value_t::number_float: {
      const double d = v.get<double>();
      if (d == std::floor(d) && std::abs(d) < kExactIntegerDouble) return std::to_string(static_cast<std::int64_t>(d));
      return v.dump();
    }
    case SchemaJson::value_t::string:
      try {
        return v.dump();
      } catch (const nlohmann::json::exception&) {
        schema_error("a string value is not valid UTF-8");
      }
    case SchemaJson::value_t::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + canonical_json(v[i]);
      return out + "]";
    }
    case SchemaJson::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        out += (first ? "" : ",") + canonical_json(SchemaJson(it.key())) + ":" + canonical_json(it.value());
        first = false;
      }
      return out + "}";
    }
    default: return v.dump();
  }
}

/// Length of a UTF-8 string in code points.
inline std::int64_t code_point_count(std::string_view text) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < text.size(); i += utf8::char_length(text, i)) ++n;
  return n;
}

/// Nesting of a JSON value, measured without recursion (a hostile schema may nest deeply).
inline int json_nesting(const SchemaJson& root, int limit) {
  std::vector<std::pair<const SchemaJson*, int>> stack{{&root, 1}};
  int deepest = 0;
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    deepest = std::max(deepest, depth);
    if (deepest > limit) return deepest;
    if (node->is_structured())
      for (const SchemaJson& child : *node) stack.push_back({&child, depth + 1});
  }
  return deepest;
}

// ---- Regular expressions (JSON Schema `pattern`) ---------------------------------------------

/// A parsed pattern: code point sets, sequences, alternatives and bounded repetitions.
struct Regex {
  enum Kind { kSet, kSequence, kAlternatives, kRepeat } kind = kSequence;
  CharSet set;                  // kSet
  std::vector<Regex> children;  // kSequence, kAlternatives; kRepeat: one
  std::int64_t min = 0, max = 0;  // kRepeat; max < 0: unbounded
};

inline Regex regex_set(CharSet s) {
  Regex r;
  r.kind = Regex::kSet;
  r.set = normalized(std::move(s));
  return r;
}

inline Regex regex_repeat(Regex child, std::int64_t min, std::int64_t max) {
  Regex r;
  r.kind = Regex::kRepeat;
  r.min = min;
  r.max = max;
  r.children.push_back(std::move(child));
  return r;
}

inline bool regex_nullable(const Regex& r) {
  switch (r.kind) {
    case Regex::kSet: return false;
    case Regex::kSequence:
      for (const Regex& c : r.children)
        if (!regex_nullable(c)) return false;
      return true;
    case Regex::kAlternatives:
      for (const Regex& c : r.children)
        if (regex_nullable(c)) return true;
      return false;
    case Regex::kRepeat: return r.min == 0 || regex_nullable(r.children[0]);
  }
  return false;
}

/// Shortest and longest match in code points (longest < 0: unbounded).
inline std::pair<std::int64_t, std::int64_t> regex_length(const Regex& r) {
  constexpr std::int64_t kCap = std::int64_t{1} << 40;
  const auto add = [&](std::int64_t a, std::int64_t b) { return a < 0 || b < 0 ? -1 : std::min(kCap, a + b); };
  switch (r.kind) {
    case Regex::kSet: return {1, 1};
    case Regex::kSequence: {
      std::pair<std::int64_t, std::int64_t> out{0, 0};
      for (const Regex& c : r.children) {
        const auto [lo, hi] = regex_length(c);
        out = {std::min(kCap, out.first + lo), add(out.second, hi)};
      }
      return out;
    }
    case Regex::kAlternatives: {
      std::pair<std::int64_t, std::int64_t> out{kCap, 0};
      for (const Regex& c : r.children) {
        const auto [lo, hi] = regex_length(c);
        out.first = std::min(out.first, lo);
        out.second = out.second < 0 || hi < 0 ? -1 : std::max(out.second, hi);
      }
      if (r.children.empty()) out.first = 0;
      return out;
    }
    case Regex::kRepeat: {
      const auto [lo, hi] = regex_length(r.children[0]);
      const std::int64_t min = std::min(kCap, lo * r.min);
      if (r.max < 0) return {min, hi == 0 ? 0 : -1};
      return {min, hi < 0 ? -1 : std::min(kCap, hi * r.max)};
    }
  }
  return {0, 0};
}

/// One top-level alternative of a pattern and whether it is anchored at either end.
struct RegexBranch {
  Regex regex;
  bool anchored_start = false, anchored_end = false;
};

/// Parses the subset of ECMA-262 patterns that the header comment lists; refuses the rest by name.
class RegexParser {
 public:
  RegexParser(std::string_view pattern, std::string path) : path_(std::move(path)) {
    if (!utf8::is_valid(pattern)) fail("is not valid UTF-8");
    for (std::size_t i = 0; i < pattern.size(); i += utf8::char_length(pattern, i)) text_.push_back(utf8::code_point(pattern, i));
    source_ = std::string(pattern);
  }

  std::vector<RegexBranch> parse() {
    std::vector<RegexBranch> branches;
    for (;;) {
      RegexBranch b;
      b.anchored_start = eat('^');
      b.regex = parse_sequence(/*top=*/true, &b.anchored_end);
      branches.push_back(std::move(b));
      if (at_end()) break;
      if (!eat('|')) fail("has an unmatched ')'");
    }
    return branches;
  }

 private:
  static constexpr int kMaxGroupNesting = 64;

  [[noreturn]] void fail(const std::string& what) const {
    schema_error("pattern \"" + source_ + "\"" + schema_where(path_) + " " + what);
  }
  [[noreturn]] void refuse(const std::string& what) const {
    schema_error("pattern \"" + source_ + "\"" + schema_where(path_) + ": " + what + " is not supported");
  }

  bool at_end() const { return pos_ >= text_.size(); }
  std::uint32_t peek(std::size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : 0; }
  bool eat(std::uint32_t c) {
    if (!at_end() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  Regex parse_alternatives() {
    Regex alts;
    alts.kind = Regex::kAlternatives;
    alts.children.push_back(parse_sequence(false, nullptr));
    while (eat('|')) alts.children.push_back(parse_sequence(false, nullptr));
    if (alts.children.size() == 1) return std::move(alts.children[0]);
    return alts;
  }

  Regex parse_sequence(bool top, bool* anchored_end) {
    Regex seq;
    seq.kind = Regex::kSequence;
    while (!at_end() && peek() != '|' && peek() != ')') {
      if (peek() == '$') {
        ++pos_;
        if (top && (at_end() || peek() == '|')) {
          *anchored_end = true;
          break;
        }
        refuse("'$' other than at the end of an alternative");
      }
      if (peek() == '^') refuse("'^' other than at the start of an alternative");
      Regex atom = parse_atom();
      seq.children.push_back(parse_quantifiers(std::move(atom)));
    }
    if (seq.children.size() == 1) return std::move(seq.children[0]);
    return seq;
  }

  /// Reads {m}, {m,} or {m,n} at pos_ ('{' already seen); false (pos_ unchanged) when the brace is
  /// a literal.
  bool parse_braces(std::int64_t* min, std::int64_t* max) {
    std::size_t p = pos_ + 1;
    const auto number = [&](std::int64_t* out) {
      const std::size_t start = p;
      std::int64_t v = 0;
      while (p < text_.size() && text_[p] >= '0' && text_[p] <= '9') {
        v = std::min<std::int64_t>(v * 10 + (text_[p] - '0'), std::int64_t{1} << 40);
        ++p;
      }
      *out = v;
      return p > start;
    };
    if (p < text_.size() && text_[p] == ',') refuse("the quantifier '{,n}' (engines disagree on it)");
    if (!number(min)) return false;
    *max = *min;
    if (p < text_.size() && text_[p] == ',') {
      ++p;
      if (!number(max)) *max = -1;
    }
    if (p >= text_.size() || text_[p] != '}') fail("has a malformed quantifier");
    pos_ = p + 1;
    return true;
  }

  Regex parse_quantifiers(Regex atom) {
    bool quantified = false;
    for (;;) {
      std::int64_t min = 0, max = 0;
      if (peek() == '*') { min = 0; max = -1; ++pos_; }
      else if (peek() == '+') { min = 1; max = -1; ++pos_; }
      else if (peek() == '?') { min = 0; max = 1; ++pos_; }
      else if (peek() == '{' && parse_braces(&min, &max)) {}
      else return atom;
      if (quantified) {
        if (text_[pos_ - 1] == '?') refuse("a lazy quantifier");
        if (text_[pos_ - 1] == '+') refuse("a possessive quantifier");
        fail("has a quantifier that repeats nothing");
      }
      if (max >= 0 && min > max) fail("has a quantifier {m,n} with m > n");
      if (min > kJsonSchemaMaxRepetition || max > kJsonSchemaMaxRepetition)
        refuse("a repetition count above " + std::to_string(kJsonSchemaMaxRepetition));
      atom = regex_repeat(std::move(atom), min, max);
      quantified = true;
    }
  }

  static CharSet digit_set() { return {{'0', '9'}}; }
  static CharSet word_set() { return normalized({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}); }
  static CharSet space_set() {
    // ECMA-262 WhiteSpace and LineTerminator.
    return normalized({{0x09, 0x0D}, {0x20, 0x20}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
                       {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}});
  }

  std::uint32_t parse_hex(int digits) {
    std::uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const std::uint32_t c = peek();
      int d = -1;
      if (c >= '0' && c <= '9') d = static_cast<int>(c - '0');
      else if (c >= 'a' && c <= 'f') d = static_cast<int>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = static_cast<int>(c - 'A' + 10);
      if (d < 0) fail("has a malformed hex escape");
      ++pos_;
      v = v * 16 + static_cast<std::uint32_t>(d);
    }
    return v;
  }

  /// After a backslash: the set it stands for (one code point for a character escape).
  /// `in_class`: inside [...], where \b is backspace.
  CharSet parse_escape(bool in_class, bool* is_class_escape) {
    *is_class_escape = false;
    if (at_end()) fail("ends with a backslash");
    const std::uint32_t c = text_[pos_++];
    const auto one = [](std::uint32_t x) { return CharSet{{x, x}}; };
    switch (c) {
      case 'd': *is_class_escape = true; return digit_set();
      case 'D': *is_class_escape = true; return complement(digit_set());
      case 'w': *is_class_escape = true; return word_set();
      case 'W': *is_class_escape = true; return complement(word_set());
      case 's': *is_class_escape = true; return space_set();
      case 'S': *is_class_escape = true; return complement(space_set());
      case 'n': return one('\n');
      case 'r': return one('\r');
      case 't': return one('\t');
      case 'f': return one('\f');
      case 'v': return one('\v');
      case 'b':
        if (in_class) return one('\b');
        refuse("the word boundary \\b");
      case 'B': refuse("the word boundary \\B");
      case '0':
        if (peek() >= '0' && peek() <= '9') refuse("an octal escape");
        return one(0);
      case 'x': return one(parse_hex(2));
      case 'u': {
        if (peek() == '{') refuse("the escape \\u{...}");
        std::uint32_t cp = parse_hex(4);
        if (cp >= 0xD800 && cp <= 0xDBFF && peek() == '\\' && peek(1) == 'u') {
          pos_ += 2;
          const std::uint32_t low = parse_hex(4);
          if (low < 0xDC00 || low > 0xDFFF) refuse("an unpaired surrogate escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
          refuse("an unpaired surrogate escape");
        }
        return one(cp);
      }
      case 'c': {
        const std::uint32_t letter = peek();
        if (!((letter >= 'a' && letter <= 'z') || (letter >= 'A' && letter <= 'Z'))) fail("has a malformed \\c escape");
        ++pos_;
        return one(letter % 32);
      }
      case 'p':
      case 'P': refuse("the unicode property escape \\" + std::string(1, static_cast<char>(c)));
      case 'k': refuse("the named backreference \\k");
      default: break;
    }
    if (c >= '1' && c <= '9') refuse("the backreference \\" + std::string(1, static_cast<char>(c)));
    if (c < 0x80 && is_ascii_alnum(c)) refuse("the escape \\" + std::string(1, static_cast<char>(c)));
    return one(c);  // an identity escape: \. \* \/ \- ...
  }

  Regex parse_atom() {
    const std::uint32_t c = text_[pos_++];
    switch (c) {
      case '.': return regex_set(complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
      case '[': return parse_class();
      case '(': {
        if (++depth_ > kMaxGroupNesting) refuse("groups nested deeper than " + std::to_string(kMaxGroupNesting));
        if (eat('?')) {
          if (eat(':')) {}
          else if (peek() == '=' || peek() == '!') refuse("lookahead");
          else if (peek() == '<' && (peek(1) == '=' || peek(1) == '!')) refuse("lookbehind");
          else if (eat('<')) {
            while (!at_end() && peek() != '>') ++pos_;  // a named group is a plain group
            if (!eat('>')) fail("has an unterminated group name");
          } else refuse("the group syntax (?" + std::string(at_end() ? "" : std::string(1, static_cast<char>(peek()))));
        }
        Regex inner = parse_alternatives();
        if (!eat(')')) fail("has an unterminated group");
        --depth_;
        return inner;
      }
      case ')': fail("has an unmatched ')'");
      case '*':
      case '+':
      case '?': fail("has a quantifier that repeats nothing");
      case '\\': {
        bool is_class = false;
        return regex_set(parse_escape(false, &is_class));
      }
      case '{': {
        --pos_;
        std::int64_t min = 0, max = 0;
        if (parse_braces(&min, &max)) fail("has a quantifier that repeats nothing");
        ++pos_;
        return regex_set({{c, c}});  // a literal brace (Annex B)
      }
      default: return regex_set({{c, c}});  // includes '}' and ']' as literals (Annex B)
    }
  }

  /// A class [...] (its '[' already read): characters, ranges and class escapes.
  Regex parse_class() {
    const bool negated = eat('^');
    CharSet set;
    for (;;) {
      if (at_end()) fail("has an unterminated character class");
      if (eat(']')) break;
      bool low_is_class = false;
      CharSet low;
      if (eat('\\')) {
        low = parse_escape(true, &low_is_class);
      } else {
        if (peek() == '[' && peek(1) == ':') refuse("POSIX classes [:...:]");
        low = {{text_[pos_], text_[pos_]}};
        ++pos_;
      }
      if (peek() == '-' && pos_ + 1 < text_.size() && peek(1) != ']') {
        ++pos_;
        bool high_is_class = false;
        CharSet high;
        if (eat('\\')) {
          high = parse_escape(true, &high_is_class);
        } else {
          high = {{text_[pos_], text_[pos_]}};
          ++pos_;
        }
        if (low_is_class || high_is_class) refuse("a class escape as the end of a range");
        if (high[0].lo < low[0].lo) fail("has a character range out of order");
        set = unite(set, {{low[0].lo, high[0].lo}});
      } else {
        set = unite(set, low);
      }
    }
    return regex_set(negated ? complement(set) : set);
  }

  std::vector<std::uint32_t> text_;
  std::string source_;
  std::string path_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

// ---- The compiler ----------------------------------------------------------------------------

/// A subschema: where it is in the document and its value.
struct SchemaNode {
  std::string path;
  const SchemaJson* node;
};

/// One keyword of one subschema that applies to the value ("false": the false schema).
struct SchemaFacet {
  std::string path;
  const SchemaJson* node;
  std::string key;
};
using SchemaFacets = std::vector<SchemaFacet>;

/// A numeric bound as the decimal its shortest spelling writes.
struct NumberBound {
  bool set = false;
  bool exclusive = false;
  SchemaJson value;
  std::string path;
};

/// What a conjunction of facets (all branches of anyOf/oneOf chosen) allows, keyword by keyword.
struct SchemaDomain {
  unsigned types = kTypeAll;
  std::optional<std::vector<const SchemaJson*>> values;  // enum/const: only these
  std::vector<SchemaFacet> type_keywords;  // type-specific keywords, for enum/const checks
  NumberBound lower, upper;
  std::int64_t min_length = 0, max_length = -1;
  std::vector<SchemaFacet> patterns, formats;
  struct ArrayPart {
    std::vector<SchemaNode> prefix;
    std::optional<SchemaNode> rest;  // none: any value
  };
  std::vector<ArrayPart> arrays;
  std::set<std::string> array_nodes;
  std::int64_t min_items = 0, max_items = -1;
  std::vector<std::string> property_order;  // declared names, in order of first appearance
  std::map<std::string, std::vector<SchemaNode>> properties;
  struct AdditionalPart {
    SchemaNode schema;
    std::set<std::string> declared;  // names of its own node's `properties`
  };
  std::vector<AdditionalPart> additional;
  std::vector<std::string> required;
};

/// What a branch can be, for proving oneOf's branches disjoint.
struct SchemaSummary {
  unsigned types = kTypeAll;
  std::optional<std::vector<const SchemaJson*>> values;
  std::map<std::string, SchemaSummary> required;  // required properties' summaries
  std::optional<std::set<std::string>> closed;   // the only names an object may have
};

class SchemaCompiler {
 public:
  /// `never`: keys of facet sets to treat as the false schema (found unproductive by a first pass).
  /// `max_whitespace`: whitespace characters allowed between two tokens (0: compact JSON only).
  explicit SchemaCompiler(const SchemaJson& root, std::set<std::string> never = {}, int max_whitespace = kJsonMaxWhitespace)
      : root_(root), never_(std::move(never)), max_whitespace_(max_whitespace) {
    GLRNN_CHECK(json_nesting(root, kJsonSchemaMaxNesting) <= kJsonSchemaMaxNesting, InputError,
                "json schema: nested deeper than " + std::to_string(kJsonSchemaMaxNesting) + " levels");
    if (root.is_object()) {
      if (auto it = root.find("$schema"); it != root.end()) {
        GLRNN_CHECK(it->is_string(), InputError, "json schema: \"$schema\" at the root must be a string");
        const std::string s = it->get<std::string>();
        if (s.find("draft-04") != std::string::npos || s.find("draft-06") != std::string::npos ||
            s.find("draft-07") != std::string::npos)
          ref_replaces_siblings_ = true;
        else if (s.find("2019-09") == std::string::npos && s.find("2020-12") == std::string::npos)
          schema_error("\"$schema\" \"" + s + "\" names a draft other than 04, 06, 07, 2019-09 and 2020-12");
      }
      if (auto it = root.find("$id"); it != root.end() && it->is_string()) {
        base_uri_ = it->get<std::string>();
        if (auto hash = base_uri_.find('#'); hash != std::string::npos) base_uri_.resize(hash);
      }
    }
    find_ref_containers();
    for (const char* name : {"root", "ws", "value", "object", "array", "string", "char", "cchar", "key", "key-tail", "number",
                             "cescape", "integer", "hex", "date", "year", "time", "date-time", "uuid", "ipv4", "octet", "leap-year",
                             "never"})
      taken_names_.insert(name);
  }

  /// The grammar text of this pass (final when unproductive() is then empty).
  std::string compile() {
    SchemaFacets facets = expand({SchemaNode{"", &root_}});
    std::optional<std::string> root;
    if (facets.empty()) root = use_builtin("value");
    else root = compile_facets(facets, "root");
    // The grammar engine refuses a root that can never finish; such a request is an error too.
    if (!root) schema_error("the schema accepts no value");
    if (*root != "root") add_rule("root", *root);
    return compile_rules_text();
  }

  /// Keys of the facet sets whose rules can never finish (a recursion without a way out, as
  /// {"properties": {"next": {"$ref": "#"}}, "required": ["next"]}): least fixpoint over what
  /// each alternative needs.
  std::set<std::string> unproductive() const {
    std::set<std::string> productive;
    for (bool changed = true; changed;) {
      changed = false;
      for (const auto& [name, alternatives] : needs_) {
        if (productive.count(name)) continue;
        for (const std::vector<std::string>& needed : alternatives) {
          bool all = true;
          for (const std::string& n : needed) all = all && (!needs_.count(n) || productive.count(n));
          if (all) {
            productive.insert(name);
            changed = true;
            break;
          }
        }
      }
    }
    std::set<std::string> keys;
    for (const auto& [key, memo] : memo_)
      if (needs_.count(memo.name) && !productive.count(memo.name)) keys.insert(key);
    return keys;
  }

  /// The grammar of any JSON value whose top level is an object.
  std::string object_grammar() {
    add_rule("root", use_builtin("object"));
    return compile_rules_text();
  }

 private:
  static constexpr int kMaxCompileDepth = 256;
  static constexpr std::int64_t kMaxCompileCalls = 100000;
  static constexpr int kMaxSummaryDepth = 4;

  std::string compile_rules_text() {
    std::string out = "root ::= " + rules_.at("root") + "\n";
    for (const std::string& name : rule_order_)
      if (name != "root") out += name + " ::= " + rules_.at(name) + "\n";
    return out;
  }

  // ---- rules and names

  void add_rule(const std::string& name, const std::string& body) {
    grammar_bytes_ += name.size() + body.size() + 6;
    if (grammar_bytes_ > kJsonSchemaMaxGrammarBytes)
      schema_error("the grammar would exceed " + std::to_string(kJsonSchemaMaxGrammarBytes) + " bytes");
    if (rules_.emplace(name, body).second) rule_order_.push_back(name);
    else rules_[name] = body;
  }

  void check_size(const std::string& text) const { check_size(text.size()); }
  void check_size(std::size_t bytes) const {
    if (grammar_bytes_ + bytes > kJsonSchemaMaxGrammarBytes)
      schema_error("the grammar would exceed " + std::to_string(kJsonSchemaMaxGrammarBytes) + " bytes");
  }

  /// A fresh rule name from a hint: [a-z0-9-] only, unique.
  std::string fresh_name(const std::string& hint) {
    std::string base;
    for (char c : hint) {
      const char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9')) base += l;
      else if (!base.empty() && base.back() != '-') base += '-';
    }
    while (!base.empty() && base.back() == '-') base.pop_back();
    if (base.size() > 40) base = base.substr(base.size() - 40);
    while (!base.empty() && base.front() == '-') base.erase(0, 1);
    if (base.empty()) base = "r";
    std::string name = base;
    for (int i = 2; taken_names_.count(name); ++i) name = base + "-" + std::to_string(i);
    taken_names_.insert(name);
    return name;
  }

  /// The name of a fixed rule, adding it (and what it uses) on first use.
  std::string use_builtin(const std::string& name) {
    if (rules_.count(name)) return name;
    if (name == "ws") add_rule(name, max_whitespace_ > 0 ? "[ \\t\\n\\r]{0," + std::to_string(max_whitespace_) + "}" : "\"\"");
    else if (name == "value") {
      add_rule(name, "object | array | string | number | \"true\" | \"false\" | \"null\"");
      use_builtin("object");
      use_builtin("array");
      use_builtin("string");
      use_builtin("number");
    } else if (name == "object") {
      add_rule(name, R"("{" ws ( key ws ":" ws value ( ws "," ws key ws ":" ws value )* ws )? "}")");
      use_builtin("ws");
      use_builtin("key");
      use_builtin("value");
    } else if (name == "array") {
      add_rule(name, R"("[" ws ( value ( ws "," ws value )* ws )? "]")");
      use_builtin("ws");
      use_builtin("value");
    } else if (name == "string") {
      add_rule(name, std::string(kGbnfQuote) + " char* " + kGbnfQuote);
      use_builtin("char");
    } else if (name == "char") {
      // One code point in any JSON spelling: raw, a short escape, \uXXXX outside the surrogates,
      // or a surrogate pair.
      add_rule(name, R"([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" ( [0-9a-cA-CeEfF] hex{3} | [dD] [0-7] hex{2} | [dD] [89abAB] hex{2} "\\u" [dD] [c-fC-F] hex{2} ) ))");
      use_builtin("hex");
    } else if (name == "cchar") {
      add_rule(name, gbnf_join(canonical_char_except({{0, kMaxCodePoint}})));
    } else if (name == "cescape") {
      // The escaped characters in their canonical spelling.
      add_rule(name, gbnf_join(canonical_char_alternatives(kEscapedChars)));
    } else if (name == "key") {
      add_rule(name, std::string(kGbnfQuote) + " cchar* " + kGbnfQuote);
      use_builtin("cchar");
    } else if (name == "key-tail") {
      add_rule(name, std::string("cchar+ ") + kGbnfQuote);
      use_builtin("cchar");
    } else if (name == "hex") add_rule(name, "[0-9a-fA-F]");
    else if (name == "number") {
      add_rule(name, R"("-"? ( "0" | [1-9] [0-9]{0,)" + std::to_string(kJsonMaxIntegerDigits - 1) +
                         R"(} ) ( "." [0-9]{1,)" + std::to_string(kJsonMaxFractionDigits) + R"(} )? ( [eE] [-+]? [0-9]{1,)" +
                         std::to_string(kJsonMaxExponentDigits) + "} )?");
    } else if (name == "integer") {
      add_rule(name, R"("0" | "-"? [1-9] [0-9]{0,)" + std::to_string(kJsonMaxIntegerDigits - 1) + "}");
    } else if (name == "date") {
      add_rule(name, R"(year "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ) | leap-year "-02-29")");
      // 0001 to 9999 (0000 is no year of Python's, .NET's or Java's date types): the last
      // non-zero digit decides the alternative.
      add_rule("year", R"([0-9]{3} [1-9] | [0-9]{2} [1-9] "0" | [0-9] [1-9] "00" | [1-9] "000")");
      // Divisible by 4 and not by 100, or by 400.
      add_rule("leap-year", R"([0-9]{2} ( "0" [48] | [2468] [048] | [13579] [26] ) | ( "0" [48] | [2468] [048] | [13579] [26] ) "00")");
    } else if (name == "time") {
      add_rule(name, R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,)" +
                         std::to_string(kJsonMaxSecondFractionDigits) +
                         R"(} )? ( [zZ] | [-+] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))");
    } else if (name == "date-time") {
      add_rule(name, "date [tT] time");
      use_builtin("date");
      use_builtin("time");
    } else if (name == "uuid") {
      add_rule(name, R"(hex{8} "-" hex{4} "-" hex{4} "-" hex{4} "-" hex{12})");
      use_builtin("hex");
    } else if (name == "ipv4") {
      add_rule(name, R"(octet "." octet "." octet "." octet)");
      add_rule("octet", R"("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9])");
    } else if (name == "never") {
      add_rule(name, "[^\\x00-\\U0010FFFF]");  // a class that no character is in
    }
    return name;
  }

  // ---- references and expansion

  /// The node a "$ref" names, and its canonical path.
  SchemaNode resolve_ref(const SchemaJson& ref_value, const std::string& path) {
    if (!ref_value.is_string()) schema_error("\"$ref\"" + schema_where(path) + " must be a string");
    std::string ref = ref_value.get<std::string>();
    if (!base_uri_.empty() && ref.compare(0, base_uri_.size(), base_uri_) == 0) ref = ref.substr(base_uri_.size());
    if (ref.empty()) ref = "#";
    if (ref[0] != '#')
      schema_error("\"$ref\" \"" + ref_value.get<std::string>() + "\"" + schema_where(path) +
                   " is not supported: only references inside the schema (\"#...\") are");
    // Percent-decoding (URI fragment), then the JSON pointer's own escapes.
    std::string fragment;
    for (std::size_t i = 1; i < ref.size(); ++i) {
      if (ref[i] == '%' && i + 2 < ref.size() && std::isxdigit(static_cast<unsigned char>(ref[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(ref[i + 2]))) {
        fragment += static_cast<char>(std::stoi(ref.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        fragment += ref[i];
      }
    }
    if (!fragment.empty() && fragment[0] != '/')
      schema_error("\"$ref\" \"" + ref + "\"" + schema_where(path) + " is not supported: plain-name fragments ($anchor, $id \"#name\") are not");
    const SchemaJson* node = &root_;
    std::string canonical;
    std::size_t i = 1;
    while (!fragment.empty() && i <= fragment.size()) {
      std::size_t end = fragment.find('/', i);
      if (end == std::string::npos) end = fragment.size();
      std::string token;
      for (std::size_t k = i; k < end; ++k) {
        if (fragment[k] == '~' && k + 1 < end && fragment[k + 1] == '1') { token += '/'; ++k; }
        else if (fragment[k] == '~' && k + 1 < end && fragment[k + 1] == '0') { token += '~'; ++k; }
        else if (fragment[k] == '~') schema_error("\"$ref\" \"" + ref + "\"" + schema_where(path) + " has a bad '~' escape");
        else token += fragment[k];
      }
      if (node->is_object() && node->contains(token)) {
        node = &(*node)[token];
      } else if (node->is_array() && !token.empty() && token.size() < 10 &&
                 token.find_first_not_of("0123456789") == std::string::npos && (token == "0" || token[0] != '0') &&
                 std::stoul(token) < node->size()) {
        node = &(*node)[std::stoul(token)];
      } else {
        schema_error("\"$ref\" \"" + ref + "\"" + schema_where(path) + " names nothing in the schema");
      }
      canonical = child_path(canonical, token);
      i = end + 1;
    }
    return {canonical, node};
  }

  static bool is_annotation(const std::string& key) {
    for (const char* a : kJsonSchemaAnnotations)
      if (key == a) return true;
    return false;
  }

  static bool is_supported(const std::string& key) {
    static const std::set<std::string> supported = {
        "type", "enum", "const", "properties", "required", "additionalProperties", "items", "prefixItems",
        "additionalItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "minimum",
        "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf", "oneOf"};
    return supported.count(key) > 0;
  }

  /// The facets of several subschemas applying together: $ref and allOf expanded in place.
  SchemaFacets expand(const std::vector<SchemaNode>& nodes) {
    SchemaFacets out;
    std::set<std::string> done;
    std::vector<std::string> stack;
    for (const SchemaNode& n : nodes) expand_into(n, out, done, stack);
    return out;
  }

  void expand_into(const SchemaNode& n, SchemaFacets& out, std::set<std::string>& done, std::vector<std::string>& stack) {
    if (std::find(stack.begin(), stack.end(), n.path) != stack.end())
      schema_error("\"$ref\"/\"allOf\" cycle" + schema_where(n.path) + ": the schema refers to itself without any value in between");
    if (!done.insert(n.path).second) return;
    const SchemaJson& node = *n.node;
    if (node.is_boolean()) {
      if (!node.get<bool>()) out.push_back({n.path, n.node, "false"});
      return;
    }
    if (!node.is_object()) schema_error("a schema" + schema_where(n.path) + " must be an object or a boolean");
    stack.push_back(n.path);
    const bool has_ref = node.contains("$ref");
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string& key = it.key();
      if (has_ref && ref_replaces_siblings_ && key != "$ref") continue;  // draft-07 §8.3
      if (key == "$ref") {
        expand_into(resolve_ref(it.value(), n.path), out, done, stack);
      } else if (key == "allOf") {
        check_schema_array(it.value(), "allOf", n.path);
        for (std::size_t i = 0; i < it.value().size(); ++i)
          expand_into({child_path(n.path, "allOf", i), &it.value()[i]}, out, done, stack);
      } else if (key == "$defs" || key == "definitions") {
        if (!it.value().is_object()) schema_error("\"" + key + "\"" + schema_where(n.path) + " must be an object");
      } else if (key == "$id" && !n.path.empty()) {
        schema_unsupported("\"$id\" below the root", n.path);
      } else if (is_annotation(key)) {
        continue;
      } else if (is_supported(key)) {
        out.push_back({n.path, n.node, key});
      } else if (!is_known_keyword(key) && ref_containers_.count(child_path(n.path, key))) {
        continue;  // not a keyword: a place that holds subschemas for $ref, as $defs does
      } else {
        schema_unsupported("\"" + key + "\"", n.path);
      }
    }
    stack.pop_back();
  }

  /// Every keyword of the JSON Schema drafts 04 to 2020-12 (an unknown one may hold subschemas
  /// for $ref; a known one is refused unless supported).
  static bool is_known_keyword(const std::string& key) {
    static const std::set<std::string> known = {
        "$anchor", "$dynamicAnchor", "$dynamicRef", "$recursiveAnchor", "$recursiveRef", "$vocabulary", "id",
        "additionalItems", "additionalProperties", "allOf", "anyOf", "const", "contains", "contentEncoding",
        "contentMediaType", "contentSchema", "dependencies", "dependentRequired", "dependentSchemas", "else", "enum",
        "exclusiveMaximum", "exclusiveMinimum", "format", "if", "items", "maxContains", "maxItems", "maxLength",
        "maxProperties", "maximum", "minContains", "minItems", "minLength", "minProperties", "minimum", "multipleOf",
        "not", "oneOf", "pattern", "patternProperties", "prefixItems", "properties", "propertyNames", "required",
        "then", "type", "unevaluatedItems", "unevaluatedProperties", "uniqueItems"};
    return known.count(key) > 0;
  }

  /// The paths of every node a "$ref" in the document names, and of the nodes above them.
  void find_ref_containers() {
    std::vector<std::pair<const SchemaJson*, std::string>> stack{{&root_, ""}};
    while (!stack.empty()) {
      auto [node, path] = stack.back();
      stack.pop_back();
      if (node->is_object()) {
        for (auto it = node->begin(); it != node->end(); ++it) {
          if (it.key() == "$ref" && it.value().is_string()) {
            try {
              std::string target = resolve_ref(it.value(), path).path;
              while (!target.empty()) {
                ref_containers_.insert(target);
                target.resize(target.rfind('/'));
              }
            } catch (const InputError&) {
              // Refused where it is used, if it is.
            }
          }
          stack.push_back({&it.value(), child_path(path, it.key())});
        }
      } else if (node->is_array()) {
        for (std::size_t i = 0; i < node->size(); ++i) stack.push_back({&(*node)[i], path + "/" + std::to_string(i)});
      }
    }
  }

  static void check_schema_array(const SchemaJson& v, const std::string& key, const std::string& path) {
    if (!v.is_array() || v.empty()) schema_error("\"" + key + "\"" + schema_where(path) + " must be a non-empty array of schemas");
  }

  /// The facets with facets[i] (an anyOf or oneOf) replaced by its branch b, in place.
  SchemaFacets with_branch(const SchemaFacets& facets, std::size_t i, std::size_t b) {
    const SchemaFacet& f = facets[i];
    const SchemaJson& branch = (*f.node)[f.key][b];
    SchemaFacets inserted = expand({SchemaNode{child_path(f.path, f.key, b), &branch}});
    SchemaFacets out(facets.begin(), facets.begin() + static_cast<std::ptrdiff_t>(i));
    out.insert(out.end(), inserted.begin(), inserted.end());
    out.insert(out.end(), facets.begin() + static_cast<std::ptrdiff_t>(i) + 1, facets.end());
    // The same keyword of the same node twice is the same constraint: keep its first place.
    SchemaFacets unique;
    std::set<std::pair<std::string, std::string>> seen;
    for (SchemaFacet& x : out)
      if (seen.insert({x.path, x.key}).second) unique.push_back(std::move(x));
    return unique;
  }

  static std::string facets_key(const SchemaFacets& facets) {
    std::vector<std::string> parts;
    for (const SchemaFacet& f : facets) parts.push_back(f.path + '\x1f' + f.key);
    std::sort(parts.begin(), parts.end());
    parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
    std::string key;
    for (const std::string& p : parts) key += p + '\x1e';
    return key;
  }

  static std::ptrdiff_t first_union(const SchemaFacets& facets) {
    for (std::size_t i = 0; i < facets.size(); ++i)
      if (facets[i].key == "anyOf" || facets[i].key == "oneOf") return static_cast<std::ptrdiff_t>(i);
    return -1;
  }

  // ---- compiling a conjunction of facets to a rule

  struct Memo {
    std::string name;
    bool done = false;
    bool referenced = false;
    bool never = false;
    int structure = 0;  // structural depth at which it was started
  };

  /// The rule for values satisfying all facets, or nothing when none do.
  std::optional<std::string> compile_facets(const SchemaFacets& facets, const std::string& hint) {
    if (facets.empty()) return use_builtin("value");
    const std::string key = facets_key(facets);
    if (never_.count(key)) return std::nullopt;
    if (auto it = memo_.find(key); it != memo_.end()) {
      Memo& m = it->second;
      if (!m.done) {
        if (m.structure == structure_depth_)
          schema_error("the schema" + schema_where(facets[0].path) + " refers to itself without any value in between");
        m.referenced = true;
        return m.name;
      }
      if (m.never) return std::nullopt;
      return m.name;
    }
    if (++compile_calls_ > kMaxCompileCalls) schema_error("the schema needs too many rules");
    if (compile_depth_ >= kMaxCompileDepth)
      schema_error("the schema" + schema_where(facets[0].path) + " nests deeper than " + std::to_string(kMaxCompileDepth) + " rules");
    const std::string name = hint == "root" && !rules_.count("root") && memo_.empty() ? "root" : fresh_name(hint);
    memo_[key] = Memo{name, false, false, false, structure_depth_};
    ++compile_depth_;
    needs_stack_.emplace_back();
    std::optional<std::string> body = compile_body(facets, name);
    needs_[name] = std::move(needs_stack_.back());
    needs_stack_.pop_back();
    --compile_depth_;
    Memo& m = memo_[key];
    m.done = true;
    if (!body) {
      m.never = true;
      if (!m.referenced) return std::nullopt;
      body = use_builtin("never");
    }
    add_rule(name, *body);
    return name;
  }

  std::optional<std::string> compile_body(const SchemaFacets& facets, const std::string& name) {
    for (const SchemaFacet& f : facets)
      if (f.key == "false") return std::nullopt;
    const std::ptrdiff_t u = first_union(facets);
    if (u >= 0) {
      const SchemaFacet& f = facets[static_cast<std::size_t>(u)];
      check_schema_array((*f.node)[f.key], f.key, f.path);
      const std::size_t count = (*f.node)[f.key].size();
      std::vector<SchemaFacets> branches;
      for (std::size_t b = 0; b < count; ++b) branches.push_back(with_branch(facets, static_cast<std::size_t>(u), b));
      if (f.key == "oneOf") check_disjoint(branches, f.path);
      std::vector<std::string> alts;
      for (std::size_t b = 0; b < count; ++b) {
        std::optional<std::string> r = compile_facets(branches[b], name + "-" + std::to_string(b));
        if (r && std::find(alts.begin(), alts.end(), *r) == alts.end()) {
          alts.push_back(*r);
          needs({*r});
        }
      }
      if (alts.empty()) return std::nullopt;
      return gbnf_join(alts);
    }
    SchemaDomain d = build_domain(facets);
    return emit_domain(d, name);
  }

  // ---- keyword values

  static std::int64_t count_value(const SchemaFacet& f) {
    const SchemaJson& v = (*f.node)[f.key];
    std::int64_t n = -1;
    if (v.is_number_unsigned()) n = v.get<std::uint64_t>() > 1000000000000ull ? 1000000000000ll : static_cast<std::int64_t>(v.get<std::uint64_t>());
    else if (v.is_number_integer()) n = v.get<std::int64_t>();
    else if (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()) && v.get<double>() < 1e12) n = static_cast<std::int64_t>(v.get<double>());
    if (n < 0) schema_error("\"" + f.key + "\"" + schema_where(f.path) + " must be a non-negative integer");
    return n;
  }

  static std::int64_t checked_count(const SchemaFacet& f) {
    const std::int64_t n = count_value(f);
    if (n > kJsonSchemaMaxRepetition)
      schema_error("\"" + f.key + "\"" + schema_where(f.path) + " above " + std::to_string(kJsonSchemaMaxRepetition) + " is not supported");
    return n;
  }

  SchemaDomain build_domain(const SchemaFacets& facets) {
    SchemaDomain d;
    const auto type_keyword = [&](const SchemaFacet& f) { d.type_keywords.push_back(f); };
    for (const SchemaFacet& f : facets) {
      const SchemaJson& v = (*f.node)[f.key];
      const std::string where = schema_where(f.path);
      if (f.key == "type") {
        unsigned bits = 0;
        if (v.is_string()) bits = json_type_bits(v.get<std::string>(), f.path);
        else if (v.is_array() && !v.empty()) {
          for (const SchemaJson& t : v) {
            if (!t.is_string()) schema_error("\"type\"" + where + " must name types");
            bits |= json_type_bits(t.get<std::string>(), f.path);
          }
        } else schema_error("\"type\"" + where + " must be a type name or a non-empty array of them");
        d.types &= bits;
      } else if (f.key == "enum" || f.key == "const") {
        std::vector<const SchemaJson*> values;
        if (f.key == "const") values.push_back(&v);
        else {
          if (!v.is_array()) schema_error("\"enum\"" + where + " must be an array");
          if (v.size() > kJsonSchemaMaxEnumValues)
            schema_error("\"enum\"" + where + " has more than " + std::to_string(kJsonSchemaMaxEnumValues) + " values");
          for (const SchemaJson& x : v) values.push_back(&x);
        }
        if (!d.values) d.values = values;
        else {
          std::vector<const SchemaJson*> kept;
          for (const SchemaJson* a : *d.values)
            for (const SchemaJson* b : values)
              if (json_equal(*a, *b)) {
                kept.push_back(a);
                break;
              }
          d.values = kept;
        }
      } else if (f.key == "minimum" || f.key == "exclusiveMinimum" || f.key == "maximum" || f.key == "exclusiveMaximum") {
        type_keyword(f);
        const bool lower = f.key == "minimum" || f.key == "exclusiveMinimum";
        if (v.is_boolean()) {
          // draft-04: a flag on minimum/maximum.
          const char* sibling = lower ? "minimum" : "maximum";
          if (v.get<bool>() && !f.node->contains(sibling))
            schema_error("\"" + f.key + "\"" + where + " is true without \"" + sibling + "\"");
          continue;
        }
        if (!v.is_number()) schema_error("\"" + f.key + "\"" + where + " must be a number");
        bool exclusive = f.key == "exclusiveMinimum" || f.key == "exclusiveMaximum";
        if (!exclusive) {
          auto flag = f.node->find(lower ? "exclusiveMinimum" : "exclusiveMaximum");
          exclusive = flag != f.node->end() && flag->is_boolean() && flag->get<bool>();
        }
        tighten(lower ? d.lower : d.upper, v, exclusive, f.path, lower);
      } else if (f.key == "minLength" || f.key == "minItems") {
        type_keyword(f);
        std::int64_t& least = f.key == "minLength" ? d.min_length : d.min_items;
        least = std::max(least, checked_count(f));
      } else if (f.key == "maxLength" || f.key == "maxItems") {
        type_keyword(f);
        std::int64_t& most = f.key == "maxLength" ? d.max_length : d.max_items;  // < 0: none yet
        const std::int64_t n = checked_count(f);
        most = most < 0 ? n : std::min(most, n);
      } else if (f.key == "pattern") {
        type_keyword(f);
        if (!v.is_string()) schema_error("\"pattern\"" + where + " must be a string");
        d.patterns.push_back(f);
      } else if (f.key == "format") {
        type_keyword(f);
        if (!v.is_string()) schema_error("\"format\"" + where + " must be a string");
        d.formats.push_back(f);
      } else if (f.key == "items" || f.key == "prefixItems" || f.key == "additionalItems") {
        type_keyword(f);
        add_array_part(d, f);
      } else if (f.key == "properties") {
        type_keyword(f);
        if (!v.is_object()) schema_error("\"properties\"" + where + " must be an object");
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (!d.properties.count(it.key())) d.property_order.push_back(it.key());
          d.properties[it.key()].push_back({child_path(child_path(f.path, "properties"), it.key()), &it.value()});
        }
      } else if (f.key == "additionalProperties") {
        type_keyword(f);
        SchemaDomain::AdditionalPart part{{child_path(f.path, "additionalProperties"), &v}, {}};
        if (auto props = f.node->find("properties"); props != f.node->end() && props->is_object())
          for (auto it = props->begin(); it != props->end(); ++it) part.declared.insert(it.key());
        d.additional.push_back(std::move(part));
      } else if (f.key == "required") {
        type_keyword(f);
        if (!v.is_array()) schema_error("\"required\"" + where + " must be an array of strings");
        for (const SchemaJson& name : v) {
          if (!name.is_string()) schema_error("\"required\"" + where + " must be an array of strings");
          if (std::find(d.required.begin(), d.required.end(), name.get<std::string>()) == d.required.end())
            d.required.push_back(name.get<std::string>());
        }
      } else {
        schema_unsupported("\"" + f.key + "\"", f.path);  // not reached: expand() filters keywords
      }
    }
    return d;
  }

  static void tighten(NumberBound& b, const SchemaJson& v, bool exclusive, const std::string& path, bool lower) {
    if (v.is_number_float() && !std::isfinite(v.get<double>())) schema_error("a bound" + schema_where(path) + " is not finite");
    const int c = b.set ? compare_numbers(v, b.value) : 0;
    if (!b.set || (lower ? c > 0 : c < 0) || (c == 0 && exclusive)) b = {true, exclusive, v, path};
  }

  void add_array_part(SchemaDomain& d, const SchemaFacet& f) {
    if (!d.array_nodes.insert(f.path).second) return;  // one part per node
    const SchemaJson& node = *f.node;
    const auto items = node.find("items");
    const auto prefix = node.find("prefixItems");
    const auto additional = node.find("additionalItems");
    SchemaDomain::ArrayPart part;
    const auto tuple = [&](const SchemaJson& arr, const std::string& key) {
      for (std::size_t i = 0; i < arr.size(); ++i) part.prefix.push_back({child_path(f.path, key, i), &arr[i]});
    };
    if (prefix != node.end()) {
      if (!prefix->is_array()) schema_error("\"prefixItems\"" + schema_where(f.path) + " must be an array of schemas");
      if (items != node.end() && items->is_array()) schema_unsupported("\"prefixItems\" with an array \"items\"", f.path);
      if (additional != node.end()) schema_unsupported("\"prefixItems\" with \"additionalItems\"", f.path);
      tuple(*prefix, "prefixItems");
      if (items != node.end()) part.rest = SchemaNode{child_path(f.path, "items"), &*items};
    } else if (items != node.end() && items->is_array()) {
      tuple(*items, "items");
      if (additional != node.end()) part.rest = SchemaNode{child_path(f.path, "additionalItems"), &*additional};
    } else if (items != node.end()) {
      part.rest = SchemaNode{child_path(f.path, "items"), &*items};  // additionalItems has no effect
    } else {
      return;  // additionalItems without items has no effect
    }
    d.arrays.push_back(std::move(part));
  }

  // ---- emitting a domain

  std::optional<std::string> emit_domain(SchemaDomain& d, const std::string& name) {
    if (d.values) {
      needs({});
      return emit_values(d);
    }
    std::vector<std::string> alts;
    if (d.types & kTypeNull) alts.push_back("\"null\"");
    if (d.types & kTypeBoolean) {
      alts.push_back("\"true\"");
      alts.push_back("\"false\"");
    }
    if (d.types & kTypeInteger) {
      if (std::optional<std::string> n = emit_number(d, (d.types & kTypeFraction) != 0)) alts.push_back(*n);
    }
    if (d.types & kTypeString) {
      if (std::optional<std::string> s = emit_string(d, name)) alts.push_back(*s);
    }
    if (!alts.empty()) needs({});  // scalars and strings need no other rule
    if (d.types & kTypeArray) {
      if (std::optional<std::string> a = emit_array(d, name)) alts.push_back(*a);
    }
    if (d.types & kTypeObject) {
      if (std::optional<std::string> o = emit_object(d, name)) alts.push_back(*o);
    }
    if (alts.empty()) return std::nullopt;
    return gbnf_join(alts);
  }

  /// enum/const values that pass the type and the checked keywords; others beside them refused.
  std::optional<std::string> emit_values(const SchemaDomain& d) {
    std::vector<std::string> alts;
    std::vector<const SchemaJson*> kept;
    for (const SchemaJson* v : *d.values) {
      if (!(json_type_bit(*v) & d.types)) continue;
      if (!value_passes(d, *v)) continue;
      bool duplicate = false;
      for (const SchemaJson* k : kept) duplicate = duplicate || json_equal(*k, *v);
      if (duplicate) continue;
      kept.push_back(v);
      std::string lit = gbnf_literal(canonical_json(*v));
      check_size(lit);
      alts.push_back(std::move(lit));
    }
    if (alts.empty()) return std::nullopt;
    return gbnf_join(alts);
  }

  static bool value_passes(const SchemaDomain& d, const SchemaJson& v) {
    const unsigned bit = json_type_bit(v);
    for (const SchemaFacet& f : d.type_keywords) {
      const unsigned concerns = keyword_types(f.key);
      if (!(concerns & bit)) continue;
      bool checked = false;
      for (const char* name : kEnumCheckedKeywords) checked = checked || f.key == name;
      if (!checked) schema_unsupported("\"" + f.key + "\" beside \"enum\" or \"const\"", f.path);
      const SchemaJson& k = (*f.node)[f.key];
      if (f.key == "minLength") {
        if (code_point_count(v.get_ref<const std::string&>()) < count_value(f)) return false;
      } else if (f.key == "maxLength") {
        if (code_point_count(v.get_ref<const std::string&>()) > count_value(f)) return false;
      } else if (f.key == "minItems") {
        if (static_cast<std::int64_t>(v.size()) < count_value(f)) return false;
      } else if (f.key == "maxItems") {
        if (static_cast<std::int64_t>(v.size()) > count_value(f)) return false;
      } else if (f.key == "required") {
        for (const SchemaJson& name : k)
          if (!v.contains(name.get<std::string>())) return false;
      } else if (f.key == "minimum" || f.key == "maximum" || f.key == "exclusiveMinimum" || f.key == "exclusiveMaximum") {
        if (k.is_boolean()) continue;  // draft-04 flag, read with its sibling
        const bool lower = f.key == "minimum" || f.key == "exclusiveMinimum";
        bool exclusive = f.key == "exclusiveMinimum" || f.key == "exclusiveMaximum";
        if (!exclusive) {
          auto flag = f.node->find(lower ? "exclusiveMinimum" : "exclusiveMaximum");
          exclusive = flag != f.node->end() && flag->is_boolean() && flag->get<bool>();
        }
        const int c = compare_numbers(v, k);
        if (lower ? (c < 0 || (exclusive && c == 0)) : (c > 0 || (exclusive && c == 0))) return false;
      }
    }
    return true;
  }

  /// The types of value a keyword constrains.
  static unsigned keyword_types(const std::string& key) {
    if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" || key == "exclusiveMaximum") return kTypeNumber;
    if (key == "minLength" || key == "maxLength" || key == "pattern" || key == "format") return kTypeString;
    if (key == "items" || key == "prefixItems" || key == "additionalItems" || key == "minItems" || key == "maxItems") return kTypeArray;
    return kTypeObject;
  }

  /// -1, 0 or 1 as a < b, a == b, a > b (exact for integers, by double otherwise).
  static int compare_numbers(const SchemaJson& a, const SchemaJson& b) {
    if (!a.is_number_float() && !b.is_number_float()) {
      if (a.is_number_unsigned() || b.is_number_unsigned()) {
        const auto as_big = [](const SchemaJson& x) -> std::pair<bool, std::uint64_t> {
          if (x.is_number_unsigned()) return {false, x.get<std::uint64_t>()};
          const std::int64_t s = x.get<std::int64_t>();
          return {s < 0, s < 0 ? static_cast<std::uint64_t>(-(s + 1)) + 1 : static_cast<std::uint64_t>(s)};
        };
        const auto [an, av] = as_big(a);
        const auto [bn, bv] = as_big(b);
        if (an != bn) return an ? -1 : 1;
        if (av == bv) return 0;
        return (av < bv) != an ? -1 : 1;
      }
      const std::int64_t x = a.get<std::int64_t>(), y = b.get<std::int64_t>();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    const double x = a.get<double>(), y = b.get<double>();
    return x < y ? -1 : x > y ? 1 : 0;
  }

  // ---- numbers

  static std::string repeat_char(char c, std::size_t n) { return std::string(n, c); }

  /// The digit class [lo-hi] (a literal for one digit).
  static std::string digit_class(char lo, char hi) {
    if (lo == hi) return gbnf_literal(std::string(1, lo));
    return std::string("[") + lo + (hi == lo + 1 ? "" : "-") + hi + "]";
  }

  /// Decimal strings of one length (a <= b, leading zeros allowed) between a and b.
  static std::string same_length_range(const std::string& a, const std::string& b) {
    if (a == b) return gbnf_literal(a);
    std::size_t i = 0;
    while (a[i] == b[i]) ++i;
    const char x = a[i], y = b[i];
    const std::string rest_a = a.substr(i + 1), rest_b = b.substr(i + 1);
    const std::size_t k = rest_a.size();
    std::vector<std::string> alts;
    if (k == 0) {
      alts.push_back(digit_class(x, y));
    } else {
      const bool low_all = rest_a == repeat_char('0', k), high_all = rest_b == repeat_char('9', k);
      const char from = low_all ? x : static_cast<char>(x + 1), to = high_all ? y : static_cast<char>(y - 1);
      const std::string any = gbnf_repeat("[0-9]", static_cast<std::int64_t>(k), static_cast<std::int64_t>(k));
      if (!low_all) alts.push_back(digit_class(x, x) + " " + same_length_range(rest_a, repeat_char('9', k)));
      if (from <= to) alts.push_back(digit_class(from, to) + " " + any);
      if (!high_all) alts.push_back(digit_class(y, y) + " " + same_length_range(repeat_char('0', k), rest_b));
    }
    return gbnf_sequence({i > 0 ? gbnf_literal(a.substr(0, i)) : "", gbnf_group(alts)});
  }

  /// Alternatives spelling (without leading zeros) the integers in [lo, hi], lo >= 0; hi < 0: up
  /// to the layout's digits. Empty when lo > hi.
  static std::vector<std::string> unsigned_range(std::int64_t lo, std::int64_t hi) {
    std::vector<std::string> alts;
    if (hi >= 0 && lo > hi) return alts;
    const std::string lo_s = std::to_string(lo);
    const std::size_t max_digits = hi < 0 ? static_cast<std::size_t>(kJsonMaxIntegerDigits) : std::to_string(hi).size();
    for (std::size_t digits = lo_s.size(); digits <= max_digits; ++digits) {
      if (hi < 0 && digits > lo_s.size()) {  // every longer number
        alts.push_back("[1-9] " + gbnf_repeat("[0-9]", static_cast<std::int64_t>(digits - 1), static_cast<std::int64_t>(max_digits - 1)));
        break;
      }
      const std::string a = digits == lo_s.size() ? lo_s : "1" + repeat_char('0', digits - 1);
      const std::string b = hi >= 0 && digits == max_digits ? std::to_string(hi) : repeat_char('9', digits);
      alts.push_back(same_length_range(a, b));
    }
    return alts;
  }

  /// A bound after screening against the layout: none (vacuous), empty (excludes every number of
  /// the layout) or a value within +-10^18.
  enum class BoundKind { kNone, kValue, kEmpty };

  static BoundKind screen_bound(const NumberBound& b, bool lower) {
    if (!b.set) return BoundKind::kNone;
    constexpr double kLayoutMax = 1e20;   // beyond every number of kJsonMaxIntegerDigits digits
    constexpr double kExactMax = 1e18;    // bounds are handled exactly up to here
    const double x = b.value.get<double>();
    if (lower ? x <= -kLayoutMax : x >= kLayoutMax) return BoundKind::kNone;
    if (lower ? x >= kLayoutMax : x <= -kLayoutMax) return BoundKind::kEmpty;
    if (std::abs(x) > kExactMax)
      schema_error("the bound " + b.value.dump() + schema_where(b.path) + " is not supported: bounds must lie within +-10^18");
    return BoundKind::kValue;
  }

  /// The least (lower) or greatest (upper) integer the bound allows; the bound is a kValue.
  static std::int64_t integer_limit(const NumberBound& b, bool lower) {
    if (!b.value.is_number_float()) {
      const std::int64_t x = b.value.get<std::int64_t>();
      return b.exclusive ? (lower ? x + 1 : x - 1) : x;
    }
    const double x = b.value.get<double>();
    double r = lower ? std::ceil(x) : std::floor(x);
    if (b.exclusive && r == x) r += lower ? 1 : -1;
    return static_cast<std::int64_t>(r);
  }

  /// Integers in [lo, hi] (either side optional), no "-0": rule-body alternatives.
  static std::optional<std::string> integer_range(std::optional<std::int64_t> lo, std::optional<std::int64_t> hi) {
    if (lo && hi && *lo > *hi) return std::nullopt;
    std::vector<std::string> alts;
    if (!lo || *lo < 0) {  // -m for m in [max(1, -hi), -lo]
      const std::int64_t mag_lo = hi && *hi < 0 ? -*hi : 1;
      alts.push_back("\"-\" " + gbnf_group(unsigned_range(mag_lo, lo ? -*lo : -1)));
    }
    if (!hi || *hi >= 0)
      for (std::string& s : unsigned_range(lo && *lo > 0 ? *lo : 0, hi ? *hi : -1)) alts.push_back(std::move(s));
    return gbnf_join(alts);
  }

  /// A bound's exact decimal (from its shortest spelling): integer part and fraction digits
  /// without trailing zeros.
  struct Decimal {
    bool negative = false;
    std::int64_t integer = 0;
    std::string fraction;
    bool strict = false;
  };

  static Decimal to_decimal(const NumberBound& b) {
    std::string text = b.value.dump();
    Decimal d;
    d.strict = b.exclusive;
    if (text[0] == '-') {
      d.negative = true;
      text.erase(0, 1);
    }
    long exponent = 0;
    if (const std::size_t e = text.find_first_of("eE"); e != std::string::npos) {
      exponent = std::stol(text.substr(e + 1));
      text.resize(e);
    }
    std::string digits = text;
    long point = static_cast<long>(text.size());
    if (const std::size_t p = text.find('.'); p != std::string::npos) {
      digits = text.substr(0, p) + text.substr(p + 1);
      point = static_cast<long>(p);
    }
    point += exponent;  // |bound| <= 10^18 was checked, so point <= 19
    if (point < 1) {
      digits = repeat_char('0', static_cast<std::size_t>(1 - point)) + digits;
      point = 1;
    }
    if (point > static_cast<long>(digits.size())) digits += repeat_char('0', static_cast<std::size_t>(point) - digits.size());
    d.integer = std::stoll(digits.substr(0, static_cast<std::size_t>(point)));
    d.fraction = digits.substr(static_cast<std::size_t>(point));
    while (!d.fraction.empty() && d.fraction.back() == '0') d.fraction.pop_back();
    if (d.fraction.size() > static_cast<std::size_t>(kJsonMaxFractionDigits))
      schema_error("the bound " + b.value.dump() + schema_where(b.path) + " is not supported: more than " +
                   std::to_string(kJsonMaxFractionDigits) + " fraction digits");
    if (d.integer == 0 && d.fraction.empty()) d.negative = false;
    return d;
  }

  /// Digit strings g of 0..budget digits whose value 0.g lies between the fractions 0.lo and 0.hi
  /// (strictly where *_strict; an absent side is unbounded): whether g may be empty, and the
  /// grammar of the non-empty ones.
  struct FractionSet {
    bool empty_ok = false;
    std::optional<std::string> nonempty;
  };

  static FractionSet fraction_between(const std::optional<std::string>& lo, bool lo_strict,
                                      const std::optional<std::string>& hi, bool hi_strict, int budget) {
    FractionSet out;
    // The empty string is the fraction 0.
    out.empty_ok = (!lo || (lo->empty() && !lo_strict)) && (!hi || !hi->empty() || !hi_strict);
    if (budget == 0) return out;
    if ((!lo || (lo->empty() && !lo_strict)) && !hi) {  // any digits
      out.nonempty = gbnf_repeat("[0-9]", 1, budget);
      return out;
    }
    if (!lo && hi && hi->empty()) {  // zeros only
      if (!hi_strict) out.nonempty = gbnf_repeat("\"0\"", 1, budget);
      return out;
    }
    const char lo_first = lo ? (lo->empty() ? '0' : (*lo)[0]) : '0';
    const char hi_first = hi ? (hi->empty() ? '0' : (*hi)[0]) : '9';
    if (lo_first > hi_first) return out;
    const auto rest = [](const std::optional<std::string>& s) -> std::optional<std::string> {
      if (!s) return std::nullopt;
      return s->empty() ? std::string() : s->substr(1);
    };
    std::vector<std::string> alts;
    const auto add = [&](const std::string& head, const FractionSet& tail) {
      if (tail.nonempty) alts.push_back(head + " " + (tail.empty_ok ? gbnf_primary(*tail.nonempty) + "?" : *tail.nonempty));
      else if (tail.empty_ok) alts.push_back(head);
    };
    const std::string any = gbnf_repeat("[0-9]", 0, budget - 1);
    if (lo_first == hi_first && lo && hi) {
      add(digit_class(lo_first, lo_first), fraction_between(rest(lo), lo_strict, rest(hi), hi_strict, budget - 1));
    } else {
      const char from = lo ? static_cast<char>(lo_first + 1) : '0';
      const char to = hi ? static_cast<char>(hi_first - 1) : '9';
      if (lo) add(digit_class(lo_first, lo_first), fraction_between(rest(lo), lo_strict, std::nullopt, false, budget - 1));
      if (from <= to) alts.push_back(gbnf_sequence({digit_class(from, to), any}));
      if (hi) add(digit_class(hi_first, hi_first), fraction_between(std::nullopt, false, rest(hi), hi_strict, budget - 1));
    }
    if (!alts.empty()) out.nonempty = gbnf_group(alts);
    return out;
  }

  /// Non-negative decimals between lo and hi (absent: 0 / unbounded) in the layout without
  /// exponent: rule-body alternatives, empty when none.
  static std::vector<std::string> magnitude_range(const std::optional<Decimal>& lo, const std::optional<Decimal>& hi) {
    std::vector<std::string> alts;
    const auto with_fraction = [&](const std::string& integer, const FractionSet& f) {
      if (f.nonempty) {
        const std::string dotted = "\".\" " + *f.nonempty;
        alts.push_back(integer + " " + (f.empty_ok ? "( " + dotted + " )?" : dotted));
      } else if (f.empty_ok) {
        alts.push_back(integer);
      }
    };
    const std::optional<std::string> lo_f = lo ? std::optional<std::string>(lo->fraction) : std::nullopt;
    const std::optional<std::string> hi_f = hi ? std::optional<std::string>(hi->fraction) : std::nullopt;
    if (lo && hi && lo->integer == hi->integer) {
      with_fraction(gbnf_literal(std::to_string(lo->integer)),
                    fraction_between(lo_f, lo->strict, hi_f, hi->strict, kJsonMaxFractionDigits));
      return alts;
    }
    if (lo && hi && lo->integer > hi->integer) return alts;
    if (lo)
      with_fraction(gbnf_literal(std::to_string(lo->integer)),
                    fraction_between(lo_f, lo->strict, std::nullopt, false, kJsonMaxFractionDigits));
    const std::int64_t middle_lo = lo ? lo->integer + 1 : 0, middle_hi = hi ? hi->integer - 1 : -1;
    if (!hi || middle_lo <= middle_hi) {
      const std::vector<std::string> middle = unsigned_range(middle_lo, middle_hi);
      if (!middle.empty())
        with_fraction(gbnf_group(middle), fraction_between(std::nullopt, false, std::nullopt, false, kJsonMaxFractionDigits));
    }
    if (hi)
      with_fraction(gbnf_literal(std::to_string(hi->integer)),
                    fraction_between(std::nullopt, false, hi_f, hi->strict, kJsonMaxFractionDigits));
    return alts;
  }

  /// Numbers (integral or not) within the bounds, without exponent and never spelled "-0...":
  /// the negative ones as "-" and a magnitude, the others as a magnitude.
  static std::optional<std::string> decimal_range(const std::optional<Decimal>& lower, const std::optional<Decimal>& upper) {
    std::vector<std::string> alts;
    if (!lower || lower->negative) {
      // -y with y > 0, y >= |upper| where upper < 0, y <= |lower|.
      std::optional<Decimal> y_lo = Decimal{};
      y_lo->strict = true;
      if (upper && upper->negative) y_lo = upper;
      std::optional<Decimal> y_hi = lower;
      const std::vector<std::string> m = magnitude_range(y_lo, y_hi);
      if (!m.empty()) alts.push_back("\"-\" " + gbnf_group(m));
    }
    if (!upper || !upper->negative) {
      std::optional<Decimal> x_lo = Decimal{};
      if (lower && !lower->negative) x_lo = lower;
      for (std::string& s : magnitude_range(x_lo, upper)) alts.push_back(std::move(s));
    }
    if (alts.empty()) return std::nullopt;
    return gbnf_join(alts);
  }

  std::optional<std::string> emit_number(const SchemaDomain& d, bool fractions) {
    const BoundKind lo_kind = screen_bound(d.lower, true), hi_kind = screen_bound(d.upper, false);
    if (lo_kind == BoundKind::kEmpty || hi_kind == BoundKind::kEmpty) return std::nullopt;
    if (!d.lower.set && !d.upper.set) return use_builtin(fractions ? "number" : "integer");
    // A bound beyond the layout's digits leaves integers unbounded, but numbers still lose their
    // exponent (9e+26 has few digits).
    if (lo_kind == BoundKind::kNone && hi_kind == BoundKind::kNone && !fractions) return use_builtin("integer");
    std::optional<std::string> body;
    if (fractions) {
      std::optional<Decimal> lo, hi;
      if (lo_kind == BoundKind::kValue) lo = to_decimal(d.lower);
      if (hi_kind == BoundKind::kValue) hi = to_decimal(d.upper);
      body = decimal_range(lo, hi);
    } else {
      std::optional<std::int64_t> lo, hi;
      if (lo_kind == BoundKind::kValue) lo = integer_limit(d.lower, true);
      if (hi_kind == BoundKind::kValue) hi = integer_limit(d.upper, false);
      body = integer_range(lo, hi);
    }
    if (!body) return std::nullopt;
    return "( " + *body + " )";
  }

  // ---- strings

  std::optional<std::string> emit_string(const SchemaDomain& d, const std::string& name) {
    if (d.max_length >= 0 && d.min_length > d.max_length) return std::nullopt;
    const std::vector<SchemaFacet> patterns = distinct(d.patterns), formats = distinct(d.formats);
    if (patterns.size() > 1) schema_unsupported("\"pattern\" beside another \"pattern\" (at " + patterns[0].path + ")", patterns[1].path);
    if (formats.size() > 1) schema_unsupported("\"format\" beside another \"format\" (at " + formats[0].path + ")", formats[1].path);
    if (!patterns.empty() && !formats.empty()) schema_unsupported("\"pattern\" beside \"format\"", patterns[0].path);
    const auto length_fits = [&](std::int64_t lo, std::int64_t hi) {  // the content's own lengths
      return d.min_length <= lo && (d.max_length < 0 || (hi >= 0 && hi <= d.max_length));
    };
    const auto length_excludes = [&](std::int64_t lo, std::int64_t hi) {
      return (hi >= 0 && hi < d.min_length) || (d.max_length >= 0 && lo > d.max_length);
    };
    if (!formats.empty()) {
      const SchemaFacet& f = formats[0];
      const std::string format = (*f.node)[f.key].get<std::string>();
      std::int64_t lo = 0, hi = 0;
      const int frac = kJsonMaxSecondFractionDigits;
      if (format == "date") lo = hi = 10;
      else if (format == "time") lo = 9, hi = 8 + 1 + frac + 6;
      else if (format == "date-time") lo = 20, hi = 19 + 1 + frac + 6;
      else if (format == "uuid") lo = hi = 36;
      else if (format == "ipv4") lo = 7, hi = 15;
      else schema_unsupported("\"format\": \"" + format + "\"", f.path);
      if (length_excludes(lo, hi)) return std::nullopt;
      if (!length_fits(lo, hi)) schema_unsupported("\"minLength\"/\"maxLength\" beside \"format\"", f.path);
      return std::string(kGbnfQuote) + " " + use_builtin(format) + " " + kGbnfQuote;
    }
    if (!patterns.empty()) return emit_pattern(patterns[0], d, name);
    return std::string(kGbnfQuote) + " " + gbnf_repeat(use_builtin("char"), d.min_length, d.max_length) + " " + kGbnfQuote;
  }

  static std::vector<SchemaFacet> distinct(const std::vector<SchemaFacet>& facets) {
    std::vector<SchemaFacet> out;
    for (const SchemaFacet& f : facets) {
      bool seen = false;
      for (const SchemaFacet& o : out) seen = seen || (*o.node)[o.key] == (*f.node)[f.key];
      if (!seen) out.push_back(f);
    }
    return out;
  }

  std::optional<std::string> emit_pattern(const SchemaFacet& f, const SchemaDomain& d, const std::string& name) {
    const std::string pattern = (*f.node)[f.key].get<std::string>();
    RegexParser parser(pattern, f.path);
    std::vector<RegexBranch> branches = parser.parse();
    const bool has_length = d.min_length > 0 || d.max_length >= 0;
    if (has_length) {
      // Only where the lengths are implied by the pattern, or the pattern is one anchored
      // repetition of a set (^[a-z]+$), whose counts the lengths then bound.
      std::int64_t lo = std::int64_t{1} << 40, hi = 0;
      bool exact = true;
      for (const RegexBranch& b : branches) {
        auto [blo, bhi] = regex_length(b.regex);
        if (!b.anchored_start || !b.anchored_end) bhi = -1;
        lo = std::min(lo, blo);
        hi = hi < 0 || bhi < 0 ? -1 : std::max(hi, bhi);
        exact = exact && b.anchored_start && b.anchored_end;
      }
      const bool fits = d.min_length <= lo && (d.max_length < 0 || (hi >= 0 && hi <= d.max_length));
      if (!fits) {
        if (branches.size() == 1 && exact && branches[0].regex.kind == Regex::kRepeat &&
            branches[0].regex.children[0].kind == Regex::kSet) {
          Regex& r = branches[0].regex;
          r.min = std::max(r.min, d.min_length);
          r.max = r.max < 0 ? d.max_length : (d.max_length < 0 ? r.max : std::min(r.max, d.max_length));
          if (r.max >= 0 && r.min > r.max) return std::nullopt;
        } else if (branches.size() == 1 && exact && branches[0].regex.kind == Regex::kSet) {
          if (d.min_length > 1 || d.max_length == 0) return std::nullopt;
        } else {
          schema_unsupported("\"minLength\"/\"maxLength\" beside this \"pattern\"", f.path);
        }
      }
    }
    std::vector<std::string> alts;
    const std::string any = use_builtin("cchar") + "*";
    for (const RegexBranch& b : branches) {
      std::optional<std::string> body = emit_regex(b.regex, name);
      if (!body) continue;
      alts.push_back(gbnf_sequence({b.anchored_start ? "" : any, *body, b.anchored_end ? "" : any}));
      check_size(alts.back());
    }
    if (alts.empty()) return std::nullopt;
    std::string content = alts.size() == 1 ? alts[0] : gbnf_group(alts);
    return std::string(kGbnfQuote) + (content.empty() ? "" : " " + content) + " " + kGbnfQuote;
  }

  /// The canonical spelling of one character of the set: a literal, a class, or a shared rule.
  std::string char_set_rule(const CharSet& set, const std::string& name) {
    std::vector<std::string> alts = canonical_char_alternatives(set);
    if (alts.size() == 1) return alts[0];
    const std::string body = gbnf_join(alts);
    if (auto it = set_rules_.find(body); it != set_rules_.end()) return it->second;
    const std::string rule = fresh_name(name + "-char");
    add_rule(rule, body);
    set_rules_[body] = rule;
    return rule;
  }

  /// The non-empty words of r, or nothing when r matches only the empty string (or nothing).
  static std::optional<Regex> regex_nonempty(const Regex& r) {
    switch (r.kind) {
      case Regex::kSet: return r;
      case Regex::kSequence: {
        // L(e1 rest) \ {""} = nonempty(e1) rest | [e1 nullable] nonempty(rest)
        if (r.children.empty()) return std::nullopt;
        Regex rest;
        rest.kind = Regex::kSequence;
        rest.children.assign(r.children.begin() + 1, r.children.end());
        Regex alts;
        alts.kind = Regex::kAlternatives;
        if (std::optional<Regex> head = regex_nonempty(r.children[0])) {
          Regex seq;
          seq.kind = Regex::kSequence;
          seq.children.push_back(std::move(*head));
          seq.children.insert(seq.children.end(), rest.children.begin(), rest.children.end());
          alts.children.push_back(std::move(seq));
        }
        if (regex_nullable(r.children[0]))
          if (std::optional<Regex> tail = regex_nonempty(rest)) alts.children.push_back(std::move(*tail));
        if (alts.children.empty()) return std::nullopt;
        if (alts.children.size() == 1) return std::move(alts.children[0]);
        return alts;
      }
      case Regex::kAlternatives: {
        Regex alts;
        alts.kind = Regex::kAlternatives;
        for (const Regex& c : r.children)
          if (std::optional<Regex> n = regex_nonempty(c)) alts.children.push_back(std::move(*n));
        if (alts.children.empty()) return std::nullopt;
        return alts;
      }
      case Regex::kRepeat: {
        if (r.max == 0) return std::nullopt;
        std::optional<Regex> inner = regex_nonempty(r.children[0]);
        if (!inner) return std::nullopt;
        if (regex_nullable(r.children[0])) return regex_repeat(std::move(*inner), 1, r.max);
        return regex_repeat(r.children[0], std::max<std::int64_t>(r.min, 1), r.max);
      }
    }
    return std::nullopt;
  }

  /// GBNF for a pattern part: "" for the empty word only, nothing when it matches nothing.
  std::optional<std::string> emit_regex(const Regex& r, const std::string& name) {
    switch (r.kind) {
      case Regex::kSet: {
        const CharSet usable = subtract(r.set, surrogates());
        if (usable.empty()) return std::nullopt;
        return char_set_rule(usable, name);
      }
      case Regex::kSequence: {
        std::vector<std::string> parts;
        std::size_t total = 0;
        for (const Regex& c : r.children) {
          std::optional<std::string> p = emit_regex(c, name);
          if (!p) return std::nullopt;
          total += p->size();
          check_size(total);
          parts.push_back(std::move(*p));
        }
        return gbnf_sequence(parts);
      }
      case Regex::kAlternatives: {
        // Single-character alternatives merge into one set: (a|a)* stays unambiguous.
        CharSet merged;
        bool any_set = false, nullable = false;
        std::vector<std::string> alts;
        for (const Regex& c : r.children) {
          if (c.kind == Regex::kSet) {
            merged = unite(merged, c.set);
            any_set = true;
            continue;
          }
          std::optional<std::string> a = emit_regex(c, name);
          if (!a) continue;
          if (a->empty()) nullable = true;
          else if (std::find(alts.begin(), alts.end(), *a) == alts.end()) alts.push_back(std::move(*a));
        }
        if (any_set) {
          const CharSet usable = subtract(merged, surrogates());
          if (!usable.empty()) alts.insert(alts.begin(), char_set_rule(usable, name));
        }
        if (alts.empty()) {
          if (nullable) return std::string();
          return std::nullopt;
        }
        std::string group = alts.size() == 1 ? alts[0] : gbnf_group(alts);
        if (nullable) group = (alts.size() == 1 ? "( " + group + " )" : group) + "?";
        check_size(group);
        return group;
      }
      case Regex::kRepeat: {
        const Regex& inner = r.children[0];
        std::int64_t min = r.min, max = r.max;
        std::optional<std::string> body;
        if (regex_nullable(inner)) {
          // A repeated part that can be empty: repeat its non-empty words instead, so that the
          // grammar has no repetition of the empty word.
          std::optional<Regex> nonempty = regex_nonempty(inner);
          if (!nonempty) return std::string();
          body = emit_regex(*nonempty, name);
          min = 0;
        } else {
          body = emit_regex(inner, name);
        }
        if (!body) return min == 0 ? std::optional<std::string>(std::string()) : std::nullopt;
        if (body->empty()) return std::string();
        std::string out = gbnf_repeat(*body, min, max);
        check_size(out);
        return out;
      }
    }
    return std::nullopt;
  }

  // ---- arrays

  std::optional<std::string> compile_nodes(const std::vector<SchemaNode>& nodes, const std::string& hint) {
    ++structure_depth_;
    SchemaFacets facets = expand(nodes);
    std::optional<std::string> r = compile_facets(facets, hint);
    --structure_depth_;
    return r;
  }

  std::optional<std::string> emit_array(const SchemaDomain& d, const std::string& name) {
    if (d.max_items >= 0 && d.min_items > d.max_items) return std::nullopt;
    std::size_t prefix = 0;
    for (const auto& part : d.arrays) prefix = std::max(prefix, part.prefix.size());
    if (d.max_items >= 0) prefix = std::min(prefix, static_cast<std::size_t>(d.max_items));
    // Each index's subschemas: a part's tuple entry, or its rest.
    const auto nodes_at = [&](std::size_t i) {
      std::vector<SchemaNode> nodes;
      for (const auto& part : d.arrays) {
        if (i < part.prefix.size()) nodes.push_back(part.prefix[i]);
        else if (part.rest) nodes.push_back(*part.rest);
      }
      return nodes;
    };
    std::vector<std::optional<std::string>> elements;
    for (std::size_t i = 0; i < prefix; ++i) elements.push_back(compile_nodes(nodes_at(i), name + "-" + std::to_string(i)));
    std::optional<std::string> rest;
    const bool rest_possible = d.max_items < 0 || static_cast<std::int64_t>(prefix) < d.max_items;
    if (rest_possible) rest = compile_nodes(nodes_at(prefix), name + "-item");
    // From the end: items i.. when i items came before.
    std::optional<std::string> tail;
    {
      const std::int64_t kmin = std::max<std::int64_t>(0, d.min_items - static_cast<std::int64_t>(prefix));
      const std::int64_t kmax = d.max_items < 0 ? -1 : d.max_items - static_cast<std::int64_t>(prefix);
      if (kmax == 0 || !rest) {
        if (kmin == 0) tail = std::string();
      } else if (prefix > 0) {
        tail = gbnf_repeat("( " + std::string(kGbnfSeparator) + " " + *rest + " )", kmin, kmax);
      } else {
        const std::string others = gbnf_repeat("( " + std::string(kGbnfSeparator) + " " + *rest + " )",
                                               std::max<std::int64_t>(kmin - 1, 0), kmax < 0 ? -1 : kmax - 1);
        tail = gbnf_sequence({*rest, others});
        if (kmin == 0) tail = (tail->front() == '(' ? *tail : "( " + *tail + " )") + "?";
      }
    }
    for (std::size_t k = prefix; k-- > 0;) {
      const bool optional_here = static_cast<std::int64_t>(k) >= d.min_items;
      if (!elements[k] || !tail) {
        tail = optional_here ? std::optional<std::string>(std::string()) : std::nullopt;
        continue;
      }
      std::string seq = gbnf_sequence({k > 0 ? kGbnfSeparator : "", *elements[k], *tail});
      if (optional_here) seq = (seq.front() == '(' ? seq : "( " + seq + " )") + "?";
      if (prefix > 8 && k > 0) {
        const std::string rule = fresh_name(name + "-from-" + std::to_string(k));
        add_rule(rule, seq);
        seq = rule;
      }
      tail = seq;
    }
    if (!tail) return std::nullopt;
    // The shortest array takes the first minItems items.
    std::vector<std::string> needed;
    for (std::int64_t k = 0; k < d.min_items; ++k)
      needed.push_back(static_cast<std::size_t>(k) < prefix ? *elements[static_cast<std::size_t>(k)] : *rest);
    needs(needed);
    use_builtin("ws");
    if (tail->empty()) return R"(( "[" ws "]" ))";
    // The items are optional exactly when minItems is 0 (then tail ends in '?').
    if (d.min_items == 0) {
      const std::string inner = gbnf_unwrap(tail->back() == '?' ? tail->substr(0, tail->size() - 1) : *tail);
      return R"(( "[" ws ( )" + inner + R"( ws )? "]" ))";
    }
    return R"(( "[" ws )" + *tail + R"( ws "]" ))";
  }

  // ---- objects

  std::optional<std::string> emit_object(const SchemaDomain& d, const std::string& name) {
    std::vector<std::string> names = d.property_order;
    for (const std::string& r : d.required)
      if (!d.properties.count(r)) names.push_back(r);
    struct Entry {
      std::string kv;
      bool required;
    };
    std::vector<Entry> entries;
    std::vector<std::string> needed;
    std::vector<SchemaNode> additional_nodes;
    for (const auto& part : d.additional) additional_nodes.push_back(part.schema);
    use_builtin("ws");
    for (const std::string& key : names) {
      std::vector<SchemaNode> nodes;
      if (auto it = d.properties.find(key); it != d.properties.end()) nodes = it->second;
      for (const auto& part : d.additional)
        if (!part.declared.count(key)) nodes.push_back(part.schema);
      const bool required = std::find(d.required.begin(), d.required.end(), key) != d.required.end();
      std::optional<std::string> value = compile_nodes(nodes, name + "-" + key);
      if (!value) {
        if (required) return std::nullopt;
        continue;
      }
      if (required) needed.push_back(*value);
      std::string kv = gbnf_literal(canonical_json(SchemaJson(key))) + " ws \":\" ws " + *value;
      check_size(kv);
      entries.push_back({std::move(kv), required});
    }
    needs(needed);
    std::optional<std::string> additional = compile_nodes(additional_nodes, name + "-additional");
    std::string additional_kv;
    if (additional) additional_kv = key_excluding(names, name) + " ws \":\" ws " + *additional;
    // After the first entry: each later one with its separator, then the additional ones.
    // tails[i]: entries i.. when one came before.
    std::vector<std::string> tails(entries.size() + 1);
    tails[entries.size()] = additional ? "( " + std::string(kGbnfSeparator) + " " + additional_kv + " )*" : "";
    std::size_t first_required = entries.size();
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (entries[i].required) {
        first_required = i;
        break;
      }
    const bool shared_tails = first_required > 0;  // several heads refer to the tails
    for (std::size_t i = entries.size(); i-- > 0;) {
      std::string item = "( " + std::string(kGbnfSeparator) + " " + entries[i].kv + " )";
      if (!entries[i].required) item += "?";
      std::string t = gbnf_sequence({item, tails[i + 1]});
      if (shared_tails && i > 0 && t.size() > 60) {
        const std::string rule = fresh_name(name + "-rest-" + std::to_string(i));
        add_rule(rule, t);
        t = rule;
      }
      tails[i] = t;
    }
    // The first entry: an optional one followed by the rest, ..., the first required one.
    std::vector<std::string> heads;
    for (std::size_t i = 0; i <= first_required && i < entries.size(); ++i) heads.push_back(gbnf_sequence({entries[i].kv, tails[i + 1]}));
    if (first_required == entries.size() && additional)
      heads.push_back(gbnf_sequence({additional_kv, tails[entries.size()]}));
    if (heads.empty()) return R"(( "{" ws "}" ))";
    std::string body = gbnf_group(heads);
    check_size(body);
    if (first_required == entries.size()) return R"(( "{" ws ( )" + body + R"( ws )? "}" ))";
    return R"(( "{" ws )" + body + R"( ws "}" ))";
  }

  /// The canonical spellings of the characters of `set`, the escaped ones through the shared rule
  /// where the set has all of them.
  std::vector<std::string> canonical_char_except(const CharSet& set) {
    if (subtract(kEscapedChars, set).empty()) {
      std::vector<std::string> alts = canonical_char_alternatives(subtract(set, kEscapedChars));
      alts.push_back(use_builtin("cescape"));
      return alts;
    }
    return canonical_char_alternatives(set);
  }

  /// A JSON string (canonical characters) that is none of the names.
  std::string key_excluding(const std::vector<std::string>& names, const std::string& name) {
    if (names.empty()) return use_builtin("key");
    use_builtin("cchar");
    // A trie over the names' code points; a rule per node: end here (unless a name ends here),
    // go on with a child's character, or leave the trie with any other character.
    struct Node {
      std::map<std::uint32_t, int> children;
      bool terminal = false;
    };
    std::vector<Node> trie(1);
    for (const std::string& n : names) {
      int at = 0;
      for (std::size_t i = 0; i < n.size(); i += utf8::char_length(n, i)) {
        const std::uint32_t c = utf8::code_point(n, i);
        auto it = trie[static_cast<std::size_t>(at)].children.find(c);
        if (it == trie[static_cast<std::size_t>(at)].children.end()) {
          trie.push_back({});
          it = trie[static_cast<std::size_t>(at)].children.emplace(c, static_cast<int>(trie.size() - 1)).first;
        }
        at = it->second;
      }
      trie[static_cast<std::size_t>(at)].terminal = true;
    }
    const std::string base = fresh_name(name + "-key");
    // A name's last node (no longer name below it) is the shared "one character or more".
    const auto leaf = [&](std::size_t i) { return i > 0 && trie[i].children.empty(); };
    const auto rule_name = [&](std::size_t i) { return leaf(i) ? use_builtin("key-tail") : i == 0 ? base : base + "-" + std::to_string(i); };
    for (std::size_t i = 1; i < trie.size(); ++i)
      if (!leaf(i)) taken_names_.insert(rule_name(i));
    for (std::size_t i = 0; i < trie.size(); ++i) {
      if (leaf(i)) continue;
      std::vector<std::string> alts;
      if (!trie[i].terminal) alts.push_back(kGbnfQuote);
      CharSet others{{0, kMaxCodePoint}};
      for (const auto& [c, next] : trie[i].children) {
        alts.push_back(gbnf_literal(canonical_char_text(c)) + " " + rule_name(static_cast<std::size_t>(next)));
        others = subtract(others, {{c, c}});
      }
      alts.push_back(gbnf_group(canonical_char_except(others)) + " cchar* " + kGbnfQuote);
      add_rule(rule_name(i), gbnf_join(alts));
    }
    return std::string(kGbnfQuote) + " " + base;
  }

  // ---- oneOf

  SchemaSummary summarize(const SchemaFacets& facets, int depth) {
    SchemaSummary s;
    if (depth > kMaxSummaryDepth) return s;
    for (const SchemaFacet& f : facets)
      if (f.key == "false") {
        s.types = 0;
        return s;
      }
    const std::ptrdiff_t u = first_union(facets);
    if (u >= 0) {
      const SchemaFacet& f = facets[static_cast<std::size_t>(u)];
      check_schema_array((*f.node)[f.key], f.key, f.path);
      std::optional<SchemaSummary> all;
      for (std::size_t b = 0; b < (*f.node)[f.key].size(); ++b) {
        SchemaSummary one = summarize(with_branch(facets, static_cast<std::size_t>(u), b), depth + 1);
        all = all ? summary_union(*all, one) : one;
      }
      return *all;
    }
    SchemaDomain d = build_domain(facets);
    s.types = d.types;
    if (d.values) {
      std::vector<const SchemaJson*> kept;
      unsigned types = 0;
      for (const SchemaJson* v : *d.values)
        if (json_type_bit(*v) & d.types) {
          kept.push_back(v);
          types |= json_type_bit(*v);
        }
      s.values = kept;
      s.types = types;
      return s;
    }
    if (s.types & kTypeObject) {
      std::vector<SchemaNode> additional;
      for (const auto& part : d.additional) additional.push_back(part.schema);
      for (const std::string& key : d.required) {
        std::vector<SchemaNode> nodes;
        if (auto it = d.properties.find(key); it != d.properties.end()) nodes = it->second;
        for (const auto& part : d.additional)
          if (!part.declared.count(key)) nodes.push_back(part.schema);
        s.required[key] = summarize(expand(nodes), depth + 1);
      }
      if (!additional.empty() && summarize(expand(additional), depth + 1).types == 0) {
        std::set<std::string> names(d.property_order.begin(), d.property_order.end());
        s.closed = names;
      }
    }
    return s;
  }

  static SchemaSummary summary_union(const SchemaSummary& a, const SchemaSummary& b) {
    SchemaSummary s;
    s.types = a.types | b.types;
    if (a.values && b.values) {
      s.values = *a.values;
      s.values->insert(s.values->end(), b.values->begin(), b.values->end());
    } else if ((a.values && !b.types) || (b.values && !a.types)) {
      s.values = a.values ? a.values : b.values;
    }
    if (!a.values && !b.values) {
      for (const auto& [k, v] : a.required)
        if (auto it = b.required.find(k); it != b.required.end()) s.required[k] = summary_union(v, it->second);
      if (a.closed && b.closed) {
        s.closed = *a.closed;
        s.closed->insert(b.closed->begin(), b.closed->end());
      }
    }
    return s;
  }

  /// True when the value certainly does not fit the summary.
  static bool summary_excludes(const SchemaSummary& s, const SchemaJson& v) {
    if (!(json_type_bit(v) & s.types)) return true;
    if (s.values) {
      for (const SchemaJson* x : *s.values)
        if (json_equal(*x, v)) return false;
      return true;
    }
    if (v.is_object()) {
      for (const auto& [k, sub] : s.required) {
        auto it = v.find(k);
        if (it == v.end() || summary_excludes(sub, *it)) return true;
      }
      if (s.closed)
        for (auto it = v.begin(); it != v.end(); ++it)
          if (!s.closed->count(it.key())) return true;
    }
    return false;
  }

  static bool summaries_disjoint(const SchemaSummary& a, const SchemaSummary& b) {
    if (!(a.types & b.types)) return true;
    if (a.values || b.values) {
      const SchemaSummary& finite = a.values ? a : b;
      const SchemaSummary& other = a.values ? b : a;
      for (const SchemaJson* v : *finite.values)
        if (!summary_excludes(other, *v)) return false;
      return true;
    }
    if ((a.types & b.types) != kTypeObject) return false;
    for (const auto& [k, sa] : a.required) {
      if (b.closed && !b.closed->count(k)) return true;
      if (auto it = b.required.find(k); it != b.required.end() && summaries_disjoint(sa, it->second)) return true;
    }
    for (const auto& [k, sb] : b.required)
      if (a.closed && !a.closed->count(k)) return true;
    return false;
  }

  void check_disjoint(const std::vector<SchemaFacets>& branches, const std::string& path) {
    std::vector<SchemaSummary> summaries;
    for (const SchemaFacets& b : branches) summaries.push_back(summarize(b, 0));
    for (std::size_t i = 0; i < summaries.size(); ++i)
      for (std::size_t j = i + 1; j < summaries.size(); ++j)
        if (!summaries_disjoint(summaries[i], summaries[j]))
          schema_error("\"oneOf\"" + schema_where(path) + " is not supported: branches " + std::to_string(i) + " and " +
                       std::to_string(j) + " may both match a value (only branches of different types, const/enum values, "
                       "or required properties with such values are)");
  }

  /// Records one alternative of the rule being compiled and the rules it cannot do without.
  void needs(std::vector<std::string> rules) {
    if (!needs_stack_.empty()) needs_stack_.back().push_back(std::move(rules));
  }

  const SchemaJson& root_;
  std::set<std::string> never_;
  std::map<std::string, std::vector<std::vector<std::string>>> needs_;  // rule -> alternatives -> rules needed
  std::vector<std::vector<std::vector<std::string>>> needs_stack_;
  int max_whitespace_ = kJsonMaxWhitespace;
  bool ref_replaces_siblings_ = false;
  std::string base_uri_;
  std::set<std::string> ref_containers_;
  std::map<std::string, std::string> rules_;
  std::vector<std::string> rule_order_;
  std::set<std::string> taken_names_;
  std::map<std::string, Memo> memo_;
  std::map<std::string, std::string> set_rules_;
  std::size_t grammar_bytes_ = 0;
  std::int64_t compile_calls_ = 0;
  int compile_depth_ = 0;
  int structure_depth_ = 0;
};

}  // namespace detail

/// Compiles a JSON Schema to GBNF whose rule `root` matches exactly the validating JSON texts in
/// the layout of this header's comment, with at most `max_whitespace` whitespace characters
/// between two tokens (0: compact JSON only); throws InputError naming what it does not implement.
inline std::string json_schema_to_grammar(const nlohmann::ordered_json& schema, int max_whitespace = kJsonMaxWhitespace) {
  GLRNN_CHECK(max_whitespace >= 0 && max_whitespace <= 10000, InputError, "json schema: max_whitespace must be in [0, 10000]");
  // Compiled again with the subschemas that no finite value meets as false, until there are none:
  // no dead end for a model. Pruning them changes no other rule's productivity, so the second
  // pass is the last; the bound only guards that argument.
  std::set<std::string> never;
  for (int pass = 0; pass < 4; ++pass) {
    detail::SchemaCompiler compiler(schema, never, max_whitespace);
    std::string grammar = compiler.compile();
    const std::set<std::string> more = compiler.unproductive();
    if (more.empty()) return grammar;
    never.insert(more.begin(), more.end());
  }
  detail::schema_error("the schema's recursion could not be resolved");
}

/// The grammar of any JSON value whose top level is an object (OpenAI's json_object mode).
inline std::string json_object_grammar() {
  static const nlohmann::ordered_json kEmpty = nlohmann::ordered_json::object();
  return detail::SchemaCompiler(kEmpty).object_grammar();
}

}  // namespace glrnn
