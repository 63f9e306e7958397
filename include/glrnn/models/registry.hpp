#pragma once
// load_model(path): a Hugging Face model folder -> Model, with the family taken from config.json's
// model_type and the storage type from the safetensors headers.

#include <algorithm>   // std::find
#include <filesystem>  // std::filesystem::path, is_directory, exists
#include <memory>      // std::make_shared
#include <string>      // std::string

#include "glrnn/core/dtype.hpp"
#include "glrnn/io/json_config.hpp"
#include "glrnn/io/weight_store.hpp"
#include "glrnn/models/model.hpp"
#include "glrnn/models/recurrent_gemma/model.hpp"

namespace glrnn {

/// Choices that config.json does not carry.
struct LoadOptions {
  /// Round RoPE's inverse frequencies to bfloat16. glrnn computes them in float32, as
  /// transformers does for a model loaded with dtype=float32 and as the original implementation
  /// does; a transformers model loaded in bf16 (the default for a bf16 checkpoint) and then cast
  /// to float32 keeps bf16-rounded frequencies, which moves logits by ~1e-3 after 50 positions.
  bool rope_bf16_frequencies = false;
};

namespace detail {
/// eos_token_id plus the ids generation_config.json lists as eos (an int or a list), if present.
inline std::vector<std::int32_t> stop_tokens(const std::string& folder, std::int32_t eos, std::int64_t vocab_size) {
  std::vector<std::int32_t> ids{eos};
  const std::filesystem::path file = std::filesystem::path(folder) / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return ids;
  const JsonConfig generation = JsonConfig::load(file.string());
  const nlohmann::json* listed = generation.find("eos_token_id");
  if (!listed) return ids;
  for (const nlohmann::json& id : listed->is_array() ? *listed : nlohmann::json::array({*listed})) {
    GLRNN_CHECK(id.is_number_integer() && id.get<std::int64_t>() >= 0 && id.get<std::int64_t>() < vocab_size,
                ConfigError, generation.where("eos_token_id") + " holds " + id.dump() + ", not a token id");
    if (std::find(ids.begin(), ids.end(), id.get<std::int32_t>()) == ids.end()) ids.push_back(id.get<std::int32_t>());
  }
  return ids;
}

template <class T>
Model make_recurrent_gemma(const RecurrentGemmaConfig& c, std::shared_ptr<WeightStore> store, ModelInfo info) {
  info.weight_type = dtype_of<T>::value;
  RecurrentGemma<T> net = build_recurrent_gemma<T>(c, *store);
  return Model(std::move(info), std::move(store), std::move(net));
}
}  // namespace detail

/// Loads a model folder holding config.json and model.safetensors (or shards with
/// model.safetensors.index.json), and generation_config.json's stop tokens when present. Throws IoError, FormatError, ConfigError or ShapeError.
inline Model load_model(const std::string& path, const LoadOptions& options = {}) {
  namespace fs = std::filesystem;
  std::error_code ec;
  GLRNN_CHECK(fs::is_directory(path, ec), IoError,
              "'" + path + "' is not a model folder (expected a folder with config.json and *.safetensors)");
  const JsonConfig json = JsonConfig::load((fs::path(path) / "config.json").string());
  const std::string family = json.string("model_type");
  GLRNN_CHECK(family == "recurrent_gemma", ConfigError,
              json.where("model_type") + " is '" + family + "'; supported: recurrent_gemma");
  RecurrentGemmaConfig c = RecurrentGemmaConfig::from_json(json);
  c.rope_bf16_frequencies = options.rope_bf16_frequencies;
  auto store = std::make_shared<WeightStore>(path);
  ModelInfo info{family,          path,           DType::F32,      c.vocab_size, c.hidden_size, c.num_layers,
                 c.bos_token_id, c.eos_token_id, detail::stop_tokens(path, c.eos_token_id, c.vocab_size)};
  if (store->matrix_storage() == DType::BF16) return detail::make_recurrent_gemma<bf16>(c, std::move(store), info);
  return detail::make_recurrent_gemma<float>(c, std::move(store), info);
}

}  // namespace glrnn
