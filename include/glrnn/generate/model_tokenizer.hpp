#pragma once
// The tokenizer that goes with a model, wherever the model is loaded from: a Hugging Face folder's
// tokenizer.json, or the one a converted model file carries in its metadata (docs/formats.md §6).

#include <filesystem>  // std::filesystem::is_directory
#include <string>      // std::string

#include "glrnn/io/converted_file.hpp"
#include "glrnn/io/safetensors.hpp"
#include "glrnn/tokenizer/tokenizer_json.hpp"

namespace glrnn {

/// The tokenizer of the model at `path` (what load_model takes). Throws IoError or FormatError.
inline Tokenizer load_model_tokenizer(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return load_tokenizer(path);
  const SafetensorsFile file(path);
  const auto it = file.metadata().find(kConvertedTokenizerKey);
  GLRNN_CHECK(it != file.metadata().end(), FormatError,
              path + ": no tokenizer in the metadata (convert the model from a folder that has tokenizer.json)");
  return parse_tokenizer(it->second, path + " metadata '" + kConvertedTokenizerKey + "'");
}

}  // namespace glrnn
