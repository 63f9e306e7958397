#pragma once
// The HTTP endpoints on cpp-httplib: OpenAI's completions (streamed as server-sent events or
// whole), models, and llama.cpp's health, tokenize, detokenize and metrics. Every refusal is a
// 4xx (or 503) with OpenAI's error object, the routes httplib answers itself (404, 413, a
// malformed request line) included. With an API key every path but /health wants
// "Authorization: Bearer KEY".

#include <sys/socket.h>  // listen

#include <atomic>   // std::atomic
#include <chrono>   // std::chrono
#include <cstdint>  // std::int64_t, std::uint64_t
#include <cstdio>   // std::snprintf
#include <memory>   // std::make_shared, std::shared_ptr
#include <mutex>    // std::mutex, std::lock_guard
#include <random>   // std::mt19937_64, std::random_device
#include <string>   // std::string
#include <vector>   // std::vector

// glrnn (Eigen) first: httplib.h includes <resolv.h>, whose _res macro is a parameter name in Eigen.
#include <glrnn/models/model.hpp>
#include <glrnn/tokenizer/tokenizer.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "api_error.hpp"
#include "chat_format.hpp"
#include "metrics.hpp"
#include "openai_json.hpp"
#include "request.hpp"
#include "scheduler.hpp"

namespace glrnn::server {

/// httplib's server, with a listen backlog fit for many clients connecting at once: httplib
/// listens with a backlog of 5, and a connection beyond it waits for its SYN to be resent, a
/// second later. Linux takes a second listen() on the socket as a new backlog.
class HttpServer : public httplib::Server {
 public:
  bool set_listen_backlog(int backlog) { return ::listen(svr_sock_, backlog) == 0; }
};

struct ApiOptions {
  std::string model_name;
  std::string api_key;  // empty: no authentication
  RequestLimits limits;
};

class HttpApi {
 public:
  using json = nlohmann::json;

  HttpApi(const Model& model, const Tokenizer& tokenizer, const ChatFormat& format, Scheduler& scheduler, ApiOptions options)
      : model_(&model), tokenizer_(&tokenizer), format_(&format), scheduler_(&scheduler), options_(std::move(options)),
        json_(tokenizer), created_(unix_time()), random_(std::random_device{}()) {}

  /// Streamed responses still being written (shutdown lets them end before closing the server).
  int open_streams() const { return open_streams_; }

  void install(httplib::Server& server) {
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (options_.api_key.empty() || req.path == "/health" || authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
      reply(res, ApiError(401, "invalid_api_key", "missing or wrong API key: send 'Authorization: Bearer KEY'"));
      return httplib::Server::HandlerResponse::Handled;
    });
    server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
      if (res.status == 404) reply(res, ApiError(404, "not_found", "no endpoint " + req.method + " " + req.path));
      else if (res.status == 413) reply(res, ApiError(413, "request_too_large", "the request body is over the server's limit"));
      else reply(res, ApiError(res.status, "bad_request", "the request was refused (HTTP " + std::to_string(res.status) + ")"));
      return httplib::Server::HandlerResponse::Handled;
    }));
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        reply(res, ApiError(500, "internal_error", e.what()));
      } catch (...) {
        reply(res, ApiError(500, "internal_error", "unknown failure"));
      }
    });
    for (const char* prefix : {"/v1", ""}) {
      server.Post(std::string(prefix) + "/chat/completions", guarded([this](const auto& q, auto& s) { generate(q, s, true); }));
      server.Post(std::string(prefix) + "/completions", guarded([this](const auto& q, auto& s) { generate(q, s, false); }));
      server.Get(std::string(prefix) + "/models", guarded([this](const auto&, auto& s) {
        reply(s, 200, {{"object", "list"}, {"data", json::array({model_json()})}});
      }));
      server.Get(std::string(prefix) + "/models/(.+)", guarded([this](const auto& q, auto& s) {
        if (q.matches[1] != options_.model_name) throw ApiError(404, "model_not_found", "no model '" + q.matches[1].str() + "'");
        reply(s, 200, model_json());
      }));
    }
    server.Get("/health", guarded([](const auto&, auto& s) { reply(s, 200, {{"status", "ok"}}); }));
    server.Post("/tokenize", guarded([this](const auto& q, auto& s) { tokenize(q, s); }));
    server.Post("/detokenize", guarded([this](const auto& q, auto& s) {
      reply(s, 200, {{"content", tokenizer_->decode(parse_detokenize_request(q.body, options_.limits))}});
    }));
    server.Get("/metrics", guarded([this](const auto&, auto& s) {
      s.set_content(prometheus_text(scheduler_->metrics()), "text/plain; version=0.0.4");
    }));
  }

 private:
  template <class Body>
  static httplib::Server::Handler guarded(Body body) {
    return [body](const httplib::Request& req, httplib::Response& res) {
      try {
        body(req, res);
      } catch (const ApiError& e) {
        reply(res, e);
      } catch (const InputError& e) {  // e.g. a conversation the chat format cannot render
        reply(res, ApiError(400, "invalid_value", e.what()));
      }
    };
  }

  static void reply(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(dump_json(body), "application/json");
  }
  static void reply(httplib::Response& res, const ApiError& e) { reply(res, e.status(), e.to_json()); }

  bool authorized(const httplib::Request& req) const {
    const std::string given = req.get_header_value("Authorization"), expected = "Bearer " + options_.api_key;
    unsigned char differ = given.size() != expected.size();  // compares in constant time: no timing oracle on the key
    for (std::size_t i = 0; i < given.size() && i < expected.size(); ++i) differ |= given[i] ^ expected[i];
    return differ == 0;
  }

  static std::int64_t unix_time() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  std::uint64_t random() {
    std::lock_guard<std::mutex> lock(random_mutex_);
    return random_();
  }

  json model_json() const {
    const ModelInfo& info = model_->info();
    return {{"id", options_.model_name},
            {"object", "model"},
            {"created", created_},
            {"owned_by", "glrnn"},
            {"meta",
             {{"family", info.family}, {"weights", info.weights}, {"bits_per_weight", info.bits_per_weight}, {"vocab_size", info.vocab_size},
              {"state_bytes", model_->state_bytes()}, {"state_bytes_per_position", info.state_bytes_per_position},
              {"max_context", info.max_context}, {"chat_format", format_->name()}}}};
  }

  void tokenize(const httplib::Request& req, httplib::Response& res) const {
    const TokenizeRequest r = parse_tokenize_request(req.body, options_.limits);
    const std::vector<std::int32_t> ids = r.chat ? format_->render(r.messages, r.add_generation_prompt)
                                                 : tokenizer_->encode(r.content, r.add_special);
    json tokens = json::array();
    for (std::int32_t id : ids) tokens.push_back(r.with_pieces ? json{{"id", id}, {"piece", tokenizer_->piece(id)}} : json(id));
    reply(res, 200, {{"tokens", std::move(tokens)}});
  }

  void generate(const httplib::Request& req, httplib::Response& res, bool chat) {
    CompletionRequest r = chat ? parse_chat_request(req.body, options_.limits) : parse_completion_request(req.body, options_.limits);
    if (!r.seeded) r.params.sampling.seed = random();
    std::vector<std::int32_t> prompt;
    ReplyTail tail;
    if (chat) {
      prompt = format_->render(r.messages, /*add_generation_prompt=*/true);
      tail = [format = format_](const std::string& text) { return format->reply_tail(text); };
    } else {
      prompt = r.prompt_ids.empty() ? tokenizer_->encode(r.prompt, /*add_special=*/true) : r.prompt_ids;
    }
    if (prompt.empty()) throw invalid_value("prompt", "the prompt has no tokens");
    if (static_cast<std::int64_t>(prompt.size()) > options_.limits.max_prompt_tokens)
      throw ApiError(400, "context_length_exceeded",
                     "the prompt has " + std::to_string(prompt.size()) + " tokens; this server takes at most " +
                         std::to_string(options_.limits.max_prompt_tokens) + " (--max-prompt-tokens)",
                     chat ? "messages" : "prompt");
    // A tokenizer larger than the model (a mismatched pair) must not reach the scheduler with ids
    // the model has no rows for.
    for (const std::int32_t id : prompt)
      if (id < 0 || id >= model_->vocab_size())
        throw invalid_value(chat ? "messages" : "prompt",
                            "the prompt holds token id " + std::to_string(id) + ", outside the model's vocabulary of " +
                                std::to_string(model_->vocab_size()));
    // A hybrid's full-attention cache stops at the maximum context: the prompt must leave room
    // for a reply (which then ends with finish_reason "length" at the limit).
    const std::int64_t max_context = model_->info().max_context;
    if (max_context > 0 && static_cast<std::int64_t>(prompt.size()) >= max_context)
      throw ApiError(400, "context_length_exceeded",
                     "the prompt has " + std::to_string(prompt.size()) + " tokens; this model's maximum context is " +
                         std::to_string(max_context) + " positions (--max-context)",
                     chat ? "messages" : "prompt");
    auto job = std::make_shared<Job>(std::move(prompt), r.params, std::move(tail));
    if (!scheduler_->submit(job))
      throw ApiError(503, "server_busy", "every slot is taken and the queue is full (or the server is stopping); retry later");

    char id[40];
    std::snprintf(id, sizeof id, "%s-%016llx", chat ? "chatcmpl" : "cmpl", static_cast<unsigned long long>(random()));
    const ResponseHeader header{id, unix_time(), options_.model_name, chat, r.params.logprobs >= 0};
    if (r.stream) return stream(res, job, header, r.include_usage);
    std::vector<ChoiceDelta> deltas;
    if (job->wait_until_done(deltas) == Job::Status::Failed) throw job->error();
    std::vector<ChoiceResult> choices(static_cast<std::size_t>(r.params.n));
    for (ChoiceDelta& d : deltas) {
      ChoiceResult& c = choices[static_cast<std::size_t>(d.index)];
      c.text += d.text;
      for (TokenInfo& t : d.tokens) c.tokens.push_back(std::move(t));
      if (!d.finish_reason.empty()) c.finish_reason = d.finish_reason;
    }
    reply(res, 200, json_.response(header, choices, job->usage()));
  }

  /// Server-sent events: one chunk per delta, then the usage (when asked) and [DONE]. A client
  /// that goes away is noticed at the next write, or within 100 ms while nothing is written,
  /// and its job is cancelled: its slot frees at the scheduler's next step.
  void stream(httplib::Response& res, const std::shared_ptr<Job>& job, const ResponseHeader& header, bool include_usage) {
    res.set_header("Cache-Control", "no-cache");
    auto opened = std::make_shared<bool>(false);
    ++open_streams_;
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, job, header, include_usage, opened](std::size_t, httplib::DataSink& sink) {
          const auto send = [&](const json& event) {
            const std::string line = "data: " + dump_json(event) + "\n\n";
            return sink.write(line.data(), line.size());
          };
          if (!*opened && header.chat) {  // OpenAI opens each choice with the assistant role
            for (std::int64_t i = 0; i < job->params().n; ++i)
              if (!send(json_.chunk(header, ChoiceDelta{i, "", {}, ""}, true))) return cancelled(*job);
          }
          *opened = true;
          std::vector<ChoiceDelta> deltas;
          const Job::Status status = job->wait(deltas, std::chrono::milliseconds(100));
          for (const ChoiceDelta& d : deltas)
            if (!send(json_.chunk(header, d, false))) return cancelled(*job);
          if (status == Job::Status::Running) return deltas.empty() && !sink.is_writable() ? cancelled(*job) : true;
          if (status == Job::Status::Failed) send(job->error().to_json());
          else if (include_usage) send(json_.usage_chunk(header, job->usage()));
          static const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        },
        [this, job](bool success) {
          if (!success) job->cancel();
          --open_streams_;
        });
  }

  static bool cancelled(Job& job) {
    job.cancel();
    return false;
  }

  const Model* model_;
  const Tokenizer* tokenizer_;
  const ChatFormat* format_;
  Scheduler* scheduler_;
  ApiOptions options_;
  OpenAiJson json_;
  std::int64_t created_;
  std::atomic<int> open_streams_{0};
  std::mutex random_mutex_;
  std::mt19937_64 random_;  // response ids and the seeds of requests that give none
};

}  // namespace glrnn::server
