#pragma once
// A model family (RecurrentGemma, HGRN2, a user's own) as one entry of the table that load_model,
// glrnn-convert and the benchmarks read (models/registry.hpp; docs/architecture.md §5). A family
// is a struct with
//   static constexpr const char* kName;                 // "recurrent_gemma"
//   static std::vector<std::string> model_types();      // config.json model_type values it reads
//   using Config = ...;                                 // its typed, validated configuration
//   static Config parse(const JsonConfig&, const LoadOptions&);         // throws ConfigError
//   static ModelSummary summary(const Config&);         // state size from the configuration alone
//   static Network build(const Config&, TensorReader&); // its tensor table, through the recipe
// and make_family<Family>() turns it into the entry.

#include <cstddef>     // std::size_t
#include <cstdint>     // std::int32_t, std::int64_t, std::uint64_t
#include <functional>  // std::function
#include <memory>      // std::shared_ptr, std::make_shared
#include <optional>    // std::optional
#include <string>      // std::string
#include <utility>     // std::move, std::pair
#include <vector>      // std::vector

#include "glrnn/formats/recipe.hpp"
#include "glrnn/io/json_config.hpp"
#include "glrnn/io/tensor_source.hpp"
#include "glrnn/models/model.hpp"

namespace glrnn {

/// Choices that config.json does not carry.
struct LoadOptions {
  /// Round RoPE's inverse frequencies to bfloat16. glrnn computes them in float32, as
  /// transformers does for a model loaded with dtype=float32 and as the original implementation
  /// does; a transformers model loaded in bf16 (the default for a bf16 checkpoint) and then cast
  /// to float32 keeps bf16-rounded frequencies, which moves logits by 1e-3 to 2e-3 after 50
  /// positions (docs/recurrent_gemma.md §13.3).
  bool rope_bf16_frequencies = false;
  /// Refuse a model whose per-sequence state needs more bytes than this (0: the machine's
  /// physical memory). A crafted config.json with a huge attention window would otherwise make
  /// the first State allocate terabytes.
  std::uint64_t max_state_bytes = 0;
  /// How to store the matrices (formats/recipe.hpp). Unset: as stored (bf16 for a bf16
  /// checkpoint, f32 for f32 or f16, a converted file's own formats); otherwise converted at load.
  std::optional<WeightRecipe> weights;
  /// The most positions a sequence may reach in a model with full-attention layers, whose key/value
  /// cache grows with the position (0: config.json's max_position_embeddings, else 8192; see
  /// docs/hybrid_attention.md). Models without such layers have no limit.
  std::int64_t max_context = 0;
  /// Positions per chunk of the chunk-parallel prefill of the linear-attention and delta-rule
  /// recurrences (HGRN2, GLA, RetNet, DeltaNet, Gated DeltaNet); 0 runs them position by position,
  /// as decode does (for comparison: the results agree to float32 rounding). Unset: each
  /// recurrence's own, the fastest measured (64 for the linear-attention form, 32 for the delta rule).
  std::optional<std::int64_t> recurrence_chunk;
  /// Multiply the bf16 matrices with activations rounded to bf16, by the CPU's bf16 dot-product
  /// instructions (the avx512bf16 kernel path: AVX-512 BF16): bf16 prompts 1.7-1.9 times faster on
  /// a Zen 5, logits no longer float32-exact (docs/kernels.md §9 gives the deviation). Other
  /// formats are unaffected. DeltaNet's and Gated DeltaNet's chunked prefill also multiply in bf16,
  /// on the amx path (docs/delta_net.md §2). Loading refuses it where the kernel path has no such
  /// instructions.
  bool bf16_activations = false;
};

/// What load_model needs to know of a configuration before it builds anything.
struct ModelSummary {
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t num_layers = 0;
  std::int32_t bos_token_id = -1;
  std::int32_t eos_token_id = -1;
  std::size_t state_bytes = 0;  // one sequence's state at position 0, from the configuration alone
  std::size_t state_bytes_per_position = 0;  // what each position adds (full attention's keys and values)
  std::int64_t max_context = 0;  // the most positions a sequence may reach; 0: no limit
};

struct ModelFamily {
  std::string name;
  std::vector<std::string> model_types;
  /// config.json -> the family's configuration (type-erased) and its summary. Throws ConfigError.
  std::function<std::pair<std::shared_ptr<const void>, ModelSummary>(const JsonConfig&, const LoadOptions&)> parse;
  /// Builds the network from its tensors as a Model that keeps `owner` (what the tensors live in)
  /// alive; `info` is asked for once the tensors have been read.
  std::function<Model(const void* config, TensorReader& tensors, const std::function<ModelInfo()>& info,
                      std::shared_ptr<const void> owner)>
      build;
};

template <class Family>
ModelFamily make_family() {
  using Config = typename Family::Config;
  ModelFamily f;
  f.name = Family::kName;
  f.model_types = Family::model_types();
  f.parse = [](const JsonConfig& json, const LoadOptions& options) {
    auto config = std::make_shared<const Config>(Family::parse(json, options));
    const ModelSummary summary = Family::summary(*config);
    return std::pair<std::shared_ptr<const void>, ModelSummary>(std::move(config), summary);
  };
  f.build = [](const void* config, TensorReader& tensors, const std::function<ModelInfo()>& info,
               std::shared_ptr<const void> owner) {
    auto net = Family::build(*static_cast<const Config*>(config), tensors);
    return Model(info(), std::move(owner), std::move(net));
  };
  return f;
}

}  // namespace glrnn
