// glrnn-server: an OpenAI-compatible HTTP server. Sequences are decoded together, one batched
// step per token; every processed prompt and finished reply is kept as a state keyed by its
// token ids, so turn N of a chat prefills only turn N (examples/server/scheduler.hpp).

#include <pthread.h>  // pthread_sigmask, pthread_kill
#include <signal.h>   // sigwait, SIGINT, SIGTERM

#include <algorithm>   // std::min
#include <atomic>      // std::atomic
#include <chrono>      // std::chrono::milliseconds
#include <cstdint>     // std::int64_t
#include <cstdio>      // std::printf, std::fprintf
#include <filesystem>  // std::filesystem::path
#include <memory>      // std::make_unique
#include <string>      // std::string
#include <thread>      // std::thread, std::this_thread
#include <vector>      // std::vector

#include <glrnn/glrnn.hpp>

#include <glrnn/tools/cli.hpp>
#include "server/http_api.hpp"
#if GLRNN_SERVER_REDIS
#include "server/redis_tier.hpp"
#endif

int main(int argc, char** argv) {
  CLI::App app{"OpenAI-compatible server for a glrnn model, with continuous batching and a state cache."};
  std::string model_dir, host = "127.0.0.1", cache_dir, api_key, alias;
  int port = 8080, threads = 0;
  double cache_mib = 1024, cache_dir_mib = 0, max_body_mib = 4;
  double head_timeout_s = 10, body_timeout_s = 60, idle_timeout_s = 5, write_timeout_s = 10;
  std::string redis_url, redis_password_file;
  std::int64_t redis_ttl_s = 86400;
  double redis_queue_mib = 256, fetch_timeout_s = 2;
  glrnn::server::HttpServerOptions transport;
  std::vector<std::string> allowed_hosts, cors_origins;
  glrnn::LoadOptions load_options;
  glrnn::server::SchedulerOptions scheduling;
  glrnn::server::RequestLimits limits;
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("-m,--model", model_dir, "Model folder (config.json, *.safetensors, tokenizer.json) or a glrnn-convert file")->required();
  app.add_option("--host", host, "Address to listen on")->capture_default_str();
  app.add_option("--port", port, "Port; 0 picks a free one (the ready line says which)")->capture_default_str()->check(CLI::Range(0, 65535));
  app.add_option("--parallel", scheduling.parallel, "Sequences decoded together (slots)")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--ctx-cache-mib", cache_mib, "Memory for cached states, MiB (least recently used leave first)")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cache-dir", cache_dir, "Directory where states leaving memory are kept as state files (survives restarts)");
  app.add_option("--cache-dir-mib", cache_dir_mib, "Limit of the cache directory, MiB; 0 = none")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--api-key", api_key, "Require 'Authorization: Bearer KEY' on every endpoint but /health");
  app.add_option("--alias", alias, "Model name in the API (default: the model folder's name)");
  app.add_option("--cache-redis", redis_url,
                 "Share cached states with other replicas through Redis: redis://[USER@]HOST:PORT[/DB] (the password from "
                 "GLRNN_REDIS_PASSWORD or --cache-redis-password-file)");
  app.add_option("--cache-redis-password-file", redis_password_file, "File whose first line is the Redis password");
  app.add_option("--cache-redis-ttl", redis_ttl_s, "Seconds a state stays in Redis; 0 = until Redis evicts it")
      ->capture_default_str()->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
  app.add_option("--cache-redis-queue-mib", redis_queue_mib, "States waiting to be written to Redis, MiB; past it writes are dropped")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--cache-fetch-timeout", fetch_timeout_s,
                 "Seconds a request waits for a state from --cache-dir or --cache-redis before it goes on without it")
      ->capture_default_str()->check(CLI::Range(0.001, 3600.0));
  app.add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--max-queue", scheduling.max_queue, "Requests waiting for a slot before 503")->capture_default_str()->check(CLI::Range(0, 100000));
  app.add_option("--prefill-chunk", scheduling.prefill_chunk, "Prompt tokens run between two decode steps")->capture_default_str()
      ->check(CLI::Range(1, 8192));
  app.add_option("--max-prompt-tokens", limits.max_prompt_tokens, "Longest prompt (a chat's whole rendering)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-tokens", limits.max_tokens, "Most tokens a request may generate per choice (and the default)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-n", limits.max_n, "Most choices per request (at most --parallel)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-body-mib", max_body_mib, "Largest request body, MiB (either framing)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-connections", transport.max_connections, "Connections open at once; the next gets 503")->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--head-timeout", head_timeout_s, "Seconds for a request's whole head to arrive (else 408)")->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--body-timeout", body_timeout_s, "Seconds for a request's whole body to arrive (else 408)")->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--keep-alive-timeout", idle_timeout_s, "Seconds an idle connection stays open")->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--write-timeout", write_timeout_s, "Seconds a client may stop reading before its response is cut")->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--allowed-hosts", allowed_hosts, "Host names clients may use besides IP addresses and localhost ('*': any)")
      ->delimiter(',');
  app.add_option("--cors-origin", cors_origins, "Origins whose web pages may call the server ('*': any); none by default")
      ->delimiter(',');
  glrnn::tools::add_load_options(app, load_options);

  return glrnn::tools::run_tool("glrnn-server", app, argc, argv, [&] {
    // Signals go to one waiting thread: blocked here, before any other thread exists (OpenMP's
    // included), so that a worker never takes SIGTERM's default action.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    // The shared tier's address and password are checked before the model is loaded.
    const auto fetch_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(fetch_timeout_s * 1000));
    scheduling.fetch_timeout = fetch_timeout;
    if (!redis_url.empty()) {
#if GLRNN_SERVER_REDIS
      glrnn::server::RedisTierOptions redis;
      redis.address = glrnn::server::parse_redis_url(redis_url);
      redis.address.password = glrnn::server::read_redis_password(redis_password_file);
      redis.ttl_seconds = redis_ttl_s;
      redis.max_queue_bytes = static_cast<std::size_t>(redis_queue_mib * 1024 * 1024);
      redis.read_timeout = fetch_timeout;
      scheduling.shared_tier = [redis](const glrnn::StateCacheEntries& entries) {
        return std::make_unique<glrnn::server::RedisTier>(redis, entries);
      };
#else
      throw glrnn::InputError("--cache-redis: this glrnn-server was built without hiredis (apt-get install libhiredis-dev, then rebuild)");
#endif
    } else {
      for (const char* option : {"--cache-redis-password-file", "--cache-redis-ttl", "--cache-redis-queue-mib"})
        if (app.count(option) > 0) throw glrnn::InputError(std::string(option) + " needs --cache-redis");
    }

    const glrnn::Model model = glrnn::load_model(model_dir, load_options);
    const glrnn::Tokenizer tokenizer = glrnn::load_model_tokenizer(model_dir);
    if (!redis_url.empty() && redis_queue_mib * 1024 * 1024 < static_cast<double>(model.state_bytes()))
      throw glrnn::InputError("--cache-redis-queue-mib holds no state of this model (" + std::to_string(model.state_bytes() / 1024) +
                              " KiB each): every write would be dropped");
    const glrnn::server::ChatFormat format(tokenizer);
    if (alias.empty()) alias = std::filesystem::path(model_dir).lexically_normal().filename().string();
    if (alias.empty()) alias = std::filesystem::path(model_dir).lexically_normal().parent_path().filename().string();
    scheduling.threads = threads;
    scheduling.cache = cache_mib > 0 || !cache_dir.empty() || !redis_url.empty();
    scheduling.cache_options = {static_cast<std::size_t>(cache_mib * 1024 * 1024), cache_dir,
                                static_cast<std::size_t>(cache_dir_mib * 1024 * 1024)};
    limits.max_n = std::min(limits.max_n, scheduling.parallel);  // more choices than slots would never start
    limits.vocab_size = std::min<std::int64_t>(model.vocab_size(), tokenizer.vocab_size());
    std::vector<std::int32_t> stop_tokens = model.info().stop_token_ids;
    for (std::int32_t id : format.stop_tokens()) stop_tokens.push_back(id);
    glrnn::server::Scheduler scheduler(model, tokenizer, scheduling, stop_tokens);

    // A worker for every slot and queued request, and a few for everything else (/health under load).
    transport.workers = static_cast<std::size_t>(std::min<std::int64_t>(scheduling.parallel + scheduling.max_queue + 8, 1024));
    transport.limits.max_body_bytes = static_cast<std::size_t>(max_body_mib * 1024 * 1024);
    const auto ms = [](double s) { return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000)); };
    transport.head_timeout = ms(head_timeout_s);
    transport.body_timeout = ms(body_timeout_s);
    transport.idle_timeout = ms(idle_timeout_s);
    transport.write_timeout = ms(write_timeout_s);
    glrnn::server::HttpApi api(model, tokenizer, format, scheduler, {alias, api_key, allowed_hosts, cors_origins, limits});
    glrnn::server::HttpServer http(
        transport, [&api](const glrnn::server::HttpRequest& req, glrnn::server::HttpResponse& res) { api.handle(req, res); },
        glrnn::server::transport_error_body);
    try {
      port = http.bind(host, port);
    } catch (const std::runtime_error& e) {
      throw glrnn::IoError(e.what());
    }
    std::printf("glrnn-server: listening on http://%s:%d (model %s, %lld slots)\n", host.c_str(), port, alias.c_str(),
                static_cast<long long>(scheduling.parallel));
    std::fflush(stdout);
    std::fprintf(stderr, "glrnn-server: %s, chat format %s, state %zu bytes + %zu per position (max context %lld), cache %.0f MiB%s%s%s%s\n",
                 model.info().family.c_str(), format.name(), model.state_bytes(), model.info().state_bytes_per_position,
                 static_cast<long long>(model.info().max_context), cache_mib, cache_dir.empty() ? "" : " + ",
                 cache_dir.c_str(), redis_url.empty() ? "" : " + ", redis_url.c_str());

    std::atomic<bool> listening{true}, signalled{false};
    std::thread waiter([&] {
      int signal = 0;
      sigwait(&stop_signals, &signal);
      signalled = true;
      if (!listening) return;  // woken by main below: the server has already stopped
      std::fprintf(stderr, "glrnn-server: %s, stopping\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
      scheduler.stop();  // queued and running requests end with a 503 error; the cache is written out
      for (int i = 0; i < 300 && api.open_streams() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      while (listening) {  // stop() only takes once run() has started; retry until it returned
        http.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    http.run();
    listening = false;
    if (!signalled) pthread_kill(waiter.native_handle(), SIGTERM);  // it is still in (or just past) sigwait: wake it
    waiter.join();
    scheduler.stop();
    std::fprintf(stderr, "glrnn-server: stopped\n");
  });
}
