#pragma once
// Tool calls for models without tool-call markers (RecurrentGemma, the demo models), in one
// documented format (README, "Tool calls"):
//   - the tools are described in the system turn, as JSON, with the reply format;
//   - the reply is JSON constrained by a grammar to either {"content":"text"} or
//     {"tool_calls":[{"name":"f","arguments":{...}}]}, compact (no whitespace), the arguments
//     following the function's parameters schema, the choice limited by tool_choice and
//     parallel_tool_calls;
//   - the reply goes back to the client as OpenAI's message (content, or tool_calls with ids
//     and arguments as a JSON string), and comes back in the next request as the same compact
//     JSON, so the state cache finds the conversation; tool results are a user turn of JSON
//     lines {"tool_call_id":...,"content":...}.

#include <cstdint>  // std::uint64_t
#include <cstdio>   // std::snprintf
#include <string>   // std::string
#include <vector>   // std::vector

#include <nlohmann/json.hpp>

#include <glrnn/constrain/json_schema.hpp>

#include "api_error.hpp"

namespace glrnn::server {

using ordered_json = nlohmann::ordered_json;

struct ToolSpec {
  std::string name;
  std::string description;
  ordered_json parameters = {{"type", "object"}};  // a JSON Schema; without one, any object
};

/// What a request asked of tools: which ones, and whether the reply may, must or must not call.
struct ToolChoice {
  enum class Mode { None, Auto, Required, Named };
  Mode mode = Mode::Auto;
  std::string name;              // Named
  bool parallel = true;          // parallel_tool_calls: more than one call in a reply
};

/// One call in a reply, as the client receives it.
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // compact JSON text
};

/// The reply of a request with tools, read back from its JSON.
struct ToolReply {
  std::string content;             // when the model answered in text
  std::vector<ToolCall> calls;     // when it called tools
};

/// The system text that describes the tools and the reply format. It does not depend on
/// tool_choice (the grammar enforces that), so turns that choose differently share their prefix
/// in the state cache.
inline std::string describe_tools(const std::vector<ToolSpec>& tools) {
  ordered_json list = ordered_json::array();
  for (const ToolSpec& t : tools)
    list.push_back({{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}});
  return "You can call these tools:\n" + list.dump() +
         "\nReply with JSON: {\"content\":\"your answer\"} to answer, or "
         "{\"tool_calls\":[{\"name\":\"tool name\",\"arguments\":{...}}]} to call tools.";
}

/// The JSON Schema of the reply; json_schema_to_grammar makes its grammar.
inline ordered_json tool_reply_schema(const std::vector<ToolSpec>& tools, const ToolChoice& choice) {
  ordered_json calls = ordered_json::array();
  for (const ToolSpec& t : tools) {
    if (choice.mode == ToolChoice::Mode::Named && t.name != choice.name) continue;
    calls.push_back({{"type", "object"},
                     {"properties", {{"name", {{"const", t.name}}}, {"arguments", t.parameters}}},
                     {"required", {"name", "arguments"}},
                     {"additionalProperties", false}});
  }
  ordered_json array = {{"type", "array"}, {"items", {{"anyOf", calls}}}, {"minItems", 1}};
  if (!choice.parallel) array["maxItems"] = 1;
  const ordered_json call_reply = {{"type", "object"},
                                   {"properties", {{"tool_calls", array}}},
                                   {"required", {"tool_calls"}},
                                   {"additionalProperties", false}};
  const ordered_json text_reply = {{"type", "object"},
                                   {"properties", {{"content", {{"type", "string"}}}}},
                                   {"required", {"content"}},
                                   {"additionalProperties", false}};
  if (choice.mode == ToolChoice::Mode::None) return text_reply;
  if (choice.mode == ToolChoice::Mode::Auto) return {{"anyOf", {text_reply, call_reply}}};
  return call_reply;
}

/// The grammar of a tool reply: compact JSON (no whitespace between tokens), so that the reply
/// is the text the next request renders back.
inline std::string tool_reply_grammar(const std::vector<ToolSpec>& tools, const ToolChoice& choice) {
  return json_schema_to_grammar(tool_reply_schema(tools, choice), /*max_whitespace=*/0);
}

/// Reads a reply made under tool_reply_schema; `id_seed` makes the call ids. A reply cut short
/// (finish_reason "length") is not JSON: its text is returned as content.
inline ToolReply read_tool_reply(const std::string& text, std::uint64_t id_seed) {
  ToolReply reply;
  const ordered_json parsed = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    reply.content = text;
    return reply;
  }
  if (parsed.contains("content") && parsed["content"].is_string()) {
    reply.content = parsed["content"].get<std::string>();
    return reply;
  }
  if (!parsed.contains("tool_calls") || !parsed["tool_calls"].is_array()) {
    reply.content = text;
    return reply;
  }
  std::uint64_t n = 0;
  for (const ordered_json& call : parsed["tool_calls"]) {
    char id[32];
    std::snprintf(id, sizeof id, "call_%016llx", static_cast<unsigned long long>(id_seed + 0x9e3779b97f4a7c15ull * ++n));
    reply.calls.push_back({id, call.value("name", ""), call.contains("arguments") ? call["arguments"].dump() : "{}"});
  }
  return reply;
}

/// The text an assistant turn with these calls had when the model wrote it (compact JSON, the
/// arguments' keys in the order the client sent them back).
inline std::string render_tool_calls(const std::vector<ToolCall>& calls) {
  ordered_json list = ordered_json::array();
  for (const ToolCall& c : calls) {
    list.push_back({{"name", c.name}, {"arguments", parse_client_json<ordered_json>(c.arguments, "a tool call's arguments", "messages")}});
  }
  return ordered_json{{"tool_calls", list}}.dump();
}

/// An assistant text turn in a conversation with tools, as the model wrote it.
inline std::string render_tool_content(const std::string& content) { return ordered_json{{"content", content}}.dump(); }

/// A tool's result, as one line of the user turn that carries results.
inline std::string render_tool_result(const std::string& call_id, const std::string& content) {
  return ordered_json{{"tool_call_id", call_id}, {"content", content}}.dump();
}

}  // namespace glrnn::server
