#pragma once
// convert_model: a Hugging Face model folder -> one converted model file (docs/formats.md §6). The
// model is built through a WeightStore under the requested recipe, and exactly the tensors it took
// are written, as it took them: matrices in the kernels' layout (packed formats as U8 tensors of
// units, their formats in the metadata), everything else float32. Loading the file maps them
// with no conversion.

#include <cstdint>     // std::uint64_t
#include <filesystem>  // std::filesystem::path, exists
#include <fstream>     // std::ifstream
#include <sstream>     // std::ostringstream
#include <string>      // std::string
#include <utility>     // std::move
#include <vector>      // std::vector

#include <nlohmann/json.hpp>

#include "glrnn/io/converted_file.hpp"
#include "glrnn/io/safetensors_writer.hpp"
#include "glrnn/models/registry.hpp"

namespace glrnn {

struct ConvertStats {
  std::size_t tensors = 0;
  std::uint64_t file_bytes = 0;
  double bits_per_weight = 0;
};

namespace detail {
inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  GLRNN_CHECK(in.good(), IoError, "cannot open '" + path.string() + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}
}  // namespace detail

/// Converts the model folder `input` to `output` with matrices stored as `recipe` says. The file is
/// written next to `output` and renamed at the end, so a failed conversion never leaves a partial file.
inline ConvertStats convert_model(const std::string& input, const std::string& output, const WeightRecipe& recipe) {
  namespace fs = std::filesystem;
  std::error_code ec;
  GLRNN_CHECK(fs::is_directory(input, ec), IoError, "'" + input + "' is not a model folder (config.json and *.safetensors)");
  const ModelSource source = ModelSource::open(input);
  LoadOptions options;
  options.weights = recipe;
  const Model model = load_model(source, input, options);  // fills source.store->served()

  nlohmann::json formats = nlohmann::json::object();
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, t] : source.store->served()) {
    tensors.push_back({name, t.dtype, t.shape, t.data, t.nbytes});
    if (t.format) formats[name] = packed_format_name(*t.format, t.order);
  }
  nlohmann::json metadata = {{kConvertedConfigKey, source.config.json().dump()},
                             {kConvertedWeightsKey, recipe.name},
                             {kConvertedFormatsKey, formats.dump()}};
  if (source.generation) metadata[kConvertedGenerationKey] = source.generation->json().dump();
  if (fs::exists(fs::path(input) / "tokenizer.json", ec))
    metadata[kConvertedTokenizerKey] = detail::read_text_file(fs::path(input) / "tokenizer.json");
  const std::size_t count = tensors.size();
  return {count, write_safetensors(output, metadata, std::move(tensors)), model.info().bits_per_weight};
}

}  // namespace glrnn
