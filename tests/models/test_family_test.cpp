// A model family defined and registered by a program alone, with no edit to glrnn (the proof of
// docs/architecture.md §5): Griffin's recurrent blocks stacked without norms or MLPs, an untied
// head, its own config.json model_type and tensor names. load_model, convert_model, the error
// that lists the supported families and the recipes all take it from the table.

#include <random>  // std::mt19937, std::normal_distribution
#include <string>  // std::string
#include <vector>  // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {

struct TinyRnnConfig {
  std::int64_t hidden = 0, layers = 0, vocab = 0, heads = 0, conv_width = 0;
  static TinyRnnConfig from_json(const glrnn::JsonConfig& json) {
    TinyRnnConfig c{json.integer("hidden_size"), json.integer("num_hidden_layers"), json.integer("vocab_size"),
                    json.integer("num_heads"), json.integer_or("conv1d_width", 4)};
    GLRNN_CHECK(c.hidden > 0 && c.layers > 0 && c.vocab > 0 && c.heads > 0 && c.hidden % c.heads == 0, glrnn::ConfigError,
                json.source() + ": sizes must be positive and hidden_size divisible by num_heads");
    return c;
  }
  glrnn::RecurrentBlockConfig block() const { return {hidden, hidden, heads, conv_width}; }
};

using TinyBlock = glrnn::ResidualBlock<glrnn::NoNorm, glrnn::RecurrentBlock, glrnn::NoChannelMixer>;
using TinyRnn = glrnn::DecoderStack<glrnn::NoNorm, glrnn::LinearHead, TinyBlock>;

struct TinyRnnFamily {
  static constexpr const char* kName = "tiny_rnn";
  static std::vector<std::string> model_types() { return {"glrnn_test_tiny_rnn"}; }
  using Config = TinyRnnConfig;
  static Config parse(const glrnn::JsonConfig& json, const glrnn::LoadOptions&) { return Config::from_json(json); }
  static glrnn::ModelSummary summary(const Config& c) {
    return {c.vocab, c.hidden, c.layers, 0, 1, static_cast<std::size_t>(c.layers) * glrnn::RecurrentBlockState::bytes(c.block())};
  }
  /// Its tensor table: names, shapes and roles.
  static TinyRnn build(const Config& c, glrnn::TensorReader& w) {
    const std::int64_t D = c.hidden, bw = D / c.heads;
    const auto linear = [&](const std::string& name) {
      return glrnn::LinearWeights{w.matrix(name + ".weight", {D, D}, glrnn::MatrixRole::Projection), w.vector(name + ".bias", {D})};
    };
    std::vector<TinyRnn::Block> blocks;
    for (std::int64_t l = 0; l < c.layers; ++l) {
      const std::string p = "blocks." + std::to_string(l) + ".";
      glrnn::RecurrentBlockWeights b{linear(p + "y"), linear(p + "x"), linear(p + "out"),
                                     {w.vector(p + "conv.weight", {D, 1, c.conv_width}), w.vector(p + "conv.bias", {D})},
                                     {w.matrix(p + "input_gate", {c.heads, bw, bw}, glrnn::MatrixRole::Dense),
                                      w.matrix(p + "recurrent_gate", {c.heads, bw, bw}, glrnn::MatrixRole::Dense),
                                      w.vector(p + "input_gate_bias", {c.heads, bw}), w.vector(p + "recurrent_gate_bias", {c.heads, bw}),
                                      w.vector(p + "lambda", {D})}};
      blocks.emplace_back(TinyBlock(D, glrnn::NoNorm{}, glrnn::RecurrentBlock(c.block(), b)));
    }
    return TinyRnn(glrnn::Embedding(w.matrix("embed", {c.vocab, D}, glrnn::MatrixRole::Embedding), 1.0f), std::move(blocks),
                   glrnn::NoNorm{}, glrnn::LinearHead(glrnn::Linear(D, c.vocab, {w.matrix("head", {c.vocab, D}, glrnn::MatrixRole::Head), {}}, "head")));
  }
};

/// A folder holding config.json and model.safetensors of a random TinyRnn.
std::string write_tiny_rnn() {
  const std::int64_t D = 64, L = 3, V = 300, H = 2, K = 4, bw = D / H;
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  glrnn::test::SafetensorsBuilder builder;
  const auto add = [&](const std::string& name, std::vector<std::int64_t> shape, float scale) {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    std::vector<float> values(static_cast<std::size_t>(n));
    for (float& v : values) v = scale * normal(rng);
    builder.add_f32(name, std::move(shape), values);
  };
  add("embed", {V, D}, 1.0f);
  add("head", {V, D}, 0.2f);
  for (int l = 0; l < L; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    for (const char* linear : {"y", "x", "out"}) {
      add(p + linear + ".weight", {D, D}, 0.15f);
      add(p + linear + ".bias", {D}, 0.05f);
    }
    add(p + "conv.weight", {D, 1, K}, 0.3f);
    add(p + "conv.bias", {D}, 0.05f);
    add(p + "input_gate", {H, bw, bw}, 0.2f);
    add(p + "recurrent_gate", {H, bw, bw}, 0.2f);
    add(p + "input_gate_bias", {H, bw}, 0.2f);
    add(p + "recurrent_gate_bias", {H, bw}, 0.2f);
    add(p + "lambda", {D}, 0.5f);
  }
  const std::string dir = glrnn::test::make_temp_dir("tiny-rnn");
  glrnn::test::write_temp_file(builder.build(), "tiny-rnn/model.safetensors");
  const nlohmann::json config = {{"model_type", "glrnn_test_tiny_rnn"}, {"hidden_size", D}, {"num_hidden_layers", L},
                                 {"vocab_size", V}, {"num_heads", H}, {"conv1d_width", K}};
  glrnn::test::write_temp_file(config.dump(), "tiny-rnn/config.json");
  return dir;
}

}  // namespace

TEST_CASE("A family registered by a program loads, converts and runs like a built-in one", "[models]") {
  const std::string dir = write_tiny_rnn();
  CHECK_THROWS_WITH(glrnn::load_model(dir), Catch::Contains("supported: recurrent_gemma") && Catch::Contains("hgrn2"));
  if (glrnn::supported_model_types().find("glrnn_test_tiny_rnn") == std::string::npos)
    glrnn::register_family(glrnn::make_family<TinyRnnFamily>());
  CHECK(glrnn::supported_model_types().find("glrnn_test_tiny_rnn") != std::string::npos);
  CHECK_THROWS_AS(glrnn::register_family(glrnn::make_family<TinyRnnFamily>()), glrnn::ConfigError);  // its type is taken

  const glrnn::Model model = glrnn::load_model(dir);
  CHECK(model.info().family == "tiny_rnn");
  CHECK(model.info().weights == "f32");
  CHECK(model.state_bytes() == 3u * (64 + 3 * 64) * sizeof(float));  // per block: h [64] and 3 conv rows

  std::vector<std::int32_t> tokens;
  for (int i = 0; i < 24; ++i) tokens.push_back((i * 41 + 7) % 300);
  glrnn::Session whole(model);
  glrnn::RowMatrixXf all;
  whole.prefill_all(tokens, all);
  glrnn::Session stepwise(model);
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    stepwise.step(tokens[t]);
    // Float32 rounding of two evaluation orders (matrix-vector vs matrix kernel).
    CHECK((stepwise.logits().transpose() - all.row(static_cast<Eigen::Index>(t))).cwiseAbs().maxCoeff() < 1e-4f);
  }

  // Conversion reads the same table: the converted file loads as the family, in the recipe's formats.
  const std::string file = (glrnn::test::test_temp_dir() / "tiny-rnn-int8.safetensors").string();
  glrnn::convert_model(dir, file, *glrnn::find_weight_recipe("int8"));
  const glrnn::Model converted = glrnn::load_model(file);
  CHECK(converted.info().family == "tiny_rnn");
  CHECK(converted.info().weights == "int8");
  glrnn::Session q(converted);
  glrnn::RowMatrixXf quantized;
  q.prefill_all(tokens, quantized);
  // int8 weights and activations: about 1% of the logits' RMS on such a stack (as on the demo models).
  CHECK((quantized - all).norm() / all.norm() < 0.03);
}
