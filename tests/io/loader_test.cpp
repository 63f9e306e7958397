// Loading checkpoints as downloaded, and refusing broken ones with a message that says what is
// wrong. Variants are written from the tiny fixture's own tensors.

#include <filesystem>  // std::filesystem::copy_file
#include <fstream>     // std::ofstream
#include <functional>  // std::function
#include <string>      // std::string
#include <vector>      // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {

struct LoaderTensor {
  std::string name, dtype;
  std::vector<std::int64_t> shape;
  std::string bytes;
};

std::vector<LoaderTensor> fixture_tensors(const std::string& fixture) {
  const glrnn::Checkpoint checkpoint(glrnn::test::data_path(fixture));
  std::vector<LoaderTensor> out;
  for (const glrnn::TensorInfo* t : checkpoint.all())
    out.push_back({t->name, std::string(glrnn::dtype_name(t->dtype)), t->shape,
                   std::string(reinterpret_cast<const char*>(t->data), t->nbytes)});
  return out;
}

nlohmann::json fixture_config(const std::string& fixture) {
  return glrnn::test::load_json(glrnn::test::data_path(fixture + "/config.json"));
}

/// Writes config.json and model.safetensors into a fresh folder; returns the folder.
std::string write_model(const std::string& name, const nlohmann::json& config, const std::vector<LoaderTensor>& tensors) {
  const std::string dir = glrnn::test::make_temp_dir(name);
  glrnn::test::SafetensorsBuilder builder;
  for (const LoaderTensor& t : tensors) builder.add(t.name, t.dtype, t.shape, t.bytes);
  glrnn::test::write_temp_file(builder.build(), name + "/model.safetensors");
  glrnn::test::write_temp_file(config.dump(), name + "/config.json");
  return dir;
}

std::vector<LoaderTensor> without(std::vector<LoaderTensor> tensors, const std::function<bool(const LoaderTensor&)>& drop) {
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(), drop), tensors.end());
  return tensors;
}

glrnn::RowMatrixXf prompt_logits(const std::string& dir) {
  const glrnn::Model model = glrnn::load_model(dir);
  glrnn::Session session(model);
  glrnn::RowMatrixXf out;
  session.prefill_all(glrnn::test::ids(glrnn::test::reference("recurrentgemma-tiny")["prompt_ids"]), out);
  return out;
}

}  // namespace

TEST_CASE("Loader: equivalent layouts of the same weights give the same logits", "[io]") {
  const std::vector<LoaderTensor> tensors = fixture_tensors("recurrentgemma-tiny");
  const nlohmann::json config = fixture_config("recurrentgemma-tiny");
  const glrnn::RowMatrixXf original = prompt_logits(glrnn::test::data_path("recurrentgemma-tiny"));

  SECTION("sharded through model.safetensors.index.json") {
    const std::string dir = glrnn::test::make_temp_dir("sharded");
    glrnn::test::SafetensorsBuilder shard[2];
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const std::string file = i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
      shard[i % 2].add(tensors[i].name, tensors[i].dtype, tensors[i].shape, tensors[i].bytes);
      index["weight_map"][tensors[i].name] = file;
    }
    glrnn::test::write_temp_file(shard[0].build(), "sharded/model-00001-of-00002.safetensors");
    glrnn::test::write_temp_file(shard[1].build(), "sharded/model-00002-of-00002.safetensors");
    glrnn::test::write_temp_file(index.dump(), "sharded/model.safetensors.index.json");
    glrnn::test::write_temp_file(config.dump(), "sharded/config.json");
    CHECK(glrnn::test::max_abs_diff(prompt_logits(dir), original) == 0.0);
  }
  SECTION("a stored lm_head.weight is ignored when the head is tied") {
    std::vector<LoaderTensor> with_head = tensors;
    for (const LoaderTensor& t : tensors)
      if (t.name == "model.embed_tokens.weight") with_head.push_back({"lm_head.weight", t.dtype, t.shape, t.bytes});
    CHECK(glrnn::test::max_abs_diff(prompt_logits(write_model("lm_head", config, with_head)), original) == 0.0);
  }
  SECTION("a bf16 file with one f32 matrix keeps each as stored") {
    std::vector<LoaderTensor> mixed = fixture_tensors("recurrentgemma-tiny-bf16");
    for (LoaderTensor& t : mixed)
      if (t.name == "model.layers.0.mlp_block.up_proj.weight") {
        std::vector<float> widened(t.bytes.size() / 2);
        for (std::size_t i = 0; i < widened.size(); ++i) {
          glrnn::bf16 b;
          std::memcpy(&b, t.bytes.data() + 2 * i, 2);
          widened[i] = glrnn::to_float(b);
        }
        t = {t.name, "F32", t.shape, glrnn::test::raw_bytes(widened)};
      }
    const std::string dir = write_model("mixed", fixture_config("recurrentgemma-tiny-bf16"), mixed);
    const glrnn::ModelInfo info = glrnn::load_model(dir).info();
    CHECK(info.weights == "mixed");
    CHECK(info.bits_per_weight > 16.0);  // the f32 matrix is not rounded to bf16
    CHECK(info.bits_per_weight < 17.0);
    const double err = glrnn::test::max_abs_diff(prompt_logits(dir),
                                                 prompt_logits(glrnn::test::data_path("recurrentgemma-tiny-bf16")));
    // Same values; only the order of the products' sums differs (tiled vs direct, and on the amx
    // path the bf16 matrices take the tile kernel): recurrent_gemma_test's self tolerance.
    CHECK(err < 1e-4);
  }
}

TEST_CASE("Loader: a layer count that is not a multiple of the pattern tiles it", "[io]") {
  // docs/recurrent_gemma.md §14.3: 4 layers are R, R, A, R, so layer 3 needs recurrent tensors.
  nlohmann::json config = fixture_config("recurrentgemma-tiny");
  config["num_hidden_layers"] = 4;
  const std::vector<LoaderTensor> tensors = without(fixture_tensors("recurrentgemma-tiny"), [](const LoaderTensor& t) {
    return t.name.rfind("model.layers.4.", 0) == 0 || t.name.rfind("model.layers.5.", 0) == 0;
  });
  const glrnn::Model model = glrnn::load_model(write_model("four_layers", config, tensors));
  glrnn::Session session(model);
  CHECK(session.prefill({2, 66, 452}).allFinite());
  CHECK(session.state().bytes() == 3 * (64 + 3 * 64) * 4 + 1 * (2 * 16 * 16) * 4);
}

TEST_CASE("Loader: broken checkpoints are refused with a message that says what is wrong", "[io]") {
  const std::vector<LoaderTensor> tensors = fixture_tensors("recurrentgemma-tiny");
  const nlohmann::json config = fixture_config("recurrentgemma-tiny");

  SECTION("a truncated file") {
    const std::string dir = write_model("truncated", config, tensors);
    std::filesystem::resize_file(dir + "/model.safetensors", std::filesystem::file_size(dir + "/model.safetensors") / 2);
    CHECK_THROWS_AS(glrnn::load_model(dir), glrnn::FormatError);
    CHECK_THROWS_WITH(glrnn::load_model(dir), Catch::Contains("model.safetensors"));
  }
  SECTION("a corrupted header") {
    const std::string dir = write_model("corrupt", config, tensors);
    std::fstream f(dir + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);  // the header's opening brace
    f.put('#');
    f.close();
    CHECK_THROWS_WITH(glrnn::load_model(dir), Catch::Contains("not valid JSON"));
  }
  SECTION("a tensor of the wrong shape names the tensor, the expected and the found shape") {
    std::vector<LoaderTensor> bad = tensors;
    for (LoaderTensor& t : bad)
      if (t.name == "model.layers.1.temporal_block.linear_x.weight") {
        t.shape = {64, 32};
        t.bytes.resize(t.bytes.size() / 2);
      }
    const std::string dir = write_model("wrong_shape", config, bad);
    CHECK_THROWS_AS(glrnn::load_model(dir), glrnn::ShapeError);
    CHECK_THROWS_WITH(glrnn::load_model(dir), Catch::Contains("model.layers.1.temporal_block.linear_x.weight") &&
                                                  Catch::Contains("[64, 32]") && Catch::Contains("expected [64, 64]"));
  }
  SECTION("a missing tensor is named") {
    const std::string dir = write_model("missing", config, without(tensors, [](const LoaderTensor& t) {
                                          return t.name == "model.layers.0.mlp_block.up_proj.bias";
                                        }));
    CHECK_THROWS_WITH(glrnn::load_model(dir), Catch::Contains("'model.layers.0.mlp_block.up_proj.bias' is missing"));
  }
  SECTION("weights of an unsupported dtype") {
    std::vector<LoaderTensor> bad = tensors;
    for (LoaderTensor& t : bad)
      if (t.name == "model.final_norm.weight") t = {t.name, "I32", t.shape, t.bytes};
    CHECK_THROWS_WITH(glrnn::load_model(write_model("int_weights", config, bad)),
                      Catch::Contains("model.final_norm.weight") && Catch::Contains("I32"));
  }
  SECTION("a config that does not match the weights") {
    nlohmann::json wide = config;
    wide["hidden_size"] = 128;
    CHECK_THROWS_AS(glrnn::load_model(write_model("wide", wide, tensors)), glrnn::ShapeError);
  }
  SECTION("a config whose state would not fit in memory is refused before any allocation") {
    // 4096 layers of the tiny geometry with a 2^24-token window: terabytes of KV cache. The
    // check comes before the weights are matched, so the missing layers are not what fails.
    nlohmann::json huge = config;
    huge["attention_window_size"] = 1 << 24;
    huge["num_hidden_layers"] = 4096;
    CHECK_THROWS_AS(glrnn::load_model(write_model("huge_state", huge, tensors)), glrnn::ConfigError);
    CHECK_THROWS_WITH(glrnn::load_model(write_model("huge_state", huge, tensors)),
                      Catch::Contains("config.json") && Catch::Contains("state would need") &&
                          Catch::Contains("of memory this machine has"));
    glrnn::LoadOptions tight;
    tight.max_state_bytes = 1000;  // the fixture's state is ~23 kB
    CHECK_THROWS_WITH(glrnn::load_model(write_model("tight", config, tensors), tight), Catch::Contains("1000 B allowed"));
  }
  SECTION("a missing config key, config file or folder") {
    nlohmann::json incomplete = config;
    incomplete.erase("vocab_size");
    CHECK_THROWS_WITH(glrnn::load_model(write_model("no_vocab", incomplete, tensors)), Catch::Contains("'vocab_size'"));
    const std::string dir = write_model("no_config", config, tensors);
    std::filesystem::remove(dir + "/config.json");
    CHECK_THROWS_AS(glrnn::load_model(dir), glrnn::IoError);
    CHECK_THROWS_AS(glrnn::load_model(dir + "/nothing-here"), glrnn::IoError);
  }
}

TEST_CASE("A token id outside the vocabulary is refused before any work", "[io]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  glrnn::Session session(model);
  CHECK_THROWS_WITH(session.prefill({2, 5, 512}), Catch::Contains("token id 512") && Catch::Contains("outside the vocabulary"));
  CHECK_THROWS_AS(session.step(-1), glrnn::InputError);
  CHECK(session.position() == 0);
}
