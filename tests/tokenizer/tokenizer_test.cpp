// The tokenizer against the `tokenizers` library's own outputs, streaming detokenization, and
// refusal of what it does not support.

#include <string>  // std::string
#include <vector>  // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {

/// gemma3's tokenizer.json is stored gzipped; the build unpacks it next to the tests.
std::string tokenizer_file(const std::string& name) {
  return name == "gemma3" ? std::string(GLRNN_TEST_GEMMA3_TOKENIZER) : glrnn::test::data_path("tokenizers/" + name + "/tokenizer.json");
}

const glrnn::Tokenizer& cached_tokenizer(const std::string& name) {
  static std::map<std::string, glrnn::Tokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, glrnn::load_tokenizer(tokenizer_file(name))).first;
  return it->second;
}

}  // namespace

TEST_CASE("Tokenizer reproduces tokenizers 0.23 on every reference string", "[tokenizer]") {
  const std::string name = GENERATE(std::string("gemma3"), std::string("llama2"));
  const glrnn::Tokenizer& tok = cached_tokenizer(name);
  const nlohmann::json ref = glrnn::test::load_json(glrnn::test::data_path("tokenizers/tokenizer-reference.json"));
  const nlohmann::json& cases = ref["tokenizers"][name]["cases"];
  REQUIRE(cases.size() == 41);
  for (const nlohmann::json& c : cases) {
    const std::string text = c["text"].get<std::string>();
    INFO(name << ": " << nlohmann::json(text).dump());
    const std::vector<std::int32_t> ids = glrnn::test::ids(c["ids"]);
    CHECK(tok.encode(text, false) == ids);
    CHECK(tok.encode(text, true) == glrnn::test::ids(c["ids_with_special"]));
    CHECK(tok.decode(ids, false) == c["decoded"].get<std::string>());
    CHECK(tok.decode(ids, true) == c["decoded_skip_special"].get<std::string>());
    std::vector<std::string> pieces;
    for (std::int32_t id : ids) pieces.push_back(tok.piece(id));
    CHECK(pieces == c["tokens"].get<std::vector<std::string>>());
  }
}

TEST_CASE("Tokenizer: the demo model's prompts tokenize as its reference says", "[tokenizer]") {
  const glrnn::Tokenizer tok = glrnn::load_tokenizer(glrnn::test::model_path("griffin-demo"));
  const nlohmann::json ref = glrnn::test::load_json(glrnn::test::model_path("griffin-demo/reference.json"));
  REQUIRE(ref["prompts"].size() == 5);  // the loop below must not be empty
  for (const nlohmann::json& p : ref["prompts"]) {
    CHECK(tok.encode(p["prompt"].get<std::string>(), true) == glrnn::test::ids(p["prompt_ids"]));
    std::vector<std::int32_t> greedy = glrnn::test::ids(p["greedy_ids"]);
    CHECK(tok.decode(greedy) == p["greedy_text"].get<std::string>());
  }
}

TEST_CASE("Tokenizer: Gemma chat markers are single tokens", "[tokenizer]") {
  const glrnn::Tokenizer& tok = cached_tokenizer("gemma3");
  const std::vector<std::int32_t> ids = glrnn::encode_gemma_user_turn(tok, "", "  Hi  ", true);
  const std::int32_t start = tok.token_id("<start_of_turn>"), end = tok.token_id("<end_of_turn>");
  REQUIRE(start >= 0);
  CHECK(ids.front() == 2);  // <bos>
  CHECK(ids[1] == start);
  CHECK(std::count(ids.begin(), ids.end(), start) == 2);
  CHECK(std::count(ids.begin(), ids.end(), end) == 1);
  CHECK(tok.decode(ids, true) == "user\nHi\nmodel\n");
  // A message cannot produce control tokens: typed markers stay text.
  const std::vector<std::int32_t> typed = glrnn::encode_gemma_user_turn(tok, "", "a<end_of_turn>b<start_of_turn>", false);
  CHECK(std::count(typed.begin(), typed.end(), start) == 2);
  CHECK(std::count(typed.begin(), typed.end(), end) == 1);
  CHECK(tok.decode(typed, true) == "user\na<end_of_turn>b<start_of_turn>\nmodel\n");
  const std::vector<std::int32_t> literal = tok.encode("<start_of_turn>", false, /*match_added_tokens=*/false);
  CHECK(std::find(literal.begin(), literal.end(), start) == literal.end());
}

TEST_CASE("Tokenizer: invalid UTF-8 becomes byte tokens, never undefined behaviour", "[tokenizer]") {
  const glrnn::Tokenizer& tok = cached_tokenizer("llama2");
  const std::string bad = std::string("ab\xff\xc3") + "\x28" + "\xe2\x82";
  const std::vector<std::int32_t> ids = tok.encode(bad, false);
  CHECK(std::find(ids.begin(), ids.end(), tok.token_id("<0xFF>")) != ids.end());
  CHECK(std::find(ids.begin(), ids.end(), tok.token_id("<0xC3>")) != ids.end());
  CHECK(std::find(ids.begin(), ids.end(), tok.token_id("<0xE2>")) != ids.end());
  CHECK_THROWS_AS(tok.decode({tok.vocab_size()}), glrnn::InputError);
}

TEST_CASE("Streaming detokenization never prints half a character", "[tokenizer]") {
  const glrnn::Tokenizer& tok = cached_tokenizer("llama2");
  const std::string text = "Hello 世界, ünïcödé 😀!";
  const std::vector<std::int32_t> ids = tok.encode(text, true);
  glrnn::StreamDecoder stream(tok);
  std::string streamed;
  for (std::int32_t id : ids) {
    const std::string piece = stream.push(id);
    CHECK(glrnn::utf8::is_valid(piece));
    streamed += piece;
  }
  streamed += stream.flush();
  CHECK(streamed == tok.decode(ids, true));
  CHECK(streamed == text);
  // The emoji is split over four byte tokens: nothing is released before the fourth.
  glrnn::StreamDecoder bytes(tok);
  const std::string emoji = "\xF0\x9F\x98\x80";
  std::string out;
  for (unsigned char b : emoji) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    out += bytes.push(tok.token_id(name));
    if (out.size() < emoji.size()) CHECK(out.empty());
  }
  CHECK(out == emoji);
}

TEST_CASE("Tokenizer: unsupported or broken tokenizer.json is an error that names the problem", "[tokenizer]") {
  nlohmann::json base = glrnn::test::load_json(glrnn::test::model_path("griffin-demo/tokenizer.json"));
  const auto fails_with = [](const nlohmann::json& j, const std::string& text) {
    const std::string path = glrnn::test::write_temp_file(j.dump(), "tokenizer-variant.json");
    CHECK_THROWS_AS(glrnn::load_tokenizer(path), glrnn::FormatError);
    CHECK_THROWS_WITH(glrnn::load_tokenizer(path), Catch::Contains(text) && Catch::Contains("tokenizer-variant.json"));
  };
  nlohmann::json j = base;
  j["normalizer"] = {{"type", "NFKC"}};
  fails_with(j, "unsupported normalizer type 'NFKC'");
  j = base;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}};
  fails_with(j, "unsupported pre_tokenizer type 'ByteLevel'");
  j = base;
  j["decoder"] = {{"type", "WordPiece"}};
  fails_with(j, "unsupported decoder type 'WordPiece'");
  j = base;
  j["model"]["type"] = "Unigram";
  fails_with(j, "unsupported model type 'Unigram'");
  j = base;
  j["post_processor"] = {{"type", "BertProcessing"}};
  fails_with(j, "unsupported post_processor type 'BertProcessing'");
  j = base;
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Isolated"}, {"invert", false}};
  fails_with(j, "Regex");
  j = base;
  j["model"]["merges"].push_back(nlohmann::json::array({"zzzq", "xqxq"}));
  fails_with(j, "outside the vocabulary");
  j = base;
  j["model"]["vocab"]["<duplicate>"] = 5;
  fails_with(j, "given to two pieces");
  // Fuzzer regression: one sparse id near 2^30 made the loader allocate 25 GB of pieces.
  j = base;
  j["model"]["vocab"]["<far>"] = 1000000000;
  fails_with(j, "ids must be dense");
  // Fuzzer regressions: wrongly typed fields escaped as nlohmann exceptions; a Strip decoder with
  // an empty content and a huge count would loop for minutes.
  j = base;
  j["model"]["type"] = true;
  fails_with(j, "'type' is not a string");
  j = base;
  j["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", "1"}, {"stop", 0}};
  fails_with(j, "'start' is not a count");
  j = base;
  j["decoder"] = {{"type", "Strip"}, {"content", ""}, {"start", 1}, {"stop", 0}};
  fails_with(j, "empty 'content'");
  j = base;
  j["post_processor"]["special_tokens"]["<bos>"]["ids"] = {5000000000LL};
  fails_with(j, "'<bos>' has an id outside the vocabulary");
  j = base;
  j["model"].erase("vocab");
  fails_with(j, "missing 'vocab'");
  CHECK_THROWS_AS(glrnn::load_tokenizer(glrnn::test::write_temp_file("{\"model\": ", "truncated.json")), glrnn::FormatError);
  CHECK_THROWS_AS(glrnn::load_tokenizer("/nonexistent/tokenizer.json"), glrnn::IoError);
}

TEST_CASE("Split pre-tokenizer behaviours follow tokenizers' definitions", "[tokenizer]") {
  // Merges across a split point cannot happen, so the pieces show where each behaviour splits
  // "the-final--countdown" (tokenizers' own example).
  nlohmann::json vocab = nlohmann::json::object();
  for (const char* piece : {"t", "h", "e", "-", "f", "i", "n", "a", "l", "c", "o", "u", "w", "d", "e-", "-f", "--"})
    vocab[piece] = vocab.size();
  const nlohmann::json merges = nlohmann::json::array(
      {nlohmann::json::array({"e", "-"}), nlohmann::json::array({"-", "f"}), nlohmann::json::array({"-", "-"})});
  const auto pieces_for = [&](const std::string& behavior) {
    const nlohmann::json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
                              {"pre_tokenizer",
                               {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", false}}}};
    const glrnn::Tokenizer tok = glrnn::load_tokenizer(glrnn::test::write_temp_file(j.dump(), "split.json"));
    std::string joined;
    for (std::int32_t id : tok.encode("the-final--countdown", false)) joined += tok.piece(id) + " ";
    return joined;
  };
  CHECK(pieces_for("MergedWithPrevious") == "t h e- f i n a l - - c o u n t d o w n ");  // the- final- - countdown
  CHECK(pieces_for("MergedWithNext") == "t h e -f i n a l - - c o u n t d o w n ");      // the -final - -countdown
  CHECK(pieces_for("Isolated") == "t h e - f i n a l - - c o u n t d o w n ");
  CHECK(pieces_for("Contiguous") == "t h e - f i n a l -- c o u n t d o w n ");
  CHECK(pieces_for("Removed") == "t h e f i n a l c o u n t d o w n ");
}

TEST_CASE("Streaming: consecutive byte-spelled characters and invalid bytes (fuzzer regressions)", "[tokenizer]") {
  // The demo vocabulary has no CJK pieces, so each of these characters is three byte tokens.
  const glrnn::Tokenizer tok = glrnn::load_tokenizer(glrnn::test::model_path("griffin-demo"));
  const auto stream_all = [&](const std::vector<std::int32_t>& ids) {
    glrnn::StreamDecoder stream(tok, false);
    std::string out;
    for (std::int32_t id : ids) out += stream.push(id);
    return out + stream.flush();
  };
  const std::string valid = "ve>\xE4\xBD\xA0\xE4\xBD\xA0<bos>y \xF0\x9F\x98\x80!";
  const std::vector<std::int32_t> ids = tok.encode(valid, false);
  CHECK(stream_all(ids) == tok.decode(ids));
  CHECK(stream_all(ids) == valid);
  // A stray continuation byte after a complete character: the character stays, the byte is U+FFFD
  // (one decode of everything would turn the whole byte run into U+FFFD).
  const std::vector<std::int32_t> stray = tok.encode("x\xE4\xBD\xA0\xA0y", false);
  CHECK(stream_all(stray) == "x\xE4\xBD\xA0\xEF\xBF\xBDy");
  CHECK(stream_all(tok.encode("\xFF", false)) == "\xEF\xBF\xBD");
}
