#pragma once
// HTTP/1.1 requests read incrementally and strictly (RFC 9112), with every size bounded: the
// head, the number of header fields, the body in either framing (Content-Length or chunked,
// counted as it arrives). What is ambiguous between two readers of the same bytes (a proxy in
// front and this server) is refused rather than guessed: duplicate or conflicting lengths, a
// length beside chunked framing, folded header lines, whitespace before a field's colon.
// No sockets here: the transport (http_server.hpp) feeds bytes, and the fuzz target does too.

#include <algorithm>    // std::min
#include <cctype>       // std::tolower
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint64_t
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::pair, std::move
#include <vector>       // std::vector

namespace glrnn::server {

struct HttpLimits {
  std::size_t max_head_bytes = 16 * 1024;      // request line and header fields together
  std::size_t max_header_fields = 64;           // trailers of a chunked body included
  std::size_t max_body_bytes = 4 * 1024 * 1024; // decoded body, either framing
};

struct HttpRequest {
  std::string method, target, path;  // path: the target without its query
  int minor_version = 1;             // HTTP/1.minor_version
  std::vector<std::pair<std::string, std::string>> fields;  // names in lower case, in order
  std::string body;
  bool keep_alive = true;     // HTTP/1.1 without "Connection: close"; HTTP/1.0 never
  bool expects_continue = false;

  /// The first field of that (lower-case) name, or nullptr.
  const std::string* field(std::string_view name) const {
    for (const auto& f : fields)
      if (f.first == name) return &f.second;
    return nullptr;
  }
};

/// Why a request could not be read: the status to answer with and a message for the client.
struct HttpError {
  int status = 400;
  std::string message;
};

namespace detail {

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// RFC 9110 token characters (method names, field names).
inline bool is_token_char(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

inline bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

/// A field value's characters: visible ASCII, spaces, tabs and obs-text; no control bytes.
inline bool is_field_value(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// A decimal length of at most 18 digits (no sign, no spaces), or nothing.
inline std::optional<std::uint64_t> decimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

/// Whether a comma-separated field value lists `token` (case-insensitive), as Connection does.
inline bool lists(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (lower(trim(value.substr(0, comma))) == token) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace detail

/// Reads one request from bytes as they arrive. feed() returns how many bytes it used: after
/// done() the rest belong to the next request (pipelining); after failed() the connection is
/// answered with error() and closed.
class RequestReader {
 public:
  explicit RequestReader(HttpLimits limits = {}) : limits_(limits) {}

  std::size_t feed(std::string_view bytes) {
    std::size_t used = 0;
    while (used < bytes.size() && stage_ != Stage::Done && stage_ != Stage::Failed) used += step(bytes.substr(used));
    return used;
  }

  bool done() const { return stage_ == Stage::Done; }
  bool failed() const { return stage_ == Stage::Failed; }
  /// The head has been read and a body is still to come (the moment for "100 Continue").
  bool reading_body() const { return stage_ == Stage::Body || stage_ == Stage::ChunkSize || stage_ == Stage::ChunkData ||
                                     stage_ == Stage::ChunkEnd || stage_ == Stage::Trailers; }
  /// Some bytes of a request have arrived (an idle connection has none).
  bool started() const { return stage_ != Stage::Head || !line_.empty() || !request_.method.empty(); }
  const HttpError& error() const { return error_; }
  const HttpRequest& request() const { return request_; }
  HttpRequest take() {
    HttpRequest r = std::move(request_);
    *this = RequestReader(limits_);
    return r;
  }

 private:
  enum class Stage { Head, Body, ChunkSize, ChunkData, ChunkEnd, Trailers, Done, Failed };

  std::size_t fail(int status, std::string message, std::size_t used) {
    stage_ = Stage::Failed;
    error_ = {status, std::move(message)};
    return used;
  }

  /// Bytes up to the next LF into line_; true with a whole line (its CR LF removed).
  bool take_line(std::string_view bytes, std::size_t& used) {
    const std::size_t lf = bytes.find('\n');
    const std::size_t n = lf == std::string_view::npos ? bytes.size() : lf + 1;
    line_.append(bytes.data(), n);
    used = n;
    if (lf == std::string_view::npos) return false;
    line_.pop_back();
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    return true;
  }

  std::size_t step(std::string_view bytes) {
    switch (stage_) {
      case Stage::Head: return read_head(bytes);
      case Stage::Body: return read_body(bytes, Stage::Done);
      case Stage::ChunkSize: return read_chunk_size(bytes);
      case Stage::ChunkData: return read_body(bytes, Stage::ChunkEnd);
      case Stage::ChunkEnd: {  // exactly CR LF after a chunk's data
        line_ += bytes[0];
        if (line_ == "\r") return 1;
        if (line_ != "\r\n") return fail(400, "a chunk is longer than its size says", 1);
        line_.clear();
        stage_ = Stage::ChunkSize;
        return 1;
      }
      case Stage::Trailers: return read_trailer(bytes);
      case Stage::Done:
      case Stage::Failed: break;
    }
    return bytes.size();
  }

  /// Up to remaining_ bytes of the body (or of its chunk), then the stage after it.
  std::size_t read_body(std::string_view bytes, Stage after) {
    const std::size_t n = std::min<std::size_t>(bytes.size(), remaining_);
    request_.body.append(bytes.data(), n);
    remaining_ -= n;
    if (remaining_ == 0) stage_ = after;
    return n;
  }

  std::size_t read_head(std::string_view bytes) {
    std::size_t used = 0;
    const bool whole = take_line(bytes, used);
    head_bytes_ += used;
    if (head_bytes_ > limits_.max_head_bytes)
      return fail(431, "the request head is over " + std::to_string(limits_.max_head_bytes) + " bytes", used);
    if (!whole) return used;
    std::string line = std::move(line_);
    line_.clear();
    if (request_.method.empty()) {
      if (!line.empty()) read_request_line(line);  // RFC 9112 2.2: empty lines before a request are ignored
      return used;
    }
    if (line.empty()) return finish_head(used);
    read_field(line, used);
    return used;
  }

  void read_request_line(const std::string& line) {
    const std::size_t sp1 = line.find(' '), sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos) return void(fail(400, "a malformed request line", 0));
    const std::string method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1), version = line.substr(sp2 + 1);
    if (!detail::is_token(method) || target.empty()) return void(fail(400, "a malformed request line", 0));
    if (version == "HTTP/1.1" || version == "HTTP/1.0") {
      request_.minor_version = version.back() - '0';
    } else if (version.rfind("HTTP/", 0) == 0 && version.size() == 8 && version[6] == '.') {
      return void(fail(505, "this server speaks HTTP/1.1 (and 1.0), not " + version, 0));
    } else {
      return void(fail(400, "a malformed request line", 0));
    }
    for (char c : target)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return void(fail(400, "a malformed request target", 0));
    if (target[0] != '/' && !(method == "OPTIONS" && target == "*"))
      return void(fail(400, "the request target must be a path (origin form)", 0));
    request_.method = method;
    request_.target = target;
    request_.path = target.substr(0, target.find('?'));
  }

  /// One "name: value" line of the head or of a chunked body's trailers.
  void read_field(const std::string& line, std::size_t used) {
    if (line[0] == ' ' || line[0] == '\t') return void(fail(400, "folded header lines are not accepted", used));
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos || !detail::is_token(std::string_view(line).substr(0, colon)))
      return void(fail(400, "a malformed header field", used));
    const std::string_view value = detail::trim(std::string_view(line).substr(colon + 1));
    if (!detail::is_field_value(value)) return void(fail(400, "a header field holds control characters", used));
    if (++field_count_ > limits_.max_header_fields)
      return void(fail(431, "more than " + std::to_string(limits_.max_header_fields) + " header fields", used));
    if (stage_ == Stage::Head) request_.fields.emplace_back(detail::lower(std::string_view(line).substr(0, colon)), std::string(value));
  }

  std::size_t finish_head(std::size_t used) {
    std::size_t lengths = 0, encodings = 0, hosts = 0;
    const std::string* length = nullptr;
    const std::string* encoding = nullptr;
    for (const auto& [name, value] : request_.fields) {
      if (name == "content-length") ++lengths, length = &value;
      if (name == "transfer-encoding") ++encodings, encoding = &value;
      if (name == "host") ++hosts;
    }
    if (lengths > 1) return fail(400, "more than one Content-Length", used);
    if (encodings > 1) return fail(400, "more than one Transfer-Encoding", used);
    if (lengths && encodings) return fail(400, "both Content-Length and Transfer-Encoding", used);
    if (hosts > 1 || (hosts == 0 && request_.minor_version == 1)) return fail(400, "an HTTP/1.1 request needs one Host", used);
    if (const std::string* connection = request_.field("connection"))
      request_.keep_alive = request_.minor_version == 1 && !detail::lists(*connection, "close");
    else
      request_.keep_alive = request_.minor_version == 1;
    if (const std::string* expect = request_.field("expect")) {
      if (detail::lower(*expect) != "100-continue") return fail(417, "only 'Expect: 100-continue' is understood", used);
      request_.expects_continue = request_.minor_version == 1;
    }
    if (encoding) {
      if (request_.minor_version == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request", used);
      if (detail::lower(*encoding) != "chunked") return fail(501, "the only transfer coding understood is chunked", used);
      stage_ = Stage::ChunkSize;
      return used;
    }
    const std::optional<std::uint64_t> n = length ? detail::decimal(*length) : std::optional<std::uint64_t>(0);
    if (!n) return fail(400, "a malformed Content-Length", used);
    if (*n > limits_.max_body_bytes) return fail(413, "the request body is over the server's limit", used);
    remaining_ = static_cast<std::size_t>(*n);
    request_.body.reserve(remaining_);
    stage_ = remaining_ > 0 ? Stage::Body : Stage::Done;
    return used;
  }

  std::size_t read_chunk_size(std::string_view bytes) {
    std::size_t used = 0;
    const bool whole = take_line(bytes, used);
    if (line_.size() > kMaxChunkLine) return fail(400, "a chunk size line is too long", used);
    if (!whole) return used;
    const std::string_view line = std::string_view(line_).substr(0, line_.find(';'));  // extensions are ignored
    std::uint64_t size = 0;
    std::size_t digits = 0;
    for (char c : line) {
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0 || ++digits > 15) return fail(400, "a malformed chunk size", used);
      size = size * 16 + static_cast<std::uint64_t>(d);
    }
    line_.clear();
    if (digits == 0) return fail(400, "a malformed chunk size", used);
    if (size > limits_.max_body_bytes - request_.body.size()) return fail(413, "the request body is over the server's limit", used);
    remaining_ = static_cast<std::size_t>(size);
    stage_ = size == 0 ? Stage::Trailers : Stage::ChunkData;
    return used;
  }

  std::size_t read_trailer(std::string_view bytes) {
    std::size_t used = 0;
    const bool whole = take_line(bytes, used);
    head_bytes_ += used;
    if (head_bytes_ > limits_.max_head_bytes) return fail(431, "the trailer fields are too long", used);
    if (!whole) return used;
    std::string line = std::move(line_);
    line_.clear();
    if (line.empty()) {
      stage_ = Stage::Done;
      return used;
    }
    read_field(line, used);
    return used;
  }

  static constexpr std::size_t kMaxChunkLine = 1024;

  HttpLimits limits_;
  Stage stage_ = Stage::Head;
  HttpRequest request_;
  HttpError error_;
  std::string line_;           // the line being read
  std::size_t head_bytes_ = 0;
  std::size_t field_count_ = 0;
  std::size_t remaining_ = 0;  // of the body, or of the chunk
};

}  // namespace glrnn::server
