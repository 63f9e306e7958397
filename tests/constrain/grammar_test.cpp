// GBNF grammars: parsing, refusals, and matching against std::regex on every short string.

#include <chrono>   // std::chrono::steady_clock
#include <regex>    // std::regex, std::regex_match
#include <string>   // std::string
#include <vector>   // std::vector

#include <catch2/catch.hpp>

#include "glrnn/constrain/grammar.hpp"
#include "glrnn/constrain/grammar_matcher.hpp"
#include "support/all_strings.hpp"

using glrnn::Grammar;
using glrnn::grammar_accepts;
using glrnn::test::all_strings;
using Catch::Matchers::Contains;

TEST_CASE("GBNF grammars match exactly the strings of the equivalent regular expression", "[constrain]") {
  // Regular grammars written both ways; every string of up to 7 characters over {a, b, c} is
  // checked, so each operator meets empty, short and repeated operands.
  struct Case {
    const char* gbnf;
    const char* regex;
  };
  const Case c = GENERATE(Case{"root ::= \"ab\" [a-c]+ \"c\"?", "ab[a-c]+c?"},
                          Case{"root ::= x{2,3}\nx ::= \"a\" | \"b\"", "[ab]{2,3}"},
                          Case{"root ::= (\"a\" | \"bc\")* \"c\"", "(a|bc)*c"},
                          Case{"root ::= [^b]{0,2} (\"b\" root)?", "[^b]{0,2}(b[^b]{0,2})*"},
                          Case{"root ::= \"\" | \"a\" root \"b\"", "(ab|aabb|aaabbb)?"},
                          Case{"root ::= x? y? x\nx ::= \"a\"*\ny ::= \"b\"+", "a*(b+)?a*"},
                          Case{"root ::= .{2,} # comment\n", "[abc]{2,}"},
                          Case{"root ::= \"a\" |\n  \"b\" \"c\"{1}\n  | (\"cc\"\n   | \"bb\"){2}", "a|bc|(cc|bb){2}"},
                          Case{"root ::= [a-b\\x63]{3}", "[abc]{3}"});
  CAPTURE(c.gbnf);
  const Grammar grammar = Grammar::parse(c.gbnf);
  const std::regex regex(c.regex);
  int accepted = 0;
  for (const std::string& s : all_strings("abc", 7)) {
    CAPTURE(s);
    const bool expected = std::regex_match(s, regex);
    REQUIRE(grammar_accepts(grammar, s) == expected);
    accepted += expected;
  }
  CHECK(accepted > 0);
}

TEST_CASE("Grammars match code points: multi-byte characters, escapes and invalid UTF-8", "[constrain]") {
  const Grammar grammar = Grammar::parse("root ::= [^\"\\\\]* \"\\u20AC\" [\\U0001F600-\\U0001F64F]?");
  CHECK(grammar_accepts(grammar, "h\xC3\xA9llo\xE2\x82\xAC"));           // é, then €
  CHECK(grammar_accepts(grammar, "\xE2\x82\xAC\xF0\x9F\x98\x80"));        // €, then 😀
  CHECK_FALSE(grammar_accepts(grammar, "\xE2\x82\xAC\xF0\x9F\x98\x80!"));
  CHECK_FALSE(grammar_accepts(grammar, "a\"\xE2\x82\xAC"));
  CHECK_FALSE(grammar_accepts(grammar, "\xE2\x82"));                      // half a character
  CHECK_FALSE(grammar_accepts(grammar, "\xC0\xAF\xE2\x82\xAC"));          // an overlong '/'
  CHECK_FALSE(grammar_accepts(grammar, "\xED\xA0\x80\xE2\x82\xAC"));      // a surrogate
  CHECK_FALSE(grammar_accepts(grammar, "\xF4\x90\x80\x80\xE2\x82\xAC"));  // past U+10FFFF

  // A character split across steps waits, and is refused as soon as no set can take it.
  glrnn::GrammarMatcher matcher(std::make_shared<glrnn::GrammarStacks>(
      std::make_shared<const Grammar>(Grammar::parse("root ::= [\\u00E0-\\u00FF]"))));
  CHECK_FALSE(matcher.allows("\xE2"));  // only U+2000 and up start with E2
  CHECK_FALSE(matcher.allows("\xF0"));  // U+10000 and up, although its bits alone would allow 0
  CHECK(matcher.accept("\xC3"));
  CHECK_FALSE(matcher.can_end());
  CHECK(matcher.accept("\xA9"));
  CHECK(matcher.can_end());
  CHECK(matcher.finished());
}

TEST_CASE("Grammars that cannot be matched are refused with the reason", "[constrain]") {
  struct Case {
    const char* gbnf;
    const char* message;
  };
  const Case c = GENERATE(Case{"root ::= a \"x\"", "rule a is used but not defined"},
                          Case{"root ::= root \"a\" | \"b\"", "left-recursive"},
                          Case{"root ::= x \"a\" | \"c\"\nx ::= \"b\"? root", "left-recursive"},
                          Case{"root ::= \"a\" root", "can never finish"},
                          Case{"start ::= \"a\"", "no rule named root"},
                          Case{"root ::= \"a\"\nroot ::= \"b\"", "defined twice"},
                          Case{"root ::= \"abc", "unterminated string literal"},
                          Case{"root ::= [abc", "unterminated character class"},
                          Case{"root ::= (\"a\"", "unclosed parenthesis"},
                          Case{"root ::= [z-a]", "runs backwards"},
                          Case{"root ::= \"\\q\"", "unknown escape"},
                          Case{"root ::= \"\\uD8\"", "bad hex digit"},
                          Case{"root ::= \"\\U00110000\"", "beyond U+10FFFF"},
                          Case{"root ::= \"a\"{3,1}", "m > n"},
                          Case{"root ::= \"a\"{10001}", "repetition count above 10000"},
                          Case{"root ::= * \"a\"", "follows nothing"},
                          Case{"root \"a\"", "expected ::="},
                          Case{"root ::= \"a\" )", "unexpected character"},
                          Case{"root ::= \"\xff\"", "not valid UTF-8"});
  CAPTURE(c.gbnf);
  REQUIRE_THROWS_WITH(Grammar::parse(c.gbnf), Contains(c.message));
}

TEST_CASE("Hostile grammars are refused or bounded", "[constrain]") {
  const auto started = std::chrono::steady_clock::now();
  // Repetitions of a long literal multiply its elements: 10^7 here.
  REQUIRE_THROWS_WITH(Grammar::parse("root ::= \"" + std::string(1000, 'a') + "\"{10000}"),
                      Contains("elements after expanding repetitions"));
  // Nested repetitions are rules inside rules, so they add up; matching them is bounded by the
  // number of stacks the matcher may hold.
  const Grammar nested = Grammar::parse("root ::= (((\"a\"{0,10000}){0,10000}){0,10000}){0,10000}");
  bool accepted = false;
  try {
    accepted = grammar_accepts(nested, std::string(40, 'a'));
  } catch (const glrnn::InputError& e) {
    accepted = std::string(e.what()).find("stacks") != std::string::npos;
  }
  CHECK(accepted);
  // A star of something that may be empty is not left recursion.
  CHECK(grammar_accepts(Grammar::parse("root ::= (\"a\"? \"b\"*)* \"c\""), "abbabc"));
  // Parentheses 100000 deep.
  REQUIRE_THROWS_WITH(Grammar::parse("root ::= " + std::string(100000, '(') + "\"a\"" + std::string(100000, ')')),
                      Contains("nest too deeply"));
  // Exponentially many ways to read the same text share their stacks: (a|a|aa)* on 2000 a's.
  const Grammar ambiguous = Grammar::parse("root ::= (\"a\" | \"a\" | \"aa\" | x)*\nx ::= \"a\"?");
  CHECK(grammar_accepts(ambiguous, std::string(2000, 'a')));
  // A rule chain 5000 deep, right-recursive.
  std::string chain = "root ::= r0\n";
  for (int i = 0; i < 5000; ++i) chain += "r" + std::to_string(i) + " ::= \"a\" r" + std::to_string(i + 1) + " | \"\"\n";
  chain += "r5000 ::= \"b\"\n";
  const Grammar deep = Grammar::parse(chain);
  CHECK(grammar_accepts(deep, std::string(5000, 'a') + "b"));
  CHECK(grammar_accepts(deep, "aaa"));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(20));
}
