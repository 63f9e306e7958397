#pragma once
// Reading the bodies of the OpenAI endpoints into what the scheduler runs, refusing anything
// else with a 400 that names the field. As OpenAI does, an unknown field is an error; fields
// OpenAI defines that the server does not implement are accepted only with their neutral value
// (no audio, no predictions), so a request is never silently answered differently from what it
// asked. null means "not given" everywhere. response_format, tools and llama-server's grammar
// become the GBNF text the reply must follow (README, "Structured output").

#include <cmath>             // std::isfinite, std::isnormal, std::nan
#include <cstdint>           // std::int32_t, std::int64_t
#include <initializer_list>  // std::initializer_list
#include <limits>            // std::numeric_limits
#include <optional>          // std::optional
#include <string>            // std::string
#include <vector>            // std::vector

#include <nlohmann/json.hpp>

#include "api_error.hpp"
#include "chat_format.hpp"
#include "job.hpp"
#include "tool_calls.hpp"

namespace glrnn::server {

/// The server's limits on what one request may ask (flags of glrnn-server).
struct RequestLimits {
  std::int64_t max_tokens = 4096;          // also the default when a request gives none
  std::int64_t max_n = 8;
  std::int64_t max_prompt_tokens = 32768;
  std::int64_t vocab_size = 0;             // token ids in a prompt are checked against it
  std::size_t max_stop_strings = 16, max_stop_bytes = 1024;
};

/// A chat or text completion request, read.
struct CompletionRequest {
  GenerationParams params;
  bool seeded = false;                  // the request gave a seed (else the server picks one)
  bool stream = false, include_usage = false;
  std::vector<ChatMessage> messages;    // chat
  std::string prompt;                   // completions, as text ...
  std::vector<std::int32_t> prompt_ids; // ... or as token ids
  std::string grammar;                  // GBNF the reply follows (empty: free text)
  std::string grammar_field;            // the field it came from, for errors
  bool json_reply = false;              // response_format json_object or json_schema
  std::vector<ToolSpec> tools;          // with tool_choice, what the reply may call
  ToolChoice tool_choice;
};

namespace detail {

using json = nlohmann::json;

/// A value as an error message quotes it: a scalar's text cut to 40 bytes, a container only by
/// its kind and size, so that quoting is bounded work and never recursive.
inline std::string shown(const json& value) {
  if (value.is_array()) return "an array of " + std::to_string(value.size()) + " items";
  if (value.is_object()) return "an object of " + std::to_string(value.size()) + " fields";
  std::string text = dump_json(value.is_string() && value.get_ref<const std::string&>().size() > 40
                                   ? json(value.get_ref<const std::string&>().substr(0, 37))
                                   : value);
  return text.size() > 40 ? text.substr(0, 37) + "..." : text;
}

/// The field, or nullptr when absent or null.
inline const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

inline void refuse_unknown(const json& body, std::initializer_list<const char*> known) {
  for (const auto& item : body.items()) {
    bool found = false;
    for (const char* name : known) found |= item.key() == name;
    if (!found) throw invalid_value(item.key(), "Unrecognized request argument supplied: " + item.key(), "unknown_parameter");
  }
}

/// A float field in [lo, hi] (lo excluded when lo_open), checked as the float the sampler takes:
/// a double that rounds to 0, to a denormal or to infinity there is refused like any other.
inline std::optional<float> number(const json& body, const char* name, double lo, double hi, bool lo_open = false) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  const double d = v->is_number() ? v->get<double>() : std::nan("");
  const float f = static_cast<float>(d);
  const bool in_range = std::isfinite(d) && (lo_open ? d > lo : d >= lo) && d <= hi;
  const bool representable = f == 0.0f ? d == 0.0 : std::isnormal(f);
  if (!in_range || !representable || (lo_open && !(f > static_cast<float>(lo))))
    throw invalid_value(name, "'" + std::string(name) + "' must be a number in " + (lo_open ? "(" : "[") + shown(lo) + ", " +
                                  shown(hi) + "]" + (in_range ? " that a float holds (0 or normal)" : "") + ", got " + shown(*v));
  return f;
}

inline std::optional<std::int64_t> integer(const json& body, const char* name, std::int64_t lo, std::int64_t hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  const bool fits = v->is_number_integer() &&
                    !(v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(hi));
  if (!fits || v->get<std::int64_t>() < lo || v->get<std::int64_t>() > hi)
    throw invalid_value(name, "'" + std::string(name) + "' must be an integer in [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "], got " + shown(*v));
  return v->get<std::int64_t>();
}

inline std::optional<bool> boolean(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) throw invalid_value(name, "'" + std::string(name) + "' must be true or false, got " + shown(*v), "invalid_type");
  return v->get<bool>();
}

inline std::optional<std::string> string(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw invalid_value(name, "'" + std::string(name) + "' must be a string, got " + shown(*v), "invalid_type");
  return v->get<std::string>();
}

/// An OpenAI field the server does not implement: only its neutral values pass.
template <class Neutral>
void neutral_only(const json& body, const char* name, Neutral&& is_neutral) {
  const json* v = field(body, name);
  if (v && !is_neutral(*v))
    throw invalid_value(name, "'" + std::string(name) + "' is not supported by this server (got " + shown(*v) + ")", "unsupported_parameter");
}

/// A request body: JSON (depth-bounded, parse_client_json) whose top level is an object.
inline json parse_object(const std::string& body) {
  json parsed = parse_client_json(body, "the body");
  if (!parsed.is_object()) throw ApiError(400, "invalid_json", "the body must be a JSON object, got " + shown(parsed));
  return parsed;
}

/// The fields both completion endpoints share.
inline CompletionRequest read_common(const json& body, const RequestLimits& limits) {
  CompletionRequest r;
  GenerationParams& p = r.params;
  // OpenAI's defaults: temperature 1 and no filter.
  p.sampling.temperature = number(body, "temperature", 0.0, 2.0).value_or(1.0f);
  p.sampling.top_p = number(body, "top_p", 0.0, 1.0, /*lo_open=*/true).value_or(1.0f);
  p.sampling.top_k = std::max<std::int64_t>(0, integer(body, "top_k", -1, std::numeric_limits<std::int32_t>::max()).value_or(0));
  p.sampling.min_p = number(body, "min_p", 0.0, 1.0).value_or(0.0f);
  p.sampling.presence_penalty = number(body, "presence_penalty", -2.0, 2.0).value_or(0.0f);
  p.sampling.frequency_penalty = number(body, "frequency_penalty", -2.0, 2.0).value_or(0.0f);
  p.sampling.repetition_penalty = number(body, "repetition_penalty", 0.0, 10.0, true).value_or(1.0f);
  if (const auto seed = integer(body, "seed", std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max())) {
    p.sampling.seed = static_cast<std::uint64_t>(*seed);
    r.seeded = true;
  }
  p.max_tokens = integer(body, "max_tokens", 1, limits.max_tokens).value_or(limits.max_tokens);
  p.n = integer(body, "n", 1, limits.max_n).value_or(1);
  p.ignore_eos = boolean(body, "ignore_eos").value_or(false);
  if (const json* stop = field(body, "stop")) {
    const bool ok = stop->is_string() || (stop->is_array() && stop->size() <= limits.max_stop_strings);
    if (!ok) throw invalid_value("stop", "'stop' must be a string or an array of at most " + std::to_string(limits.max_stop_strings) + " strings");
    for (const json& s : stop->is_string() ? json::array({*stop}) : *stop) {
      if (!s.is_string() || s.get<std::string>().empty() || s.get<std::string>().size() > limits.max_stop_bytes)
        throw invalid_value("stop", "each stop string must be a non-empty string of at most " + std::to_string(limits.max_stop_bytes) +
                                        " bytes, got " + shown(s));
      p.stop.push_back(s.get<std::string>());
    }
  }
  r.stream = boolean(body, "stream").value_or(false);
  if (const json* options = field(body, "stream_options")) {
    if (!options->is_object()) throw invalid_value("stream_options", "'stream_options' must be an object");
    refuse_unknown(*options, {"include_usage"});
    r.include_usage = boolean(*options, "include_usage").value_or(false);
  }
  string(body, "model");  // any name: the server has one model
  string(body, "user");
  if (const json* bias = field(body, "logit_bias")) {
    if (!bias->is_object() || bias->size() > 1024)
      throw invalid_value("logit_bias", "'logit_bias' must be an object of at most 1024 token ids mapped to biases");
    for (const auto& item : bias->items()) {
      const std::string& key = item.key();
      std::int64_t id = -1;
      if (!key.empty() && key.size() <= 9 && key.find_first_not_of("0123456789") == std::string::npos) id = std::stoll(key);
      if (id < 0 || id >= limits.vocab_size)
        throw invalid_value("logit_bias", "logit_bias key " + shown(json(key)) + " is not a token id in [0, " +
                                              std::to_string(limits.vocab_size) + ")");
      const double b = item.value().is_number() ? item.value().get<double>() : std::nan("");
      if (!(b >= -100.0 && b <= 100.0))
        throw invalid_value("logit_bias", "logit_bias values must be numbers in [-100, 100], got " + shown(item.value()));
      p.sampling.logit_bias.emplace_back(static_cast<std::int32_t>(id), static_cast<float>(b));
    }
  }
  if (const auto grammar = string(body, "grammar")) {
    if (grammar->empty()) throw invalid_value("grammar", "'grammar' is empty");
    r.grammar = *grammar;
    r.grammar_field = "grammar";
  }
  return r;
}

/// OpenAI's rule for the names of schemas and functions: 1 to 64 of a-z, A-Z, 0-9, _ and -.
inline bool is_api_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 &&
         name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == std::string::npos;
}

/// The body again, its objects keeping their order: a schema's properties are written in it.
inline nlohmann::ordered_json parse_ordered(const std::string& body) {
  return parse_client_json<nlohmann::ordered_json>(body, "the body");
}

/// response_format: text, json_object, or json_schema {name, schema, strict, description}.
inline void read_response_format(const json& body, const nlohmann::ordered_json& ordered, CompletionRequest& r) {
  const json* format = field(body, "response_format");
  if (!format) return;
  if (!format->is_object()) throw invalid_value("response_format", "'response_format' must be an object", "invalid_type");
  const std::string type = string(*format, "type").value_or("");
  if (type == "text") {
    refuse_unknown(*format, {"type"});
    return;
  }
  if (!r.grammar.empty()) throw invalid_value("grammar", "'grammar' cannot be combined with a JSON response_format");
  if (type == "json_object") {
    refuse_unknown(*format, {"type"});
    r.grammar = json_object_grammar();
  } else if (type == "json_schema") {
    refuse_unknown(*format, {"type", "json_schema"});
    const json* spec = field(*format, "json_schema");
    if (!spec || !spec->is_object())
      throw invalid_value("response_format", "response_format.json_schema must be an object {name, schema, strict}");
    refuse_unknown(*spec, {"name", "schema", "strict", "description"});
    const auto name = string(*spec, "name");
    if (!name || !is_api_name(*name))
      throw invalid_value("response_format", "response_format.json_schema.name must be 1 to 64 of a-z, A-Z, 0-9, _ and -");
    string(*spec, "description");
    boolean(*spec, "strict");  // strict or not, the reply follows the schema exactly
    const nlohmann::ordered_json& ordered_spec = ordered["response_format"]["json_schema"];
    try {
      r.grammar = ordered_spec.contains("schema") && !ordered_spec["schema"].is_null()
                      ? json_schema_to_grammar(ordered_spec["schema"])
                      : json_object_grammar();
    } catch (const InputError& e) {
      throw invalid_value("response_format", std::string("response_format.json_schema.schema: ") + e.what(), "invalid_schema");
    }
  } else {
    throw invalid_value("response_format", "response_format.type must be 'text', 'json_object' or 'json_schema', got " +
                                               shown(format->value("type", json())));
  }
  r.json_reply = true;
  r.grammar_field = "response_format";
}

/// tools, tool_choice and parallel_tool_calls.
inline void read_tools(const json& body, const nlohmann::ordered_json& ordered, CompletionRequest& r) {
  const json* tools = field(body, "tools");
  if (tools) {
    if (!tools->is_array() || tools->size() > 128)
      throw invalid_value("tools", "'tools' must be an array of at most 128 tools", "invalid_type");
    for (std::size_t i = 0; i < tools->size(); ++i) {
      const json& tool = (*tools)[i];
      const std::string where = "tools[" + std::to_string(i) + "]";
      if (!tool.is_object() || tool.value("type", json()) != "function" || !tool.contains("function") || !tool["function"].is_object())
        throw invalid_value("tools", where + " must be {\"type\": \"function\", \"function\": {...}}");
      refuse_unknown(tool, {"type", "function"});
      const json& function = tool["function"];
      refuse_unknown(function, {"name", "description", "parameters", "strict"});
      ToolSpec spec;
      spec.name = string(function, "name").value_or("");
      if (!is_api_name(spec.name))
        throw invalid_value("tools", where + ".function.name must be 1 to 64 of a-z, A-Z, 0-9, _ and -");
      for (const ToolSpec& other : r.tools)
        if (other.name == spec.name) throw invalid_value("tools", "two tools are named " + spec.name);
      spec.description = string(function, "description").value_or("");
      boolean(function, "strict");
      if (function.contains("parameters") && !function["parameters"].is_null()) {
        if (!function["parameters"].is_object()) throw invalid_value("tools", where + ".function.parameters must be a JSON Schema object");
        spec.parameters = ordered.at("tools").at(i).at("function").at("parameters");
      }
      r.tools.push_back(std::move(spec));
    }
  }
  ToolChoice& choice = r.tool_choice;
  choice.parallel = boolean(body, "parallel_tool_calls").value_or(true);
  if (const json* c = field(body, "tool_choice")) {
    if (*c == "none") choice.mode = ToolChoice::Mode::None;
    else if (*c == "auto") choice.mode = ToolChoice::Mode::Auto;
    else if (*c == "required") choice.mode = ToolChoice::Mode::Required;
    else if (c->is_object() && c->value("type", json()) == "function" && c->contains("function") && (*c)["function"].is_object() &&
             (*c)["function"].contains("name") && (*c)["function"]["name"].is_string()) {
      choice.mode = ToolChoice::Mode::Named;
      choice.name = (*c)["function"]["name"].get<std::string>();
      bool known = false;
      for (const ToolSpec& t : r.tools) known |= t.name == choice.name;
      if (!known) throw invalid_value("tool_choice", "tool_choice names " + shown(json(choice.name)) + ", which is not in 'tools'");
    } else {
      throw invalid_value("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}, got " + shown(*c));
    }
    if (r.tools.empty() && choice.mode != ToolChoice::Mode::None && choice.mode != ToolChoice::Mode::Auto)
      throw invalid_value("tool_choice", "'tool_choice' asks for a tool call but 'tools' is empty");
  }
  if (r.tools.empty()) return;
  if (!r.grammar.empty())
    throw invalid_value("tools", "'tools' cannot be combined with '" + r.grammar_field + "': both decide the reply's form");
  try {
    r.grammar = tool_reply_grammar(r.tools, choice);
  } catch (const InputError& e) {
    throw invalid_value("tools", std::string("a tool's parameters: ") + e.what(), "invalid_schema");
  }
  r.grammar_field = "tools";
}

/// A message's content: a string, or text parts joined with newlines.
inline std::string message_content(const json& message, std::size_t index) {
  const std::string where = "messages[" + std::to_string(index) + "].content";
  const json* content = field(message, "content");
  if (!content) throw invalid_value(where, where + " is missing");
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) throw invalid_value(where, where + " must be a string or an array of text parts", "invalid_type");
  std::string text;
  for (const json& part : *content) {
    if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") || !part["text"].is_string())
      throw invalid_value(where, where + ": only parts {\"type\": \"text\", \"text\": ...} are supported, got " + shown(part));
    text += (text.empty() ? "" : "\n") + part["text"].get<std::string>();
  }
  return text;
}

}  // namespace detail

/// POST /v1/chat/completions. Throws ApiError.
inline CompletionRequest parse_chat_request(const std::string& text, const RequestLimits& limits) {
  using detail::json;
  const json body = detail::parse_object(text);
  detail::refuse_unknown(body, {"messages", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
                                "min_p", "seed", "stop", "n", "presence_penalty", "frequency_penalty", "repetition_penalty",
                                "logprobs", "top_logprobs", "stream", "stream_options", "ignore_eos", "user", "logit_bias",
                                "metadata", "store", "service_tier", "parallel_tool_calls", "tools", "tool_choice", "functions",
                                "function_call", "response_format", "modalities", "audio", "prediction", "reasoning_effort",
                                "web_search_options", "grammar"});
  CompletionRequest r = detail::read_common(body, limits);
  if (const auto n = detail::integer(body, "max_completion_tokens", 1, limits.max_tokens)) r.params.max_tokens = *n;
  if (detail::boolean(body, "logprobs").value_or(false)) r.params.logprobs = detail::integer(body, "top_logprobs", 0, 20).value_or(0);
  else if (detail::field(body, "top_logprobs")) throw invalid_value("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  // The deprecated functions / function_call: only their neutral values (tools replace them).
  detail::neutral_only(body, "functions", [](const json& v) { return v.is_array() && v.empty(); });
  detail::neutral_only(body, "function_call", [](const json& v) { return v == "none" || v == "auto"; });
  detail::neutral_only(body, "modalities", [](const json& v) { return v == json::array({"text"}); });
  const bool structured = detail::field(body, "response_format") || detail::field(body, "tools");
  const nlohmann::ordered_json ordered = structured ? detail::parse_ordered(text) : nlohmann::ordered_json();
  detail::read_response_format(body, ordered, r);
  detail::read_tools(body, ordered, r);
  for (const char* unsupported : {"audio", "prediction", "reasoning_effort", "web_search_options"})
    detail::neutral_only(body, unsupported, [](const json&) { return false; });
  // metadata, store and service_tier change nothing here: accepted, ignored.

  const json* messages = detail::field(body, "messages");
  if (!messages || !messages->is_array() || messages->empty())
    throw invalid_value("messages", "'messages' must be a non-empty array of messages");
  const bool with_tools = !r.tools.empty();
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw invalid_value(where, where + " must be an object", "invalid_type");
    detail::refuse_unknown(m, {"role", "content", "name", "refusal", "tool_calls", "tool_call_id"});
    detail::string(m, "name");
    detail::neutral_only(m, "refusal", [](const json&) { return false; });
    std::string role = detail::string(m, "role").value_or("");
    if (role == "developer") role = "system";  // OpenAI's newer name for the system role
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw invalid_value(where + ".role", where + ".role must be 'system', 'developer', 'user', 'assistant' or 'tool', got " +
                                               detail::shown(m.value("role", json())));
    const json* calls = detail::field(m, "tool_calls");
    if (calls && role != "assistant") throw invalid_value(where, where + ": only assistant messages have tool_calls");
    if (detail::field(m, "tool_call_id") && role != "tool") throw invalid_value(where, where + ": only tool messages have tool_call_id");
    if ((role == "tool" || (calls && !calls->empty())) && !with_tools)
      throw invalid_value(where, where + " carries tool calls or results: give the request's 'tools' too");
    if (role == "tool") {
      // Results are one user turn of JSON lines, merged with the results and user text next to it.
      const auto id = detail::string(m, "tool_call_id");
      if (!id) throw invalid_value(where, where + ".tool_call_id is missing");
      const std::string line = render_tool_result(*id, detail::message_content(m, i));
      if (!r.messages.empty() && r.messages.back().role == "user") r.messages.back().content += "\n" + line;
      else r.messages.push_back({"user", line});
      continue;
    }
    if (role == "assistant" && calls && !calls->empty()) {
      if (!calls->is_array()) throw invalid_value(where + ".tool_calls", where + ".tool_calls must be an array");
      if (detail::field(m, "content") && !detail::message_content(m, i).empty())
        throw invalid_value(where + ".content", where + ": an assistant turn is text or tool calls here, not both");
      std::vector<ToolCall> parsed;
      for (const json& call : *calls) {
        const bool ok = call.is_object() && call.value("type", json("function")) == "function" && call.contains("function") &&
                        call["function"].is_object() && call["function"].value("name", json()).is_string() &&
                        call["function"].value("arguments", json()).is_string();
        if (!ok) throw invalid_value(where + ".tool_calls", "each tool call must be {id, type: 'function', function: {name, arguments}}");
        parsed.push_back({call.value("id", ""), call["function"]["name"].get<std::string>(), call["function"]["arguments"].get<std::string>()});
      }
      r.messages.push_back({"assistant", render_tool_calls(parsed)});
      continue;
    }
    std::string content = detail::message_content(m, i);
    if (role == "user" && !r.messages.empty() && r.messages.back().role == "user" && i > 0 && (*messages)[i - 1].value("role", json()) == "tool")
      r.messages.back().content += "\n" + content;
    else if (role == "assistant" && with_tools)
      r.messages.push_back({role, render_tool_content(content)});  // the model wrote text replies as JSON
    else
      r.messages.push_back({role, std::move(content)});
  }
  if (with_tools) {
    const std::string description = describe_tools(r.tools);
    if (r.messages.front().role == "system") r.messages.front().content += "\n\n" + description;
    else r.messages.insert(r.messages.begin(), {"system", description});
  }
  return r;
}

/// POST /v1/completions. Throws ApiError.
inline CompletionRequest parse_completion_request(const std::string& text, const RequestLimits& limits) {
  using detail::json;
  const json body = detail::parse_object(text);
  detail::refuse_unknown(body, {"prompt", "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "n",
                                "presence_penalty", "frequency_penalty", "repetition_penalty", "logprobs", "stream",
                                "stream_options", "ignore_eos", "user", "logit_bias", "echo", "suffix", "best_of", "grammar"});
  CompletionRequest r = detail::read_common(body, limits);
  if (const auto top = detail::integer(body, "logprobs", 0, 5)) r.params.logprobs = *top;
  detail::neutral_only(body, "echo", [](const json& v) { return v == false; });
  detail::neutral_only(body, "suffix", [](const json& v) { return v == ""; });
  detail::neutral_only(body, "best_of", [](const json& v) { return v == 1; });

  const json* prompt = detail::field(body, "prompt");
  if (!prompt) throw invalid_value("prompt", "'prompt' is required");
  const bool one_string = prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string();
  if (prompt->is_string() || one_string) {
    r.prompt = (one_string ? (*prompt)[0] : *prompt).get<std::string>();
    if (r.prompt.empty()) throw invalid_value("prompt", "'prompt' is empty");
    return r;
  }
  if (!prompt->is_array() || prompt->empty())
    throw invalid_value("prompt", "'prompt' must be a non-empty string or array of token ids (one prompt per request)");
  for (const json& id : *prompt) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= limits.vocab_size)
      throw invalid_value("prompt", "prompt token " + detail::shown(id) + " is not an id in [0, " + std::to_string(limits.vocab_size) + ")");
    r.prompt_ids.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
  }
  return r;
}

/// POST /tokenize: {"content": text, "add_special": false, "with_pieces": false} or, to see a
/// chat's rendering, {"messages": [...], "add_generation_prompt": true}.
struct TokenizeRequest {
  std::string content;
  std::vector<ChatMessage> messages;
  bool chat = false, add_special = false, with_pieces = false, add_generation_prompt = true;
};

inline TokenizeRequest parse_tokenize_request(const std::string& text, const RequestLimits& limits) {
  using detail::json;
  const json body = detail::parse_object(text);
  detail::refuse_unknown(body, {"content", "messages", "add_special", "with_pieces", "add_generation_prompt"});
  TokenizeRequest r;
  r.add_special = detail::boolean(body, "add_special").value_or(false);
  r.with_pieces = detail::boolean(body, "with_pieces").value_or(false);
  r.add_generation_prompt = detail::boolean(body, "add_generation_prompt").value_or(true);
  if (detail::field(body, "messages")) {
    json chat = body;
    chat.erase("add_special");
    chat.erase("with_pieces");
    chat.erase("add_generation_prompt");
    r.messages = parse_chat_request(dump_json(chat), limits).messages;
    r.chat = true;
    return r;
  }
  const auto content = detail::string(body, "content");
  if (!content) throw invalid_value("content", "give 'content' (a string) or 'messages'");
  r.content = *content;
  return r;
}

/// POST /detokenize: {"tokens": [ids]}; every id must be in the vocabulary.
inline std::vector<std::int32_t> parse_detokenize_request(const std::string& text, const RequestLimits& limits) {
  using detail::json;
  const json body = detail::parse_object(text);
  detail::refuse_unknown(body, {"tokens"});
  const json* tokens = detail::field(body, "tokens");
  if (!tokens || !tokens->is_array()) throw invalid_value("tokens", "'tokens' must be an array of token ids", "invalid_type");
  std::vector<std::int32_t> ids;
  for (const json& id : *tokens) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= limits.vocab_size)
      throw invalid_value("tokens", "token " + detail::shown(id) + " is not an id in [0, " + std::to_string(limits.vocab_size) + ")");
    ids.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
  }
  return ids;
}

}  // namespace glrnn::server
