#pragma once
// The metadata keys of a converted model file (docs/formats.md §6): one safetensors file (standard
// tools can inspect it) holding the weights in the kernels' layout and, as metadata strings, what a
// Hugging Face folder holds next to its weights. Written by glrnn-convert, read by load_model and
// load_model_tokenizer.

namespace glrnn {

constexpr const char* kConvertedConfigKey = "glrnn.config";                 // config.json
constexpr const char* kConvertedGenerationKey = "glrnn.generation_config";  // generation_config.json, if any
constexpr const char* kConvertedTokenizerKey = "glrnn.tokenizer";           // tokenizer.json, if any
constexpr const char* kConvertedWeightsKey = "glrnn.weights";               // the recipe's name ("q4", ...)
constexpr const char* kConvertedFormatsKey = "glrnn.formats";               // {"tensor name": "format"} for every matrix

}  // namespace glrnn
