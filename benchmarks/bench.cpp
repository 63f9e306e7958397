// glrnn-bench: microbenchmarks.
//   decode     decode and prefill speed of a real model geometry with random weights, next to the
//              machine's read bandwidth measured in the same process (shared machines are noisy;
//              the ratio is what to compare).
//   batch      aggregate decode tok/s of B sequences stepped together, and memory per sequence.
//   prefill    chunk-parallel prefill against the token-by-token recurrence (HGRN2, GLA, RetNet,
//              DeltaNet, Gated DeltaNet), in GFLOP/s against the measured FMA peak.
//   tokenizer  tokenizer.json load time and encode throughput on English text.
//   context    decode cost and memory against the context length, next to a transformer baseline.
//   soak       a million tokens in one state with a real model: tok/s and RSS every 100k tokens.
//   startup    start-up time of a converted file of a real geometry against a Hugging Face folder.
//   serve      glrnn-server under concurrent multi-turn chat clients: tok/s, latencies, the cache.

#include <algorithm>  // std::sort
#include <cstdio>     // std::printf
#include <sstream>    // std::istringstream
#include <string>     // std::string
#include <vector>     // std::vector

#include "batch.hpp"
#include "constrain.hpp"
#include "context.hpp"
#include "decode.hpp"
#include "prefill.hpp"
#include "serve.hpp"
#include "soak.hpp"
#include "startup.hpp"
#include "tokenizer.hpp"

using namespace glrnn::bench;

int main(int argc, char** argv) {
  CLI::App app{"glrnn benchmarks with random weights of a real geometry."};
  app.require_subcommand(1);
  CLI::App* decode = app.add_subcommand("decode", "Decode tok/s, bytes per token and GB/s against measured bandwidth");
  std::string config_path, types = "bf16,int8,q4,q5", decode_prompts = "512,2048";
  int threads = 0, steps = 16;
  bool json = false;
  decode->add_option("--config", config_path, "config.json of the geometry")->required();
  decode->add_option("--types", types, "Weight types (recipes), comma-separated: " + glrnn::weight_recipe_names() +
                                         ", and " + kBf16ActivationsType + " (bf16 multiplied with bf16 activations)")->capture_default_str();
  decode->add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str();
  decode->add_option("--steps", steps, "Timed decode steps (the median is reported)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  decode->add_option("--prefill", decode_prompts, "Prompt lengths for the prefill figures, comma-separated")
      ->capture_default_str();
  int decode_rounds = 0;
  decode->add_option("--rounds", decode_rounds,
                     "Also each type's GB/s over bf16's from this many interleaved rounds (every type's model held at once)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  decode->add_flag("--json", json, "Print one JSON object instead of a table");

  CLI::App* prefill = app.add_subcommand("prefill", "Chunk-parallel prefill against the token-by-token recurrence");
  std::string prefill_config, lengths_text = "512,4096", prefill_types = "bf16,int8";
  prefill->add_option("--config", prefill_config,
                      "config.json of an HGRN2, GLA, RetNet, DeltaNet or Gated DeltaNet geometry")->required();
  prefill->add_option("--types", prefill_types, "Weight types, comma-separated")->capture_default_str();
  prefill->add_option("--lengths", lengths_text, "Prompt lengths, comma-separated")->capture_default_str();
  prefill->add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str();
  int prefill_reps = 3;
  prefill->add_option("-r,--repetitions", prefill_reps, "Timed runs per figure (the median is reported)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  prefill->add_flag("--json", json, "Print one JSON object instead of a table");

  CLI::App* batch = app.add_subcommand("batch", "Aggregate decode tok/s against the batch size");
  std::string batch_config, sizes_text = "1,2,4,8,16,32";
  int batch_steps = 5;
  std::string batch_type = "bf16";
  batch->add_option("--config", batch_config, "config.json of the geometry")->required();
  batch->add_option("--type", batch_type, "Weight type (a recipe): " + glrnn::weight_recipe_names())->capture_default_str();
  batch->add_option("--batch", sizes_text, "Batch sizes, comma-separated")->capture_default_str();
  batch->add_option("--steps", batch_steps, "Timed steps per size (the median is reported)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  batch->add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str();
  batch->add_flag("--json", json, "Print one JSON object instead of a table");

  CLI::App* tokenizer = app.add_subcommand("tokenizer", "tokenizer.json load time and encode MB/s");
  std::string tokenizer_path, text_path;
  double megabytes = 1.0;
  int reps = 5;
  tokenizer->add_option("--tokenizer", tokenizer_path, "tokenizer.json or a model folder")->required();
  tokenizer->add_option("--text", text_path, "English text, repeated up to --megabytes")->required();
  tokenizer->add_option("--megabytes", megabytes, "Text size to encode")->capture_default_str()->check(CLI::PositiveNumber);
  tokenizer->add_option("-r,--repetitions", reps, "Timed repetitions (the median is reported)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  tokenizer->add_flag("--json", json, "Print one JSON object instead of a table");

  CLI::App* constrain = app.add_subcommand("constrain", "A JSON Schema's cost: mask time per token (p50, p99) and decode "
                                                         "tok/s with and without it");
  std::string constrain_tokenizers, constrain_schema = "benchmarks/data/nested_schema.json";
  std::string constrain_document = "benchmarks/data/nested_document.json", constrain_config, constrain_type = "q4";
  int constrain_steps = 32, constrain_rounds = 3;
  constrain->add_option("--tokenizers", constrain_tokenizers, "tokenizer.json files or model folders, comma-separated (the "
                                                               "last one decodes)")->required();
  constrain->add_option("--schema", constrain_schema, "JSON Schema")->capture_default_str();
  constrain->add_option("--document", constrain_document, "A JSON text that follows the schema")->capture_default_str();
  constrain->add_option("--config", constrain_config, "config.json of the decode geometry")->required();
  constrain->add_option("--type", constrain_type, "Weight type (a recipe)")->capture_default_str();
  constrain->add_option("--steps", constrain_steps, "Decode steps per round")->capture_default_str()->check(CLI::PositiveNumber);
  constrain->add_option("--rounds", constrain_rounds, "Interleaved rounds")->capture_default_str()->check(CLI::PositiveNumber);
  constrain->add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str();
  constrain->add_flag("--json", json, "Print one JSON object instead of a table");

  CLI::App* context = app.add_subcommand("context", "Decode ms/token and memory from 1k to 1M tokens of context, "
                                                     "against a transformer baseline; writes CSV and SVG");
  std::string context_configs, context_lengths = "1024,4096,16384,65536,262144,1048576";
  std::string csv_path = "context.csv", svg_path = "context.svg";
  int context_steps = 5;
  context->add_option("--configs", context_configs, "config.json files, comma-separated (the first sizes the baseline)")
      ->required();
  context->add_option("--contexts", context_lengths, "Context lengths, comma-separated")->capture_default_str();
  context->add_option("--steps", context_steps, "Timed steps per point (the median is reported)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  context->add_option("--csv", csv_path, "CSV output")->capture_default_str();
  context->add_option("--svg", svg_path, "SVG plot output")->capture_default_str();
  context->add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str();

  CLI::App* soak = app.add_subcommand("soak", "One state generating for a long time: tok/s, RSS and finiteness");
  std::string soak_model;
  std::int64_t soak_tokens = 1000000, soak_interval = 100000;
  soak->add_option("-m,--model", soak_model, "Model folder")->required();
  soak->add_option("-n,--tokens", soak_tokens, "Tokens to generate")->capture_default_str()->check(CLI::PositiveNumber);
  soak->add_option("--every", soak_interval, "Report every N tokens")->capture_default_str()->check(CLI::PositiveNumber);
  soak->add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str();
  soak->add_flag("--json", json, "Print one JSON object instead of a table");

  CLI::App* startup = app.add_subcommand("startup", "Start-up time (load + first token) of a converted file");
  std::string startup_config, startup_type = "int8", startup_dir;
  int startup_reps = 3;
  startup->add_option("--config", startup_config, "config.json of the geometry")->required();
  startup->add_option("--type", startup_type, "Weight type (a recipe) to convert to: " + glrnn::weight_recipe_names())->capture_default_str();
  startup->add_option("--dir", startup_dir, "Scratch folder for the checkpoint and the converted file "
                                            "(needs about 3x the bf16 size of the model)")->required();
  startup->add_option("-r,--repetitions", startup_reps, "Timed starts (the median is reported)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  startup->add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str();
  startup->add_flag("--json", json, "Print one JSON object instead of a table");

  CLI::App* serve = app.add_subcommand("serve", "glrnn-server under C concurrent clients holding multi-turn chats");
  ServeOptions serve_options;
  serve_options.model = "models/griffin-demo";
  std::string serve_clients = "1,8,32";
  serve->add_option("--server", serve_options.server, "glrnn-server executable (default: ../examples/glrnn-server next to this one)");
  serve->add_option("-m,--model", serve_options.model, "Model folder")->capture_default_str();
  serve->add_option("--clients", serve_clients, "Concurrent clients, comma-separated")->capture_default_str();
  serve->add_option("--turns", serve_options.turns, "Turns per conversation")->capture_default_str()->check(CLI::PositiveNumber);
  serve->add_option("--max-tokens", serve_options.max_tokens, "Longest reply")->capture_default_str()->check(CLI::PositiveNumber);
  serve->add_option("--parallel", serve_options.parallel, "The server's slots")->capture_default_str()->check(CLI::PositiveNumber);
  serve->add_option("-t,--threads", serve_options.threads, "The server's threads; 0 = all cores")->capture_default_str();
  serve->add_option("--temperature", serve_options.temperature,
                    "Sampling temperature of the clients; 0 (greedy) holds the same conversations in every setup")
      ->capture_default_str()->check(CLI::Range(0.0, 2.0));
  serve->add_option("--replicas", serve_options.replicas,
                    "Also run the conversations through HAProxy in round-robin mode over this many replicas (scripts/cluster.sh)")
      ->capture_default_str()->check(CLI::Range(1, 64));
  serve->add_flag("--redis", serve_options.redis, "And with the replicas sharing states through Redis (--cache-redis)");
  serve->add_option("--cluster-script", serve_options.cluster_script, "scripts/cluster.sh of this repository")->capture_default_str();
  serve->add_flag("--json", json, "Print one JSON object instead of a table");

  return glrnn::tools::run_tool("glrnn-bench", app, argc, argv, [&] {
    if (serve->parsed()) {
      if (serve_options.server.empty())
        serve_options.server = (std::filesystem::canonical("/proc/self/exe").parent_path() / "../examples/glrnn-server").string();
      for (std::int32_t n : glrnn::tools::parse_token_ids(serve_clients)) {
        GLRNN_CHECK(n > 0, glrnn::InputError, "client counts must be positive");
        serve_options.clients.push_back(n);
      }
      bench_serve(serve_options, json);
      return;
    }
    if (constrain->parsed()) {
      glrnn::set_num_threads(threads);
      bench_constrain(split_list(constrain_tokenizers), constrain_schema, constrain_document, constrain_config, constrain_type,
                      constrain_steps, constrain_rounds, json);
      return;
    }
    if (context->parsed()) {
      glrnn::set_num_threads(threads);
      const std::vector<std::string> configs = split_list(context_configs);
      std::vector<std::int64_t> lengths;
      for (std::int32_t n : glrnn::tools::parse_token_ids(context_lengths)) {
        GLRNN_CHECK(n > 0, glrnn::InputError, "context lengths must be positive");
        lengths.push_back(n);
      }
      std::sort(lengths.begin(), lengths.end());
      bench_context(configs, lengths, context_steps, csv_path, svg_path);
      return;
    }
    if (startup->parsed()) {
      glrnn::set_num_threads(threads);
      bench_startup(startup_config, recipe_named(startup_type), startup_dir, startup_reps, json);
      return;
    }
    if (soak->parsed()) {
      glrnn::set_num_threads(threads);
      if (!bench_soak(soak_model, soak_tokens, soak_interval, json))
        throw glrnn::Error("soak failed: memory grew or logits went non-finite (see the table)");
      return;
    }
    if (batch->parsed()) {
      glrnn::set_num_threads(threads);
      std::vector<std::int64_t> sizes;
      for (std::int32_t n : glrnn::tools::parse_token_ids(sizes_text)) {
        GLRNN_CHECK(n > 0, glrnn::InputError, "batch sizes must be positive");
        sizes.push_back(n);
      }
      bench_batch(batch_config, recipe_named(batch_type), sizes, batch_steps, json);
      return;
    }
    if (prefill->parsed()) {
      glrnn::set_num_threads(threads);
      std::vector<std::int64_t> lengths;
      for (std::int32_t n : glrnn::tools::parse_token_ids(lengths_text)) lengths.push_back(n);
      bench_prefill(prefill_config, split_list(prefill_types), lengths, prefill_reps, json);
      return;
    }
    if (tokenizer->parsed()) {
      bench_tokenizer(tokenizer_path, text_path, megabytes, reps, json);
      return;
    }
    glrnn::set_num_threads(threads);
    std::vector<glrnn::WeightRecipe> weight_types;
    for (const std::string& name : split_list(types)) weight_types.push_back(recipe_named(name));
    std::vector<std::int64_t> prompt_lengths;
    for (std::int32_t n : glrnn::tools::parse_token_ids(decode_prompts)) {
      GLRNN_CHECK(n > 0, glrnn::InputError, "prompt lengths must be positive");
      prompt_lengths.push_back(n);
    }
    bench_decode(config_path, weight_types, steps, prompt_lengths, decode_rounds, json);
  });
}
