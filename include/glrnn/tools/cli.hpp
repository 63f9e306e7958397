#pragma once
// What command-line programs built on glrnn share (glrnn's own tools and benchmarks use it): the
// error convention (one line on stderr, exit 1), --version with the kernel path, the loading,
// sampling and constraint flags, and parsing. Needs CLI11; not included by glrnn.hpp.

#include <cstdint>    // std::int32_t
#include <cstdio>     // std::fprintf
#include <exception>  // std::exception
#include <functional> // std::function
#include <memory>     // std::shared_ptr, std::make_shared
#include <fstream>    // std::ifstream
#include <sstream>    // std::ostringstream
#include <string>     // std::string, std::stoll
#include <vector>     // std::vector

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "glrnn/constrain/grammar.hpp"
#include "glrnn/constrain/json_schema.hpp"
#include "glrnn/core/cpu.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/models/family.hpp"
#include "glrnn/sampling/sampler.hpp"
#include "glrnn/version.hpp"

namespace glrnn::tools {

/// "glrnn 0.2.0, kernels avx512vnni (this CPU: portable, avx2, avxvnni, avx512, avx512vnni), 2 threads"
inline std::string version_line() {
  std::string supported;
  for (KernelPath p : kKernelPaths)
    if (cpu_supports(p)) supported += (supported.empty() ? "" : ", ") + std::string(kernel_path_name(p));
  return std::string("glrnn ") + GLRNN_VERSION_STRING + ", kernels " + std::string(kernel_path_name(kernel_path())) +
         " (this CPU: " + supported + "), " + std::to_string(num_threads()) + " threads";
}

/// --version prints version_line() and exits 0.
inline void add_version_flag(CLI::App& app) {
  app.set_version_flag("--version", std::function<std::string()>(version_line), "Print the version and the kernel path, then exit");
}

/// Runs a tool's body. Any failure, a bad flag included, prints one line
/// "<tool>: error: <what>" on stderr and exits 1; --help prints the usage and exits 0.
template <class Body>
int run_tool(const char* tool, CLI::App& app, int argc, char** argv, Body&& body) {
  add_version_flag(app);
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help, --version
      return app.exit(e);
    }
    body();
    return 0;
  } catch (const std::exception& e) {
    std::string what = e.what();  // one line, whatever the message holds
    for (char& c : what)
      if (c == '\n' || c == '\r') c = ' ';
    std::fprintf(stderr, "%s: error: %s\n", tool, what.c_str());
    return 1;
  } catch (...) {
    std::fprintf(stderr, "%s: error: unknown failure\n", tool);
    return 1;
  }
}

/// The sampling flags of generate and chat, with llama.cpp's spellings as aliases.
inline void add_sampling_options(CLI::App& app, SamplerParams& p) {
  app.add_option("--temperature,--temp", p.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  app.add_option("--top-k", p.top_k, "Keep the k most likely tokens; 0 = off")->capture_default_str();
  app.add_option("--top-p", p.top_p, "Nucleus sampling mass; 1 = off")->capture_default_str();
  app.add_option("--min-p", p.min_p, "Drop tokens below min-p x the top probability; 0 = off")->capture_default_str();
  app.add_option("--repeat-penalty,--repetition-penalty", p.repetition_penalty, "Repetition penalty; 1 = off")
      ->capture_default_str();
  app.add_option("-s,--seed", p.seed, "Random seed")->capture_default_str();
}

/// Model-loading flags shared by the tools.
inline void add_load_options(CLI::App& app, LoadOptions& options) {
  app.add_flag("--rope-bf16-frequencies", options.rope_bf16_frequencies,
               "Round RoPE frequencies to bf16, as a transformers model loaded in bf16 and upcast has them");
  app.add_option_function<std::string>(
         "--type",
         [&options](const std::string& name) {
           options.weights = find_weight_recipe(name);
           if (!options.weights)
             throw CLI::ValidationError("--type", "'" + name + "' is not one of " + weight_recipe_names() +
                                                      " nor a spec such as q4,head=int8");
         },
         "Weight storage: " + weight_recipe_names() +
             ", or a spec such as q4,head=int8 (roles: embedding, head, projection, mlp_in, mlp_out, dense); "
             "converted at load; default: as stored");
  app.add_flag("--bf16-activations", options.bf16_activations,
               "Multiply bf16 weights with activations rounded to bf16 (AVX-512 BF16), and the delta rule's chunk "
               "products in bf16 (AMX): faster prompts, logits no longer float32-exact (docs/kernels.md section 9)");
  app.add_option("--max-context", options.max_context,
                 "Most positions a sequence may reach in a model with full-attention layers, whose key/value cache "
                 "grows to it; default: config.json's max_position_embeddings, else 8192")
      ->check(CLI::PositiveNumber);
}

/// A whole file as bytes. Throws IoError.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GLRNN_CHECK(in.good(), IoError, "cannot open '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  GLRNN_CHECK(!in.bad(), IoError, "cannot read '" + path + "'");
  return text.str();
}

/// "2,17,33" -> {2, 17, 33}. Throws InputError naming the bad item.
inline std::vector<std::int32_t> parse_token_ids(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    std::size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(begin, end - begin);
    std::size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    GLRNN_CHECK(used == item.size() && !item.empty() && value >= INT32_MIN && value <= INT32_MAX, InputError,
                "'" + item + "' in '" + text + "' is not a token id");
    ids.push_back(static_cast<std::int32_t>(value));
    begin = end + 1;
  }
  return ids;
}

/// --json-schema and --grammar: what the output must follow.
struct ConstraintOptions {
  std::string json_schema;  // a file, or the schema itself when it starts with '{'
  std::string grammar_file;
  bool given() const { return !json_schema.empty() || !grammar_file.empty(); }
};

inline void add_constraint_options(CLI::App& app, ConstraintOptions& options) {
  CLI::Option* schema = app.add_option("--json-schema", options.json_schema,
                                       "The output is JSON that follows this JSON Schema (a file, or the schema itself)");
  CLI::Option* grammar = app.add_option("--grammar", options.grammar_file, "The output follows this GBNF grammar file");
  schema->excludes(grammar);
}

/// The grammar the options ask for (null when none). Throws InputError for a schema or grammar
/// that cannot be compiled, naming what.
inline std::shared_ptr<const Grammar> load_constraint(const ConstraintOptions& options) {
  if (!options.given()) return nullptr;
  if (!options.grammar_file.empty()) return std::make_shared<const Grammar>(Grammar::parse(read_file(options.grammar_file)));
  const std::size_t first = options.json_schema.find_first_not_of(" \t\n");
  const bool inline_schema = first != std::string::npos && options.json_schema[first] == '{';
  const std::string text = inline_schema ? options.json_schema : read_file(options.json_schema);
  const nlohmann::ordered_json schema = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  GLRNN_CHECK(!schema.is_discarded(), InputError, "--json-schema: not valid JSON");
  return std::make_shared<const Grammar>(Grammar::parse(json_schema_to_grammar(schema)));
}

}  // namespace glrnn::tools
