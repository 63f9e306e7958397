#pragma once
// glrnn-bench serve: glrnn-server under C concurrent clients, each holding a multi-turn chat
// (every turn re-sends the whole conversation, as OpenAI clients do), streamed. Reports
// aggregate generated tok/s, time to first token and between tokens (p50, p99), the cache hit
// rate, the prompt tokens the server prefilled against what a server re-reading the history
// would have (every prompt token), and the server's RSS at the start and the end. The load
// generator is its own HTTP client (http_client.hpp).

#include <fcntl.h>     // open, O_WRONLY
#include <signal.h>    // kill, SIGTERM
#include <sys/prctl.h> // prctl, PR_SET_PDEATHSIG
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, execv, pipe, dup2, read

#include <algorithm>  // std::sort
#include <cstdio>     // std::printf
#include <fstream>    // std::ifstream
#include <map>        // std::map
#include <mutex>      // std::mutex, std::lock_guard
#include <sstream>    // std::istringstream
#include <string>     // std::string
#include <thread>     // std::thread
#include <vector>     // std::vector

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "http_client.hpp"

namespace glrnn::bench {

struct ServeOptions {
  std::string server;    // the glrnn-server executable
  std::string model;
  std::vector<std::int64_t> clients;  // one run per count
  int turns = 4;
  int max_tokens = 32;
  int parallel = 32;     // the server's slots
  int threads = 1;       // the demo models are too small for more threads to pay
};

namespace detail {

/// glrnn-server as a child process on a free port.
class ServerChild {
 public:
  explicit ServerChild(const ServeOptions& o) {
    std::vector<std::string> args{o.server, "-m", o.model, "--port", "0", "--parallel", std::to_string(o.parallel),
                                  "-t", std::to_string(o.threads)};
    int out[2];
    GLRNN_CHECK(pipe(out) == 0, IoError, "pipe() failed");
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // the benchmark failing never leaves a server behind
      dup2(out[1], 1);
      const int null = ::open("/dev/null", O_WRONLY);
      dup2(null, 2);  // one log line per request would only slow the clients' machine
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    const std::size_t colon = line.rfind(':');
    port_ = colon == std::string::npos ? 0 : std::atoi(line.c_str() + colon + 1);
    GLRNN_CHECK(line.find("listening on") != std::string::npos && port_ > 0, IoError,
                "glrnn-server did not start ('" + o.server + "'): " + line);
  }
  ~ServerChild() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  int port() const { return port_; }
  /// VmRSS or VmHWM of the server, in bytes.
  std::size_t memory(const char* field) const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind(field, 0) == 0) return static_cast<std::size_t>(std::stoull(line.substr(std::string(field).size()))) * 1024;
    return 0;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

inline std::map<std::string, double> server_metrics(int port) {
  std::string text;
  http_request("127.0.0.1", port, "GET", "/metrics", "", [&](const char* d, std::size_t n) { text.append(d, n); });
  std::map<std::string, double> values;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("glrnn_", 0) == 0) values[line.substr(6, line.find(' ') - 6)] = std::stod(line.substr(line.find(' ') + 1));
  return values;
}

const char* const kServeUserTurns[] = {
    "Tell me about the old house at the end of the street.", "What did the president of the company say?",
    "Where were the children going that morning?", "Why did the scientists travel so far?",
    "How long have you been sitting here?", "What happened after the game?",
    "Who wrote the letter that arrived yesterday?", "What will the weather be like tomorrow?",
    "Can you describe the city at night?", "What do you remember about the summer?",
    "Which book did she read on the train?", "What did he find in the garden?"};

}  // namespace detail

/// Runs the benchmark for every client count; prints a Markdown table or, with json, one object.
inline void bench_serve(const ServeOptions& options, bool json) {
  nlohmann::json out = {{"model", options.model}, {"turns", options.turns}, {"max_tokens", options.max_tokens},
                        {"parallel", options.parallel}, {"results", nlohmann::json::array()}};
  if (!json)
    std::printf("| clients | requests | generated tok/s | TTFT p50 / p99 ms | between tokens p50 / p99 ms | cache hits | "
                "prompt tokens | prefilled by glrnn-server | saved | server RSS start / end MiB |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::int64_t clients : options.clients) {
    detail::ServerChild server(options);
    const std::size_t rss_start = server.memory("VmRSS:");
    std::mutex mutex;
    std::vector<double> ttft, gaps;
    std::int64_t requests = 0, hits = 0, generated = 0, prompt_tokens = 0, cached_tokens = 0, failures = 0;
    const Clock::time_point t0 = Clock::now();
    std::vector<std::thread> threads;
    for (std::int64_t c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        nlohmann::json messages = nlohmann::json::array(
            {{{"role", "system"}, {"content", "You are a friendly storyteller. Answer in one or two sentences."}}});
        for (int turn = 0; turn < options.turns; ++turn) {
          messages.push_back({{"role", "user"}, {"content", detail::kServeUserTurns[(c * 5 + turn) % 12]}});
          const nlohmann::json body = {{"messages", messages}, {"max_tokens", options.max_tokens}, {"temperature", 0.8},
                                       {"top_p", 0.95}, {"seed", c * 1000 + turn}, {"stream", true},
                                       {"stream_options", {{"include_usage", true}}}};
          std::string reply;
          std::vector<double> my_gaps;
          double first = -1.0, last = 0.0;
          nlohmann::json usage;
          SseReader sse;
          const Clock::time_point sent = Clock::now();
          int status = 0;
          try {
            status = http_request("127.0.0.1", server.port(), "POST", "/v1/chat/completions", body.dump(),
                                  [&](const char* d, std::size_t n) {
                                    sse.push(d, n, [&](const std::string& event) {
                                      if (event == "[DONE]") return;
                                      const nlohmann::json chunk = nlohmann::json::parse(event);
                                      if (chunk.contains("usage")) usage = chunk["usage"];
                                      for (const auto& choice : chunk.value("choices", nlohmann::json::array())) {
                                        const std::string text = choice["delta"].value("content", "");
                                        if (text.empty()) continue;
                                        const double now = seconds_since(sent);
                                        if (first < 0) first = now;
                                        else my_gaps.push_back(now - last);
                                        last = now;
                                        reply += text;
                                      }
                                    });
                                  });
          } catch (const std::exception&) {
            status = 0;
          }
          std::lock_guard<std::mutex> lock(mutex);
          ++requests;
          if (status != 200 || !usage.is_object()) {
            ++failures;
            return;
          }
          if (first >= 0) ttft.push_back(first);
          gaps.insert(gaps.end(), my_gaps.begin(), my_gaps.end());
          generated += usage["completion_tokens"].get<std::int64_t>();
          prompt_tokens += usage["prompt_tokens"].get<std::int64_t>();
          const std::int64_t cached = usage["prompt_tokens_details"]["cached_tokens"];
          cached_tokens += cached;
          hits += cached > 0;
          messages.push_back({{"role", "assistant"}, {"content", reply}});
        }
      });
    for (std::thread& t : threads) t.join();
    const double seconds = seconds_since(t0);
    std::map<std::string, double> m = detail::server_metrics(server.port());
    const std::size_t rss_end = server.memory("VmRSS:"), rss_peak = server.memory("VmHWM:");
    const double prefilled = m["prefill_tokens_total"];
    const nlohmann::json result = {
        {"clients", clients}, {"requests", requests}, {"failures", failures}, {"seconds", seconds},
        {"generated_tokens", generated}, {"generated_tok_s", static_cast<double>(generated) / seconds},
        {"ttft_p50_ms", detail::percentile(ttft, 0.5) * 1e3}, {"ttft_p99_ms", detail::percentile(ttft, 0.99) * 1e3},
        {"inter_token_p50_ms", detail::percentile(gaps, 0.5) * 1e3}, {"inter_token_p99_ms", detail::percentile(gaps, 0.99) * 1e3},
        {"requests_with_cache_hit", hits}, {"cache_hit_rate", requests ? static_cast<double>(hits) / static_cast<double>(requests) : 0.0},
        {"prompt_tokens", prompt_tokens}, {"cached_tokens", cached_tokens},
        {"prefilled_tokens", prefilled}, {"reply_close_tokens", m["reply_close_tokens_total"]},
        {"rereading_server_prefill", prompt_tokens}, {"prefill_saved", 1.0 - prefilled / std::max<double>(1.0, static_cast<double>(prompt_tokens))},
        {"rss_start_bytes", rss_start}, {"rss_end_bytes", rss_end}, {"rss_peak_bytes", rss_peak},
        {"server_decode_tok_s", m["decode_tokens_per_second"]}, {"server_prefill_tok_s", m["prefill_tokens_per_second"]}};
    out["results"].push_back(result);
    const std::string failed = failures ? " (" + std::to_string(failures) + " failed)" : "";
    if (!json)
      std::printf("| %lld | %lld%s | %.1f | %.1f / %.1f | %.1f / %.1f | %lld/%lld | %lld | %.0f (%.1f%%) | %.1f%% | %.1f / %.1f |\n",
                  static_cast<long long>(clients), static_cast<long long>(requests),
                  failed.c_str(), result["generated_tok_s"].get<double>(),
                  result["ttft_p50_ms"].get<double>(), result["ttft_p99_ms"].get<double>(),
                  result["inter_token_p50_ms"].get<double>(), result["inter_token_p99_ms"].get<double>(),
                  static_cast<long long>(hits), static_cast<long long>(requests), static_cast<long long>(prompt_tokens), prefilled,
                  100.0 * prefilled / std::max<double>(1.0, static_cast<double>(prompt_tokens)),
                  100.0 * result["prefill_saved"].get<double>(), static_cast<double>(rss_start) / 1048576.0,
                  static_cast<double>(rss_end) / 1048576.0);
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf("\nA server that re-reads the history prefills every prompt token (the 'prompt tokens' column); "
                "glrnn-server prefilled the new turns and the closes of replies it cached.\n");
}

}  // namespace glrnn::bench
