#pragma once
// The HTTP endpoints: OpenAI's completions (streamed as server-sent events or whole), models,
// and llama.cpp's health, tokenize, detokenize and metrics, on the transport of http_server.hpp.
// Every refusal is a 4xx (or 503) with OpenAI's error object. Before any endpoint runs, a
// request must name an allowed Host (a web page that reached a local server through DNS
// rebinding names its own), come from an allowed Origin if it names one (CORS is off unless
// --cors-origin names origins), use a method the path has (405 with Allow), send its body as
// application/json (415 otherwise: a browser's simple request cannot start work) and, with an
// API key, carry "Authorization: Bearer KEY" (every path but /health).

#include <arpa/inet.h>  // inet_pton

#include <algorithm>  // std::find
#include <atomic>     // std::atomic
#include <chrono>     // std::chrono
#include <cstdint>    // std::int64_t, std::uint64_t
#include <cstdio>     // std::snprintf, std::fprintf
#include <memory>     // std::make_shared, std::shared_ptr
#include <mutex>      // std::mutex, std::lock_guard
#include <optional>   // std::optional
#include <random>     // std::mt19937_64, std::random_device
#include <string>     // std::string
#include <vector>     // std::vector

#include <glrnn/models/model.hpp>
#include <glrnn/tokenizer/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include "api_error.hpp"
#include "chat_format.hpp"
#include "http_server.hpp"
#include "metrics.hpp"
#include "openai_json.hpp"
#include "request.hpp"
#include "scheduler.hpp"

namespace glrnn::server {

struct ApiOptions {
  std::string model_name;
  std::string api_key;                     // empty: no authentication
  std::vector<std::string> allowed_hosts;  // names a Host may give besides IP addresses and localhost; "*": any
  std::vector<std::string> cors_origins;   // origins a browser page may call from; "*": any; empty: none
  RequestLimits limits;
};

/// The body of an error the transport answers itself, in OpenAI's form.
inline std::string transport_error_body(int status, const std::string& message) {
  const char* code = status == 413 ? "request_too_large" : status == 408 ? "request_timeout" : status == 503 ? "server_busy"
                     : status == 431 ? "headers_too_large" : status >= 500 ? "server_error" : "bad_request";
  return dump_json(ApiError(status, code, message).to_json());
}

enum class Endpoint { Chat, Completions, Models, Model, Health, Tokenize, Detokenize, Metrics };

struct Route {
  Endpoint endpoint;
  const char* method;    // every endpoint has one
  std::string argument;  // the model name of /v1/models/NAME
};

/// The endpoint of a path, with or without OpenAI's /v1 prefix for OpenAI's endpoints.
inline std::optional<Route> find_route(const std::string& path) {
  const std::string openai = path.rfind("/v1/", 0) == 0 ? path.substr(3) : path;
  if (openai == "/chat/completions") return Route{Endpoint::Chat, "POST", {}};
  if (openai == "/completions") return Route{Endpoint::Completions, "POST", {}};
  if (openai == "/models") return Route{Endpoint::Models, "GET", {}};
  if (openai.rfind("/models/", 0) == 0 && openai.size() > 8) return Route{Endpoint::Model, "GET", openai.substr(8)};
  if (path == "/health") return Route{Endpoint::Health, "GET", {}};
  if (path == "/tokenize") return Route{Endpoint::Tokenize, "POST", {}};
  if (path == "/detokenize") return Route{Endpoint::Detokenize, "POST", {}};
  if (path == "/metrics") return Route{Endpoint::Metrics, "GET", {}};
  return std::nullopt;
}

class HttpApi {
 public:
  using json = nlohmann::json;

  HttpApi(const Model& model, const Tokenizer& tokenizer, const ChatFormat& format, Scheduler& scheduler, ApiOptions options)
      : model_(&model), tokenizer_(&tokenizer), format_(&format), scheduler_(&scheduler), options_(std::move(options)),
        json_(tokenizer), created_(unix_time()), random_(std::random_device{}()) {}

  /// Streamed responses still being written (shutdown lets them end before closing the server).
  int open_streams() const { return open_streams_; }

  /// Answers one request (the transport's handler); never throws.
  void handle(const HttpRequest& req, HttpResponse& res) {
    try {
      route(req, res);
    } catch (const ApiError& e) {
      reply(res, e);
    } catch (const InputError& e) {  // e.g. a conversation the chat format cannot render
      reply(res, ApiError(400, "invalid_value", e.what()));
    } catch (const std::exception& e) {
      reply(res, ApiError(500, "internal_error", e.what()));
    }
    std::fprintf(stderr, "glrnn-server: %s %s %d\n", req.method.c_str(), req.path.c_str(), res.status());
  }

 private:
  void route(const HttpRequest& req, HttpResponse& res) {
    if (const std::string* host = req.field("host"); host && !host_allowed(*host))
      throw ApiError(403, "host_not_allowed",
                     "Host '" + host->substr(0, 64) + "' is not this server's: start it with --allowed-hosts to serve that name");
    const std::string* origin = req.field("origin");
    if (origin) {
      if (!listed(options_.cors_origins, *origin))
        throw ApiError(403, "origin_not_allowed",
                       "requests from web pages at '" + origin->substr(0, 64) + "' are refused: start the server with --cors-origin to allow them");
      res.add_header("Access-Control-Allow-Origin", *origin);
      res.add_header("Vary", "Origin");
    }
    const std::optional<Route> found = find_route(req.path);
    if (!found) throw ApiError(404, "not_found", "no endpoint " + req.method.substr(0, 16) + " " + req.path.substr(0, 200));
    const std::string allow = std::string(found->method) + ", OPTIONS";
    if (req.method == "OPTIONS") {  // what the path takes; a CORS preflight when an allowed origin asks
      res.add_header("Allow", allow);
      if (origin) {
        res.add_header("Access-Control-Allow-Methods", allow);
        res.add_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.add_header("Access-Control-Max-Age", "600");
      }
      res.send(204, "", "");
      return;
    }
    if (req.method != found->method) {
      res.add_header("Allow", allow);
      throw ApiError(405, "method_not_allowed", req.method.substr(0, 16) + " is not allowed on " + req.path.substr(0, 200) + " (allowed: " + allow + ")");
    }
    if (found->endpoint != Endpoint::Health && !options_.api_key.empty() && !authorized(req))
      throw ApiError(401, "invalid_api_key", "missing or wrong API key: send 'Authorization: Bearer KEY'");
    if (req.method == "POST" && !is_json(req.field("content-type")))
      throw ApiError(415, "unsupported_media_type", "the body must be sent as 'Content-Type: application/json'");
    switch (found->endpoint) {
      case Endpoint::Chat: return generate(req, res, true);
      case Endpoint::Completions: return generate(req, res, false);
      case Endpoint::Models: return reply(res, 200, {{"object", "list"}, {"data", json::array({model_json()})}});
      case Endpoint::Model:
        if (found->argument != options_.model_name)
          throw ApiError(404, "model_not_found", "no model '" + found->argument.substr(0, 200) + "'");
        return reply(res, 200, model_json());
      case Endpoint::Health: return reply(res, 200, {{"status", "ok"}});
      case Endpoint::Tokenize: return tokenize(req, res);
      case Endpoint::Detokenize:
        return reply(res, 200, {{"content", tokenizer_->decode(parse_detokenize_request(req.body, options_.limits))}});
      case Endpoint::Metrics: res.send(200, "text/plain; version=0.0.4", prometheus_text(scheduler_->metrics())); return;
    }
  }

  static bool listed(const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), "*") != list.end() || std::find(list.begin(), list.end(), value) != list.end();
  }

  /// A Host naming an IP address or localhost, or a name the operator allowed: DNS rebinding
  /// gives a page's own name, which is none of these.
  bool host_allowed(const std::string& host) const {
    std::string name = host;
    const std::size_t close = name.find(']'), colon = name.find(':');
    if (!name.empty() && name[0] == '[') {  // [IPv6]:port
      name = name.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    } else if (colon != std::string::npos && colon == name.rfind(':')) {  // name:port (an IPv6 address has several)
      name.resize(colon);
    }
    name = detail::lower(name);
    unsigned char address[16];
    if (::inet_pton(AF_INET, name.c_str(), address) == 1 || ::inet_pton(AF_INET6, name.c_str(), address) == 1) return true;
    return name == "localhost" || listed(options_.allowed_hosts, name);
  }

  static bool is_json(const std::string* content_type) {
    if (!content_type) return false;
    return detail::lower(detail::trim(std::string_view(*content_type).substr(0, content_type->find(';')))) == "application/json";
  }

  static void reply(HttpResponse& res, int status, const json& body) { res.send(status, "application/json", dump_json(body)); }
  static void reply(HttpResponse& res, const ApiError& e) { reply(res, e.status(), e.to_json()); }

  bool authorized(const HttpRequest& req) const {
    const std::string* header = req.field("authorization");
    const std::string given = header ? *header : std::string(), expected = "Bearer " + options_.api_key;
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

  void tokenize(const HttpRequest& req, HttpResponse& res) const {
    const TokenizeRequest r = parse_tokenize_request(req.body, options_.limits);
    const std::vector<std::int32_t> ids = r.chat ? format_->render(r.messages, r.add_generation_prompt)
                                                 : tokenizer_->encode(r.content, r.add_special);
    json tokens = json::array();
    for (std::int32_t id : ids) tokens.push_back(r.with_pieces ? json{{"id", id}, {"piece", tokenizer_->piece(id)}} : json(id));
    reply(res, 200, {{"tokens", std::move(tokens)}});
  }

  void generate(const HttpRequest& req, HttpResponse& res, bool chat) {
    CompletionRequest r = chat ? parse_chat_request(req.body, options_.limits) : parse_completion_request(req.body, options_.limits);
    if (!r.seeded) r.params.sampling.seed = random();
    std::vector<std::int32_t> prompt;
    ReplyTail tail;
    std::vector<std::size_t> turn_ends;
    if (chat) {
      prompt = format_->render(r.messages, /*add_generation_prompt=*/true, &turn_ends);
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
    if (!r.grammar.empty()) {
      // A chat reply may open with one space (the plain format's "Assistant:" is followed by
      // one, and the state cache renders the turn that way).
      try {
        r.params.grammar = std::make_shared<const Grammar>(
            chat ? Grammar::parse(r.grammar + "\nglrnn-reply ::= \" \"? root\n", "glrnn-reply") : Grammar::parse(r.grammar));
      } catch (const InputError& e) {
        throw invalid_value(r.grammar_field, e.what(), "invalid_grammar");
      }
    }
    const ReplyShape shape{!r.tools.empty(), r.json_reply || !r.tools.empty(), random()};
    auto job = std::make_shared<Job>(std::move(prompt), r.params, std::move(tail), std::move(turn_ends));
    if (!scheduler_->submit(job))
      throw ApiError(503, "server_busy", "every slot is taken and the queue is full (or the server is stopping); retry later");

    char id[40];
    std::snprintf(id, sizeof id, "%s-%016llx", chat ? "chatcmpl" : "cmpl", static_cast<unsigned long long>(random()));
    const ResponseHeader header{id, unix_time(), options_.model_name, chat, r.params.logprobs >= 0};
    if (r.stream) return stream(res, job, header, r.include_usage, shape);
    std::vector<ChoiceDelta> deltas;
    const Job::Status status = wait_for_client(res, *job, deltas, /*until_done=*/true);
    if (status == Job::Status::Running) return res.drop();  // the client left
    if (status == Job::Status::Failed) throw job->error();
    std::vector<ChoiceResult> choices(static_cast<std::size_t>(r.params.n));
    for (ChoiceDelta& d : deltas) {
      ChoiceResult& c = choices[static_cast<std::size_t>(d.index)];
      c.text += d.text;
      for (TokenInfo& t : d.tokens) c.tokens.push_back(std::move(t));
      if (!d.finish_reason.empty()) c.finish_reason = d.finish_reason;
    }
    for (std::size_t i = 0; i < choices.size(); ++i) shape.finish(choices[i], static_cast<std::int64_t>(i));
    reply(res, 200, json_.response(header, choices, job->usage()));
  }

  /// Collects the job's deltas until it has some (or, with until_done, until it ends), watching
  /// the client: one that has gone away cancels the job, whose slot frees at the scheduler's next
  /// step. Returns Running only when the client left.
  static Job::Status wait_for_client(HttpResponse& res, Job& job, std::vector<ChoiceDelta>& deltas, bool until_done) {
    for (;;) {
      const Job::Status status = job.wait(deltas, std::chrono::milliseconds(100));
      if (status != Job::Status::Running || (!until_done && !deltas.empty())) return status;
      if (res.client_gone()) {
        job.cancel();
        return Job::Status::Running;
      }
    }
  }

  /// What the reply's text is: JSON (response_format or tools: the one space a chat reply may
  /// open with is not the client's), and with tools, content or calls to read out of it.
  struct ReplyShape {
    bool tools = false;
    bool json = false;
    std::uint64_t id_seed = 0;  // of the response's tool call ids

    static std::string without_leading_space(const std::string& text) {
      return !text.empty() && text[0] == ' ' ? text.substr(1) : text;
    }

    /// A whole reply as the client gets it: its content, or its calls and finish_reason tool_calls.
    void finish(ChoiceResult& c, std::int64_t index) const {
      if (json) c.text = without_leading_space(c.text);
      if (!tools) return;
      ToolReply reply = read_tool_reply(c.text, id_seed + static_cast<std::uint64_t>(index));
      c.text = std::move(reply.content);
      c.tool_calls = std::move(reply.calls);
      if (!c.tool_calls.empty()) c.finish_reason = "tool_calls";
    }
  };

  /// A streamed delta as the client sees it: a JSON reply loses its opening space; a reply with
  /// tools is held until it ends, then sent whole as its content or its calls (a tool call is
  /// only known whole, and the log-probabilities of held text are not streamed).
  struct StreamShaper {
    const ReplyShape& shape;
    std::vector<ChoiceResult> held;  // per choice, with tools
    std::vector<bool> started;       // per choice: text has been sent

    /// The chunk to send for `d`, if any yet.
    std::optional<nlohmann::json> chunk(const OpenAiJson& json, const ResponseHeader& header, ChoiceDelta d) {
      const auto i = static_cast<std::size_t>(d.index);
      if (held.size() <= i) held.resize(i + 1), started.resize(i + 1, false);
      if (!shape.tools) {
        if (shape.json && !started[i] && !d.text.empty()) d.text = ReplyShape::without_leading_space(d.text);
        started[i] = started[i] || !d.text.empty();
        return json.chunk(header, d, false);
      }
      held[i].text += d.text;
      if (d.finish_reason.empty()) return std::nullopt;
      held[i].finish_reason = d.finish_reason;
      shape.finish(held[i], d.index);
      if (!held[i].tool_calls.empty()) return json.tool_call_chunk(header, d.index, held[i].tool_calls);
      d.text = held[i].text;
      d.tokens.clear();
      return json.chunk(header, d, false);
    }
  };

  /// Server-sent events: one chunk per delta, then the usage (when asked) and [DONE]. The
  /// response starts with the job's first delta, so a request that fails before it (a queued
  /// one at shutdown: 503) is answered with its status. A client that goes away, or stops
  /// reading for the transport's write timeout, cancels its job.
  void stream(HttpResponse& res, const std::shared_ptr<Job>& job, const ResponseHeader& header, bool include_usage,
              const ReplyShape& shape) {
    std::vector<ChoiceDelta> deltas;
    Job::Status status = wait_for_client(res, *job, deltas, /*until_done=*/false);
    if (status == Job::Status::Running && deltas.empty()) return res.drop();  // the client left
    if (status == Job::Status::Failed && deltas.empty()) throw job->error();
    ++open_streams_;
    struct Closing {
      std::atomic<int>& count;
      ~Closing() { --count; }
    } closing{open_streams_};
    const auto send = [&](const json& event) { return res.write("data: " + dump_json(event) + "\n\n"); };
    res.add_header("Cache-Control", "no-cache");
    bool ok = res.begin_stream("text/event-stream");
    if (header.chat)  // OpenAI opens each choice with the assistant role
      for (std::int64_t i = 0; ok && i < job->params().n; ++i) ok = send(json_.chunk(header, ChoiceDelta{i, "", {}, ""}, true));
    StreamShaper shaper{shape, {}, {}};
    while (ok) {
      for (ChoiceDelta& d : deltas)
        if (const std::optional<json> chunk = shaper.chunk(json_, header, std::move(d))) ok = ok && send(*chunk);
      deltas.clear();
      if (!ok || status != Job::Status::Running) break;
      status = wait_for_client(res, *job, deltas, /*until_done=*/false);
      if (status == Job::Status::Running && deltas.empty()) return res.drop();  // the client left
    }
    if (!ok) return cancelled(*job);
    if (status == Job::Status::Failed) send(job->error().to_json());
    else if (include_usage) send(json_.usage_chunk(header, job->usage()));
    res.write("data: [DONE]\n\n");
    res.end_stream();
  }

  static void cancelled(Job& job) { job.cancel(); }

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
