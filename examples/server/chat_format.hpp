#pragma once
// Rendering a chat to token ids, in one of two formats chosen from the tokenizer:
//
//   gemma  when <start_of_turn> and <end_of_turn> are tokens (RecurrentGemma -it checkpoints), as
//          Gemma's Hugging Face template renders it: the system text and "\n\n" open the first
//          user turn, assistant turns are model turns, contents are trimmed:
//            <bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n
//            <start_of_turn>model\n{assistant}<end_of_turn>\n<start_of_turn>model\n
//   plain  otherwise (the demo models), lines of text; the system text joins the first user turn:
//            <bos>User: {system}\n\n{user}\nAssistant: {assistant}\nUser: {user}\nAssistant:
//          An assistant content is kept as sent, with a space put before it unless it starts
//          with whitespace; a user content is trimmed.
//
// The template's own text and each content are tokenized separately (contents with added tokens
// read as plain text, so a user cannot type a turn marker). So the rendering of a conversation
// is always the rendering of its first turns followed by the ids of the rest:
//   render(messages + {assistant, text}, false) == render(messages, true) + reply_tail(text)
// which is what lets the state cache find a whole conversation as the prefix of the next turn.

#include <algorithm>  // std::equal
#include <cstdint>    // std::int32_t
#include <string>     // std::string
#include <vector>     // std::vector

#include <glrnn/core/error.hpp>
#include <glrnn/tokenizer/chat_template.hpp>
#include <glrnn/tokenizer/tokenizer.hpp>

namespace glrnn::server {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

class ChatFormat {
 public:
  explicit ChatFormat(const Tokenizer& tokenizer)
      : tokenizer_(&tokenizer),
        gemma_(tokenizer.token_id("<start_of_turn>") >= 0 && tokenizer.token_id("<end_of_turn>") >= 0) {
    // The specials the tokenizer's template puts before a text (<bos>), taken from the template
    // itself so that no id is hard-coded.
    const std::vector<std::int32_t> with = tokenizer.encode("a", true), without = tokenizer.encode("a", false);
    for (std::size_t i = 0; i + without.size() <= with.size(); ++i)
      if (std::equal(without.begin(), without.end(), with.begin() + static_cast<std::ptrdiff_t>(i))) {
        prefix_.assign(with.begin(), with.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
  }

  const char* name() const { return gemma_ ? "gemma" : "plain"; }
  /// Tokens that end a reply besides the model's end-of-sequence ids: <end_of_turn> for Gemma.
  std::vector<std::int32_t> stop_tokens() const {
    if (!gemma_) return {};
    return {tokenizer_->token_id("<end_of_turn>")};
  }

  /// The conversation's ids; add_generation_prompt opens the model's turn after it. With
  /// `turn_ends`, the number of ids up to the end of each assistant message is appended to it:
  /// the keys under which the replies were cached. Throws InputError when the roles are not: an
  /// optional system message, then user and assistant alternating from a user message (ending
  /// with one when add_generation_prompt).
  std::vector<std::int32_t> render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                   std::vector<std::size_t>* turn_ends = nullptr) const {
    const bool has_system = !messages.empty() && messages.front().role == "system";
    const std::size_t first = has_system ? 1 : 0;
    GLRNN_CHECK(messages.size() > first, InputError, "the conversation needs a user message");
    for (std::size_t i = first; i < messages.size(); ++i) {
      const char* expected = (i - first) % 2 == 0 ? "user" : "assistant";
      GLRNN_CHECK(messages[i].role == expected, InputError,
                  "message " + std::to_string(i) + " has role '" + messages[i].role + "' where '" + expected +
                      "' is expected: after an optional first system message, user and assistant messages alternate, "
                      "starting with the user");
    }
    GLRNN_CHECK(!add_generation_prompt || messages.back().role == "user", InputError,
                "the last message must be the user's, for the model to reply to");
    std::vector<std::int32_t> ids = prefix_;
    for (std::size_t i = first; i < messages.size(); ++i) {
      const std::string& text = messages[i].content;
      if (messages[i].role == "assistant") {
        append_template(ids, model_turn());
        for (std::int32_t id : reply_tail(text)) ids.push_back(id);
        if (turn_ends) turn_ends->push_back(ids.size());
        continue;
      }
      const std::string user = trim_message(text);
      append_template(ids, gemma_ ? "<start_of_turn>user\n" : "User: ");
      append_content(ids, i == first && has_system ? messages.front().content + "\n\n" + user : user);
      append_template(ids, gemma_ ? "<end_of_turn>\n" : "\n");
    }
    if (add_generation_prompt) append_template(ids, model_turn());
    return ids;
  }

  /// The ids after the generation prompt of an assistant turn with this text, its close included.
  std::vector<std::int32_t> reply_tail(const std::string& text) const {
    std::vector<std::int32_t> ids;
    if (gemma_) {
      append_content(ids, trim_message(text));
      append_template(ids, gemma_turn_end());
    } else {
      const bool spaced = !text.empty() && (text[0] == ' ' || text[0] == '\n' || text[0] == '\t');
      append_content(ids, spaced || text.empty() ? text : " " + text);
      append_template(ids, "\n");
    }
    return ids;
  }

 private:
  const char* model_turn() const { return gemma_ ? "<start_of_turn>model\n" : "Assistant:"; }
  void append_template(std::vector<std::int32_t>& ids, const std::string& text) const {
    for (std::int32_t id : tokenizer_->encode(text, /*add_special=*/false)) ids.push_back(id);
  }
  void append_content(std::vector<std::int32_t>& ids, const std::string& text) const {
    for (std::int32_t id : tokenizer_->encode(text, /*add_special=*/false, /*match_added_tokens=*/false)) ids.push_back(id);
  }

  const Tokenizer* tokenizer_;
  bool gemma_;
  std::vector<std::int32_t> prefix_;  // e.g. <bos>
};

}  // namespace glrnn::server
