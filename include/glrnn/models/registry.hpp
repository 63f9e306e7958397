#pragma once
// The model families glrnn knows, as one table, and load_model(path): a Hugging Face folder or a
// converted file -> Model, with the family taken from config.json's model_type. A family is its
// folder under models/ plus one line in builtin_families() (docs/architecture.md §5); a program
// can add its own with register_family.

#include <unistd.h>  // sysconf

#include <algorithm>  // std::find
#include <cstdint>    // SIZE_MAX
#include <cstdio>     // std::snprintf
#include <limits>     // std::numeric_limits
#include <map>        // std::map
#include <memory>     // std::shared_ptr
#include <mutex>      // std::mutex, std::lock_guard
#include <optional>   // std::optional
#include <string>     // std::string
#include <vector>     // std::vector

#include "glrnn/core/cpu.hpp"
#include "glrnn/core/hash.hpp"
#include "glrnn/models/delta_net/model.hpp"
#include "glrnn/models/family.hpp"
#include "glrnn/models/gated_deltanet/model.hpp"
#include "glrnn/models/gla/model.hpp"
#include "glrnn/models/hgrn/model.hpp"
#include "glrnn/models/hgrn2/model.hpp"
#include "glrnn/models/model_source.hpp"
#include "glrnn/models/recurrent_gemma/model.hpp"
#include "glrnn/models/retnet/model.hpp"

namespace glrnn {

namespace detail {
/// The families built into glrnn: one line each. A template of nothing, so that a program can
/// compile the families (and with them every layer) in one translation unit of its choice
/// (glrnn/instantiations.hpp).
template <class = void>
std::vector<ModelFamily> builtin_families() {
  return {make_family<RecurrentGemmaFamily>(), make_family<Hgrn2Family>(), make_family<HgrnFamily>(),
          make_family<GlaFamily>(), make_family<RetNetFamily>(), make_family<DeltaNetFamily>(),
          make_family<GatedDeltaNetFamily>()};
}
#if defined(GLRNN_EXTERN_INSTANTIATIONS)
extern template std::vector<ModelFamily> builtin_families<void>();
#endif

struct FamilyTable {
  std::mutex mutex;
  std::vector<ModelFamily> families = builtin_families();
};
inline FamilyTable& family_table() {
  static FamilyTable table;
  return table;
}
}  // namespace detail

/// Adds a family (for example a user's own stack) to the ones load_model reads. Throws
/// ConfigError when one of its model_types is taken.
inline void register_family(ModelFamily family) {
  detail::FamilyTable& table = detail::family_table();
  const std::lock_guard<std::mutex> lock(table.mutex);
  for (const ModelFamily& known : table.families)
    for (const std::string& type : family.model_types)
      GLRNN_CHECK(std::find(known.model_types.begin(), known.model_types.end(), type) == known.model_types.end(),
                  ConfigError, "model_type '" + type + "' already belongs to the family '" + known.name + "'");
  table.families.push_back(std::move(family));
}

/// The family names and model types load_model reads, for messages: "recurrent_gemma, hgrn2".
inline std::string supported_model_types() {
  detail::FamilyTable& table = detail::family_table();
  const std::lock_guard<std::mutex> lock(table.mutex);
  std::string names;
  for (const ModelFamily& f : table.families)
    for (const std::string& type : f.model_types) names += (names.empty() ? "" : ", ") + type;
  return names;
}

/// The family that reads config.json's model_type. Throws ConfigError naming the supported ones.
inline ModelFamily family_for(const JsonConfig& config) {
  const std::string type = config.string("model_type");
  {
    detail::FamilyTable& table = detail::family_table();
    const std::lock_guard<std::mutex> lock(table.mutex);
    for (const ModelFamily& f : table.families)
      if (std::find(f.model_types.begin(), f.model_types.end(), type) != f.model_types.end()) return f;
  }
  throw ConfigError(config.where("model_type") + " is '" + type + "'; supported: " + supported_model_types());
}

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
                  size(limit) + (options.max_state_bytes ? " allowed" : " of memory this machine has") +
                  " (a model with full-attention layers counts its cache at the maximum context: lower it with "
                  "max_context / --max-context)");
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

/// Identifies a model for saved states: config.json, the load options and every tensor's name,
/// dtype and shape (the headers, not the data: hashing gigabytes would slow loading).
inline std::uint64_t fingerprint(const JsonConfig& config, const LoadOptions& options, const WeightStore& store) {
  std::uint64_t h = fnv1a64(config.json().dump());
  h = fnv1a64(options.rope_bf16_frequencies ? "rope_bf16" : "rope_f32", h);
  if (options.weights) h = fnv1a64(options.weights->name, h);
  if (options.bf16_activations) h = fnv1a64("bf16_activations", h);
  for (const TensorInfo* t : store.checkpoint().all()) {
    h = fnv1a64(t->name, h);
    h = fnv1a64(dtype_name(t->dtype), h);
    h = fnv1a64(t->shape_str(), h);
  }
  return h;
}

/// The name of how the matrices are stored, and their bits per weight, from what the store served.
inline std::pair<std::string, double> weights_summary(const WeightStore& store) {
  std::optional<WeightType> only;
  bool mixed = false;
  double bits = 0.0, elements = 0.0;
  for (const auto& [name, t] : store.served()) {
    if (!t.format) continue;
    mixed |= only && *only != *t.format;
    only = t.format;
    bits += 8.0 * static_cast<double>(t.nbytes);
    const FormatInfo& f = format_info(*t.format);
    elements += static_cast<double>(t.nbytes / f.unit_bytes) * static_cast<double>(f.block_elements);
  }
  return {mixed || !only ? "mixed" : std::string(weight_type_name(*only)), elements > 0 ? bits / elements : 0.0};
}
}  // namespace detail

/// Builds the model `source` describes (`path` is what ModelInfo reports). The source's store then
/// lists every tensor the model took (see convert_model).
inline Model load_model(const ModelSource& source, const std::string& path, const LoadOptions& options = {}) {
  kernel_path();  // a bad GLRNN_KERNELS is reported here, not at the first product
  const ModelFamily family = family_for(source.config);
  const auto parsed = family.parse(source.config, options);
  const ModelSummary& summary = parsed.second;  // named: C++17 lambdas cannot capture a structured binding
  // A growing cache is checked at its largest: the maximum context (saturating: a config's
  // max_position_embeddings may be absurd).
  const std::size_t largest =
      summary.state_bytes_per_position > 0 &&
              static_cast<std::size_t>(summary.max_context) > (SIZE_MAX - summary.state_bytes) / summary.state_bytes_per_position
          ? SIZE_MAX
          : summary.state_bytes + summary.state_bytes_per_position * static_cast<std::size_t>(summary.max_context);
  detail::check_state_fits(source.config, largest, options);
  GLRNN_CHECK(!options.bf16_activations || kernels::has_bf16_activation_products(kernel_path()), ConfigError,
              "bf16 activations need the " + std::string(kernel_path_name(KernelPath::Avx512Bf16)) +
                  " kernel path (a CPU with AVX-512 BF16); this process runs " +
                  std::string(kernel_path_name(kernel_path())));
  TensorReader reader(*source.store, options.weights, options.bf16_activations);
  const auto info = [&] {
    ModelInfo i;
    i.family = family.name;
    i.path = path;
    auto [weights, bits] = detail::weights_summary(*source.store);
    i.weights = options.weights ? options.weights->name : source.stored_weights.value_or(weights);
    i.bits_per_weight = bits;
    i.vocab_size = summary.vocab_size;
    i.hidden_size = summary.hidden_size;
    i.num_layers = summary.num_layers;
    i.bos_token_id = summary.bos_token_id;
    i.eos_token_id = summary.eos_token_id;
    i.stop_token_ids = detail::stop_tokens(source.generation, summary.eos_token_id, summary.vocab_size);
    i.fingerprint = detail::fingerprint(source.config, options, *source.store);
    i.state_bytes = summary.state_bytes;
    i.state_bytes_per_position = summary.state_bytes_per_position;
    i.max_context = summary.max_context;
    return i;
  };
  return family.build(parsed.first.get(), reader, info, source.store);
}

/// Loads a model: a folder holding config.json and model.safetensors (or shards with
/// model.safetensors.index.json), with generation_config.json's stop tokens when present; or a
/// file written by glrnn-convert. Throws IoError, FormatError, ConfigError or ShapeError.
inline Model load_model(const std::string& path, const LoadOptions& options = {}) {
  return load_model(ModelSource::open(path), path, options);
}

}  // namespace glrnn
