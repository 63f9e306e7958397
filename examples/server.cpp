// glrnn-server: an OpenAI-compatible HTTP server. Sequences are decoded together, one batched
// step per token; every processed prompt and finished reply is kept as a state keyed by its
// token ids, so turn N of a chat prefills only turn N (examples/server/scheduler.hpp).

#include <pthread.h>  // pthread_sigmask, pthread_kill
#include <signal.h>   // sigwait, SIGINT, SIGTERM

#include <algorithm>   // std::min
#include <atomic>      // std::atomic
#include <chrono>      // std::chrono::milliseconds
#include <cstdio>      // std::printf, std::fprintf
#include <filesystem>  // std::filesystem::path
#include <string>      // std::string
#include <thread>      // std::thread, std::this_thread
#include <vector>      // std::vector

#include <glrnn/glrnn.hpp>

#include <glrnn/tools/cli.hpp>
#include "server/http_api.hpp"

int main(int argc, char** argv) {
  CLI::App app{"OpenAI-compatible server for a glrnn model, with continuous batching and a state cache."};
  std::string model_dir, host = "127.0.0.1", cache_dir, api_key, alias;
  int port = 8080, threads = 0;
  double cache_mib = 1024, cache_dir_mib = 0, max_body_mib = 4;
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
  app.add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--max-queue", scheduling.max_queue, "Requests waiting for a slot before 503")->capture_default_str()->check(CLI::Range(0, 100000));
  app.add_option("--prefill-chunk", scheduling.prefill_chunk, "Prompt tokens run between two decode steps")->capture_default_str()
      ->check(CLI::Range(1, 8192));
  app.add_option("--max-prompt-tokens", limits.max_prompt_tokens, "Longest prompt (a chat's whole rendering)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-tokens", limits.max_tokens, "Most tokens a request may generate per choice (and the default)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-n", limits.max_n, "Most choices per request (at most --parallel)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-body-mib", max_body_mib, "Largest request body, MiB")->capture_default_str()->check(CLI::PositiveNumber);
  glrnn::tools::add_load_options(app, load_options);

  return glrnn::tools::run_tool("glrnn-server", app, argc, argv, [&] {
    // Signals go to one waiting thread: blocked here, before any other thread exists (OpenMP's
    // included), so that a worker never takes SIGTERM's default action.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    const glrnn::Model model = glrnn::load_model(model_dir, load_options);
    const glrnn::Tokenizer tokenizer = glrnn::load_model_tokenizer(model_dir);
    const glrnn::server::ChatFormat format(tokenizer);
    if (alias.empty()) alias = std::filesystem::path(model_dir).lexically_normal().filename().string();
    if (alias.empty()) alias = std::filesystem::path(model_dir).lexically_normal().parent_path().filename().string();
    scheduling.threads = threads;
    scheduling.cache = cache_mib > 0 || !cache_dir.empty();
    scheduling.cache_options = {static_cast<std::size_t>(cache_mib * 1024 * 1024), cache_dir,
                                static_cast<std::size_t>(cache_dir_mib * 1024 * 1024)};
    limits.max_n = std::min(limits.max_n, scheduling.parallel);  // more choices than slots would never start
    limits.vocab_size = std::min<std::int64_t>(model.vocab_size(), tokenizer.vocab_size());
    std::vector<std::int32_t> stop_tokens = model.info().stop_token_ids;
    for (std::int32_t id : format.stop_tokens()) stop_tokens.push_back(id);
    glrnn::server::Scheduler scheduler(model, tokenizer, scheduling, stop_tokens);

    glrnn::server::HttpServer http;
    // One thread per open connection: every slot and queued request must be able to wait.
    const auto workers = static_cast<std::size_t>(std::min<std::int64_t>(scheduling.parallel + scheduling.max_queue + 8, 1024));
    http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    http.set_payload_max_length(static_cast<std::size_t>(max_body_mib * 1024 * 1024));
    http.set_keep_alive_max_count(1000);
    http.set_keep_alive_timeout(2);  // an idle connection also delays shutdown by this much
    http.set_tcp_nodelay(true);      // each streamed token leaves at once
    http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      std::fprintf(stderr, "glrnn-server: %s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });
    glrnn::server::HttpApi api(model, tokenizer, format, scheduler, {alias, api_key, limits});
    api.install(http);
    const bool bound = port == 0 ? (port = http.bind_to_any_port(host)) > 0 : http.bind_to_port(host, port);
    GLRNN_CHECK(bound, glrnn::IoError, "cannot listen on " + host + ":" + std::to_string(port));
    http.set_listen_backlog(static_cast<int>(workers));
    std::printf("glrnn-server: listening on http://%s:%d (model %s, %lld slots)\n", host.c_str(), port, alias.c_str(),
                static_cast<long long>(scheduling.parallel));
    std::fflush(stdout);
    std::fprintf(stderr, "glrnn-server: %s, chat format %s, state %zu bytes + %zu per position (max context %lld), cache %.0f MiB%s%s\n",
                 model.info().family.c_str(), format.name(), model.state_bytes(), model.info().state_bytes_per_position,
                 static_cast<long long>(model.info().max_context), cache_mib, cache_dir.empty() ? "" : " + ",
                 cache_dir.c_str());

    std::atomic<bool> listening{true}, signalled{false};
    std::thread waiter([&] {
      int signal = 0;
      sigwait(&stop_signals, &signal);
      signalled = true;
      if (!listening) return;  // woken by main below: the server has already stopped
      std::fprintf(stderr, "glrnn-server: %s, stopping\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
      scheduler.stop();  // running requests end with a 503 error; the cache is written out
      for (int i = 0; i < 300 && api.open_streams() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      while (listening) {  // stop() only takes once listen() runs; retry until it returned
        http.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    http.listen_after_bind();
    listening = false;
    if (!signalled) pthread_kill(waiter.native_handle(), SIGTERM);  // it is still in (or just past) sigwait: wake it
    waiter.join();
    scheduler.stop();
    std::fprintf(stderr, "glrnn-server: stopped\n");
  });
}
