#pragma once
// Gemma's chat turn format (docs/formats.md §4.2):
//   <start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n
// The model ends its turn with <end_of_turn>. With a fixed-size state only the new turn is
// prefilled; the history lives in the state.

#include <string>  // std::string

namespace glrnn {

/// Trims the whitespace the template trims around a message.
inline std::string trim_message(const std::string& text) {
  const char* space = " \t\n\r\f\v";
  const std::size_t begin = text.find_first_not_of(space);
  if (begin == std::string::npos) return {};
  return text.substr(begin, text.find_last_not_of(space) - begin + 1);
}

/// The text of one user turn followed by the prompt for the model's reply.
inline std::string gemma_user_turn(const std::string& message) {
  return "<start_of_turn>user\n" + trim_message(message) + "<end_of_turn>\n<start_of_turn>model\n";
}

/// What closes a model turn in the history: <end_of_turn> and a newline.
inline const char* gemma_turn_end() { return "<end_of_turn>\n"; }

}  // namespace glrnn
