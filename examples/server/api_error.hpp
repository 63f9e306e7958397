#pragma once
// The server's error: an HTTP status and OpenAI's error object,
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// Every request the server refuses ends in one of these; none ends the process.

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string, std::to_string
#include <utility>    // std::move

#include <nlohmann/json.hpp>

namespace glrnn::server {

class ApiError : public std::runtime_error {
 public:
  /// code: a short machine-readable reason ("invalid_value", "context_length_exceeded", ...);
  /// param: the request field at fault, if any.
  ApiError(int status, std::string code, std::string message, std::string param = {})
      : std::runtime_error(std::string()),
        status_(status),
        code_(std::move(code)),
        param_(std::move(param)),
        message_(std::move(message)) {}

  /// The message is a string of this object's own, not runtime_error's: copies of that one share
  /// it through a reference count kept in libstdc++, where ThreadSanitizer cannot see it, so an
  /// error made on the scheduler's thread and read on the HTTP thread was reported as a race.
  const char* what() const noexcept override { return message_.c_str(); }

  int status() const { return status_; }
  const std::string& code() const { return code_; }
  /// OpenAI's two families: the client's fault or the server's.
  const char* type() const { return status_ < 500 ? "invalid_request_error" : "server_error"; }

  nlohmann::json to_json() const {
    return {{"error",
             {{"message", what()}, {"type", type()}, {"param", param_.empty() ? nlohmann::json() : nlohmann::json(param_)},
              {"code", code_}}}};
  }

 private:
  int status_;
  std::string code_, param_, message_;
};

/// A 400 for a request field with a value the server cannot take.
inline ApiError invalid_value(const std::string& param, const std::string& message, std::string code = "invalid_value") {
  return ApiError(400, std::move(code), message, param);
}

/// How deep JSON from a client may nest: OpenAI's bodies need 6 levels (a message's content
/// parts); the limit keeps every later walk of the value (copies, comparisons, dumps) shallow.
constexpr int kMaxJsonDepth = 32;

/// Parses JSON from a client (`what` names it in errors, `param` is the field at fault) with
/// nlohmann's iterative parser, stopping at the first value deeper than kMaxJsonDepth (its
/// callback sees each value's depth as it opens). Throws ApiError 400 invalid_json.
template <class Json = nlohmann::json>
Json parse_client_json(const std::string& text, const std::string& what, const std::string& param = {}) {
  try {
    return Json::parse(text, [&](int depth, typename Json::parse_event_t event, Json&) {
      if (depth >= kMaxJsonDepth && (event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start))
        throw ApiError(400, "invalid_json", what + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels", param);
      return true;
    });  // also refuses strings that are not UTF-8
  } catch (const nlohmann::json::exception& e) {  // a syntax error, or a number out of a double's range (1e999)
    throw ApiError(400, "invalid_json", what + " is not valid JSON: " + e.what(), param);
  }
}

/// JSON text that never throws: bytes that are not UTF-8 become U+FFFD.
inline std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace glrnn::server
