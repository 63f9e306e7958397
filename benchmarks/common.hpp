#pragma once
// What the benchmarks share: timing, memory readings, the machine's read bandwidth, and models of
// a real geometry with random weights.

#include <algorithm>    // std::sort, std::max
#include <chrono>       // std::chrono::steady_clock
#include <cstring>      // std::memcpy
#include <cstdint>      // std::int32_t, std::int64_t, std::uint64_t
#include <deque>        // std::deque
#include <filesystem>   // std::filesystem::path, create_directories, copy_file
#include <fstream>      // std::ifstream
#include <map>          // std::map
#include <memory>       // std::make_shared
#include <sstream>      // std::istringstream
#include <string>       // std::string
#include <optional>     // std::optional
#include <utility>      // std::pair
#include <vector>       // std::vector

#include <unistd.h>  // sysconf

#include <glrnn/glrnn.hpp>
#include <glrnn/tools/cli.hpp>

namespace glrnn::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Median of `reps` timings of f(), in seconds.
template <class F>
inline double median_seconds(int reps, F&& f) {
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    const Clock::time_point t0 = Clock::now();
    f();
    times.push_back(seconds_since(t0));
  }
  return median(times);
}

/// Current resident set size from /proc (0 where unavailable).
inline std::size_t current_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

/// Starts a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM).
inline void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

/// Peak resident set size (VmHWM) from /proc (0 where unavailable).
inline std::size_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return static_cast<std::size_t>(std::stoull(line.substr(6))) * 1024;
  return 0;
}

/// Random weights for any tensor the model asks for, with the shapes and formats it asks for
/// (bf16 when it asks for the stored format). Values are small and finite (no denormals, no
/// overflow) so timing is representative. A matrix cycles through 64 distinct random rows:
/// quantizing billions of values would dominate the run, and memory reads the same either way.
class RandomStore final : public glrnn::TensorSource {
 public:
  glrnn::WeightMatrix matrix(const std::string& name, const glrnn::Shape& shape, std::optional<glrnn::WeightType> type,
                             glrnn::RowOrder order) override {
    const std::int64_t cols = shape[shape.rank - 1], rows = shape.numel() / cols;
    const glrnn::WeightType format = type.value_or(glrnn::WeightType::BF16);
    const glrnn::FormatInfo& f = glrnn::format_info(format);
    if (!f.groups_rows()) order = glrnn::RowOrder::Rows;
    // A tied embedding is asked for twice (lookup and output head): one buffer, as in a real load
    // (the head's row groups serve the lookup as well).
    if (const auto seen = matrices_.find(name); seen != matrices_.end()) return {seen->second.first, format, rows, cols, seen->second.second};
    const std::size_t row_bytes = f.row_bytes(cols);
    std::byte* data = allocate(name, static_cast<std::size_t>(rows) * row_bytes);
    constexpr std::int64_t kDistinctRows = 64;
    std::vector<float> values(static_cast<std::size_t>(cols));
    glrnn::Rng rng(static_cast<std::uint64_t>(rows * 7919 + cols));
    for (std::int64_t r = 0; r < std::min(rows, kDistinctRows); ++r) {
      for (float& v : values) v = 0.02f * static_cast<float>(2.0 * rng.uniform() - 1.0);
      f.quantize(values.data(), cols, data + r * row_bytes);
    }
    glrnn::parallel_for(kDistinctRows, rows, cols, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t r = lo; r < hi; ++r) std::memcpy(data + r * row_bytes, data + (r % kDistinctRows) * row_bytes, row_bytes);
    });
    if (order == glrnn::RowOrder::Groups) {
      std::vector<std::byte> rows_first(data, data + rows * static_cast<std::int64_t>(row_bytes));
      f.group_rows(rows_first.data(), rows, cols, data);
    }
    matrices_[name] = {data, order};
    matrix_shapes_[name] = {rows, cols};
    const bool packed = f.file_dtype == glrnn::DType::U8;
    tensors_.push_back({name, f.file_dtype, packed ? glrnn::Shape{rows, static_cast<std::int64_t>(row_bytes)} : shape, data,
                        bytes_[name]});
    return {data, format, rows, cols, order};
  }
  glrnn::TensorView<const float> vector(const std::string& name, const glrnn::Shape& shape) override {
    auto* data = reinterpret_cast<float*>(allocate(name, static_cast<std::size_t>(shape.numel()) * sizeof(float)));
    glrnn::Rng rng(static_cast<std::uint64_t>(shape.numel()));
    for (std::int64_t i = 0; i < shape.numel(); ++i) data[i] = 0.1f * static_cast<float>(2.0 * rng.uniform() - 1.0);
    tensors_.push_back({name, glrnn::DType::F32, shape, data, bytes_[name]});
    return {data, shape};
  }
  bool has(const std::string&) const override { return true; }  // every optional tensor exists (split MLP layout)

  /// Storage bits per weight over every matrix, scales included.
  double bits_per_weight() const {
    double bits = 0.0, elements = 0.0;
    for (const auto& [name, shape] : matrix_shapes_) {
      bits += 8.0 * static_cast<double>(bytes_.at(name));
      elements += static_cast<double>(shape.first * shape.second);
    }
    return elements > 0 ? bits / elements : 0.0;
  }
  /// Weights a prompt position multiplies: every matrix but the embedding and the output head
  /// (the [vocab, hidden] ones; a prefill computes no logits but the last).
  std::int64_t multiplied_elements(const glrnn::ModelInfo& info) const {
    std::int64_t n = 0;
    for (const auto& [name, shape] : matrix_shapes_)
      if (shape.first != info.vocab_size || shape.second != info.hidden_size) n += shape.first * shape.second;
    return n;
  }
  /// Bytes of all distinct tensors: what one decode step reads (the tied embedding counts once,
  /// as the output head reads it whole while the lookup reads one row).
  std::size_t total_bytes() const {
    std::size_t n = 0;
    for (const auto& [name, bytes] : bytes_) n += bytes;
    return n;
  }
  /// Writes the weights as a Hugging Face folder: `config_path` copied and one model.safetensors.
  /// Only for float weights: a checkpoint holds no packed formats.
  void write_checkpoint(const std::string& config_path, const std::filesystem::path& folder) const {
    for (const glrnn::TensorToWrite& t : tensors_)
      GLRNN_CHECK(t.dtype != glrnn::DType::U8, glrnn::InputError, "a checkpoint holds float weights, not '" + t.name + "' blocks");
    std::filesystem::create_directories(folder);
    std::filesystem::copy_file(config_path, folder / "config.json", std::filesystem::copy_options::overwrite_existing);
    glrnn::write_safetensors((folder / "model.safetensors").string(), nlohmann::json::object(), tensors_);
  }

 private:
  std::byte* allocate(const std::string& name, std::size_t bytes) {
    buffers_.emplace_back(new std::uint64_t[(bytes + 7) / 8]);
    bytes_[name] = bytes;
    return reinterpret_cast<std::byte*>(buffers_.back().get());
  }
  std::deque<std::unique_ptr<std::uint64_t[]>> buffers_;
  std::map<std::string, std::size_t> bytes_;
  std::map<std::string, std::pair<const void*, glrnn::RowOrder>> matrices_;
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> matrix_shapes_;  // [rows, cols]
  std::vector<glrnn::TensorToWrite> tensors_;
};

/// The benchmarks' name for bf16 weights multiplied with activations rounded to bf16
/// (LoadOptions::bf16_activations), so that one run compares it with the other types.
constexpr const char* kBf16ActivationsType = "bf16-act";

/// A model of the geometry in config_path (any family of the table) whose weights come from
/// `store` in the formats `recipe` gives; with a chunk, HGRN2's prefill chunk (0: sequential).
inline glrnn::Model build_random_model(const std::string& config_path, const glrnn::WeightRecipe& recipe,
                                       const std::shared_ptr<RandomStore>& store, const glrnn::LoadOptions& options = {}) {
  const glrnn::JsonConfig json = glrnn::JsonConfig::load(config_path);
  const glrnn::ModelFamily family = glrnn::family_for(json);
  glrnn::LoadOptions load = options;
  load.bf16_activations = options.bf16_activations || recipe.name == kBf16ActivationsType;
  const auto [config, summary] = family.parse(json, load);
  glrnn::TensorReader reader(*store, recipe, load.bf16_activations);
  const auto info = [&, &summary = summary] {
    glrnn::ModelInfo i;
    i.family = family.name;
    i.path = config_path;
    i.weights = recipe.name;
    i.vocab_size = summary.vocab_size;
    i.hidden_size = summary.hidden_size;
    i.num_layers = summary.num_layers;
    i.state_bytes = summary.state_bytes;
    i.state_bytes_per_position = summary.state_bytes_per_position;
    i.max_context = summary.max_context;
    return i;
  };
  return family.build(config.get(), reader, info, store);
}

/// A model of the geometry in config_path with random weights stored as `recipe` says, and the
/// bytes one decode step reads.
inline std::pair<glrnn::Model, std::size_t> random_model(const std::string& config_path, const glrnn::WeightRecipe& recipe,
                                                         const glrnn::LoadOptions& options = {}) {
  auto store = std::make_shared<RandomStore>();
  glrnn::Model model = build_random_model(config_path, recipe, store, options);
  return {std::move(model), store->total_bytes()};
}

/// "a,b,c" -> {"a", "b", "c"}.
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::istringstream list(text);
  for (std::string item; std::getline(list, item, ',');) items.push_back(item);
  return items;
}

/// "GLA", "RetNet", "HGRN2 hybrid", ...: a family's name for people, from its config.json.
inline std::string family_label(const glrnn::JsonConfig& json) {
  const std::string type = json.string("model_type");
  const std::string name = type == "recurrent_gemma" ? "RecurrentGemma"
                           : type == "hgrn2"         ? "HGRN2"
                           : type == "hgrn"          ? "HGRN"
                           : type == "gla"           ? "GLA"
                           : type == "retnet"        ? "RetNet"
                           : type == "delta_net"     ? "DeltaNet"
                           : type == "gated_deltanet" ? "Gated DeltaNet"
                                                     : type;
  return json.has("attn") ? name + " hybrid" : name;
}

/// The recipe called `name`; InputError naming the known ones otherwise.
inline glrnn::WeightRecipe recipe_named(const std::string& name) {
  std::optional<glrnn::WeightRecipe> recipe = glrnn::find_weight_recipe(name == kBf16ActivationsType ? "bf16" : name);
  GLRNN_CHECK(recipe.has_value(), glrnn::InputError,
              "unknown weight type '" + name + "' (available: " + glrnn::weight_recipe_names() + ", and " +
                  kBf16ActivationsType + ": bf16 with bf16 activations)");
  if (name == kBf16ActivationsType) recipe->name = name;
  return *recipe;
}

inline std::vector<std::int32_t> random_tokens(std::int64_t n, std::int64_t vocab, std::uint64_t seed) {
  glrnn::Rng rng(seed);
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(n));
  for (std::int32_t& t : tokens) t = static_cast<std::int32_t>(rng.next() % static_cast<std::uint64_t>(vocab));
  return tokens;
}

/// Prefill tok/s of one prompt through a fresh session; the median of `reps` runs.
inline double prefill_tokens_per_second(const glrnn::Model& model, const std::vector<std::int32_t>& prompt, int reps = 1) {
  glrnn::Session session(model, std::min<std::int64_t>(512, static_cast<std::int64_t>(prompt.size())));
  return static_cast<double>(prompt.size()) / median_seconds(reps, [&] {
           session.reset();
           session.prefill(prompt);
         });
}

}  // namespace glrnn::bench
