// glrnn-bench: microbenchmarks.
//   decode     decode and prefill speed of a real model geometry with random weights, next to the
//              machine's read bandwidth measured in the same process (shared machines are noisy;
//              the ratio is what to compare).
//   batch      aggregate decode tok/s of B sequences stepped together, and memory per sequence.
//   prefill    HGRN2 prefill tok/s of the chunk-parallel form against the sequential recurrence.
//   tokenizer  tokenizer.json load time and encode throughput on English text.

#include <algorithm>  // std::sort, std::min
#include <chrono>     // std::chrono::steady_clock
#include <cstdint>    // std::int32_t, std::int64_t, std::uint64_t
#include <cstdio>     // std::printf
#include <deque>      // std::deque
#include <fstream>    // std::ifstream
#include <map>        // std::map
#include <sstream>    // std::istringstream
#include <string>     // std::string
#include <type_traits>  // std::is_same_v
#include <vector>     // std::vector

#include <unistd.h>  // sysconf

#include <glrnn/glrnn.hpp>

#include "../examples/common.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Median of `reps` timings of f(), in seconds.
template <class F>
double median_seconds(int reps, F&& f) {
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    const Clock::time_point t0 = Clock::now();
    f();
    times.push_back(seconds_since(t0));
  }
  return median(times);
}

/// Current resident set size from /proc (0 where unavailable).
std::size_t current_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

/// Random weights for any tensor the model asks for, with the shapes it asks for. Values are small
/// and finite (no denormals, no overflow) so timing is representative.
class RandomStore {
 public:
  template <class T>
  glrnn::TensorView<const T> matrix(const std::string& name, const glrnn::Shape& shape) {
    std::vector<T>& v = storage<T>().emplace_back(static_cast<std::size_t>(shape.numel()));
    fill(v, 0.02f);
    bytes_[name] = v.size() * sizeof(T);
    return {v.data(), shape};
  }
  glrnn::TensorView<const float> vector(const std::string& name, const glrnn::Shape& shape) {
    std::vector<float>& v = storage<float>().emplace_back(static_cast<std::size_t>(shape.numel()));
    fill(v, 0.1f);
    bytes_[name] = v.size() * sizeof(float);
    return {v.data(), shape};
  }
  bool has(const std::string&) const { return true; }  // every optional tensor exists (split MLP layout)
  /// Bytes of all distinct tensors: what one decode step reads (the tied embedding counts once,
  /// as the output head reads it whole while the lookup reads one row).
  std::size_t total_bytes() const {
    std::size_t n = 0;
    for (const auto& [name, bytes] : bytes_) n += bytes;
    return n;
  }

 private:
  template <class T>
  std::deque<std::vector<T>>& storage() {
    if constexpr (std::is_same_v<T, float>) return floats_;
    else return bf16s_;
  }
  template <class T>
  void fill(std::vector<T>& v, float scale) {
    glrnn::parallel_for(0, static_cast<std::int64_t>(v.size()), 4, [&](std::int64_t lo, std::int64_t hi) {
      glrnn::Rng rng(static_cast<std::uint64_t>(lo) * 7919 + v.size());
      for (std::int64_t i = lo; i < hi; ++i) {
        const float x = scale * static_cast<float>(2.0 * rng.uniform() - 1.0);
        if constexpr (std::is_same_v<T, float>) v[static_cast<std::size_t>(i)] = x;
        else v[static_cast<std::size_t>(i)] = glrnn::to_bf16(x);
      }
    });
  }
  std::deque<std::vector<float>> floats_;
  std::deque<std::vector<glrnn::bf16>> bf16s_;
  std::map<std::string, std::size_t> bytes_;
};

/// Read bandwidth in GB/s: summing a buffer far larger than the last-level cache, split over the
/// configured threads like the decode kernels. Each thread reads 4 streams at once, as a matvec
/// reads several rows (one stream per thread reads markedly less on this kind of machine). The
/// best of 5 passes, so that the ratio of decode to it errs low.
double measure_read_bandwidth() {
  constexpr int kStreams = 4, kLanes = 16;
  using Lanes = Eigen::Array<float, kLanes, 1>;
  const std::int64_t n = std::int64_t{1} << 28;  // 1 GiB of floats
  std::vector<float> buffer(static_cast<std::size_t>(n), 1.0f);
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int rep = 0; rep < 5; ++rep) {
    const Clock::time_point t0 = Clock::now();
    float partial[64] = {};
    glrnn::parallel_for(0, n, 1 << 20, [&](std::int64_t lo, std::int64_t hi) {
      const std::int64_t len = (hi - lo) / kStreams / kLanes * kLanes;
      Lanes acc[kStreams];
      for (Lanes& a : acc) a.setZero();
      for (std::int64_t i = 0; i < len; i += kLanes)
        for (int s = 0; s < kStreams; ++s) acc[s] += Eigen::Map<const Lanes>(buffer.data() + lo + s * len + i);
      for (const Lanes& a : acc) partial[lo * 64 / n] += a.sum();
    });
    best = std::max(best, static_cast<double>(n) * sizeof(float) / seconds_since(t0) / 1e9);
    for (float p : partial) sink = sink + p;
  }
  return best;
}

struct DecodeResult {
  std::string type;
  double decode_tok_s = 0, bytes_per_token = 0, achieved_gb_s = 0, bandwidth_gb_s = 0, prefill_tok_s = 0;
  std::size_t rss_bytes = 0;
  std::int64_t prefill_tokens = 0;
};

/// A model of the geometry in config_path with random weights of storage type T; `chunk` sets
/// HGRN2's prefill chunk (0: sequential). Also returns the bytes one decode step reads.
template <class T>
std::pair<glrnn::Model, std::size_t> random_model(const std::string& config_path, std::int64_t chunk = 64) {
  const glrnn::JsonConfig json = glrnn::JsonConfig::load(config_path);
  auto store = std::make_shared<RandomStore>();
  glrnn::ModelInfo info;
  info.family = json.string("model_type");
  if (info.family == "hgrn2") {
    glrnn::Hgrn2Config config = glrnn::Hgrn2Config::from_json(json);
    config.prefill_chunk = chunk;
    info.vocab_size = config.vocab_size;
    auto net = glrnn::build_hgrn2<T>(config, *store);
    return {glrnn::Model(info, store, std::move(net)), store->total_bytes()};
  }
  const glrnn::RecurrentGemmaConfig config = glrnn::RecurrentGemmaConfig::from_json(json);
  info.vocab_size = config.vocab_size;
  auto net = glrnn::build_recurrent_gemma<T>(config, *store);
  return {glrnn::Model(info, store, std::move(net)), store->total_bytes()};
}

std::vector<std::int32_t> random_tokens(std::int64_t n, std::int64_t vocab, std::uint64_t seed) {
  glrnn::Rng rng(seed);
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(n));
  for (std::int32_t& t : tokens) t = static_cast<std::int32_t>(rng.next() % static_cast<std::uint64_t>(vocab));
  return tokens;
}

/// Prefill tok/s of one prompt through a fresh session; the median of `reps` runs.
double prefill_tokens_per_second(const glrnn::Model& model, const std::vector<std::int32_t>& prompt, int reps = 1) {
  glrnn::Session session(model, std::min<std::int64_t>(512, static_cast<std::int64_t>(prompt.size())));
  return static_cast<double>(prompt.size()) / median_seconds(reps, [&] {
           session.reset();
           session.prefill(prompt);
         });
}

template <class T>
DecodeResult bench_type(const std::string& config_path, int steps, std::int64_t prefill_tokens) {
  auto [model, bytes] = random_model<T>(config_path);
  DecodeResult r;
  r.type = std::string(glrnn::dtype_name(glrnn::dtype_of<T>::value));
  r.bytes_per_token = static_cast<double>(bytes);
  r.prefill_tokens = prefill_tokens;
  r.prefill_tok_s = prefill_tokens_per_second(model, random_tokens(prefill_tokens, model.vocab_size(), 1));

  glrnn::Session session(model);
  const std::vector<std::int32_t> tokens = random_tokens(steps + 2, model.vocab_size(), 2);
  session.step(tokens[0]);  // warm-up: first touch of every page
  r.bandwidth_gb_s = measure_read_bandwidth();  // right before the decode steps: the same machine state
  std::vector<double> step_seconds;
  for (int i = 1; i <= steps; ++i) {
    const Clock::time_point t0 = Clock::now();
    session.step(tokens[static_cast<std::size_t>(i)]);
    step_seconds.push_back(seconds_since(t0));
  }
  r.decode_tok_s = 1.0 / median(step_seconds);
  r.achieved_gb_s = r.bytes_per_token * r.decode_tok_s / 1e9;
  r.rss_bytes = current_rss_bytes();
  return r;
}

/// Batched decode: B sequences (at a short prompt's position) stepped together; the median step.
void bench_batch(const std::string& config_path, const std::vector<std::int64_t>& sizes, int steps, bool json) {
  const auto [model, bytes] = random_model<glrnn::bf16>(config_path);
  const std::int64_t largest = *std::max_element(sizes.begin(), sizes.end());
  glrnn::BatchDecoder decoder(model, largest);
  std::vector<glrnn::State> states;
  glrnn::Session start(model);
  start.prefill(random_tokens(8, model.vocab_size(), 4));
  for (std::int64_t b = 0; b < largest; ++b) states.push_back(start.state().clone());
  nlohmann::json out = {{"config", config_path}, {"threads", glrnn::num_threads()}, {"weights", "bf16"},
                        {"bytes_per_step", bytes}, {"state_bytes_per_sequence", model.state_bytes()},
                        {"results", nlohmann::json::array()}};
  if (!json)
    std::printf("| batch | step ms | aggregate tok/s | tok/s per sequence | speed-up over B=1 |\n|---|---|---|---|---|\n");
  double single = 0.0;
  for (std::int64_t batch : sizes) {
    std::vector<glrnn::State*> members;
    for (std::int64_t b = 0; b < batch; ++b) members.push_back(&states[static_cast<std::size_t>(b)]);
    const std::vector<std::int32_t> tokens = random_tokens(batch, model.vocab_size(), 5);
    decoder.step(tokens, members);  // warm-up
    const double seconds = median_seconds(steps, [&] { decoder.step(tokens, members); });
    const double aggregate = static_cast<double>(batch) / seconds;
    if (batch == sizes.front()) single = aggregate / static_cast<double>(batch);
    out["results"].push_back({{"batch", batch}, {"step_seconds", seconds}, {"aggregate_tok_s", aggregate}});
    if (!json)
      std::printf("| %lld | %.1f | %.2f | %.2f | %.2fx |\n", static_cast<long long>(batch), seconds * 1e3, aggregate,
                  aggregate / static_cast<double>(batch), aggregate / single);
  }
  if (json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("\nmemory per sequence: %zu bytes of state (fixed), weights %.2f GB shared\n", model.state_bytes(),
                static_cast<double>(bytes) / 1e9);
  }
}

/// HGRN2 prefill: the chunk-parallel form against the sequential recurrence, same weights.
void bench_prefill(const std::string& config_path, const std::vector<std::int64_t>& lengths, int reps, bool json) {
  // The same random weights twice: RandomStore's values depend only on the tensor and the thread count.
  const glrnn::Model chunked = random_model<glrnn::bf16>(config_path, 64).first;
  const glrnn::Model sequential = random_model<glrnn::bf16>(config_path, 0).first;
  // One mixer layer alone, where the two forms differ (the model's time is mostly weight GEMMs).
  const glrnn::Hgrn2Config config = glrnn::Hgrn2Config::load(config_path);
  RandomStore store;
  const glrnn::Hgrn2Mixer<glrnn::bf16> mixer(config.mixer(), glrnn::hgrn2::mixer<glrnn::bf16>(store, config, 1),
                                             Eigen::VectorXf::Constant(config.forget_dim(), 0.5f));
  const auto mixer_tokens_per_second = [&](std::int64_t n, bool sequential_form) {
    RandomStore inputs;
    const glrnn::TensorView<const float> x = inputs.vector("x", {n, config.hidden_size});
    glrnn::Hgrn2MixerState state = mixer.make_state();
    glrnn::Scratch scratch(mixer.scratch_floats(n), n);
    glrnn::RowMatrixXf y(n, config.hidden_size);
    const Eigen::Map<const glrnn::RowMatrixXf> input(x.data, n, config.hidden_size);
    return static_cast<double>(n) / median_seconds(reps, [&] {
             state.reset();
             if (sequential_form) mixer.forward_sequential(input, 0, state, y, scratch);
             else mixer.forward(input, 0, state, y, scratch);
           });
  };
  nlohmann::json out = {{"config", config_path}, {"threads", glrnn::num_threads()}, {"results", nlohmann::json::array()}};
  if (!json)
    std::printf("| prompt | model chunked tok/s | model sequential tok/s | speed-up | one mixer chunked tok/s | one mixer "
                "sequential tok/s | speed-up |\n|---|---|---|---|---|---|---|\n");
  for (std::int64_t n : lengths) {
    const std::vector<std::int32_t> prompt = random_tokens(n, chunked.vocab_size(), 3);
    const double c = prefill_tokens_per_second(chunked, prompt, reps);
    const double s = prefill_tokens_per_second(sequential, prompt, reps);
    const double mc = mixer_tokens_per_second(n, false), ms = mixer_tokens_per_second(n, true);
    out["results"].push_back({{"prompt_tokens", n}, {"repetitions", reps}, {"chunked_tok_s", c}, {"sequential_tok_s", s}, {"speedup", c / s},
                              {"mixer_chunked_tok_s", mc}, {"mixer_sequential_tok_s", ms}, {"mixer_speedup", mc / ms}});
    if (!json)
      std::printf("| %lld | %.1f | %.1f | %.2fx | %.0f | %.0f | %.2fx |\n", static_cast<long long>(n), c, s, c / s, mc, ms,
                  mc / ms);
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
}

void bench_tokenizer(const std::string& tokenizer_path, const std::string& text_path, double megabytes, int reps,
                     bool json) {
  glrnn::Tokenizer tokenizer;
  const double load_s = median_seconds(reps, [&] { tokenizer = glrnn::load_tokenizer(tokenizer_path); });
  // The text repeated up to the requested size, cut at a line end.
  const std::string sample = glrnn::tools::read_file(text_path);
  GLRNN_CHECK(!sample.empty(), glrnn::InputError, "'" + text_path + "' is empty");
  std::string text;
  while (static_cast<double>(text.size()) < megabytes * 1e6) text += sample;
  text.resize(std::min(text.size(), text.find('\n', static_cast<std::size_t>(megabytes * 1e6)) + 1));
  std::size_t tokens = 0;
  const double encode_s = median_seconds(reps, [&] { tokens = tokenizer.encode(text, false).size(); });
  const double mb_s = static_cast<double>(text.size()) / 1e6 / encode_s;
  if (json) {
    std::printf("%s\n", nlohmann::json{{"tokenizer", tokenizer_path}, {"load_seconds", load_s}, {"text_bytes", text.size()},
                                        {"tokens", tokens}, {"encode_seconds", encode_s}, {"encode_mb_s", mb_s},
                                        {"repetitions", reps}}.dump(2).c_str());
    return;
  }
  std::printf("| tokenizer | load s | text MB | tokens | encode s | MB/s |\n|---|---|---|---|---|---|\n");
  std::printf("| %s | %.3f | %.2f | %zu | %.3f | %.2f |\n", tokenizer_path.c_str(), load_s,
              static_cast<double>(text.size()) / 1e6, tokens, encode_s, mb_s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"glrnn benchmarks with random weights of a real geometry."};
  app.require_subcommand(1);
  CLI::App* decode = app.add_subcommand("decode", "Decode tok/s, bytes per token and GB/s against measured bandwidth");
  std::string config_path, types = "bf16,f32";
  int threads = 0, steps = 16;
  std::int64_t prefill_tokens = 512;
  bool json = false;
  decode->add_option("--config", config_path, "config.json of the geometry")->required();
  decode->add_option("--types", types, "Weight types, comma-separated: f32, bf16")->capture_default_str();
  decode->add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str();
  decode->add_option("--steps", steps, "Timed decode steps (the median is reported)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  decode->add_option("--prefill", prefill_tokens, "Prompt length for the prefill figure")->capture_default_str()
      ->check(CLI::PositiveNumber);
  decode->add_flag("--json", json, "Print one JSON object instead of a table");

  CLI::App* prefill = app.add_subcommand("prefill", "HGRN2 prefill: chunk-parallel against sequential");
  std::string prefill_config, lengths_text = "512,4096";
  prefill->add_option("--config", prefill_config, "config.json of an HGRN2 geometry")->required();
  prefill->add_option("--lengths", lengths_text, "Prompt lengths, comma-separated")->capture_default_str();
  prefill->add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str();
  int prefill_reps = 3;
  prefill->add_option("-r,--repetitions", prefill_reps, "Timed runs per figure (the median is reported)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  prefill->add_flag("--json", json, "Print one JSON object instead of a table");

  CLI::App* batch = app.add_subcommand("batch", "Aggregate decode tok/s against the batch size");
  std::string batch_config, sizes_text = "1,2,4,8,16,32";
  int batch_steps = 5;
  batch->add_option("--config", batch_config, "config.json of the geometry")->required();
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

  return glrnn::tools::run_tool("glrnn-bench", app, argc, argv, [&] {
    if (batch->parsed()) {
      glrnn::set_num_threads(threads);
      std::vector<std::int64_t> sizes;
      for (std::int32_t n : glrnn::tools::parse_token_ids(sizes_text)) {
        GLRNN_CHECK(n > 0, glrnn::InputError, "batch sizes must be positive");
        sizes.push_back(n);
      }
      bench_batch(batch_config, sizes, batch_steps, json);
      return;
    }
    if (prefill->parsed()) {
      glrnn::set_num_threads(threads);
      std::vector<std::int64_t> lengths;
      for (std::int32_t n : glrnn::tools::parse_token_ids(lengths_text)) lengths.push_back(n);
      bench_prefill(prefill_config, lengths, prefill_reps, json);
      return;
    }
    if (tokenizer->parsed()) {
      bench_tokenizer(tokenizer_path, text_path, megabytes, reps, json);
      return;
    }
    glrnn::set_num_threads(threads);
    std::vector<DecodeResult> results;
    std::istringstream list(types);
    for (std::string type; std::getline(list, type, ',');) {
      if (type == "f32") results.push_back(bench_type<float>(config_path, steps, prefill_tokens));
      else if (type == "bf16") results.push_back(bench_type<glrnn::bf16>(config_path, steps, prefill_tokens));
      else throw glrnn::InputError("unknown weight type '" + type + "' (available: f32, bf16)");
    }
    if (json) {
      nlohmann::json out = {{"config", config_path}, {"threads", glrnn::num_threads()}, {"results", nlohmann::json::array()}};
      for (const DecodeResult& r : results)
        out["results"].push_back({{"type", r.type}, {"decode_tok_s", r.decode_tok_s}, {"bytes_per_token", r.bytes_per_token},
                                  {"achieved_gb_s", r.achieved_gb_s}, {"measured_bandwidth_gb_s", r.bandwidth_gb_s},
                                  {"ratio_to_bandwidth", r.achieved_gb_s / r.bandwidth_gb_s},
                                  {"prefill_tokens", r.prefill_tokens}, {"prefill_tok_s", r.prefill_tok_s},
                                  {"rss_bytes", r.rss_bytes}});
      std::printf("%s\n", out.dump(2).c_str());
      return;
    }
    std::printf("%s, %d threads\n\n", config_path.c_str(), glrnn::num_threads());
    std::printf("| type | decode tok/s | bytes/token | GB/s | measured read GB/s | ratio | prefill tok/s (%lld) | RSS |\n",
                static_cast<long long>(prefill_tokens));
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (const DecodeResult& r : results)
      std::printf("| %s | %.2f | %.3g | %.1f | %.1f | %.2f | %.1f | %.2f GB |\n", r.type.c_str(), r.decode_tok_s,
                  r.bytes_per_token, r.achieved_gb_s, r.bandwidth_gb_s, r.achieved_gb_s / r.bandwidth_gb_s,
                  r.prefill_tok_s, static_cast<double>(r.rss_bytes) / 1e9);
  });
}
