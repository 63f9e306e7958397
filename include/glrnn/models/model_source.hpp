#pragma once
// What a model is loaded from: a Hugging Face folder (config.json, *.safetensors,
// generation_config.json), or a file written by glrnn-convert, which carries the same in its
// metadata (io/converted_file.hpp).

#include <filesystem>  // std::filesystem::path, is_directory, exists
#include <map>         // std::map
#include <memory>      // std::make_shared
#include <optional>    // std::optional
#include <string>      // std::string

#include <nlohmann/json.hpp>

#include "glrnn/io/converted_file.hpp"
#include "glrnn/io/json_config.hpp"
#include "glrnn/io/weight_store.hpp"

namespace glrnn {

struct ModelSource {
  JsonConfig config;
  std::optional<JsonConfig> generation;
  std::shared_ptr<WeightStore> store;
  std::optional<std::string> stored_weights;  // a converted file's recipe name

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
    const SafetensorsFile file(path);
    const std::map<std::string, std::string>& meta = file.metadata();
    const auto text = [&](const char* key) { const auto it = meta.find(key); return it == meta.end() ? nullptr : &it->second; };
    GLRNN_CHECK(text(kConvertedConfigKey) != nullptr, FormatError,
                path + ": a single .safetensors file must be a converted model (glrnn-convert), with '" +
                    std::string(kConvertedConfigKey) + "' in its metadata; for a Hugging Face checkpoint pass its folder");
    const auto parse = [&](const char* key) { return JsonConfig::parse(*text(key), path + " metadata '" + key + "'"); };
    return {parse(kConvertedConfigKey),
            text(kConvertedGenerationKey) ? std::optional<JsonConfig>(parse(kConvertedGenerationKey)) : std::nullopt,
            std::make_shared<WeightStore>(path, packed_formats(file, path)),
            text(kConvertedWeightsKey) ? std::optional<std::string>(*text(kConvertedWeightsKey)) : std::nullopt};
  }

 private:
  /// The format and row order of every packed (U8) tensor, from the metadata's format map.
  static std::map<std::string, PackedFormat> packed_formats(const SafetensorsFile& file, const std::string& path) {
    std::map<std::string, PackedFormat> formats;
    const auto it = file.metadata().find(kConvertedFormatsKey);
    if (it == file.metadata().end()) return formats;
    const nlohmann::json map = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    GLRNN_CHECK(map.is_object(), FormatError, path + ": metadata '" + std::string(kConvertedFormatsKey) + "' is not a JSON object");
    for (const auto& [name, format] : map.items()) {
      const std::optional<PackedFormat> packed =
          format.is_string() ? parse_packed_format(format.get<std::string>()) : std::nullopt;
      GLRNN_CHECK(packed.has_value(), FormatError,
                  path + ": tensor '" + name + "' has the unknown weight format " + format.dump() + " (known: " +
                      weight_type_names() + ", each with '" + std::string(kRowGroupsSuffix) + "' where it has row groups)");
      formats[name] = *packed;
    }
    return formats;
  }
};

}  // namespace glrnn
