// glrnn-server's structured output: response_format (json_object, json_schema), tools and
// tool_choice with the documented JSON format, llama-server's grammar, logit_bias, and the 400s
// for what it refuses. Sampled replies are validated by Python's jsonschema (Debian's
// python3-jsonschema), a validator that is not ours.

#include <cstdio>      // popen, pclose
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ofstream
#include <string>      // std::string
#include <vector>      // std::vector

#include <catch2/catch.hpp>

#include "server/server_process.hpp"

namespace {

using glrnn::test::demo_model;
using glrnn::test::HttpResult;
using glrnn::test::json;
using glrnn::test::post;
using glrnn::test::post_stream;
using glrnn::test::ServerProcess;
using glrnn::test::StreamResult;

using glrnn::test::user;

/// A random schema of the keywords the compiler supports, small enough that the demo models
/// finish their replies: objects of 1 to 3 properties, some nested, of every type.
json random_schema(std::uint64_t& state, int depth = 0) {
  const auto next = [&](std::uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  switch (next(depth >= 2 ? 7 : 9)) {
    case 0: return {{"type", "string"}, {"maxLength", 1 + next(12)}};
    case 1: return {{"type", "integer"}, {"minimum", -50 + static_cast<int>(next(50))}, {"maximum", 60 + static_cast<int>(next(500))}};
    case 2: return {{"type", "boolean"}};
    case 3: return {{"enum", {"red", "green", 7, nullptr}}};
    case 4: return {{"type", "string"}, {"pattern", "^[a-z]{2,4}-[0-9]{1,3}$"}};
    case 5: return {{"type", "string"}, {"format", next(2) ? "date" : "uuid"}};
    case 6: return {{"anyOf", {{{"type", "null"}}, {{"type", "integer"}, {"maximum", 99}}}}};
    case 7: return {{"type", "array"}, {"items", random_schema(state, depth + 1)}, {"maxItems", 1 + next(3)}};
    default: {
      json properties = json::object(), required = json::array();
      const std::uint64_t n = 1 + next(3);
      for (std::uint64_t i = 0; i < n; ++i) {
        const std::string name = std::string(1, static_cast<char>('a' + i)) + "_" + std::to_string(next(100));
        properties[name] = random_schema(state, depth + 1);
        if (next(3) != 0) required.push_back(name);
      }
      return {{"type", "object"}, {"properties", properties}, {"required", required}, {"additionalProperties", false}};
    }
  }
}

/// Runs Python's jsonschema over [{schema, text}]; returns its report ("" when every text parses
/// and validates), or a note that the validator is missing.
std::string validate_with_python(const json& cases) {
  const std::filesystem::path path = glrnn::test::test_temp_dir() / "structured_cases.json";
  std::ofstream(path) << cases.dump();
  const std::string command = "python3 -c '\n"
                              "import json, sys, jsonschema\n"
                              "bad = []\n"
                              "for i, c in enumerate(json.load(open(sys.argv[1]))):\n"
                              "    try:\n"
                              "        jsonschema.validate(json.loads(c[\"text\"]), c[\"schema\"], format_checker=jsonschema.FormatChecker())\n"
                              "    except Exception as e:\n"
                              "        bad.append(\"%d: %s: %s\" % (i, c[\"text\"][:200], str(e)[:200]))\n"
                              "print(\"\\n\".join(bad))\n' " +
                              path.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  pclose(pipe);
  return out == "\n" ? "" : out;
}

bool python_jsonschema_available() { return std::system("python3 -c 'import jsonschema' 2>/dev/null") == 0; }

}  // namespace

TEST_CASE("glrnn-server: sampled json_schema replies of both demo models all parse and validate (Python jsonschema)", "[server]") {
  if (!python_jsonschema_available()) {
    WARN("python3-jsonschema is not installed (scripts/install-deps.sh installs it): skipped");
    return;
  }
  json cases = json::array();
  int finished = 0, cut = 0;
  for (const std::string model : {"griffin-demo", "hgrn2-demo"}) {
    ServerProcess server({"-m", demo_model(model), "-t", "1", "--parallel", "8"});
    std::uint64_t state = model == "griffin-demo" ? 11 : 23;
    for (int request = 0; request < 30; ++request) {
      const json schema = random_schema(state);
      const json body = {{"messages", json::array({user("Describe something as JSON.")})},
                         {"max_tokens", 400},
                         {"n", 4},
                         {"temperature", 1.0},
                         {"seed", request},
                         {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "thing"}, {"schema", schema}}}}}};
      const HttpResult r = post(server, "/v1/chat/completions", body);
      REQUIRE(r.status == 200);
      for (const json& choice : r.body["choices"]) {
        if (choice["finish_reason"] == "length") {
          ++cut;  // cut off by max_tokens: not a whole value, as with OpenAI
          continue;
        }
        CHECK(choice["finish_reason"] == "stop");
        cases.push_back({{"schema", schema}, {"text", choice["message"]["content"]}});
        ++finished;
      }
    }
  }
  INFO(finished << " finished replies, " << cut << " cut by max_tokens");
  CHECK(finished >= 200);
  CHECK(validate_with_python(cases) == "");
}

TEST_CASE("glrnn-server: json_object, grammar and logit_bias shape the reply, streamed and not", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"});
  // json_object: any JSON object.
  const json object_body = {{"messages", json::array({user("JSON please")})}, {"max_tokens", 300}, {"temperature", 0.8},
                            {"seed", 3}, {"response_format", {{"type", "json_object"}}}};
  const HttpResult object = post(server, "/v1/chat/completions", object_body);
  REQUIRE(object.status == 200);
  if (object.body["choices"][0]["finish_reason"] == "stop")
    CHECK(json::parse(object.body["choices"][0]["message"]["content"].get<std::string>()).is_object());

  // grammar on completions: the text is a sentence of it, streamed or not, and both agree.
  const json grammar_body = {{"prompt", "The answer is"}, {"max_tokens", 40}, {"temperature", 0},
                             {"grammar", "root ::= (\" yes\" | \" no\") \", because \" [a-z ]{1,20} \".\""}};
  const HttpResult plain = post(server, "/v1/completions", grammar_body);
  REQUIRE(plain.status == 200);
  const std::string text = plain.body["choices"][0]["text"];
  CHECK((text.rfind(" yes, because ", 0) == 0 || text.rfind(" no, because ", 0) == 0));
  CHECK(text.back() == '.');
  CHECK(plain.body["choices"][0]["finish_reason"] == "stop");
  json streamed_body = grammar_body;
  streamed_body["stream"] = true;
  const StreamResult streamed = post_stream(server, "/v1/completions", streamed_body);
  CHECK(glrnn::test::streamed_text(streamed) == text);

  // logit_bias: +100 makes a token the greedy choice every time; -100 keeps it out.
  const HttpResult ids = post(server, "/tokenize", {{"content", " the"}});
  const std::int32_t the = ids.body["tokens"].back();
  const HttpResult forced = post(server, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 5}, {"temperature", 0},
                                                             {"ignore_eos", true}, {"logit_bias", {{std::to_string(the), 100}}}});
  REQUIRE(forced.status == 200);
  CHECK(forced.body["choices"][0]["text"] == " the the the the the");
  const HttpResult free_run = post(server, "/v1/completions", {{"prompt", "He saw"}, {"max_tokens", 30}, {"temperature", 0}});
  const HttpResult banned = post(server, "/v1/completions", {{"prompt", "He saw"}, {"max_tokens", 30}, {"temperature", 0},
                                                             {"logit_bias", {{std::to_string(the), -100}}}});
  REQUIRE(banned.status == 200);
  CHECK(free_run.body["choices"][0]["text"].get<std::string>().find(" the") != std::string::npos);
  CHECK(banned.body["choices"][0]["text"].get<std::string>().find(" the ") == std::string::npos);
}

TEST_CASE("glrnn-server: tool calls in the documented format, streamed and not, and the next turn hits the cache", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"});
  const json tools = json::array({{{"type", "function"},
                                   {"function", {{"name", "get_weather"},
                                                 {"description", "The weather in a city"},
                                                 {"parameters", {{"type", "object"},
                                                                 {"properties", {{"city", {{"type", "string"}, {"maxLength", 12}}},
                                                                                 {"days", {{"type", "integer"}, {"minimum", 1}, {"maximum", 7}}}}},
                                                                 {"required", {"city", "days"}},
                                                                 {"additionalProperties", false}}}}}},
                                  {{"type", "function"}, {"function", {{"name", "get_time"}}}}});
  json body = {{"messages", json::array({user("What is the weather in Paris?")})},
               {"max_tokens", 200},
               {"temperature", 0.7},
               {"seed", 4},
               {"tools", tools},
               {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
               {"parallel_tool_calls", false}};
  const HttpResult called = post(server, "/v1/chat/completions", body);
  REQUIRE(called.status == 200);
  const json& choice = called.body["choices"][0];
  REQUIRE(choice["finish_reason"] == "tool_calls");
  REQUIRE(choice["message"]["content"].is_null());
  REQUIRE(choice["message"]["tool_calls"].size() == 1);
  const json& call = choice["message"]["tool_calls"][0];
  CHECK(call["type"] == "function");
  CHECK(call["function"]["name"] == "get_weather");
  CHECK(call["id"].get<std::string>().rfind("call_", 0) == 0);
  const json arguments = json::parse(call["function"]["arguments"].get<std::string>());
  CHECK(arguments["city"].is_string());
  CHECK(arguments["days"].get<int>() >= 1);
  CHECK(arguments["days"].get<int>() <= 7);

  // Streamed: the same call, whole, in one delta with finish_reason tool_calls.
  body["stream"] = true;
  const StreamResult streamed = post_stream(server, "/v1/chat/completions", body);
  REQUIRE(streamed.done);
  CHECK(glrnn::test::streamed_finish(streamed) == "tool_calls");
  json streamed_call;
  for (const json& e : streamed.events)
    for (const json& c : e["choices"])
      if (c["delta"].contains("tool_calls")) streamed_call = c["delta"]["tool_calls"][0];
  CHECK(streamed_call["index"] == 0);
  CHECK(streamed_call["function"] == call["function"]);

  // The next turn: the call and its result rendered back; the conversation so far comes from
  // the state cache (the call as the model wrote it is the prefix of the new prompt).
  json next = {{"messages", json::array({user("What is the weather in Paris?"),
                                          {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array({call})}},
                                          {{"role", "tool"}, {"tool_call_id", call["id"]}, {"content", "sunny, 21 C"}}})},
               {"max_tokens", 60},
               {"temperature", 0},
               {"tools", tools},
               {"tool_choice", "none"}};
  REQUIRE(glrnn::test::wait_idle(server));
  const HttpResult answer = post(server, "/v1/chat/completions", next);
  REQUIRE(answer.status == 200);
  CHECK(answer.body["choices"][0]["message"]["content"].is_string());
  CHECK(answer.body["usage"]["prompt_tokens_details"]["cached_tokens"].get<std::int64_t>() >=
        called.body["usage"]["prompt_tokens"].get<std::int64_t>());

  // auto: a reply is text or calls, nothing else; required: calls.
  for (const char* mode : {"auto", "required"}) {
    json any = {{"messages", json::array({user("Hello")})}, {"max_tokens", 200}, {"temperature", 1.0}, {"n", 4},
                {"seed", 9}, {"tools", tools}, {"tool_choice", mode}};
    const HttpResult r = post(server, "/v1/chat/completions", any);
    REQUIRE(r.status == 200);
    for (const json& c : r.body["choices"]) {
      if (c["finish_reason"] == "length") continue;
      const bool calls = c["finish_reason"] == "tool_calls";
      CHECK((calls || std::string(mode) == "auto"));
      if (calls) CHECK(!c["message"]["tool_calls"].empty());
      else CHECK(c["message"]["content"].is_string());
    }
  }
}

TEST_CASE("glrnn-server: schemas, grammars and tool requests it cannot follow are 400s naming the field", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"});
  const json messages = json::array({user("hi")});
  const auto refused = [&](const std::string& path, json body, const std::string& param, const std::string& words) {
    if (path == "/v1/chat/completions" && !body.contains("messages")) body["messages"] = messages;
    const HttpResult r = post(server, path, body);
    CAPTURE(body.dump(), r.raw);
    CHECK(r.status == 400);
    CHECK(r.body["error"]["param"] == param);
    CHECK(r.body["error"]["message"].get<std::string>().find(words) != std::string::npos);
  };
  const auto schema_format = [](const json& schema) {
    return json{{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", schema}}}};
  };
  const std::string chat = "/v1/chat/completions";
  refused(chat, {{"response_format", schema_format({{"type", "array"}, {"uniqueItems", true}})}}, "response_format", "uniqueItems");
  refused(chat, {{"response_format", schema_format({{"type", "string"}, {"pattern", "(a)\\1"}})}}, "response_format", "pattern");
  refused(chat, {{"response_format", schema_format({{"$ref", "https://example.com/s.json"}})}}, "response_format", "$ref");
  refused(chat, {{"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", json::object()}}}}}}, "response_format", "name");
  refused(chat, {{"response_format", {{"type", "xml"}}}}, "response_format", "xml");
  refused("/v1/completions", {{"prompt", "a"}, {"grammar", "root ::= undefined-rule"}}, "grammar", "undefined-rule");
  refused("/v1/completions", {{"prompt", "a"}, {"grammar", "root ::= root \"a\" | \"b\""}}, "grammar", "left-recursive");
  refused(chat, {{"grammar", "root ::= \"a\""}, {"response_format", {{"type", "json_object"}}}}, "grammar", "response_format");
  const json tool = {{"type", "function"}, {"function", {{"name", "f"}}}};
  refused(chat, {{"tools", {tool}}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "g"}}}}}}, "tool_choice", "g");
  refused(chat, {{"tool_choice", "required"}}, "tool_choice", "tools");
  refused(chat, {{"tools", {tool, tool}}}, "tools", "two tools");
  refused(chat, {{"tools", {{{"type", "function"}, {"function", {{"name", "bad name"}}}}}}}, "tools", "name");
  refused(chat, {{"tools", {tool}}, {"grammar", "root ::= \"a\""}}, "tools", "grammar");
  refused(chat, {{"messages", json::array({user("hi"), {{"role", "tool"}, {"tool_call_id", "x"}, {"content", "r"}}})}},
          "messages[1]", "tools");
  // A call's arguments are JSON inside a string: parsed back with the body's depth bound, so a
  // 100,000-deep one is refused, not walked.
  const auto with_call = [&](const std::string& arguments) {
    const json call = {{"id", "call_1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", arguments}}}};
    return json{{"tools", {tool}},
                {"messages", json::array({user("hi"), {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", {call}}},
                                          {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "r"}}})}};
  };
  refused(chat, with_call(std::string(100000, '[') + std::string(100000, ']')), "messages", "nests deeper than 32");
  refused(chat, with_call("{not json"), "messages", "is not valid JSON");
  refused(chat, {{"logit_bias", {{"abc", 1}}}}, "logit_bias", "abc");
  refused(chat, {{"logit_bias", {{"5", 101}}}}, "logit_bias", "[-100, 100]");
  refused(chat, {{"logit_bias", {{"99999999", 1}}}}, "logit_bias", "99999999");
}
