#pragma once
// The server's error: an HTTP status and OpenAI's error object,
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// Every request the server refuses ends in one of these; none ends the process.

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string
#include <utility>    // std::move

#include <nlohmann/json.hpp>

namespace glrnn::server {

class ApiError : public std::runtime_error {
 public:
  /// code: a short machine-readable reason ("invalid_value", "context_length_exceeded", ...);
  /// param: the request field at fault, if any.
  ApiError(int status, std::string code, const std::string& message, std::string param = {})
      : std::runtime_error(message), status_(status), code_(std::move(code)), param_(std::move(param)) {}

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
  std::string code_, param_;
};

/// A 400 for a request field with a value the server cannot take.
inline ApiError invalid_value(const std::string& param, const std::string& message, std::string code = "invalid_value") {
  return ApiError(400, std::move(code), message, param);
}

/// JSON text that never throws: bytes that are not UTF-8 become U+FFFD.
inline std::string dump_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace glrnn::server
