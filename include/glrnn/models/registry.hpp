#pragma once
// load_model(path): a Hugging Face model folder -> Model, with the family taken from config.json's
// model_type and the storage type from the safetensors headers.

#include <filesystem>  // std::filesystem::path, is_directory
#include <memory>      // std::make_shared
#include <string>      // std::string

#include "glrnn/core/dtype.hpp"
#include "glrnn/io/json_config.hpp"
#include "glrnn/io/weight_store.hpp"
#include "glrnn/models/model.hpp"
#include "glrnn/models/recurrent_gemma/model.hpp"

namespace glrnn {

namespace detail {
template <class T>
Model make_recurrent_gemma(const RecurrentGemmaConfig& c, std::shared_ptr<WeightStore> store, ModelInfo info) {
  info.weight_type = dtype_of<T>::value;
  RecurrentGemma<T> net = build_recurrent_gemma<T>(c, *store);
  return Model(std::move(info), std::move(store), std::move(net));
}
}  // namespace detail

/// Loads a model folder holding config.json and model.safetensors (or shards with
/// model.safetensors.index.json). Throws IoError, FormatError, ConfigError or ShapeError.
inline Model load_model(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  GLRNN_CHECK(fs::is_directory(path, ec), IoError,
              "'" + path + "' is not a model folder (expected a folder with config.json and *.safetensors)");
  const JsonConfig json = JsonConfig::load((fs::path(path) / "config.json").string());
  const std::string family = json.string("model_type");
  GLRNN_CHECK(family == "recurrent_gemma", ConfigError,
              json.where("model_type") + " is '" + family + "'; supported: recurrent_gemma");
  const RecurrentGemmaConfig c = RecurrentGemmaConfig::from_json(json);
  auto store = std::make_shared<WeightStore>(path);
  ModelInfo info{family, path, DType::F32, c.vocab_size, c.hidden_size, c.num_layers, c.bos_token_id, c.eos_token_id};
  if (store->matrix_storage() == DType::BF16) return detail::make_recurrent_gemma<bf16>(c, std::move(store), info);
  return detail::make_recurrent_gemma<float>(c, std::move(store), info);
}

}  // namespace glrnn
