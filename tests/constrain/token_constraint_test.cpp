// Grammars over tokens: the trie walk's mask equals trying every token, the masked sampler draws
// only allowed tokens and as sampling masked logits would, and greedy constrained generation on
// a demo model equals a reference that masks by trying every token.

#include <cmath>    // INFINITY
#include <memory>   // std::make_shared
#include <string>   // std::string
#include <vector>   // std::vector

#include <catch2/catch.hpp>

#include "glrnn/constrain/token_constraint.hpp"
#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"

using namespace glrnn;

namespace {

// JSON (RFC 8259) with bounded whitespace, the shape of the grammars the schema compiler emits.
const char* const kJsonGrammar = R"(
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ws ( string ws ":" ws value ws ("," ws string ws ":" ws value ws)* )? "}"
array  ::= "[" ws ( value ws ("," ws value ws)* )? "]"
string ::= "\"" ( [^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )* "\""
number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
ws     ::= [ \t\n]{0,8}
)";

const std::string kDocument = R"({"name": "Zoë – 東京", "tags": ["a\"b", "\u00e9"], "n": -12.5e3, "ok": true, "x": null})";

Tokenizer test_tokenizer(const std::string& name) {
  return name == "gemma3" ? load_tokenizer(GLRNN_TEST_GEMMA3_TOKENIZER) : load_tokenizer(test::model_path(name));
}

/// The allowed set by the definition: a token is allowed when the grammar takes its bytes.
TokenMask brute_force_mask(const std::shared_ptr<const Grammar>& grammar, const TokenVocabulary& vocabulary,
                           const std::string& text_so_far, const std::vector<std::int32_t>& end_tokens) {
  GrammarMatcher matcher(std::make_shared<GrammarStacks>(grammar));
  REQUIRE(matcher.accept(text_so_far));
  TokenMask mask;
  mask.clear(vocabulary.size());
  for (std::int32_t id = 0; id < vocabulary.size(); ++id)
    if (!vocabulary.bytes(id).empty() && matcher.allows(vocabulary.bytes(id))) mask.allow(id);
  if (matcher.can_end())
    for (std::int32_t t : end_tokens) mask.allow(t);
  return mask;
}

}  // namespace

TEST_CASE("The trie walk's mask equals trying every token, along a JSON text", "[constrain]") {
  const std::string name = GENERATE(std::string("griffin-demo"), std::string("hgrn2-demo"), std::string("gemma3"));
  CAPTURE(name);
  const Tokenizer tokenizer = test_tokenizer(name);
  const auto vocabulary = TokenVocabulary::from_tokenizer(tokenizer);
  const auto grammar = std::make_shared<const Grammar>(Grammar::parse(kJsonGrammar));
  const std::vector<std::int32_t> end_tokens{1};
  TokenConstraint constraint(grammar, vocabulary, end_tokens);
  // Walk the document's own tokens, and at byte-fallback tokens characters split across tokens.
  const std::vector<std::int32_t> ids = tokenizer.encode(kDocument, false);
  std::string text;
  const std::size_t stride = name == "gemma3" ? 4 : 1;  // 256k brute-force tries per position
  std::int64_t compared = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i % stride == 0) {
      CAPTURE(i, text);
      const TokenMask& fast = constraint.mask();
      const TokenMask slow = brute_force_mask(grammar, *vocabulary, text, end_tokens);
      REQUIRE(fast.count() == slow.count());
      for (std::int32_t id = 0; id < vocabulary->size(); ++id) REQUIRE(fast.allows(id) == slow.allows(id));
      REQUIRE(fast.allows(ids[i]));
      ++compared;
    }
    REQUIRE(constraint.allows(ids[i]));
    constraint.accept(ids[i]);
    text += vocabulary->bytes(ids[i]);
  }
  CHECK(text == kDocument);
  CHECK(constraint.can_end());
  CHECK(constraint.mask().allows(1));
  CHECK(compared > 5);
  REQUIRE_THROWS_WITH(constraint.accept(tokenizer.encode("x", false).back()), Catch::Contains("does not follow"));
}

TEST_CASE("The masked sampler draws allowed tokens, as sampling logits masked to -inf does", "[constrain]") {
  const std::int32_t vocab = 300;
  Eigen::VectorXf logits(vocab);
  for (std::int32_t i = 0; i < vocab; ++i) logits[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
  TokenMask mask;
  mask.clear(vocab);
  for (std::int32_t i = 0; i < vocab; i += 7) mask.allow(i);
  Eigen::VectorXf masked = Eigen::VectorXf::Constant(vocab, -INFINITY);
  for (std::int32_t i = 0; i < vocab; i += 7) masked[i] = logits[i];
  SamplerParams params;
  params.top_k = GENERATE(0, 5, 1000);
  params.top_p = GENERATE(1.0f, 0.8f);
  params.temperature = GENERATE(0.0f, 0.7f);
  params.seed = 1234;
  CAPTURE(params.top_k, params.top_p, params.temperature);
  Sampler with_mask(params, vocab), with_masked_logits(params, vocab);
  for (int draw = 0; draw < 200; ++draw) {
    const std::int32_t token = with_mask.sample(logits, {}, {}, &mask);
    REQUIRE(mask.allows(token));
    REQUIRE(token == with_masked_logits.sample(masked));
  }
  TokenMask none;
  none.clear(vocab);
  REQUIRE_THROWS_WITH(with_mask.sample(logits, {}, {}, &none), Catch::Contains("no token"));
}

TEST_CASE("Greedy constrained generation equals masking every token by trying it", "[constrain]") {
  const std::string path = test::model_path(GENERATE(std::string("griffin-demo"), std::string("hgrn2-demo")));
  CAPTURE(path);
  const Tokenizer tokenizer = load_model_tokenizer(path);
  const auto vocabulary = TokenVocabulary::from_tokenizer(tokenizer);
  // A small schema-like grammar the demo model would not follow on its own.
  const auto grammar = std::make_shared<const Grammar>(Grammar::parse(
      R"(root ::= "{\"name\": \"" [a-zA-Z ]{1,12} "\", \"age\": " [1-9] [0-9]? ", \"tags\": [" tag (", " tag){0,2} "]}"
tag ::= "\"" [a-z]+ "\"")"));
  Session session(load_model(path));
  const std::vector<std::int32_t> end_tokens = session.model().info().stop_token_ids;
  const std::vector<std::int32_t> prompt = tokenizer.encode("Once upon a time", true);
  SamplerParams greedy;
  greedy.temperature = 0.0f;

  Session reference_session(load_model(path));
  TokenConstraint constraint(grammar, vocabulary, end_tokens);
  Sampler sampler(greedy, vocabulary->size());
  std::string text, reference_text;
  const Eigen::VectorXf* logits = &session.prefill(prompt);
  const Eigen::VectorXf* reference_logits = &reference_session.prefill(prompt);
  bool ended = false;
  for (int step = 0; step < 80 && !ended; ++step) {
    CAPTURE(step, text);
    const std::int32_t token = sample_constrained(sampler, constraint, *logits);
    // Reference: try every token against the text so far, take the first largest allowed logit.
    const TokenMask allowed = brute_force_mask(grammar, *vocabulary, reference_text, end_tokens);
    std::int32_t expected = -1;
    for (std::int32_t id = 0; id < vocabulary->size(); ++id)
      if (allowed.allows(id) && (expected < 0 || (*reference_logits)[id] > (*reference_logits)[expected])) expected = id;
    REQUIRE(token == expected);
    constraint.accept(token);
    for (std::int32_t t : end_tokens) ended |= token == t;
    if (ended) break;
    text += vocabulary->bytes(token);
    reference_text += vocabulary->bytes(expected);
    if ((ended = constraint.finished())) break;
    logits = &session.step(token);
    reference_logits = &reference_session.step(expected);
  }
  CAPTURE(text);
  CHECK(ended);
  CHECK(grammar_accepts(*grammar, text));
}
