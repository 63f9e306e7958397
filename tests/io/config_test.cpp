// config.json variants and errors (docs/formats.md §2.1, §5.4).

#include <string>  // std::string

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"

namespace {

nlohmann::json tiny_config() {
  return {{"model_type", "recurrent_gemma"}, {"hidden_size", 64}, {"num_hidden_layers", 6}, {"vocab_size", 512},
          {"num_attention_heads", 4}, {"num_key_value_heads", 1}, {"intermediate_size", 192},
          {"attention_window_size", 16}, {"block_types", {"recurrent", "recurrent", "attention"}}};
}

glrnn::RecurrentGemmaConfig parse(const nlohmann::json& j) {
  return glrnn::RecurrentGemmaConfig::from_json(glrnn::JsonConfig(j, "config.json"));
}

}  // namespace

TEST_CASE("RecurrentGemma config: derived sizes and defaults", "[io]") {
  const glrnn::RecurrentGemmaConfig c = parse(tiny_config());
  CHECK(c.head_dim == 16);
  CHECK(c.mlp_width() == 96);
  CHECK(c.lru_width == 64);  // absent: hidden_size
  CHECK(c.rotary_dims() == 8);
  CHECK(c.rope_theta == 10000.0f);
  CHECK(c.embedding_scale() == 8.0f);
  CHECK(c.conv_width == 4);
}

TEST_CASE("RecurrentGemma config: key spellings of transformers 4.x and 5.x", "[io]") {
  nlohmann::json j = tiny_config();
  j.erase("block_types");
  j["_block_types"] = {"attention", "recurrent"};
  j["rope_parameters"] = {{"rope_theta", 500.0}, {"partial_rotary_factor", 0.25}, {"rope_type", "default"}};
  j["rope_theta"] = 7.0;  // 5.x's rope_parameters wins over a stale top-level value
  const glrnn::RecurrentGemmaConfig c = parse(j);
  CHECK(c.block_type(0) == glrnn::GriffinBlockType::Attention);
  CHECK(c.block_type(1) == glrnn::GriffinBlockType::Recurrent);
  CHECK(c.rope_theta == 500.0f);
  CHECK(c.rotary_dims() == 4);

  nlohmann::json old = tiny_config();
  old["rope_theta"] = 123.0;
  old.erase("num_key_value_heads");
  CHECK(parse(old).rope_theta == 123.0f);
  CHECK(parse(old).num_kv_heads == 4);  // absent: num_attention_heads, as transformers
  old.erase("attention_window_size");
  old["sliding_window"] = 32;
  CHECK(parse(old).window == 32);
}

TEST_CASE("RecurrentGemma config: the block pattern is tiled over the layers", "[io]") {
  nlohmann::json j = tiny_config();
  j["num_hidden_layers"] = 4;  // docs/recurrent_gemma.md §14.3: not a multiple of 3
  const glrnn::RecurrentGemmaConfig c = parse(j);
  using B = glrnn::GriffinBlockType;
  CHECK(c.block_type(0) == B::Recurrent);
  CHECK(c.block_type(1) == B::Recurrent);
  CHECK(c.block_type(2) == B::Attention);
  CHECK(c.block_type(3) == B::Recurrent);
  CHECK(c.state_bytes() == 3 * (64 + 3 * 64) * 4 + 1 * (2 * 16 * 16) * 4);
}

TEST_CASE("RecurrentGemma config: errors name the file and the key", "[io]") {
  const auto fails_with = [](nlohmann::json j, const std::string& text) {
    CHECK_THROWS_WITH(parse(j), Catch::Contains(text) && Catch::Contains("config.json"));
    CHECK_THROWS_AS(parse(j), glrnn::ConfigError);
  };
  nlohmann::json j = tiny_config();
  j.erase("hidden_size");
  fails_with(j, "missing required key 'hidden_size'");
  j = tiny_config();
  j["hidden_size"] = "wide";
  fails_with(j, "'hidden_size' must be an integer");
  j = tiny_config();
  j["hidden_size"] = 66;
  fails_with(j, "not divisible by num_attention_heads");
  j = tiny_config();
  j["vocab_size"] = 0;
  fails_with(j, "'vocab_size' is 0");
  j = tiny_config();
  j["attention_window_size"] = -3;
  fails_with(j, "'attention_window_size' is -3");
  j = tiny_config();
  j["num_key_value_heads"] = 3;
  fails_with(j, "num_key_value_heads");
  j = tiny_config();
  j["intermediate_size"] = 191;
  fails_with(j, "must be even");
  j = tiny_config();
  j["block_types"] = {"recurrent", "mamba"};
  fails_with(j, "'mamba'");
  j = tiny_config();
  j["hidden_activation"] = "relu";
  fails_with(j, "hidden_activation");
  j = tiny_config();
  j["model_type"] = "gemma";
  fails_with(j, "expected 'recurrent_gemma'");
  j = tiny_config();
  j["hidden_size"] = 1ull << 62;
  fails_with(j, "'hidden_size' is");
  CHECK_THROWS_AS(glrnn::RecurrentGemmaConfig::load("/nonexistent/config.json"), glrnn::IoError);
}
