#pragma once
// The response bodies of the completion endpoints, shaped as OpenAI's: chat.completion and
// text_completion objects, their streamed chunks, usage, and the two logprobs layouts (chat:
// a "content" list of token entries; completions: parallel arrays).

#include <cstdint>  // std::int32_t, std::int64_t
#include <string>   // std::string
#include <vector>   // std::vector

#include <nlohmann/json.hpp>

#include <glrnn/tokenizer/tokenizer.hpp>

#include "job.hpp"
#include "tool_calls.hpp"

namespace glrnn::server {

/// Names the response: its id, when it was made, which model made it, and which endpoint.
struct ResponseHeader {
  std::string id;
  std::int64_t created = 0;
  std::string model;
  bool chat = true;
  bool logprobs = false;  // the request asked for log-probabilities (null otherwise)
};

/// A whole choice, for a response that is not streamed.
struct ChoiceResult {
  std::string text;
  std::vector<TokenInfo> tokens;
  std::string finish_reason;
  std::vector<ToolCall> tool_calls;  // a reply that calls tools has no text
};

class OpenAiJson {
 public:
  using json = nlohmann::json;
  explicit OpenAiJson(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  static json usage(const Usage& u) {
    return {{"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"total_tokens", u.prompt_tokens + u.completion_tokens},
            {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
  }

  /// The non-streamed response.
  json response(const ResponseHeader& h, const std::vector<ChoiceResult>& choices, const Usage& u) const {
    json list = json::array();
    for (std::size_t i = 0; i < choices.size(); ++i) {
      const ChoiceResult& c = choices[i];
      json choice = {{"index", i}, {"finish_reason", c.finish_reason}, {"logprobs", logprobs(h, c.tokens)}};
      if (h.chat && !c.tool_calls.empty()) choice["message"] = {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", tool_calls(c.tool_calls, false)}};
      else if (h.chat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      else choice["text"] = c.text;
      list.push_back(std::move(choice));
    }
    json out = top(h, false);
    out["choices"] = std::move(list);
    out["usage"] = usage(u);
    return out;
  }

  /// One streamed chunk for one delta; `first` adds the assistant role (chat).
  json chunk(const ResponseHeader& h, const ChoiceDelta& d, bool first) const {
    json choice = {{"index", d.index},
                   {"finish_reason", d.finish_reason.empty() ? json() : json(d.finish_reason)},
                   {"logprobs", d.tokens.empty() ? json() : logprobs(h, d.tokens)}};
    if (h.chat) {
      choice["delta"] = json::object();
      if (first) choice["delta"]["role"] = "assistant";
      if (!d.text.empty() || first) choice["delta"]["content"] = d.text;
    } else {
      choice["text"] = d.text;
    }
    json out = top(h, true);
    out["choices"] = json::array({std::move(choice)});
    return out;
  }

  /// The chunk that carries a streamed reply's tool calls, whole, with its finish reason.
  json tool_call_chunk(const ResponseHeader& h, std::int64_t index, const std::vector<ToolCall>& calls) const {
    json choice = {{"index", index}, {"finish_reason", "tool_calls"}, {"logprobs", nullptr}};
    choice["delta"] = {{"tool_calls", tool_calls(calls, true)}};
    json out = top(h, true);
    out["choices"] = json::array({std::move(choice)});
    return out;
  }

  /// The last chunk when the client asked for usage: no choices, the usage.
  json usage_chunk(const ResponseHeader& h, const Usage& u) const {
    json out = top(h, true);
    out["choices"] = json::array();
    out["usage"] = usage(u);
    return out;
  }

 private:
  json top(const ResponseHeader& h, bool chunk) const {
    return {{"id", h.id},
            {"object", h.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
            {"created", h.created},
            {"model", h.model},
            {"system_fingerprint", nullptr}};
  }

  static json tool_calls(const std::vector<ToolCall>& calls, bool streamed) {
    json list = json::array();
    for (std::size_t i = 0; i < calls.size(); ++i) {
      json call = {{"id", calls[i].id}, {"type", "function"}, {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
      if (streamed) call["index"] = i;
      list.push_back(std::move(call));
    }
    return list;
  }

  /// A token's text and bytes: a byte-fallback token is its one byte, which may be part of a
  /// character (the text then shows U+FFFD, the bytes are exact).
  void token_text(std::int32_t id, std::string& text, json& bytes) const {
    const int byte = tokenizer_->byte_value(id);
    text = byte >= 0 ? std::string(1, static_cast<char>(byte)) : tokenizer_->decode({id});
    bytes = json::array();
    for (unsigned char c : text) bytes.push_back(c);
  }

  json logprobs(const ResponseHeader& h, const std::vector<TokenInfo>& tokens) const {
    if (!h.logprobs) return nullptr;
    std::string text;
    json bytes;
    if (h.chat) {
      json content = json::array();
      for (const TokenInfo& t : tokens) {
        token_text(t.id, text, bytes);
        json entry = {{"token", text}, {"logprob", t.logprob}, {"bytes", bytes}, {"top_logprobs", json::array()}};
        for (const TokenLogprob& alt : t.top) {
          token_text(alt.id, text, bytes);
          entry["top_logprobs"].push_back({{"token", text}, {"logprob", alt.logprob}, {"bytes", bytes}});
        }
        content.push_back(std::move(entry));
      }
      return {{"content", std::move(content)}};
    }
    json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
                {"text_offset", json::array()}};
    std::size_t offset = 0;
    for (const TokenInfo& t : tokens) {
      token_text(t.id, text, bytes);
      out["tokens"].push_back(text);
      out["token_logprobs"].push_back(t.logprob);
      out["text_offset"].push_back(offset);
      offset += text.size();
      json top = json::object();
      for (const TokenLogprob& alt : t.top) {
        token_text(alt.id, text, bytes);
        top[text] = alt.logprob;
      }
      out["top_logprobs"].push_back(std::move(top));
    }
    return out;
  }

  const Tokenizer* tokenizer_;
};

}  // namespace glrnn::server
