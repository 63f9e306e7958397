#pragma once
// load_model(path): a Hugging Face model folder -> Model, with the family taken from config.json's
// model_type (recurrent_gemma, hgrn2) and the storage type from the safetensors headers.

#include <unistd.h>  // sysconf

#include <algorithm>   // std::find
#include <cstdio>      // std::snprintf
#include <limits>      // std::numeric_limits
#include <filesystem>  // std::filesystem::path, is_directory, exists
#include <map>         // std::map
#include <memory>      // std::make_shared
#include <optional>    // std::optional
#include <string>      // std::string

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/hash.hpp"
#include "glrnn/io/converted_file.hpp"
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
  /// Refuse a model whose per-sequence state needs more bytes than this (0: the machine's
  /// physical memory). A crafted config.json with a huge attention window would otherwise make
  /// the first State allocate terabytes.
  std::uint64_t max_state_bytes = 0;
  /// Storage of the large matrices. Unset: as stored (bf16 for a bf16 checkpoint, f32 for f32 or
  /// f16, a converted file's own type); otherwise converted at load.
  std::optional<WeightType> weight_type;
};


/// What a model is loaded from: a Hugging Face folder, or a file written by glrnn-convert (a
/// safetensors file carrying config.json and generation_config.json in its metadata).
struct ModelSource {
  JsonConfig config;
  std::optional<JsonConfig> generation;
  std::shared_ptr<WeightStore> store;
  std::optional<WeightType> stored_type;  // a converted file's weight type

  static ModelSource open(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      const fs::path generation = fs::path(path) / "generation_config.json";
      return {JsonConfig::load((fs::path(path) / "config.json").string()),
              fs::exists(generation, ec) ? std::optional<JsonConfig>(JsonConfig::load(generation.string())) : std::nullopt,
              std::make_shared<WeightStore>(path), std::nullopt};
    }
    GLRNN_CHECK(fs::is_regular_file(path, ec), IoError,
                "'" + path + "' is neither a model folder (config.json and *.safetensors) nor a converted model file");
    auto store = std::make_shared<WeightStore>(path);
    const std::map<std::string, std::string>& meta = store->checkpoint().files().front().metadata();
    const auto text = [&](const char* key) { const auto it = meta.find(key); return it == meta.end() ? nullptr : &it->second; };
    GLRNN_CHECK(text(kConvertedConfigKey) != nullptr, FormatError,
                path + ": a single .safetensors file must be a converted model (glrnn-convert), with '" +
                    std::string(kConvertedConfigKey) + "' in its metadata; for a Hugging Face checkpoint pass its folder");
    const auto parse = [&](const char* key) { return JsonConfig::parse(*text(key), path + " metadata '" + key + "'"); };
    std::optional<WeightType> type;
    if (const std::string* name = text(kConvertedWeightTypeKey)) {
      type = parse_weight_type(*name);
      GLRNN_CHECK(type.has_value(), FormatError, path + ": unknown weight type '" + *name + "' in the metadata");
    }
    return {parse(kConvertedConfigKey),
            text(kConvertedGenerationKey) ? std::optional<JsonConfig>(parse(kConvertedGenerationKey)) : std::nullopt,
            std::move(store), type};
  }
};

namespace detail {
inline std::uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size)
                                    : std::numeric_limits<std::uint64_t>::max();
}

inline void check_state_fits(const JsonConfig& config, std::size_t state_bytes, const LoadOptions& options) {
  const std::uint64_t limit = options.max_state_bytes ? options.max_state_bytes : physical_memory_bytes();
  const auto size = [](std::uint64_t bytes) {
    char text[32];
    if (bytes < (1ull << 20)) {
      std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
    } else {
      std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
    }
    return std::string(text);
  };
  GLRNN_CHECK(state_bytes <= limit, ConfigError,
              config.source() + ": one sequence's state would need " + size(state_bytes) + ", more than the " +
                  size(limit) + (options.max_state_bytes ? " allowed" : " of memory this machine has"));
}

/// eos_token_id plus the ids generation_config.json lists as eos (an int or a list), if present.
inline std::vector<std::int32_t> stop_tokens(const std::optional<JsonConfig>& generation, std::int32_t eos,
                                             std::int64_t vocab_size) {
  std::vector<std::int32_t> ids{eos};
  const nlohmann::json* listed = generation ? generation->find("eos_token_id") : nullptr;
  if (!listed) return ids;
  for (const nlohmann::json& id : listed->is_array() ? *listed : nlohmann::json::array({*listed})) {
    GLRNN_CHECK(id.is_number_integer() && id.get<std::int64_t>() >= 0 && id.get<std::int64_t>() < vocab_size,
                ConfigError, generation->where("eos_token_id") + " holds " + id.dump() + ", not a token id");
    if (std::find(ids.begin(), ids.end(), id.get<std::int32_t>()) == ids.end()) ids.push_back(id.get<std::int32_t>());
  }
  return ids;
}

/// Builds the network with matrices of the given storage type; build(tag, store) is called with a
/// value of that type as its tag.
template <class Build>
Model make_model(ModelInfo info, std::shared_ptr<WeightStore> store, WeightType type, Build&& build) {
  info.weight_type = type;
  switch (type) {
    case WeightType::F32: { auto net = build(float{}, *store); return Model(std::move(info), std::move(store), std::move(net)); }
    case WeightType::BF16: { auto net = build(bf16{}, *store); return Model(std::move(info), std::move(store), std::move(net)); }
    case WeightType::Q8_0: { auto net = build(q8_0{}, *store); return Model(std::move(info), std::move(store), std::move(net)); }
    case WeightType::Q4_0: { auto net = build(q4_0{}, *store); return Model(std::move(info), std::move(store), std::move(net)); }
  }
  throw Error("unknown weight type");
}

/// Identifies a model for saved states: the family, config.json, the load options and every
/// tensor's name, dtype and shape (the headers, not the data: hashing gigabytes would slow loading).
inline std::uint64_t fingerprint(const JsonConfig& config, const LoadOptions& options, const WeightStore& store) {
  std::uint64_t h = fnv1a64(config.json().dump());
  h = fnv1a64(options.rope_bf16_frequencies ? "rope_bf16" : "rope_f32", h);
  if (options.weight_type) h = fnv1a64(weight_type_name(*options.weight_type), h);
  for (const TensorInfo* t : store.checkpoint().all()) {
    h = fnv1a64(t->name, h);
    h = fnv1a64(dtype_name(t->dtype), h);
    h = fnv1a64(t->shape_str(), h);
  }
  return h;
}

inline ModelInfo model_info(const std::string& family, const std::string& path, std::int64_t vocab, std::int64_t hidden,
                            std::int64_t layers, std::int32_t bos, std::int32_t eos, const ModelSource& source,
                            const LoadOptions& options) {
  return {family, path, WeightType::F32, vocab, hidden, layers, bos, eos, stop_tokens(source.generation, eos, vocab),
          fingerprint(source.config, options, *source.store)};
}

/// The requested type, else a converted file's, else the checkpoint's (bf16 stays bf16).
inline WeightType weight_type(const ModelSource& source, const LoadOptions& options) {
  if (options.weight_type) return *options.weight_type;
  if (source.stored_type) return *source.stored_type;
  return source.store->matrix_storage() == DType::BF16 ? WeightType::BF16 : WeightType::F32;
}
}  // namespace detail

/// Builds the model `source` describes (`path` is what ModelInfo reports). The source's store then
/// lists every tensor the model took (see glrnn-convert).
inline Model load_model(const ModelSource& source, const std::string& path, const LoadOptions& options = {}) {
  const JsonConfig& json = source.config;
  const std::string family = json.string("model_type");
  const WeightType type = detail::weight_type(source, options);
  if (family == "recurrent_gemma") {
    RecurrentGemmaConfig c = RecurrentGemmaConfig::from_json(json);
    c.rope_bf16_frequencies = options.rope_bf16_frequencies;
    detail::check_state_fits(json, c.state_bytes(), options);
    return detail::make_model(
        detail::model_info(family, path, c.vocab_size, c.hidden_size, c.num_layers, c.bos_token_id, c.eos_token_id, source, options),
        source.store, type, [&](auto tag, WeightStore& s) { return build_recurrent_gemma<decltype(tag)>(c, s); });
  }
  if (family == "hgrn2") {
    const Hgrn2Config c = Hgrn2Config::from_json(json);
    detail::check_state_fits(json, c.state_bytes(), options);
    return detail::make_model(
        detail::model_info(family, path, c.vocab_size, c.hidden_size, c.num_layers, c.bos_token_id, c.eos_token_id, source, options),
        source.store, type, [&](auto tag, WeightStore& s) { return build_hgrn2<decltype(tag)>(c, s); });
  }
  throw ConfigError(json.where("model_type") + " is '" + family + "'; supported: recurrent_gemma, hgrn2");
}

/// Loads a model: a folder holding config.json and model.safetensors (or shards with
/// model.safetensors.index.json), with generation_config.json's stop tokens when present; or a
/// file written by glrnn-convert. Throws IoError, FormatError, ConfigError or ShapeError.
inline Model load_model(const std::string& path, const LoadOptions& options = {}) {
  return load_model(ModelSource::open(path), path, options);
}

}  // namespace glrnn
