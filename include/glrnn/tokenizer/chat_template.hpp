#pragma once
// Gemma's chat turn format (docs/formats.md §4.2):
//   <start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n
// The model ends its turn with <end_of_turn>. With a fixed-size state only the new turn is
// prefilled; the history lives in the state.

#include <cstdint>  // std::int32_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "glrnn/tokenizer/tokenizer.hpp"

namespace glrnn {

/// Trims the whitespace the template trims around a message.
inline std::string trim_message(const std::string& text) {
  const char* space = " \t\n\r\f\v";
  const std::size_t begin = text.find_first_not_of(space);
  if (begin == std::string::npos) return {};
  return text.substr(begin, text.find_last_not_of(space) - begin + 1);
}

/// What closes a model turn in the history: <end_of_turn> and a newline.
inline const char* gemma_turn_end() { return "<end_of_turn>\n"; }

/// The ids of one user turn and the prompt for the model's reply, after `closing` (template text
/// that ends the model's previous turn, or nothing), with <bos> first when `add_bos`. The message
/// is read as plain text, so a user who types "<end_of_turn>" gets those characters, not the marker.
inline std::vector<std::int32_t> encode_gemma_user_turn(const Tokenizer& tokenizer, const std::string& closing,
                                                        const std::string& message, bool add_bos) {
  std::vector<std::int32_t> ids = tokenizer.encode(closing + "<start_of_turn>user\n", add_bos);
  for (std::int32_t id : tokenizer.encode(trim_message(message), false, /*match_added_tokens=*/false)) ids.push_back(id);
  for (std::int32_t id : tokenizer.encode("<end_of_turn>\n<start_of_turn>model\n", false)) ids.push_back(id);
  return ids;
}

}  // namespace glrnn
