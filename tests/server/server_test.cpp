// glrnn-server as a client sees it, through cpp-httplib's client against a server started on a
// free loopback port with the demo models: both completion endpoints streamed and not, equal to
// glrnn-generate; the state cache across chat turns, in memory and on disk across a restart;
// batching of concurrent streams; n choices from one prefill; hostile requests; auth; clean
// shutdown; a client that goes away.

#include <sys/socket.h>  // socket, connect, send, recv, setsockopt
#include <sys/time.h>    // timeval
#include <netinet/in.h>  // sockaddr_in
#include <arpa/inet.h>   // inet_pton

#include <atomic>      // std::atomic
#include <cstdio>      // popen, pclose, fgets
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream
#include <mutex>       // std::mutex
#include <string>      // std::string
#include <thread>      // std::thread
#include <vector>      // std::vector

#include <catch2/catch.hpp>

#include "server/server_process.hpp"

namespace {

using glrnn::test::get;
using glrnn::test::HttpResult;
using glrnn::test::demo_model;
using glrnn::test::json;
using glrnn::test::post;
using glrnn::test::post_stream;
using glrnn::test::ServerProcess;
using glrnn::test::StreamResult;

/// glrnn-generate's stdout for these (shell-quoted) arguments.
std::string generate_output(const std::string& args) {
  // One thread: the demo model gains nothing from more, and a busy machine makes OpenMP spin.
  FILE* pipe = popen((std::string(GLRNN_GENERATE_PATH) + " -t 1 " + args + " 2>/dev/null").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  REQUIRE(pclose(pipe) == 0);
  return out;
}

std::string quoted(const std::string& arg) {
  std::string q = "'";
  for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

using glrnn::test::user;
json assistant(const std::string& text) { return {{"role", "assistant"}, {"content", text}}; }

std::vector<std::int32_t> tokenize_chat(const ServerProcess& server, const json& messages, bool generation_prompt) {
  const HttpResult r = post(server, "/tokenize", {{"messages", messages}, {"add_generation_prompt", generation_prompt}});
  REQUIRE(r.status == 200);
  return r.body["tokens"].get<std::vector<std::int32_t>>();
}

std::string join_ids(const std::vector<std::int32_t>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

const char* const kPrompts[] = {"The president of the company said that", "He looked at the old house and",
                                "Scientists have found"};

}  // namespace

TEST_CASE("glrnn-server: completions, streamed and not, equal glrnn-generate's greedy text", "[server]") {
  const std::string model = GENERATE(std::string("griffin-demo"), std::string("hgrn2-demo"));
  ServerProcess server({"-m", demo_model(model), "-t", "1"});
  CHECK(server.ready_line() == "glrnn-server: listening on http://127.0.0.1:" + std::to_string(server.port()) + " (model " +
                                   model + ", 8 slots)");
  for (const char* prompt : kPrompts) {
    INFO(model << ": " << prompt);
    std::string expected = generate_output("--model " + demo_model(model) + " --prompt " + quoted(prompt) + " -n 24 --temperature 0");
    expected.pop_back();  // the newline after the text
    const bool stopped = expected.size() >= 5 && expected.compare(expected.size() - 5, 5, "<eos>") == 0;
    if (stopped) expected.erase(expected.size() - 5);  // glrnn-generate prints special tokens; the API does not

    const json request = {{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}};
    const HttpResult whole = post(server, "/v1/completions", request);
    REQUIRE(whole.status == 200);
    CHECK(whole.body["object"] == "text_completion");
    CHECK(whole.body["model"] == model);
    CHECK(whole.body["choices"][0]["text"] == expected);
    CHECK(whole.body["choices"][0]["finish_reason"] == (stopped ? "stop" : "length"));
    const json& usage = whole.body["usage"];
    const HttpResult ids = post(server, "/tokenize", {{"content", prompt}, {"add_special", true}});
    CHECK(usage["prompt_tokens"] == ids.body["tokens"].size());
    CHECK(usage["total_tokens"] == usage["prompt_tokens"].get<int>() + usage["completion_tokens"].get<int>());
    CHECK(usage["prompt_tokens_details"]["cached_tokens"].is_number_integer());

    json streaming = request;
    streaming["stream"] = true;
    streaming["stream_options"] = {{"include_usage", true}};
    const StreamResult stream = post_stream(server, "/v1/completions", streaming);
    CHECK(stream.status == 200);
    CHECK(stream.done);
    CHECK(glrnn::test::streamed_text(stream) == expected);
    CHECK(glrnn::test::streamed_finish(stream) == (stopped ? "stop" : "length"));
    REQUIRE(!stream.events.empty());
    CHECK(stream.events.back()["choices"].empty());  // the usage chunk comes last
    CHECK(stream.events.back()["usage"]["completion_tokens"] == usage["completion_tokens"]);
    for (const json& e : stream.events) CHECK(e["object"] == "text_completion");
  }
}

TEST_CASE("glrnn-server: chat completions, streamed and not, equal glrnn-generate on the rendered ids", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"});
  // The plain format of the demo models (no turn markers in their tokenizer).
  const json with_system = json::array({{{"role", "system"}, {"content", "Be brief."}}, user("Hello")});
  const HttpResult rendered = post(server, "/detokenize", {{"tokens", tokenize_chat(server, with_system, true)}});
  CHECK(rendered.body["content"] == "<bos>User: Be brief.\n\nHello\nAssistant:");
  CHECK(tokenize_chat(server, json::array({user("Hi"), assistant("Yes."), user("Go on")}), true) ==
        tokenize_chat(server, json::array({user("Hi"), assistant(" Yes."), user("Go on")}), true));

  for (const char* prompt : kPrompts) {
    INFO(prompt);
    const json messages = json::array({user(prompt)});
    const std::vector<std::int32_t> ids = tokenize_chat(server, messages, true);
    const std::string out = generate_output("--model " + demo_model() + " --prompt-ids " + join_ids(ids) + " -n 24 --temperature 0");
    std::vector<std::int32_t> generated;
    for (std::size_t at = 0; at < out.size();) {
      std::size_t used = 0;
      generated.push_back(std::stoi(out.substr(at), &used));
      at += used;
      while (at < out.size() && (out[at] == ' ' || out[at] == '\n')) ++at;
    }
    const bool stopped = !generated.empty() && generated.back() == 1;  // <eos>
    if (stopped) generated.pop_back();
    const std::string expected = post(server, "/detokenize", {{"tokens", generated}}).body["content"];

    const json request = {{"messages", messages}, {"max_tokens", 24}, {"temperature", 0}};
    const HttpResult whole = post(server, "/v1/chat/completions", request);
    REQUIRE(whole.status == 200);
    CHECK(whole.body["object"] == "chat.completion");
    CHECK(whole.body["choices"][0]["message"]["role"] == "assistant");
    CHECK(whole.body["choices"][0]["message"]["content"] == expected);
    CHECK(whole.body["choices"][0]["finish_reason"] == (stopped ? "stop" : "length"));
    CHECK(whole.body["usage"]["prompt_tokens"] == ids.size());

    json streaming = request;
    streaming["stream"] = true;
    const StreamResult stream = post_stream(server, "/v1/chat/completions", streaming);
    CHECK(stream.done);
    REQUIRE(!stream.events.empty());
    CHECK(stream.events.front()["choices"][0]["delta"]["role"] == "assistant");
    CHECK(glrnn::test::streamed_text(stream) == expected);
    CHECK(glrnn::test::streamed_finish(stream) == (stopped ? "stop" : "length"));
    for (const json& e : stream.events) CHECK(e["object"] == "chat.completion.chunk");
  }
}

TEST_CASE("glrnn-server: turns 2 and 3 restore the earlier turns from the cache and reply as a server without it", "[server]") {
  const std::string model = GENERATE(std::string("griffin-demo"), std::string("hgrn2-demo"));
  ServerProcess cached({"-m", demo_model(model), "-t", "1"}, "cached");
  ServerProcess rereading({"-m", demo_model(model), "-t", "1", "--ctx-cache-mib", "0"}, "rereading");
  // Turn 3's reply has its <eos><bos> in the state but not in its text, and turn 4's ends at a
  // stop string: their cached keys are built from the prompt's state (the re-rendered reply).
  struct Turn {
    const char* text;
    json extra;
  };
  const std::vector<Turn> turns = {{kPrompts[0], json::object()},
                                   {kPrompts[1], json::object()},
                                   {"In the morning, she", {{"ignore_eos", true}}},
                                   {kPrompts[2], {{"stop", json::array({"s"})}}},
                                   {"The old man said", json::object()}};
  json messages = json::array();
  std::size_t history = 0;  // tokens of the conversation before this turn, replies included
  for (std::size_t t = 0; t < turns.size(); ++t) {
    INFO(model << " turn " << t + 1);
    messages.push_back(user(turns[t].text));
    json request = {{"messages", messages}, {"max_tokens", 16}, {"temperature", 0}};
    request.update(turns[t].extra);
    const HttpResult a = post(cached, "/v1/chat/completions", request);
    const HttpResult b = post(rereading, "/v1/chat/completions", request);
    REQUIRE(a.status == 200);
    REQUIRE(b.status == 200);
    const std::string reply = a.body["choices"][0]["message"]["content"];
    CHECK(reply == b.body["choices"][0]["message"]["content"]);
    CHECK(a.body["usage"]["prompt_tokens"] == b.body["usage"]["prompt_tokens"]);
    CHECK(b.body["usage"]["prompt_tokens_details"]["cached_tokens"] == 0);
    const std::int64_t restored = a.body["usage"]["prompt_tokens_details"]["cached_tokens"];
    if (t == 0) CHECK(restored == 0);
    else CHECK(restored == static_cast<std::int64_t>(history));  // every earlier turn, the previous reply included
    messages.push_back(assistant(reply));
    history = tokenize_chat(cached, messages, false).size();
  }
  REQUIRE(glrnn::test::wait_idle(cached));
  CHECK(glrnn::test::metric(cached, "reply_close_tokens_total") > 0);
  CHECK(glrnn::test::metric(rereading, "cache_hits_total") == 0);
}

TEST_CASE("glrnn-server: 8 concurrent streaming requests each equal its sequential run", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1", "--parallel", "8", "--ctx-cache-mib", "0"});
  std::vector<std::pair<std::string, json>> requests;
  for (int i = 0; i < 8; ++i) {
    json r = {{"max_tokens", 24}, {"ignore_eos", true}, {"stream", true}};
    if (i % 2 == 0) r["temperature"] = 0;  // greedy
    else r.update({{"temperature", 0.9}, {"top_p", 0.95}, {"seed", 100 + i}, {"presence_penalty", 0.5}});
    const std::string text = std::string(kPrompts[i % 3]) + (i >= 3 ? " again" : "");
    const bool chat = i % 4 >= 2;
    if (chat) r["messages"] = json::array({user(text)});
    else r["prompt"] = text;
    requests.push_back({chat ? "/v1/chat/completions" : "/v1/completions", r});
  }
  std::vector<std::string> alone;
  for (const auto& [path, body] : requests) alone.push_back(glrnn::test::streamed_text(post_stream(server, path, body)));

  std::vector<StreamResult> together(requests.size());
  std::vector<double> first_event(requests.size()), last_event(requests.size());
  std::atomic<int> started{0};
  const auto t0 = std::chrono::steady_clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < requests.size(); ++i)
    clients.emplace_back([&, i] {
      ++started;
      while (started < static_cast<int>(requests.size())) std::this_thread::yield();
      together[i] = post_stream(server, requests[i].first, requests[i].second, [&, i](const json&) {
        if (first_event[i] == 0) first_event[i] = seconds();
        last_event[i] = seconds();
        return true;
      });
    });
  for (std::thread& c : clients) c.join();
  double latest_start = 0, earliest_end = 1e9;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    INFO("request " << i);
    CHECK(together[i].done);
    CHECK(glrnn::test::streamed_text(together[i]) == alone[i]);
    CHECK(glrnn::test::streamed_finish(together[i]) == "length");
    latest_start = std::max(latest_start, first_event[i]);
    earliest_end = std::min(earliest_end, last_event[i]);
  }
  CHECK(latest_start < earliest_end);  // they were all streaming at once
}

TEST_CASE("glrnn-server: n = 3 gives three choices from one prefill", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"});
  const std::string prompt = "He looked at the old house and";
  // Prompt tokens run = tokens run in chunks minus those run to cache the replies.
  const auto prompt_tokens_run = [&] {
    const std::map<std::string, double> m = glrnn::test::metrics(server);
    return m.at("prefill_tokens_total") - m.at("reply_close_tokens_total");
  };
  const double prompt_before = glrnn::test::metric(server, "prompt_tokens_total"), run_before = prompt_tokens_run();
  const HttpResult sampled = post(server, "/v1/completions",
                                  {{"prompt", prompt}, {"n", 3}, {"max_tokens", 12}, {"temperature", 1.0}, {"seed", 5}, {"ignore_eos", true}});
  REQUIRE(sampled.status == 200);
  const json& choices = sampled.body["choices"];
  REQUIRE(choices.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(choices[i]["index"] == i);
    CHECK(choices[i]["finish_reason"] == "length");
  }
  CHECK((choices[0]["text"] != choices[1]["text"] || choices[1]["text"] != choices[2]["text"]));
  const std::int64_t prompt_tokens = sampled.body["usage"]["prompt_tokens"];
  CHECK(sampled.body["usage"]["completion_tokens"] == 36);
  REQUIRE(glrnn::test::wait_idle(server));
  CHECK(glrnn::test::metric(server, "prompt_tokens_total") - prompt_before == prompt_tokens);
  CHECK(prompt_tokens_run() - run_before == prompt_tokens);  // the prompt ran once for the three

  const json greedy = {{"messages", json::array({user(prompt)})}, {"n", 3}, {"max_tokens", 12}, {"temperature", 0}};
  const HttpResult three = post(server, "/v1/chat/completions", greedy);
  json single = greedy;
  single["n"] = 1;
  const std::string one = post(server, "/v1/chat/completions", single).body["choices"][0]["message"]["content"];
  REQUIRE(three.body["choices"].size() == 3);
  for (const json& c : three.body["choices"]) CHECK(c["message"]["content"] == one);

  json streamed = greedy;
  streamed["stream"] = true;
  const StreamResult stream = post_stream(server, "/v1/chat/completions", streamed);
  CHECK(stream.done);
  for (int i = 0; i < 3; ++i) {
    CHECK(glrnn::test::streamed_text(stream, i) == one);
    CHECK(!glrnn::test::streamed_finish(stream, i).empty());
  }
}

TEST_CASE("glrnn-server: the disk tier brings states back after a restart and skips another model's files", "[server]") {
  namespace fs = std::filesystem;
  const std::string dir = glrnn::test::make_temp_dir("server-cache");
  const auto count = [](const std::string& d, const std::string& ending) {
    int n = 0;
    for (const auto& f : fs::directory_iterator(d)) {
      const std::string name = f.path().filename().string();
      n += name.size() > ending.size() && name.compare(name.size() - ending.size(), ending.size(), ending) == 0;
    }
    return n;
  };
  json messages = json::array({user(kPrompts[0])});
  const json first_turn = {{"messages", messages}, {"max_tokens", 16}, {"temperature", 0}};
  std::string reply;
  {
    ServerProcess before({"-m", demo_model(), "-t", "1", "--cache-dir", dir}, "before-restart");
    const HttpResult r = post(before, "/v1/chat/completions", first_turn);
    REQUIRE(r.status == 200);
    reply = r.body["choices"][0]["message"]["content"];
    CHECK(before.stop() == 0);
  }
  CHECK(count(dir, ".state") >= 2);  // the prompt and the reply, written at shutdown
  CHECK(count(dir, ".tmp") == 0);
  messages.push_back(assistant(reply));
  messages.push_back(user(kPrompts[1]));
  const json second_turn = {{"messages", messages}, {"max_tokens", 16}, {"temperature", 0}};

  ServerProcess after({"-m", demo_model(), "-t", "1", "--cache-dir", dir, "--ctx-cache-mib", "0"}, "after-restart");
  ServerProcess rereading({"-m", demo_model(), "-t", "1", "--ctx-cache-mib", "0"}, "rereading");
  const HttpResult a = post(after, "/v1/chat/completions", second_turn);
  REQUIRE(a.status == 200);
  CHECK(a.body["usage"]["prompt_tokens_details"]["cached_tokens"] ==
        tokenize_chat(after, json::array({user(kPrompts[0]), assistant(reply)}), false).size());
  REQUIRE(glrnn::test::wait_idle(after));
  CHECK(a.body["choices"][0]["message"]["content"] == post(rereading, "/v1/chat/completions", second_turn).body["choices"][0]["message"]["content"]);
  CHECK(glrnn::test::metric(after, "cache_disk_reads_total") >= 1);
  CHECK(glrnn::test::metric(after, "cache_entries") == 0);  // --ctx-cache-mib 0: every state through the disk

  // HGRN2's states of the same token ids, renamed as the Griffin model's: the Griffin server
  // finds them by name, reads another model's fingerprint inside, and answers without them.
  const std::string foreign = glrnn::test::make_temp_dir("server-cache-foreign");
  json hgrn2_turns = json::array({user(kPrompts[0])});
  {
    ServerProcess hgrn2({"-m", demo_model("hgrn2-demo"), "-t", "1", "--cache-dir", foreign}, "hgrn2");
    const HttpResult r = post(hgrn2, "/v1/chat/completions", first_turn);
    REQUIRE(r.status == 200);
    hgrn2_turns.push_back(assistant(r.body["choices"][0]["message"]["content"]));
    hgrn2_turns.push_back(user(kPrompts[1]));
  }
  const std::string griffin_fingerprint = fs::directory_iterator(dir)->path().filename().string().substr(0, 16);
  int renamed = 0;
  for (const auto& f : fs::directory_iterator(foreign)) {
    const std::string name = f.path().filename().string();
    fs::rename(f.path(), fs::path(foreign) / (griffin_fingerprint + name.substr(16)));
    ++renamed;
  }
  REQUIRE(renamed >= 1);
  ServerProcess griffin({"-m", demo_model(), "-t", "1", "--cache-dir", foreign}, "foreign-files");
  const HttpResult g = post(griffin, "/v1/chat/completions", {{"messages", hgrn2_turns}, {"max_tokens", 4}});
  CHECK(g.status == 200);
  CHECK(g.body["usage"]["prompt_tokens_details"]["cached_tokens"] == 0);
  REQUIRE(glrnn::test::wait_idle(griffin));
  CHECK(glrnn::test::metric(griffin, "cache_disk_skipped_total") >= 1);
}

TEST_CASE("glrnn-server: every hostile request gets a 4xx with an error object, and the server keeps serving", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1", "--max-prompt-tokens", "64", "--max-tokens", "256", "--max-n", "4",
                        "--max-body-mib", "0.01"});
  const json ok = {{"messages", json::array({user("Hello")})}, {"max_tokens", 4}};
  const auto with = [&](const json& extra) {
    json body = ok;
    body.update(extra);
    return body.dump();
  };
  struct Case {
    std::string path, body;
    int status;
    std::string code;
  };
  const std::string chat = "/v1/chat/completions", text = "/v1/completions";
  const std::vector<Case> cases = {
      {chat, "{not json", 400, "invalid_json"},
      {chat, "[1, 2]", 400, "invalid_json"},
      {chat, "", 400, "invalid_json"},
      {chat, R"({"messages": "hi"})", 400, "invalid_value"},
      {chat, R"({"messages": []})", 400, "invalid_value"},
      {chat, R"({"max_tokens": 5})", 400, "invalid_value"},
      {chat, R"({"messages": [{"role": "user", "content": 5}]})", 400, "invalid_type"},
      {chat, R"({"messages": [{"role": "user"}]})", 400, "invalid_value"},
      {chat, R"({"messages": [{"role": "wizard", "content": "x"}]})", 400, "invalid_value"},
      {chat, R"({"messages": [{"role": "assistant", "content": "x"}]})", 400, "invalid_value"},
      {chat, R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})", 400, "invalid_value"},
      {chat, R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})", 400, "invalid_value"},
      {chat, R"({"messages": [{"role": "user", "content": "x", "mood": "happy"}]})", 400, "unknown_parameter"},
      {chat, with({{"max_tokens", -1}}), 400, "invalid_value"},
      {chat, with({{"max_tokens", 0}}), 400, "invalid_value"},
      {chat, with({{"max_tokens", 1000000000000LL}}), 400, "invalid_value"},
      {chat, with({{"max_tokens", 1e12}}), 400, "invalid_value"},
      {chat, with({{"max_tokens", "10"}}), 400, "invalid_value"},
      {chat, with({{"max_completion_tokens", 257}}), 400, "invalid_value"},
      {chat, with({{"temperature", "hot"}}), 400, "invalid_value"},
      {chat, with({{"temperature", -1}}), 400, "invalid_value"},
      {chat, with({{"top_p", 0}}), 400, "invalid_value"},
      {chat, with({{"top_k", -5}}), 400, "invalid_value"},
      {chat, with({{"min_p", 2}}), 400, "invalid_value"},
      {chat, with({{"presence_penalty", 9}}), 400, "invalid_value"},
      {chat, with({{"repetition_penalty", 0}}), 400, "invalid_value"},
      {chat, with({{"seed", "x"}}), 400, "invalid_value"},
      {chat, with({{"n", 1000}}), 400, "invalid_value"},
      {chat, with({{"n", 0}}), 400, "invalid_value"},
      {chat, with({{"n", 1.5}}), 400, "invalid_value"},
      {chat, with({{"stream", "yes"}}), 400, "invalid_type"},
      {chat, with({{"stream_options", {{"include_usage", 1}}}}), 400, "invalid_type"},
      {chat, with({{"stop", 5}}), 400, "invalid_value"},
      {chat, with({{"stop", json::array({""})}}), 400, "invalid_value"},
      {chat, with({{"stop", json::array({"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"})}}), 400, "invalid_value"},
      {chat, with({{"logprobs", "yes"}}), 400, "invalid_type"},
      {chat, with({{"top_logprobs", 3}}), 400, "invalid_value"},
      {chat, with({{"logprobs", true}, {"top_logprobs", 50}}), 400, "invalid_value"},
      {chat, with({{"frobnicate", 1}}), 400, "unknown_parameter"},
      {chat, with({{"functions", json::array({{{"name", "f"}}})}}), 400, "unsupported_parameter"},
      {chat, with({{"audio", {{"voice", "alloy"}}}}), 400, "unsupported_parameter"},
      {chat, with({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", {{"not", {}}}}}}}}}), 400, "invalid_schema"},
      {chat, with({{"logit_bias", {{"-5", 100}}}}), 400, "invalid_value"},
      {chat, with({{"grammar", "root ::= ("}}), 400, "invalid_grammar"},
      {chat, with({{"model", 7}}), 400, "invalid_type"},
      {chat, with({{"messages", json::array({user(std::string(600, 'x') + " the end")})}}), 400, "context_length_exceeded"},
      {text, R"({"prompt": ""})", 400, "invalid_value"},
      {text, R"({"prompt": []})", 400, "invalid_value"},
      {text, R"({"prompt": [[1, 2]]})", 400, "invalid_value"},
      {text, R"({"prompt": ["a", "b"]})", 400, "invalid_value"},
      {text, R"({"prompt": [2, 99999]})", 400, "invalid_value"},
      {text, R"({"prompt": [2, -1]})", 400, "invalid_value"},
      {text, R"({"prompt": 42})", 400, "invalid_value"},
      {text, "{}", 400, "invalid_value"},
      {text, R"({"prompt": "x", "echo": true})", 400, "unsupported_parameter"},
      {text, R"({"prompt": "x", "logprobs": 9})", 400, "invalid_value"},
      {text, R"({"prompt": "x", "best_of": 3})", 400, "unsupported_parameter"},
      {text, "{\"prompt\": \"" + std::string(300, 'w') + " " + std::string(300, 'q') + "\"}", 400, "context_length_exceeded"},
      {text, "{\"prompt\": \"bad \xff\xfe bytes\"}", 400, "invalid_json"},
      {text, "{\"prompt\": \"\xc3\"}", 400, "invalid_json"},
      {text, R"({"prompt": "lone \ud800 surrogate"})", 400, "invalid_json"},
      {text, "{\"prompt\": \"" + std::string(20000, 'a') + "\"}", 413, "request_too_large"},
      {"/detokenize", R"({"tokens": [5, -1]})", 400, "invalid_value"},
      {"/detokenize", R"({"tokens": [4096]})", 400, "invalid_value"},
      {"/detokenize", R"({"tokens": "5"})", 400, "invalid_type"},
      {"/detokenize", R"({"tokens": [5], "extra": 1})", 400, "unknown_parameter"},
      {"/tokenize", "{}", 400, "invalid_value"},
      {"/tokenize", R"({"content": 5})", 400, "invalid_type"},
      {"/v1/nothing", "{}", 404, "not_found"},
  };
  for (const Case& c : cases) {
    INFO(c.path << " " << c.body.substr(0, 120));
    const HttpResult r = glrnn::test::post_raw(server, c.path, c.body);
    CHECK(r.status == c.status);
    REQUIRE(r.body.is_object());
    const json& error = r.body["error"];
    CHECK(error["message"].is_string());
    CHECK(!error["message"].get<std::string>().empty());
    CHECK(error["type"] == "invalid_request_error");
    CHECK(error["code"] == c.code);
  }
  const HttpResult missing_model = get(server, "/v1/models/another-model");
  CHECK(missing_model.status == 404);
  CHECK(missing_model.body["error"]["code"] == "model_not_found");
  CHECK(get(server, "/nothing/here").status == 404);

  // Not HTTP at all: the server answers 400 with an error object and goes on.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(server.port()));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  const std::string garbage = "\x01\x02 definitely not HTTP\r\n\r\n";
  REQUIRE(send(fd, garbage.data(), garbage.size(), 0) == static_cast<ssize_t>(garbage.size()));
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string answer;  // read up to the end of the JSON body: the connection stays open (keep-alive)
  char buffer[1024];
  for (ssize_t n; answer.find("}}") == std::string::npos && (n = recv(fd, buffer, sizeof buffer, 0)) > 0;)
    answer.append(buffer, static_cast<std::size_t>(n));
  close(fd);
  CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(answer.find("\"error\"") != std::string::npos);

  CHECK(get(server, "/health").body == json{{"status", "ok"}});
  const HttpResult fine = post(server, "/v1/chat/completions", ok);
  CHECK(fine.status == 200);
  CHECK(fine.body["choices"].size() == 1);
}

TEST_CASE("glrnn-server: --api-key wants a Bearer token on every endpoint but /health", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1", "--api-key", "sekrit"});
  const httplib::Headers good = {{"Authorization", "Bearer sekrit"}}, bad = {{"Authorization", "Bearer sekrip"}};
  for (const httplib::Headers& headers : {httplib::Headers{}, bad}) {
    for (const HttpResult& r : {get(server, "/v1/models", headers), get(server, "/metrics", headers),
                                post(server, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}, headers),
                                post(server, "/tokenize", {{"content", "x"}}, headers)}) {
      CHECK(r.status == 401);
      CHECK(r.body["error"]["code"] == "invalid_api_key");
    }
  }
  CHECK(get(server, "/health").status == 200);
  CHECK(get(server, "/v1/models", good).status == 200);
  CHECK(post(server, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}, good).status == 200);
}

TEST_CASE("glrnn-server: a client that disconnects mid-stream frees its slot, and a full queue gets 503", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1", "--parallel", "1", "--max-queue", "1", "--max-tokens", "1000000"});
  const json endless = {{"prompt", "The old man said"}, {"max_tokens", 1000000}, {"ignore_eos", true}, {"stream", true}};
  int seen = 0;
  const StreamResult dropped = post_stream(server, "/v1/completions", endless, [&](const json&) { return ++seen < 3; });
  CHECK(seen == 3);
  CHECK_FALSE(dropped.done);
  // With one slot, this can only run once the dropped stream has let its slot go (it had a
  // million tokens to go).
  const auto t0 = std::chrono::steady_clock::now();
  const HttpResult next = post(server, "/v1/completions", {{"prompt", "The old man said"}, {"max_tokens", 8}});
  CHECK(next.status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  CHECK(glrnn::test::wait_idle(server));

  // One request runs, one waits, the third is refused. The second is sent once the first has
  // left the queue for the slot (sent together, the second would find the queue full).
  std::atomic<bool> stop_reading{false};
  std::vector<std::thread> streams;
  const auto until = [&](double queued, double running) {
    for (int i = 0; i < 500; ++i) {
      const std::map<std::string, double> m = glrnn::test::metrics(server);  // one snapshot
      if (m.at("queue_length") == queued && m.at("sequences_running") == running) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  for (int i = 0; i < 2; ++i) {
    streams.emplace_back([&] { post_stream(server, "/v1/completions", endless, [&](const json&) { return !stop_reading; }); });
    CHECK(until(i, 1));  // not REQUIRE: the threads must still be joined
  }
  const HttpResult busy = post(server, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}});
  CHECK(busy.status == 503);
  CHECK(busy.body["error"]["code"] == "server_busy");
  CHECK(busy.body["error"]["type"] == "server_error");
  stop_reading = true;
  for (std::thread& t : streams) t.join();
  CHECK(post(server, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}).status == 200);
}

TEST_CASE("glrnn-server: SIGTERM ends running requests and leaves complete cache files", "[server]") {
  const std::string dir = glrnn::test::make_temp_dir("server-shutdown");
  ServerProcess server({"-m", demo_model(), "-t", "1", "--cache-dir", dir, "--max-tokens", "1000000"});
  std::atomic<int> events{0};
  StreamResult stream;
  std::thread client([&] {
    stream = post_stream(server, "/v1/completions",
                         {{"prompt", "The old man said"}, {"max_tokens", 1000000}, {"ignore_eos", true}, {"stream", true}},
                         [&](const json&) { return ++events > 0; });
  });
  for (int i = 0; i < 2000 && events < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto t0 = std::chrono::steady_clock::now();
  const int status = server.stop();
  INFO("the server's log:\n" << server.log());
  CHECK(status == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  client.join();
  REQUIRE(!stream.events.empty());
  CHECK(stream.events.back()["error"]["code"] == "server_shutting_down");
  CHECK(stream.done);
  int states = 0, temporary = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    const std::string name = f.path().filename().string();
    states += name.find(".state") != std::string::npos && name.find(".tmp") == std::string::npos;
    temporary += name.find(".tmp") != std::string::npos;
  }
  CHECK(states >= 1);  // the prompt's state, written at shutdown
  CHECK(temporary == 0);
  CHECK(server.log().find("glrnn-server: stopped") != std::string::npos);
}

TEST_CASE("glrnn-server: tokenize, detokenize, models, health and metrics", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1", "--alias", "demo"});
  const HttpResult ids = post(server, "/tokenize", {{"content", "The president"}, {"add_special", true}});
  CHECK(ids.body["tokens"] == json::array({2, 541, 2368}));
  const HttpResult pieces = post(server, "/tokenize", {{"content", "The president"}, {"with_pieces", true}});
  CHECK(pieces.body["tokens"][0] == json{{"id", 541}, {"piece", "The"}});
  CHECK(post(server, "/detokenize", {{"tokens", {541, 2368}}}).body["content"] == "The president");
  const HttpResult models = get(server, "/v1/models");
  CHECK(models.body["object"] == "list");
  REQUIRE(models.body["data"].size() == 1);
  CHECK(models.body["data"][0]["id"] == "demo");
  CHECK(models.body["data"][0]["object"] == "model");
  CHECK(models.body["data"][0]["meta"]["state_bytes"] == 81920);
  CHECK(get(server, "/v1/models/demo").body["id"] == "demo");
  CHECK(get(server, "/health").body["status"] == "ok");
  CHECK(post(server, "/v1/completions", {{"prompt", "The president"}, {"max_tokens", 3}, {"ignore_eos", true}}).status == 200);
  REQUIRE(glrnn::test::wait_idle(server));  // the counters of the last step are published after it
  CHECK(glrnn::test::metric(server, "requests_total") == 1);
  CHECK(glrnn::test::metric(server, "tokens_generated_total") == 3);
  CHECK(glrnn::test::metric(server, "prompt_tokens_total") == 3);
  CHECK(glrnn::test::metric(server, "resident_memory_bytes") > 0);
  const HttpResult metrics = get(server, "/metrics");
  for (const char* name : {"cache_hits_total", "cache_bytes", "queue_length", "decode_tokens_per_second", "prefill_tokens_total"})
    CHECK(metrics.raw.find(std::string("# TYPE glrnn_") + name) != std::string::npos);
}

TEST_CASE("glrnn-server: a long prompt is prefilled in chunks between decode steps, so running streams keep flowing", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1", "--parallel", "2", "--prefill-chunk", "16", "--max-tokens", "1000000"});
  std::ifstream file(glrnn::test::data_path("eval-public.txt"));
  std::string document;
  for (std::string line; document.size() < 2500 && std::getline(file, line);) document += line + "\n";

  std::atomic<int> events{0};
  std::atomic<bool> stop_reading{false};
  std::thread running([&] {
    post_stream(server, "/v1/completions",
                {{"prompt", "The old man said"}, {"max_tokens", 1000000}, {"ignore_eos", true}, {"stream", true}},
                [&](const json&) { return ++events, !stop_reading; });
  });
  for (int i = 0; i < 4000 && events < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const int before = events;
  const HttpResult long_prompt = post(server, "/v1/completions", {{"prompt", document}, {"max_tokens", 1}});
  const int during = events - before;
  stop_reading = true;
  running.join();
  REQUIRE(long_prompt.status == 200);
  const std::int64_t prompt_tokens = long_prompt.body["usage"]["prompt_tokens"];
  INFO(prompt_tokens << " prompt tokens, " << during << " tokens streamed meanwhile");
  CHECK(prompt_tokens > 400);
  // One decode step per 16-token chunk: the stream got a token for (nearly) every chunk.
  CHECK(during >= prompt_tokens / 16 / 2);
}

TEST_CASE("glrnn-server: a hybrid's maximum context: a prompt past it is a 400, a reply ends there with length", "[server]") {
  // gla-hybrid-tiny (a full-attention layer) with the demo models' tokenizer, whose 4,096 ids
  // outnumber the model's 512: text can encode to ids the model lacks, which is a 400 too.
  namespace fs = std::filesystem;
  const fs::path dir = glrnn::test::make_temp_dir("server-hybrid");
  for (const char* file : {"config.json", "model.safetensors"})
    fs::copy_file(fs::path(glrnn::test::data_path("gla-hybrid-tiny")) / file, dir / file, fs::copy_options::overwrite_existing);
  fs::copy_file(fs::path(demo_model("hgrn2-demo")) / "tokenizer.json", dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  ServerProcess server({"-m", dir.string(), "-t", "1", "--max-context", "40"});
  const HttpResult models = get(server, "/v1/models");
  REQUIRE(models.status == 200);
  CHECK(models.body["data"][0]["meta"]["max_context"] == 40);
  CHECK(models.body["data"][0]["meta"]["state_bytes_per_position"] == 2 * 16 * 4);  // one layer, one kv head of 16

  const HttpResult reply = post(server, "/v1/completions", {{"prompt", {1, 5, 9, 13}}, {"max_tokens", 100}, {"temperature", 0}});
  REQUIRE(reply.status == 200);
  CHECK(reply.body["choices"][0]["finish_reason"] == "length");
  CHECK(reply.body["usage"]["total_tokens"] == 40);

  json long_prompt = json::array();
  for (int i = 0; i < 40; ++i) long_prompt.push_back(3 + i);
  const HttpResult refused = post(server, "/v1/completions", {{"prompt", long_prompt}, {"max_tokens", 4}});
  CHECK(refused.status == 400);
  CHECK(refused.body["error"]["code"] == "context_length_exceeded");

  const HttpResult foreign = post(server, "/v1/completions", {{"prompt", "hello there, a text with ids past 512"}, {"max_tokens", 4}});
  CHECK(foreign.status == 400);
  CHECK(foreign.body["error"]["param"] == "prompt");
  CHECK(get(server, "/health").status == 200);
}
