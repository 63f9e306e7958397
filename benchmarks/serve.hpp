#pragma once
// glrnn-bench serve: glrnn-server under C concurrent clients, each holding a multi-turn chat
// (every turn re-sends the whole conversation, as OpenAI clients do), streamed. Reports
// aggregate generated tok/s, time to first token and between tokens (p50, p99), the cache hits
// per tier, the prompt tokens the servers prefilled against what a server re-reading the history
// would have (every prompt token), and the servers' RSS at the start and the end. With
// --replicas N the same conversations run also through HAProxy in round-robin mode over N
// replicas (scripts/cluster.sh), without and (--redis) with the shared tier, whose memory is
// reported too. The load generator is its own HTTP client (http_client.hpp).

#include <fcntl.h>     // open, O_WRONLY
#include <signal.h>    // kill, SIGTERM
#include <sys/prctl.h> // prctl, PR_SET_PDEATHSIG
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork, execv, pipe, dup2, read

#include <algorithm>  // std::sort
#include <chrono>     // std::chrono
#include <cstdio>     // std::printf, popen
#include <filesystem> // std::filesystem
#include <functional> // std::function
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
  double temperature = 0.8;  // 0: greedy, the same conversations whichever server batches them with others
  int replicas = 1;      // more: also through HAProxy over this many replicas
  bool redis = false;    // and with the replicas sharing states through Redis
  std::string cluster_script = "scripts/cluster.sh";
};

namespace detail {

/// VmRSS or VmHWM of a process, in bytes.
inline std::size_t process_memory(pid_t pid, const char* field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field, 0) == 0) return static_cast<std::size_t>(std::stoull(line.substr(std::string(field).size()))) * 1024;
  return 0;
}

/// In a forked child: becomes args[0] run with `args`, or exits with 127.
[[noreturn]] inline void exec_or_exit(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  _exit(127);
}

/// What the clients talk to: its port, the servers behind it (their /metrics), their memory, and
/// Redis' port (0: none).
struct Endpoint {
  int port = 0;
  std::vector<int> servers;
  std::function<std::size_t(const char* field)> memory;  // summed over the servers
  int redis_port = 0;
};

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
      exec_or_exit(args);
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
  Endpoint endpoint() const {
    return {port_, {port_}, [pid = pid_](const char* field) { return process_memory(pid, field); }, 0};
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

/// scripts/cluster.sh as a child: Redis (unless without_redis), the replicas and HAProxy in
/// round-robin mode, on loopback ports it writes into its work directory.
class ClusterChild {
 public:
  ClusterChild(const ServeOptions& o, bool with_redis) {
    char pattern[] = "/tmp/glrnn-bench-cluster-XXXXXX";
    GLRNN_CHECK(mkdtemp(pattern) != nullptr, IoError, "mkdtemp failed");
    dir_ = pattern;
    std::vector<std::string> args{"/bin/bash", o.cluster_script, "--work-dir", dir_, "--server", o.server, "--model", o.model,
                                  "--replicas", std::to_string(o.replicas), "--balance", "roundrobin"};
    if (!with_redis) args.push_back("--no-redis");
    args.insert(args.end(), {"--", "--parallel", std::to_string(o.parallel), "-t", std::to_string(o.threads)});
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);  // its own group: the destructor stops the script and all it started
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      const int null = ::open((dir_ + "/cluster.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(null, 1);
      dup2(null, 2);
      exec_or_exit(args);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int status = 0;
    while (!std::filesystem::exists(dir_ + "/ready")) {
      GLRNN_CHECK(waitpid(pid_, &status, WNOHANG) == 0, IoError,
                  "scripts/cluster.sh ended before it was ready; see " + dir_ + "/cluster.out");
      GLRNN_CHECK(std::chrono::steady_clock::now() < deadline, IoError, "scripts/cluster.sh not ready in 120 s: " + dir_);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    endpoint_.port = number("haproxy.port");
    for (int i = 1; i <= o.replicas; ++i) {
      endpoint_.servers.push_back(number("replica-" + std::to_string(i) + ".port"));
      pids_.push_back(number("replica-" + std::to_string(i) + ".pid"));
    }
    endpoint_.memory = [pids = pids_](const char* field) {
      std::size_t sum = 0;
      for (pid_t pid : pids) sum += process_memory(pid, field);
      return sum;
    };
    if (with_redis) endpoint_.redis_port = number("redis.port");
  }
  ~ClusterChild() {
    kill(-pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  int number(const std::string& file) const {
    std::ifstream in(dir_ + "/" + file);
    int value = 0;
    GLRNN_CHECK(in >> value, IoError, "scripts/cluster.sh wrote no " + file + " in " + dir_);
    return value;
  }
  std::string dir_;
  pid_t pid_ = -1;
  std::vector<pid_t> pids_;
  Endpoint endpoint_;
};

/// Redis' used_memory in bytes, as redis-cli reports it (0 when it cannot).
inline double redis_memory(int port) {
  const std::string command = "redis-cli -p " + std::to_string(port) + " info memory 2>/dev/null";
  std::FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return 0.0;
  double bytes = 0.0;
  char line[256];
  while (std::fgets(line, sizeof line, pipe))
    if (std::string(line).rfind("used_memory:", 0) == 0) bytes = std::atof(line + 12);
  pclose(pipe);
  return bytes;
}

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

/// The conversations of `clients` clients against one endpoint; one result object.
inline nlohmann::json run_clients(const Endpoint& endpoint, const ServeOptions& options, std::int64_t clients) {
  const std::size_t rss_start = endpoint.memory("VmRSS:");
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
        messages.push_back({{"role", "user"}, {"content", kServeUserTurns[(c * 5 + turn) % 12]}});
        const nlohmann::json body = {{"messages", messages}, {"max_tokens", options.max_tokens}, {"temperature", options.temperature},
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
          status = http_request("127.0.0.1", endpoint.port, "POST", "/v1/chat/completions", body.dump(),
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
  // The last replies' closes run after their clients have them: wait for every server to be idle,
  // so that each setup is charged all its work.
  for (int port : endpoint.servers)
    for (int i = 0; i < 600 && server_metrics(port)["sequences_running"] > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::map<std::string, double> m;  // summed over the servers
  for (int port : endpoint.servers)
    for (const auto& [name, value] : server_metrics(port)) m[name] += value;
  const double prefilled = m["prefill_tokens_total"];
  const auto per_request = [&](double n) { return requests ? n / static_cast<double>(requests) : 0.0; };
  return {{"clients", clients}, {"servers", endpoint.servers.size()}, {"requests", requests}, {"failures", failures},
          {"seconds", seconds}, {"generated_tokens", generated}, {"generated_tok_s", static_cast<double>(generated) / seconds},
          {"ttft_p50_ms", percentile(ttft, 0.5) * 1e3}, {"ttft_p99_ms", percentile(ttft, 0.99) * 1e3},
          {"inter_token_p50_ms", percentile(gaps, 0.5) * 1e3}, {"inter_token_p99_ms", percentile(gaps, 0.99) * 1e3},
          {"requests_with_cache_hit", hits}, {"cache_hit_rate", per_request(static_cast<double>(hits))},
          {"memory_hit_rate", per_request(m["cache_tier_hits_total{tier=\"memory\"}"])},
          {"redis_hit_rate", per_request(m["cache_tier_hits_total{tier=\"redis\"}"])},
          {"prompt_tokens", prompt_tokens}, {"cached_tokens", cached_tokens},
          {"prefilled_tokens", prefilled}, {"reply_close_tokens", m["reply_close_tokens_total"]},
          {"rereading_server_prefill", prompt_tokens},
          {"prefill_saved", 1.0 - prefilled / std::max<double>(1.0, static_cast<double>(prompt_tokens))},
          {"rss_start_bytes", rss_start}, {"rss_end_bytes", endpoint.memory("VmRSS:")}, {"rss_peak_bytes", endpoint.memory("VmHWM:")},
          {"redis_memory_bytes", endpoint.redis_port ? redis_memory(endpoint.redis_port) : 0.0},
          {"redis_fetches", m["cache_fetch_seconds_count{tier=\"redis\"}"]},
          {"redis_fetch_mean_ms", 1e3 * m["cache_fetch_seconds_sum{tier=\"redis\"}"] /
                                      std::max(1.0, m["cache_fetch_seconds_count{tier=\"redis\"}"])},
          {"redis_misses", m["cache_tier_misses_total{tier=\"redis\"}"]},
          {"redis_writes", m["cache_tier_writes_total{tier=\"redis\"}"]},
          {"redis_dropped_writes", m["cache_tier_dropped_writes_total{tier=\"redis\"}"]},
          {"fetch_timeouts", m["cache_fetch_timeouts_total"]},
          {"server_decode_tok_s", m["decode_tokens_per_second"] / static_cast<double>(endpoint.servers.size())},
          {"server_prefill_tok_s", m["prefill_tokens_per_second"] / static_cast<double>(endpoint.servers.size())}};
}

}  // namespace detail

/// Runs the benchmark for every client count (and every setup: one server, then with --replicas
/// the replicas without and with Redis); prints a Markdown table or, with json, one object.
inline void bench_serve(const ServeOptions& options, bool json) {
  nlohmann::json out = {{"model", options.model}, {"turns", options.turns}, {"max_tokens", options.max_tokens},
                        {"parallel", options.parallel}, {"results", nlohmann::json::array()}};
  if (!json)
    std::printf("| setup | clients | requests | generated tok/s | TTFT p50 / p99 ms | between tokens p50 / p99 ms | hits memory / redis | "
                "prompt tokens | prefilled by glrnn-server | saved | servers' RSS start / end MiB | Redis MiB | Redis fetch mean ms | "
                "fetches past the deadline |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  struct Setup {
    std::string name;
    int replicas;
    bool redis;
  };
  std::vector<Setup> setups{{"1 server", 1, false}};
  if (options.replicas > 1 || options.redis) {
    const std::string n = std::to_string(options.replicas) + (options.replicas == 1 ? " replica" : " replicas");
    if (options.replicas > 1) setups.push_back({n + ", round robin", options.replicas, false});
    if (options.redis) setups.push_back({n + ", round robin + redis", options.replicas, true});
  }
  for (const std::int64_t clients : options.clients)
    for (const Setup& setup : setups) {
      nlohmann::json result;
      if (setup.replicas == 1 && !setup.redis) {
        detail::ServerChild server(options);
        result = detail::run_clients(server.endpoint(), options, clients);
      } else {
        detail::ClusterChild cluster(options, setup.redis);
        result = detail::run_clients(cluster.endpoint(), options, clients);
      }
      result["setup"] = setup.name;
      out["results"].push_back(result);
      if (json) continue;
      const std::int64_t failures = result["failures"], requests = result["requests"], prompt = result["prompt_tokens"];
      const double prefilled = result["prefilled_tokens"];
      const std::string failed = failures ? " (" + std::to_string(failures) + " failed)" : "";
      std::printf("| %s | %lld | %lld%s | %.1f | %.1f / %.1f | %.1f / %.1f | %.0f%% / %.0f%% | %lld | %.0f (%.1f%%) | %.1f%% | %.1f / %.1f | %.1f | %.1f | %.0f |\n",
                  setup.name.c_str(), static_cast<long long>(clients), static_cast<long long>(requests), failed.c_str(),
                  result["generated_tok_s"].get<double>(), result["ttft_p50_ms"].get<double>(),
                  result["ttft_p99_ms"].get<double>(), result["inter_token_p50_ms"].get<double>(),
                  result["inter_token_p99_ms"].get<double>(), 100.0 * result["memory_hit_rate"].get<double>(),
                  100.0 * result["redis_hit_rate"].get<double>(), static_cast<long long>(prompt), prefilled,
                  100.0 * prefilled / std::max<double>(1.0, static_cast<double>(prompt)),
                  100.0 * result["prefill_saved"].get<double>(), result["rss_start_bytes"].get<double>() / 1048576.0,
                  result["rss_end_bytes"].get<double>() / 1048576.0, result["redis_memory_bytes"].get<double>() / 1048576.0,
                  result["redis_fetch_mean_ms"].get<double>(), result["fetch_timeouts"].get<double>());
    }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf("\nA server that re-reads the history prefills every prompt token (the 'prompt tokens' column); "
                "glrnn-server prefilled the new turns and the closes of replies it cached. Hits: the share of requests\n"
                "that restored a state from memory and from Redis (a request may do both and go on from the longer).\n");
}

}  // namespace glrnn::bench
