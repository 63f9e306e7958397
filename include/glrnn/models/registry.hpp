#pragma once
// load_model(path): a Hugging Face model folder -> Model, with the family taken from config.json's
// model_type (recurrent_gemma, hgrn2) and the storage type from the safetensors headers.

#include <algorithm>   // std::find
#include <filesystem>  // std::filesystem::path, is_directory, exists
#include <memory>      // std::make_shared
#include <string>      // std::string

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/hash.hpp"
#include "glrnn/io/json_config.hpp"
#include "glrnn/io/weight_store.hpp"
#include "glrnn/models/model.hpp"
#include "glrnn/models/hgrn2/model.hpp"
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

/// Builds the network with the storage type that holds the checkpoint's matrices losslessly;
/// build(tag, store) is called with a float or bf16 tag.
template <class Build>
Model make_model(ModelInfo info, std::shared_ptr<WeightStore> store, Build&& build) {
  if (store->matrix_storage() == DType::BF16) {
    info.weight_type = DType::BF16;
    auto net = build(bf16{}, *store);
    return Model(std::move(info), std::move(store), std::move(net));
  }
  info.weight_type = DType::F32;
  auto net = build(float{}, *store);
  return Model(std::move(info), std::move(store), std::move(net));
}

/// Identifies a model for saved states: the family, config.json, the load options and every
/// tensor's name, dtype and shape (the headers, not the data: hashing gigabytes would slow loading).
inline std::uint64_t fingerprint(const JsonConfig& config, const LoadOptions& options, const WeightStore& store) {
  std::uint64_t h = fnv1a64(config.json().dump());
  h = fnv1a64(options.rope_bf16_frequencies ? "rope_bf16" : "rope_f32", h);
  for (const TensorInfo* t : store.checkpoint().all()) {
    h = fnv1a64(t->name, h);
    h = fnv1a64(dtype_name(t->dtype), h);
    h = fnv1a64(t->shape_str(), h);
  }
  return h;
}

inline ModelInfo model_info(const std::string& family, const std::string& path, std::int64_t vocab, std::int64_t hidden,
                            std::int64_t layers, std::int32_t bos, std::int32_t eos, std::uint64_t fingerprint) {
  return {family, path, DType::F32, vocab, hidden, layers, bos, eos, stop_tokens(path, eos, vocab), fingerprint};
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
  if (family == "recurrent_gemma") {
    RecurrentGemmaConfig c = RecurrentGemmaConfig::from_json(json);
    c.rope_bf16_frequencies = options.rope_bf16_frequencies;
    auto store = std::make_shared<WeightStore>(path);
    return detail::make_model(detail::model_info(family, path, c.vocab_size, c.hidden_size, c.num_layers, c.bos_token_id,
                                                 c.eos_token_id, detail::fingerprint(json, options, *store)),
                              store, [&](auto tag, WeightStore& s) { return build_recurrent_gemma<decltype(tag)>(c, s); });
  }
  if (family == "hgrn2") {
    const Hgrn2Config c = Hgrn2Config::from_json(json);
    auto store = std::make_shared<WeightStore>(path);
    return detail::make_model(detail::model_info(family, path, c.vocab_size, c.hidden_size, c.num_layers, c.bos_token_id,
                                                 c.eos_token_id, detail::fingerprint(json, options, *store)),
                              store, [&](auto tag, WeightStore& s) { return build_hgrn2<decltype(tag)>(c, s); });
  }
  throw ConfigError(json.where("model_type") + " is '" + family + "'; supported: recurrent_gemma, hgrn2");
}

}  // namespace glrnn
