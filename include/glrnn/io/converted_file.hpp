#pragma once
// The metadata keys of a converted model file (docs/formats.md §6): one safetensors file (standard
// tools can inspect it) holding the weights in the kernels' layout and, as metadata strings, what a
// Hugging Face folder holds next to its weights. Written by glrnn-convert, read by load_model and
// load_model_tokenizer.

#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view

#include "glrnn/formats/registry.hpp"

namespace glrnn {

constexpr const char* kConvertedConfigKey = "glrnn.config";                 // config.json
constexpr const char* kConvertedGenerationKey = "glrnn.generation_config";  // generation_config.json, if any
constexpr const char* kConvertedTokenizerKey = "glrnn.tokenizer";           // tokenizer.json, if any
constexpr const char* kConvertedWeightsKey = "glrnn.weights";               // the recipe's name ("q4", ...)
constexpr const char* kConvertedFormatsKey = "glrnn.formats";               // {"tensor name": "format"} for every matrix
/// Ends a format in that map when the matrix is stored in row groups ("q4:groups16"), so that a
/// reader that knows only rows refuses the file instead of reading tiles as rows.
constexpr std::string_view kRowGroupsSuffix = ":groups16";

/// How a converted file stores a matrix of packed units (U8): its format and row order.
struct PackedFormat {
  WeightType format;
  RowOrder order;
};

/// The value of a matrix in the format map.
inline std::string packed_format_name(WeightType format, RowOrder order) {
  return std::string(weight_type_name(format)) + (order == RowOrder::Groups ? std::string(kRowGroupsSuffix) : "");
}

inline std::optional<PackedFormat> parse_packed_format(std::string_view name) {
  RowOrder order = RowOrder::Rows;
  if (name.size() > kRowGroupsSuffix.size() && name.substr(name.size() - kRowGroupsSuffix.size()) == kRowGroupsSuffix) {
    name.remove_suffix(kRowGroupsSuffix.size());
    order = RowOrder::Groups;
  }
  const std::optional<WeightType> format = parse_weight_type(name);
  if (!format || (order == RowOrder::Groups && !format_info(*format).groups_rows())) return std::nullopt;
  return PackedFormat{*format, order};
}

}  // namespace glrnn
