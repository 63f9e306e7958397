// libFuzzer target: GBNF grammars and JSON Schemas as users send them. The input is a grammar
// (or, when it starts with '{', a JSON Schema compiled to one), then a NUL, then a text: the
// grammar is parsed, the text matched, and masks over the demo vocabulary computed along it.
// Every grammar the schema compiler writes must parse.

#include <memory>  // std::make_shared
#include <string>  // std::string

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "glrnn/constrain/json_schema.hpp"
#include "glrnn/constrain/token_constraint.hpp"
#include "glrnn/tokenizer/tokenizer_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto vocabulary = glrnn::TokenVocabulary::from_tokenizer(glrnn::load_tokenizer(GLRNN_FUZZ_TOKENIZER));
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = input.find('\0');
  std::string grammar_text = input.substr(0, split);
  const std::string text = split == std::string::npos ? std::string() : input.substr(split + 1);
  glrnn::fuzz::expect_only_glrnn_errors([&] {
    if (!grammar_text.empty() && grammar_text[0] == '{') {
      const auto schema = nlohmann::ordered_json::parse(grammar_text, nullptr, /*allow_exceptions=*/false);
      if (schema.is_discarded()) return;
      grammar_text = glrnn::json_schema_to_grammar(schema);
      try {
        (void)glrnn::Grammar::parse(grammar_text);
      } catch (const glrnn::InputError& e) {
        std::fprintf(stderr, "the schema compiler wrote a grammar that does not parse: %s\n%s\n", e.what(), grammar_text.c_str());
        std::abort();
      }
    }
    const auto grammar = std::make_shared<const glrnn::Grammar>(glrnn::Grammar::parse(grammar_text));
    (void)glrnn::grammar_accepts(*grammar, text);
    glrnn::TokenConstraint constraint(grammar, vocabulary, {1});
    for (char c : text.substr(0, 16)) {
      const std::int32_t byte_token = 4 + static_cast<unsigned char>(c);  // the demo's <0xXX> tokens
      const bool allowed = constraint.mask().allows(byte_token);
      if (allowed != constraint.allows(byte_token)) std::abort();  // mask and one-token check disagree
      if (!allowed) break;
      constraint.accept(byte_token);
    }
  });
  return 0;
}
