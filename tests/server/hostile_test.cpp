// glrnn-server under attack, over raw loopback sockets: requests framed to be read two ways (two
// lengths, a length beside chunked, folded lines), bytes that are not HTTP, heads and bodies that
// never finish (slowloris), more connections, header fields and body bytes than allowed, foreign
// Host and Origin headers, wrong methods and media types, JSON nested 100,000 deep, floats the
// sampler cannot take, and a client that stops reading its stream. Each attack gets its exact
// status, with OpenAI's error object where the body is JSON, and GET /health answers 200 after
// it. Every read here has a deadline (poll), so a server that does not answer fails a test
// rather than hanging it.

#include <arpa/inet.h>   // inet_pton, htons
#include <netinet/in.h>  // sockaddr_in
#include <poll.h>        // poll
#include <sys/socket.h>  // socket, connect, send, recv, shutdown, setsockopt
#include <unistd.h>      // close

#include <algorithm>  // std::count_if, std::max
#include <atomic>     // std::atomic
#include <cctype>     // std::tolower
#include <cerrno>     // errno
#include <chrono>     // std::chrono
#include <cstdio>     // std::sscanf, std::snprintf
#include <fstream>    // std::ifstream
#include <memory>     // std::unique_ptr
#include <string>     // std::string
#include <thread>     // std::thread, std::this_thread
#include <vector>     // std::vector

#include <catch2/catch.hpp>

#include "server/server_process.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using glrnn::test::HttpResult;
using glrnn::test::demo_model;
using glrnn::test::json;
using glrnn::test::post;
using glrnn::test::post_stream;
using glrnn::test::ServerProcess;
using glrnn::test::StreamResult;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// One HTTP response as it came off the wire.
struct Response {
  int status = 0;
  std::string head;  // the status line and header fields, without the blank line
  std::string body;  // chunked framing removed

  /// The value of the first field `name` (any case), or "" when there is none.
  std::string header(const std::string& name) const {
    std::size_t at = head.find("\r\n");
    while (at != std::string::npos) {
      at += 2;
      const std::size_t end = head.find("\r\n", at);
      const std::string line = head.substr(at, end == std::string::npos ? std::string::npos : end - at);
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos && lower(line.substr(0, colon)) == lower(name)) {
        std::size_t start = colon + 1;
        while (start < line.size() && line[start] == ' ') ++start;
        return line.substr(start);
      }
      at = end;
    }
    return "";
  }
  bool has_header(const std::string& name) const { return lower(head).find("\r\n" + lower(name) + ":") != std::string::npos; }
  json json_body() const { return json::parse(body, nullptr, /*allow_exceptions=*/false); }  // discarded when not JSON
};

/// A client socket on 127.0.0.1:port that sends exactly the bytes it is given and parses the
/// responses that come back, however many and however framed.
class RawConnection {
 public:
  /// receive_buffer > 0 shrinks SO_RCVBUF before connecting (a client whose window stays small).
  explicit RawConnection(int port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool connected() const { return connected_; }

  /// Sends all of `bytes`, waiting at most `timeout` in all for the socket to take them; false
  /// when the server closed or reset the connection, or stopped reading.
  bool send(const std::string& bytes, milliseconds timeout = milliseconds(5000)) {
    const auto deadline = Clock::now() + timeout;
    std::size_t at = 0;
    while (at < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        at += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, static_cast<int>(left));
        continue;
      }
      return false;
    }
    return true;
  }

  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  /// Reads until `count` whole responses have come in all (a "100 Continue" counts), the server
  /// closes the connection, or `timeout` passes; true with `count` responses.
  bool read_responses(std::size_t count, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    parse();
    while (responses_.size() < count && !closed_ && read_some(deadline)) parse();
    parse();
    return responses_.size() >= count;
  }

  /// Reads until the server closes the connection (true) or `timeout` passes (false).
  bool wait_closed(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!closed_ && read_some(deadline)) {
    }
    parse();
    return closed_;
  }

  const std::vector<Response>& responses() const { return responses_; }
  const std::string& raw() const { return raw_; }
  bool closed() const { return closed_; }  // end of file or reset seen

 private:
  /// One poll and one recv; false when nothing came before the deadline (or it has passed).
  bool read_some(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left, 0)));
    if (ready < 0 && errno == EINTR) return Clock::now() < deadline;
    if (ready <= 0) return false;
    char buffer[64 * 1024];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) raw_.append(buffer, static_cast<std::size_t>(n));
    else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed_ = true;
    return Clock::now() <= deadline;  // a zero timeout takes one read, not a stream's every byte
  }

  /// Moves the whole responses in raw_ past parsed_ into responses_.
  void parse() {
    for (;;) {
      const std::size_t end = raw_.find("\r\n\r\n", parsed_);
      if (end == std::string::npos) return;
      Response r;
      r.head = raw_.substr(parsed_, end - parsed_);
      if (std::sscanf(r.head.c_str(), "HTTP/1.%*d %d", &r.status) != 1) r.status = -1;  // not HTTP
      std::size_t at = end + 4;
      if (r.status >= 100 && r.status < 200) {  // an interim response: no body
      } else if (lower(r.header("transfer-encoding")) == "chunked") {
        for (;;) {
          const std::size_t line_end = raw_.find("\r\n", at);
          if (line_end == std::string::npos) return;
          const std::size_t size = std::stoul(raw_.substr(at, line_end - at), nullptr, 16);
          if (raw_.size() < line_end + 2 + size + 2) return;
          r.body.append(raw_, line_end + 2, size);
          at = line_end + 2 + size + 2;  // this server sends no trailers
          if (size == 0) break;
        }
      } else if (!r.header("content-length").empty()) {
        const std::size_t size = std::stoul(r.header("content-length"));
        if (raw_.size() - at < size) return;
        r.body = raw_.substr(at, size);
        at += size;
      } else {  // delimited by the close (HTTP/1.0 streams)
        if (!closed_) return;
        r.body = raw_.substr(at);
        at = raw_.size();
      }
      responses_.push_back(std::move(r));
      parsed_ = at;
    }
  }

  int fd_ = -1;
  bool connected_ = false, closed_ = false;
  std::string raw_;
  std::size_t parsed_ = 0;
  std::vector<Response> responses_;
};

/// What one request on a fresh connection got: its first response (status 0 when none came in
/// time), whether the server then closed the connection, and the seconds from the first byte
/// sent to the whole response.
struct Reply {
  Response response;
  bool closed = false;
  double seconds = 0;
  std::string raw;
};

Reply exchange(int port, const std::string& request, bool shutdown_write = false, milliseconds timeout = milliseconds(5000)) {
  RawConnection c(port);
  REQUIRE(c.connected());
  const auto t0 = Clock::now();
  c.send(request);  // may stop short when the server refuses early: its answer is read all the same
  if (shutdown_write) c.shutdown_write();
  Reply out;
  c.read_responses(1, timeout);
  out.seconds = seconds_since(t0);
  if (!c.responses().empty()) {
    out.response = c.responses().front();
    // The transport closes what it refuses right after the answer; a kept-alive one stays open.
    if (lower(out.response.header("connection")) == "close") c.wait_closed(milliseconds(2000));
  }
  out.closed = c.closed();
  out.raw = c.raw();
  return out;
}

/// A request from this machine, as a client names the server: "Host: 127.0.0.1".
std::string post_request(const std::string& path, const std::string& body, const std::string& extra_fields = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_fields + "\r\n" + body;
}

std::string get_request(const std::string& path, const std::string& extra_fields = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_fields + "\r\n";
}

std::string tail(const std::string& text, std::size_t n = 2000) { return text.size() > n ? text.substr(text.size() - n) : text; }

/// A refusal with `status` and OpenAI's error object carrying `code`.
void check_error(const Response& r, int status, const std::string& code) {
  INFO("response: " << r.head.substr(0, 300) << "\n\n" << r.body.substr(0, 300));
  CHECK(r.status == status);
  const json body = r.json_body();
  REQUIRE(body.is_object());
  REQUIRE(body.contains("error"));
  const json& error = body["error"];
  CHECK(error["code"] == code);
  CHECK(error["type"] == (status < 500 ? "invalid_request_error" : "server_error"));
  CHECK(error["message"].is_string());
  CHECK(!error.value("message", std::string()).empty());
}

/// The server still answers: GET /health on a fresh connection is a 200 within 5 s.
void check_alive(const ServerProcess& server) {
  const Reply r = exchange(server.port(), get_request("/health"));
  INFO("server log:\n" << tail(server.log()));
  CHECK(r.response.status == 200);
  CHECK(r.response.json_body() == json{{"status", "ok"}});
}

/// The error object's `param` (null when it names no field).
json param_of(const HttpResult& r) { return r.body.is_object() && r.body.contains("error") ? r.body["error"]["param"] : json(); }

/// Kilobytes of a /proc/PID/status line ("VmRSS", "VmHWM"), or -1.
long proc_status_kb(pid_t pid, const std::string& key) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  return -1;
}

/// `text` as one chunk and the last chunk of a chunked body.
std::string chunked(const std::string& text) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx", text.size());
  return std::string(size) + "\r\n" + text + "\r\n0\r\n\r\n";
}

/// JSON arrays nested `depth` deep around `inner`.
std::string nested_arrays(int depth, const std::string& inner = "1") {
  return std::string(static_cast<std::size_t>(depth), '[') + inner + std::string(static_cast<std::size_t>(depth), ']');
}

}  // namespace

TEST_CASE("glrnn-server hostile: requests framed to be read two ways, or not HTTP at all, are refused and closed at once", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"}, "hostile-framing");
  const std::string body = R"({"content": "hi"})";
  const std::string head = "POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  std::string fields_64 = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", fields_65;
  for (int i = 1; i < 64; ++i) fields_64 += "X-Field-" + std::to_string(i) + ": v\r\n";
  fields_65 = fields_64 + "X-Field-64: v\r\n\r\n";
  fields_64 += "\r\n";
  // The bytes a TLS client opens with, as if the port were HTTPS, ended by a line break (the
  // request line is read to its end; without one it is a slow head, tested below).
  const std::string tls = std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11) + "\r\n\r\n";
  struct Case {
    const char* what;
    std::string request;
    int status;
    const char* code;
  };
  const std::vector<Case> cases = {
      {"two equal Content-Length fields", head + "Content-Length: 17\r\nContent-Length: 17\r\n\r\n" + body, 400, "bad_request"},
      {"two Content-Length fields that differ", head + "Content-Length: 17\r\nContent-Length: 5\r\n\r\n" + body, 400, "bad_request"},
      {"Content-Length beside chunked", head + "Content-Length: 17\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body), 400, "bad_request"},
      {"two Transfer-Encoding fields", head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body), 400, "bad_request"},
      {"Transfer-Encoding gzip", head + "Transfer-Encoding: gzip\r\n\r\n" + body, 501, "server_error"},
      {"Transfer-Encoding gzip, chunked", head + "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked(body), 501, "server_error"},
      {"a Content-Length with a sign", head + "Content-Length: +17\r\n\r\n" + body, 400, "bad_request"},
      {"a Content-Length list", head + "Content-Length: 17, 17\r\n\r\n" + body, 400, "bad_request"},
      {"a Content-Length of 20 digits", head + "Content-Length: 18446744073709551633\r\n\r\n" + body, 400, "bad_request"},
      {"a chunk longer than its size", head + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", 400, "bad_request"},
      {"a chunk size of 16 hex digits", head + "Transfer-Encoding: chunked\r\n\r\n0000000000000011\r\n" + body + "\r\n0\r\n\r\n", 400, "bad_request"},
      {"a folded header line", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: a\r\n b\r\n\r\n", 400, "bad_request"},
      {"whitespace before a field's colon", "GET /health HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n", 400, "bad_request"},
      {"a control byte in a field value", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x01z\r\n\r\n", 400, "bad_request"},
      {"HTTP/2.0", "GET /health HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505, "server_error"},
      {"a request line without a version", "GET /health\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"},
      {"a request line with two spaces", "GET  /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"},
      {"a lower-case version", "GET /health http/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"},
      {"an absolute-form target", "GET http://127.0.0.1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"},
      {"HTTP/1.1 without Host", "GET /health HTTP/1.1\r\n\r\n", 400, "bad_request"},
      {"two Host fields", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"},
      {"Transfer-Encoding in HTTP/1.0", "POST /tokenize HTTP/1.0\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body), 400, "bad_request"},
      {"an Expect other than 100-continue", head + "Expect: 200-ok\r\nContent-Length: 17\r\n\r\n" + body, 417, "bad_request"},
      {"bare junk bytes", "\x01\x02 definitely not HTTP\r\n\r\n", 400, "bad_request"},
      {"a TLS ClientHello", tls, 400, "bad_request"},
      {"65 header fields", fields_65, 431, "headers_too_large"},
      {"a 17 KiB header line", get_request("/health", "X-Big: " + std::string(17 * 1024, 'b') + "\r\n"), 431, "headers_too_large"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const Reply r = exchange(server.port(), c.request);
    check_error(r.response, c.status, c.code);
    CHECK(lower(r.response.header("connection")) == "close");
    CHECK(r.closed);  // a request the transport could not frame leaves nothing to read the next from
    CHECK(r.seconds < 2.0);  // answered as soon as the fault is read, not at the 10 s head deadline
    check_alive(server);
  }
  // The limits are inclusive: 64 fields (Host among them) are a request like any other.
  CHECK(exchange(server.port(), fields_64).response.status == 200);
}

TEST_CASE("glrnn-server hostile: a client that closes its side mid-request is answered 400 at once, not at a deadline", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"}, "hostile-half-close");
  const std::string head = "POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  struct Case {
    const char* what;
    std::string request;
  };
  const std::vector<Case> cases = {
      {"10 of 100 body bytes", head + "Content-Length: 100\r\n\r\n{\"content\":"},
      {"a chunked body without its last chunk", head + "Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n"},
      {"half a head", "GET /health HTTP/1.1\r\nHost: 127."},
      {"binary bytes without a line break", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11)},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const Reply r = exchange(server.port(), c.request, /*shutdown_write=*/true);
    check_error(r.response, 400, "bad_request");
    CHECK(r.closed);
    // The head deadline is 10 s and the body's 60 s: an answer within 2 s is the close's doing.
    CHECK(r.seconds < 2.0);
    check_alive(server);
  }
  // A connection closed before any byte of a request is no request: no answer, just the close.
  const Reply nothing = exchange(server.port(), "", /*shutdown_write=*/true);
  CHECK(nothing.raw.empty());
  CHECK(nothing.closed);
  CHECK(nothing.seconds < 2.0);
  check_alive(server);
}

TEST_CASE("glrnn-server hostile: heads and bodies that do not arrive in time get 408, idle connections close", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1", "--head-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "1"},
                       "hostile-timeouts");
  // Deadlines are checked every 100 ms: an answer comes 1 to 1.1 s after the deadline started;
  // 3 s leaves room for a loaded 2-core machine. Each is measured from before the connection's
  // first byte, so it cannot come early.
  constexpr double kEarliest = 1.0, kLatest = 3.0;
  struct Slow {
    const char* what;
    std::string bytes;
    const char* code;  // "" for a connection that is closed without an answer
  };
  const std::vector<Slow> slow = {
      {"half a head", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", "request_timeout"},
      {"10 of 100 body bytes", "POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"content\":",
       "request_timeout"},
      {"a chunked body without its last chunk",
       "POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
       "request_timeout"},
      {"a connection that sends nothing", "", ""},
  };
  // All at once, each on its own connection; read one after the other (a later one's time can
  // only come out later than it was).
  std::vector<std::unique_ptr<RawConnection>> connections;
  std::vector<Clock::time_point> started;
  for (const Slow& s : slow) {
    started.push_back(Clock::now());
    connections.push_back(std::make_unique<RawConnection>(server.port()));
    REQUIRE(connections.back()->connected());
    REQUIRE(connections.back()->send(s.bytes));
  }
  // A kept-alive connection after its request is answered: idle from then on.
  RawConnection kept(server.port());
  REQUIRE(kept.send(get_request("/health")));
  REQUIRE(kept.read_responses(1, milliseconds(5000)));
  const auto kept_idle_since = Clock::now();
  CHECK(kept.responses()[0].status == 200);

  for (std::size_t i = 0; i < slow.size(); ++i) {
    INFO(slow[i].what);
    RawConnection& c = *connections[i];
    c.wait_closed(milliseconds(5000));
    const double seconds = seconds_since(started[i]);
    CHECK(c.closed());
    CHECK(seconds >= kEarliest);
    CHECK(seconds < kLatest);
    if (*slow[i].code) {
      REQUIRE(c.responses().size() == 1);
      check_error(c.responses()[0], 408, slow[i].code);
    } else {
      CHECK(c.raw().empty());
    }
  }
  kept.wait_closed(milliseconds(5000));
  CHECK(kept.closed());
  CHECK(kept.responses().size() == 1);  // closed without another byte
  CHECK(seconds_since(kept_idle_since) >= 0.9);  // idle_since is taken just after the answer left
  CHECK(seconds_since(kept_idle_since) < kLatest);

  // The head deadline is for the whole head: a client that keeps sending one byte every 200 ms
  // (each read resets nothing) is still cut off at 1 s.
  RawConnection drip(server.port());
  const std::string head = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: " + std::string(100, 'a');
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < head.size() && !drip.closed() && seconds_since(t0) < 6; ++i) {
    drip.send(head.substr(i, 1), milliseconds(0));
    if (drip.read_responses(1, milliseconds(200))) break;
  }
  const double dripped = seconds_since(t0);
  REQUIRE(drip.responses().size() == 1);
  check_error(drip.responses()[0], 408, "request_timeout");
  CHECK(dripped >= kEarliest);
  CHECK(dripped < kLatest);
  check_alive(server);
}

TEST_CASE("glrnn-server hostile: slowloris: 80 connections dripping their heads cost no worker and end in 408", "[server]") {
  // A 2 s head deadline: long enough that the checks below run while every dripper is still
  // mid-head (they start 0.3 s in and take milliseconds), short enough to see the 408s. One slot
  // and a queue of one leave 10 worker threads (slots + queue + 8): 80 drippers that each held
  // one would leave none for /health.
  ServerProcess server({"-m", demo_model(), "-t", "1", "--head-timeout", "2", "--parallel", "1", "--max-queue", "1"}, "hostile-slowloris");
  constexpr int kDrippers = 80;
  constexpr double kHeadTimeout = 2.0;
  struct Dripper {
    std::unique_ptr<RawConnection> c;
    Clock::time_point started;
    double answered_after = -1;  // seconds from the first byte to the answer (or close)
  };
  std::vector<Dripper> drippers;
  for (int i = 0; i < kDrippers; ++i) {
    Dripper d{std::make_unique<RawConnection>(server.port()), Clock::now()};
    REQUIRE(d.c->connected());
    REQUIRE(d.c->send("GET /health HTTP/1.1\r\n"));
    drippers.push_back(std::move(d));
  }
  const std::string drip = "Host: 127.0.0.1\r\nX-Slowloris: " + std::string(100, 'a');
  const auto t0 = Clock::now();
  std::size_t dripped = 0;
  auto next_drip = t0;
  bool checked = false;
  double health_seconds = -1, checks_done_after = -1;
  int health_status = 0, completion_status = 0;
  // One thread drips: every 300 ms a byte on every connection still open; every 50 ms a look
  // for answers.
  while (seconds_since(t0) < 8) {
    if (Clock::now() >= next_drip && dripped < drip.size()) {
      for (Dripper& d : drippers)
        if (d.answered_after < 0) d.c->send(drip.substr(dripped, 1), milliseconds(0));
      ++dripped;
      next_drip += milliseconds(300);
    }
    for (Dripper& d : drippers)
      if (d.answered_after < 0 && (d.c->read_responses(1, milliseconds(0)) || d.c->closed()))
        d.answered_after = seconds_since(d.started);
    if (!checked && dripped >= 2) {
      checked = true;
      const Reply health = exchange(server.port(), get_request("/health"));
      health_status = health.response.status;
      health_seconds = health.seconds;
      completion_status = post(server, "/v1/completions", {{"prompt", "The old man said"}, {"max_tokens", 8}}).status;
      checks_done_after = seconds_since(drippers.front().started);
    }
    if (std::all_of(drippers.begin(), drippers.end(), [](const Dripper& d) { return d.answered_after >= 0; })) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  REQUIRE(checked);
  CHECK(checks_done_after < kHeadTimeout);  // the checks ran while all 80 were dripping (none is answered before)
  CHECK(health_status == 200);
  CHECK(health_seconds < 1.0);
  CHECK(completion_status == 200);
  int timed_out = 0;
  for (Dripper& d : drippers) {
    INFO("dripper answered after " << d.answered_after << " s: " << d.c->raw().substr(0, 200));
    CHECK(d.answered_after >= kHeadTimeout);
    CHECK(d.answered_after < kHeadTimeout + 2.0);  // the 100 ms deadline tick, this loop's 50 ms, a loaded machine
    if (!d.c->responses().empty() && d.c->responses()[0].status == 408) ++timed_out;
  }
  CHECK(timed_out == kDrippers);
  drippers.clear();
  check_alive(server);
  REQUIRE(glrnn::test::wait_idle(server));
  CHECK(glrnn::test::metric(server, "requests_total") == 1);  // the completion: no dripper reached the API
}

TEST_CASE("glrnn-server hostile: the connection past --max-connections gets 503 and is closed", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1", "--max-connections", "4"}, "hostile-connections");
  // Four connections, each served once so that the server has surely taken them; they stay
  // open (keep-alive, 5 s idle) through the test.
  std::vector<std::unique_ptr<RawConnection>> open;
  for (int i = 0; i < 4; ++i) {
    open.push_back(std::make_unique<RawConnection>(server.port()));
    REQUIRE(open.back()->send(get_request("/health")));
    REQUIRE(open.back()->read_responses(1, milliseconds(5000)));
    CHECK(open.back()->responses()[0].status == 200);
  }
  {
    RawConnection fifth(server.port());
    REQUIRE(fifth.connected());
    REQUIRE(fifth.read_responses(1, milliseconds(5000)));  // refused on arrival: nothing sent yet
    check_error(fifth.responses()[0], 503, "server_busy");
    CHECK(fifth.wait_closed(milliseconds(3000)));
  }
  // The four kept-alive connections are still served.
  REQUIRE(open[0]->send(get_request("/v1/models")));
  REQUIRE(open[0]->read_responses(2, milliseconds(5000)));
  CHECK(open[0]->responses()[1].status == 200);

  // A new connection gets a closed one's place, once the server has seen the close (the event
  // loop may take the new connection before it): up to 2 s of retries.
  const auto served_again = [&] {
    int status = 0;
    for (int attempt = 0; attempt < 40 && status != 200; ++attempt) {
      status = exchange(server.port(), get_request("/health")).response.status;
      if (status != 200) std::this_thread::sleep_for(milliseconds(50));
    }
    return status == 200;
  };
  open[0].reset();
  CHECK(served_again());
  open.clear();
  CHECK(served_again());
  check_alive(server);
}

TEST_CASE("glrnn-server hostile: bodies over --max-body-mib are a 413 in either framing, and a chunked flood leaves memory flat", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1", "--max-body-mib", "4"}, "hostile-bodies");
  constexpr std::size_t kLimit = 4 * 1024 * 1024;
  const std::string head = "POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";

  // A Content-Length over the limit is refused on the head alone: no body byte is sent.
  const Reply declared = exchange(server.port(), head + "Content-Length: " + std::to_string(kLimit + 1) + "\r\n\r\n");
  check_error(declared.response, 413, "request_too_large");
  CHECK(declared.closed);
  CHECK(declared.seconds < 2.0);  // not at the 60 s body deadline
  check_alive(server);

  // A chunk that declares a terabyte is refused on its size line.
  const Reply terabyte = exchange(server.port(), head + "Transfer-Encoding: chunked\r\n\r\n10000000000\r\nabc");
  check_error(terabyte.response, 413, "request_too_large");
  CHECK(terabyte.closed);
  CHECK(terabyte.seconds < 2.0);
  check_alive(server);

  // 64 MiB of 64 KiB chunks and no last chunk: a server that kept them would hold 64 MiB; this
  // one answers 413 once the decoded total passes 4 MiB and discards the rest while it drains.
  {
    const pid_t pid = server.pid();
    const long peak_before_kb = proc_status_kb(pid, "VmHWM"), resident_before_kb = proc_status_kb(pid, "VmRSS");
    REQUIRE(peak_before_kb > 0);
    RawConnection flood(server.port());
    REQUIRE(flood.send(head + "Transfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "10000\r\n" + std::string(64 * 1024, 'a') + "\r\n";
    std::size_t sent = 0, sent_when_answered = 0;
    while (sent < 64 * 1024 * 1024 && flood.send(chunk, milliseconds(2000))) {
      sent += 64 * 1024;
      if (!sent_when_answered && flood.read_responses(1, milliseconds(0))) sent_when_answered = sent;
    }
    flood.read_responses(1, milliseconds(5000));
    INFO(sent << " body bytes sent, the answer read after " << sent_when_answered);
    REQUIRE(flood.responses().size() == 1);
    check_error(flood.responses()[0], 413, "request_too_large");
    CHECK(sent >= kLimit);  // the flood went on past the limit: the 413 is for the decoded total
    const long peak_after_kb = proc_status_kb(pid, "VmHWM"), resident_after_kb = proc_status_kb(pid, "VmRSS");
    INFO("VmHWM " << peak_before_kb << " -> " << peak_after_kb << " kB, VmRSS " << resident_before_kb << " -> " << resident_after_kb << " kB");
    // The 4 MiB body as it grew (a string doubling: up to 8 MiB plus the copy) and a receive
    // buffer; 50 MB is far below the 64 MiB a server that buffered the flood would hold.
    CHECK(peak_after_kb - peak_before_kb < 50 * 1000);
    CHECK(resident_after_kb - resident_before_kb < 50 * 1000);
    check_alive(server);
  }

  // Exactly the limit passes the transport (and reaches the JSON parser, which refuses x's).
  const Reply exact = exchange(server.port(), head + "Content-Length: " + std::to_string(kLimit) + "\r\n\r\n" + std::string(kLimit, 'x'),
                               false, milliseconds(10000));
  check_error(exact.response, 400, "invalid_json");
  check_alive(server);
}

TEST_CASE("glrnn-server hostile: 100,000 header fields, a 1 MiB header line or 1 MiB of blank lines are a 431 at once", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"}, "hostile-headers");
  std::string many = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; i < 100000; ++i) many += "X-F" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  struct Case {
    const char* what;
    std::string request;
  };
  const std::vector<Case> cases = {
      {"100,000 header fields", many},
      {"a 1 MiB header line", get_request("/health", "X-Big: " + std::string(1024 * 1024, 'b') + "\r\n")},
      {"a 1 MiB request line", "GET /" + std::string(1024 * 1024, 'p') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
      {"1 MiB of blank lines before the request line", std::string(1024 * 1024, '\n') + get_request("/health")},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const Reply r = exchange(server.port(), c.request);
    check_error(r.response, 431, "headers_too_large");
    CHECK(r.closed);
    CHECK(r.seconds < 2.0);  // refused at the 65th field or the 16 KiB mark; the rest is drained
    check_alive(server);
  }
}

TEST_CASE("glrnn-server hostile: a foreign Host or Origin is a 403, while allowed ones pass with CORS headers and a preflight", "[server]") {
  const auto request = [](const std::string& method, const std::string& path, const std::string& fields) {
    return method + " " + path + " HTTP/1.1\r\n" + fields + "\r\n";
  };
  {
    ServerProcess server({"-m", demo_model(), "-t", "1"}, "hostile-host");
    // DNS rebinding: a web page at evil.example resolves its name to 127.0.0.1 and its requests
    // name evil.example. IP literals and localhost are this machine's names.
    for (const char* host : {"evil.example:1234", "evil.example", "EVIL.example", "localhost.evil.example", "127.0.0.1.nip.io"}) {
      INFO("Host: " << host);
      const Reply r = exchange(server.port(), request("GET", "/health", std::string("Host: ") + host + "\r\n"));
      check_error(r.response, 403, "host_not_allowed");
    }
    for (const char* host : {"127.0.0.1", "127.0.0.1:8080", "localhost", "LOCALHOST:80", "[::1]:8080", "[::1]"}) {
      INFO("Host: " << host);
      CHECK(exchange(server.port(), request("GET", "/health", std::string("Host: ") + host + "\r\n")).response.status == 200);
    }
    // No --cors-origin: every page's Origin is refused, the preflight too; a request without
    // Origin (curl, SDKs) is not a page's.
    for (const std::string method : {"GET", "OPTIONS"}) {
      INFO(method);
      const Reply r = exchange(server.port(), request(method, method == "GET" ? "/health" : "/v1/chat/completions",
                                                      "Host: 127.0.0.1\r\nOrigin: http://evil.example\r\n"));
      check_error(r.response, 403, "origin_not_allowed");
      CHECK(!r.response.has_header("Access-Control-Allow-Origin"));
    }
    const Reply null_origin = exchange(server.port(), request("GET", "/health", "Host: 127.0.0.1\r\nOrigin: null\r\n"));
    check_error(null_origin.response, 403, "origin_not_allowed");
    check_alive(server);
  }
  ServerProcess server({"-m", demo_model(), "-t", "1", "--allowed-hosts", "evil.example", "--cors-origin", "http://a.example"}, "hostile-cors");
  CHECK(exchange(server.port(), request("GET", "/health", "Host: evil.example:1234\r\n")).response.status == 200);
  check_error(exchange(server.port(), request("GET", "/health", "Host: other.example\r\n")).response, 403, "host_not_allowed");

  const Reply allowed = exchange(server.port(), request("GET", "/health", "Host: 127.0.0.1\r\nOrigin: http://a.example\r\n"));
  CHECK(allowed.response.status == 200);
  CHECK(allowed.response.header("Access-Control-Allow-Origin") == "http://a.example");

  const Reply preflight = exchange(server.port(), request("OPTIONS", "/v1/chat/completions",
                                                          "Host: 127.0.0.1\r\nOrigin: http://a.example\r\n"
                                                          "Access-Control-Request-Method: POST\r\n"
                                                          "Access-Control-Request-Headers: content-type, authorization\r\n"));
  CHECK(preflight.response.status == 204);
  CHECK(preflight.response.header("Allow") == "POST, OPTIONS");
  CHECK(preflight.response.header("Access-Control-Allow-Methods") == "POST, OPTIONS");
  CHECK(preflight.response.header("Access-Control-Allow-Origin") == "http://a.example");
  CHECK(lower(preflight.response.header("Access-Control-Allow-Headers")).find("content-type") != std::string::npos);
  CHECK(preflight.response.body.empty());

  const Reply other = exchange(server.port(), request("GET", "/health", "Host: 127.0.0.1\r\nOrigin: http://b.example\r\n"));
  check_error(other.response, 403, "origin_not_allowed");
  check_alive(server);
}

TEST_CASE("glrnn-server hostile: wrong methods are a 405 with Allow, unknown paths a 404, bodies that are not JSON a 415", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"}, "hostile-methods");
  const std::string body = R"({"prompt": "The old man said", "max_tokens": 2})";
  struct Case {
    const char* what;
    std::string request;
    int status;
    const char* code;
    const char* allow;  // the Allow field expected, or ""
  };
  const std::vector<Case> cases = {
      {"PUT on /v1/completions", "PUT /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body,
       405, "method_not_allowed", "POST, OPTIONS"},
      {"DELETE on /v1/completions", "DELETE /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "method_not_allowed", "POST, OPTIONS"},
      {"GET on /v1/chat/completions", get_request("/v1/chat/completions"), 405, "method_not_allowed", "POST, OPTIONS"},
      {"POST on /health", post_request("/health", "{}"), 405, "method_not_allowed", "GET, OPTIONS"},
      {"POST on /metrics", post_request("/metrics", "{}"), 405, "method_not_allowed", "GET, OPTIONS"},
      {"an unknown method", "BREW /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "method_not_allowed", "GET, OPTIONS"},
      {"an unknown path", get_request("/v2/completions"), 404, "not_found", ""},
      {"a path that climbs", get_request("/v1/../health"), 404, "not_found", ""},
      {"text/plain", "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body,
       415, "unsupported_media_type", ""},
      {"a form", "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body,
       415, "unsupported_media_type", ""},
      {"no Content-Type", "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body,
       415, "unsupported_media_type", ""},
      {"application/jsonp", "POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/jsonp\r\nContent-Length: 2\r\n\r\n{}",
       415, "unsupported_media_type", ""},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const Reply r = exchange(server.port(), c.request);
    check_error(r.response, c.status, c.code);
    CHECK(r.response.header("Allow") == c.allow);
    CHECK(!r.closed);  // the API's refusals keep the connection (the request was read whole)
    check_alive(server);
  }
  const Reply options = exchange(server.port(), "OPTIONS /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(options.response.status == 204);
  CHECK(options.response.header("Allow") == "POST, OPTIONS");
  CHECK(options.response.body.empty());
  // A media type's parameters and case do not matter.
  const Reply charset = exchange(server.port(), "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: Application/JSON; charset=utf-8\r\n"
                                                "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(charset.response.status == 200);
  check_alive(server);
}

TEST_CASE("glrnn-server hostile: an HTTP/1.0 stream ends with its connection, pipelined requests are answered in order, 100 Continue comes first", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"}, "hostile-framing-ok");
  {  // HTTP/1.0 has no chunked framing: the stream's end is the connection's.
    const std::string body = R"({"prompt": "The old man said", "max_tokens": 8, "ignore_eos": true, "stream": true})";
    RawConnection c(server.port());
    REQUIRE(c.send("POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\n\r\n" + body));
    CHECK(c.wait_closed(milliseconds(10000)));
    REQUIRE(c.responses().size() == 1);
    const Response& r = c.responses()[0];
    INFO(r.head << "\n\n" << r.body.substr(0, 500));
    CHECK(r.status == 200);
    CHECK(!r.has_header("Transfer-Encoding"));
    CHECK(!r.has_header("Content-Length"));
    CHECK(lower(r.header("Connection")) == "close");
    CHECK(r.header("Content-Type") == "text/event-stream");
    std::vector<std::string> events;
    for (std::size_t at = 0, end; (end = r.body.find("\n\n", at)) != std::string::npos; at = end + 2)
      events.push_back(r.body.substr(at, end - at));
    REQUIRE(events.size() >= 2);
    CHECK(events.back() == "data: [DONE]");
    std::string finish;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
      REQUIRE(events[i].rfind("data: ", 0) == 0);
      const json e = json::parse(events[i].substr(6));
      CHECK(!e.contains("error"));
      if (e["choices"][0]["finish_reason"].is_string()) finish = e["choices"][0]["finish_reason"];
    }
    CHECK(finish == "length");
    // Any HTTP/1.0 answer closes its connection.
    const Reply health = exchange(server.port(), "GET /health HTTP/1.0\r\n\r\n");
    CHECK(health.response.status == 200);
    CHECK(lower(health.response.header("Connection")) == "close");
    CHECK(health.closed);
  }
  {  // Pipelined requests, an error among them, are answered in order on one kept-alive connection.
    RawConnection c(server.port());
    REQUIRE(c.send(get_request("/health") + get_request("/nothing") + post_request("/tokenize", R"({"content": "The president"})") +
                   get_request("/v1/models/griffin-demo")));
    REQUIRE(c.read_responses(4, milliseconds(5000)));
    const std::vector<Response>& r = c.responses();
    CHECK(r[0].status == 200);
    CHECK(r[0].json_body() == json{{"status", "ok"}});
    check_error(r[1], 404, "not_found");
    CHECK(r[2].status == 200);
    CHECK(r[2].json_body()["tokens"] == json::array({541, 2368}));
    CHECK(r[3].status == 200);
    CHECK(r[3].json_body()["id"] == "griffin-demo");
    // Still open: a fifth request on it.
    REQUIRE(c.send(get_request("/health")));
    REQUIRE(c.read_responses(5, milliseconds(5000)));
    CHECK(c.responses()[4].status == 200);
    CHECK(!c.closed());
  }
  {  // A pipelined request after "Connection: close" is not answered.
    RawConnection c(server.port());
    REQUIRE(c.send(get_request("/health") + get_request("/health", "Connection: close\r\n") + get_request("/health")));
    CHECK(c.wait_closed(milliseconds(5000)));
    REQUIRE(c.responses().size() == 2);
    CHECK(c.responses()[0].status == 200);
    CHECK(c.responses()[1].status == 200);
    CHECK(lower(c.responses()[1].header("Connection")) == "close");
  }
  {  // "Expect: 100-continue" gets "100 Continue" before the body is sent.
    const std::string body = R"({"content": "The president"})";
    RawConnection c(server.port());
    REQUIRE(c.send("POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n"));
    REQUIRE(c.read_responses(1, milliseconds(2000)));
    CHECK(c.raw() == "HTTP/1.1 100 Continue\r\n\r\n");
    REQUIRE(c.send(body));
    REQUIRE(c.read_responses(2, milliseconds(5000)));
    CHECK(c.responses()[1].status == 200);
    CHECK(c.responses()[1].json_body()["tokens"] == json::array({541, 2368}));
  }
  check_alive(server);
}

TEST_CASE("glrnn-server hostile: JSON nested 100,000 deep is a 400 invalid_json and the server lives", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"}, "hostile-nesting");
  constexpr int kDeep = 100000;
  std::string objects;  // {"a":{"a":...1...}}
  for (int i = 0; i < kDeep; ++i) objects += "{\"a\":";
  objects += "1" + std::string(kDeep, '}');
  struct Case {
    const char* what;
    std::string path, body;
  };
  const std::vector<Case> cases = {
      {"a prompt of nested arrays", "/v1/completions", "{\"prompt\": " + nested_arrays(kDeep) + ", \"max_tokens\": 2}"},
      {"the whole body nested arrays", "/v1/completions", nested_arrays(kDeep)},
      {"a model name of nested arrays", "/v1/completions", "{\"prompt\": \"x\", \"model\": " + nested_arrays(kDeep) + "}"},
      {"nested objects in an unknown field", "/v1/completions", "{\"prompt\": \"x\", \"extra\": " + objects + "}"},
      {"a message content of nested arrays", "/v1/chat/completions",
       "{\"messages\": [{\"role\": \"user\", \"content\": " + nested_arrays(kDeep) + "}]}"},
      {"a stop list of nested arrays", "/v1/chat/completions",
       "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": " + nested_arrays(kDeep, "\"s\"") + "}"},
      {"tokens of nested arrays", "/detokenize", "{\"tokens\": " + nested_arrays(kDeep) + "}"},
      {"tokenize content of nested objects", "/tokenize", "{\"content\": " + objects + "}"},
      {"100,000 brackets never closed", "/v1/completions", "{\"prompt\": " + std::string(kDeep, '[')},
      {"33 levels", "/v1/completions", "{\"prompt\": " + nested_arrays(32) + "}"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const HttpResult r = glrnn::test::post_raw(server, c.path, c.body);
    CHECK(r.status == 400);
    REQUIRE(r.body.is_object());
    CHECK(r.body["error"]["code"] == "invalid_json");
    check_alive(server);
  }
  // 32 levels, the limit, reach the field checks: the refusal is the prompt's, not the parser's.
  const HttpResult shallow = glrnn::test::post_raw(server, "/v1/completions", "{\"prompt\": " + nested_arrays(31) + "}");
  CHECK(shallow.status == 400);
  CHECK(shallow.body["error"]["code"] == "invalid_value");
  CHECK(shallow.body["error"]["param"] == "prompt");
  CHECK(post(server, "/v1/completions", {{"prompt", "The old man said"}, {"max_tokens", 4}}).status == 200);
  check_alive(server);
}

TEST_CASE("glrnn-server hostile: floats the sampler cannot take are a 400 naming the field, and streams running beside them end whole", "[server]") {
  ServerProcess server({"-m", demo_model(), "-t", "1"}, "hostile-floats");
  // 1000 tokens: long enough (about a second for two streams here) for several rounds of bad
  // requests to land while both run.
  constexpr int kTokens = 1000;
  const json streaming = {{"prompt", "Once upon a time"}, {"max_tokens", kTokens}, {"stream", true}, {"ignore_eos", true},
                          {"stream_options", {{"include_usage", true}}}};
  struct Bad {
    std::string path, body;
    const char* code;
    json param;  // the field the error names
  };
  const std::string chat = "/v1/chat/completions", text = "/v1/completions";
  const std::string hi = R"("messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4)", once = R"("prompt": "Once", "max_tokens": 4)";
  // Each rounds to 0 or a denormal as the float the sampler takes, or is no double at all.
  const std::vector<Bad> bad = {
      {text, "{" + once + R"(, "top_p": 1e-300})", "invalid_value", "top_p"},
      {text, "{" + once + R"(, "repetition_penalty": 1e-300})", "invalid_value", "repetition_penalty"},
      {text, "{" + once + R"(, "temperature": 1e-45})", "invalid_value", "temperature"},
      {text, "{" + once + R"(, "min_p": 1e-300})", "invalid_value", "min_p"},
      {text, "{" + once + R"(, "frequency_penalty": -1e-300})", "invalid_value", "frequency_penalty"},
      {text, R"({"prompt": "Once", "max_tokens": 1e999})", "invalid_json", nullptr},
      {text, "{" + once + R"(, "top_p": 1e999})", "invalid_json", nullptr},
      {chat, "{" + hi + R"(, "top_p": 1e-300})", "invalid_value", "top_p"},
      {chat, "{" + hi + R"(, "temperature": 1e-45})", "invalid_value", "temperature"},
      {chat, "{" + hi + R"(, "repetition_penalty": 1e-300})", "invalid_value", "repetition_penalty"},
  };
  std::vector<StreamResult> streams(2);
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < streams.size(); ++i)
    clients.emplace_back([&, i] { streams[i] = post_stream(server, text, streaming); });
  const auto running = [&] { return glrnn::test::metrics(server).at("sequences_running"); };
  for (int i = 0; i < 500 && running() < 2; ++i) std::this_thread::sleep_for(milliseconds(5));
  // Rounds of every bad request, each counted when both streams ran before and after it.
  std::vector<std::pair<const Bad*, HttpResult>> answers;
  int rounds_during = 0;
  for (int round = 0; round < 10 && running() == 2; ++round) {
    for (const Bad& b : bad) answers.emplace_back(&b, glrnn::test::post_raw(server, b.path, b.body));
    rounds_during += running() == 2;
  }
  for (std::thread& c : clients) c.join();
  CHECK(rounds_during >= 3);
  for (const auto& [b, r] : answers) {
    INFO(b->body << " -> " << r.raw);
    CHECK(r.status == 400);
    REQUIRE(r.body.is_object());
    CHECK(r.body["error"]["code"] == b->code);
    CHECK(param_of(r) == b->param);
  }
  for (const StreamResult& s : streams) {
    INFO(s.raw.substr(0, 300));
    CHECK(s.status == 200);
    CHECK(s.done);
    CHECK(glrnn::test::streamed_finish(s) == "length");
    CHECK(!glrnn::test::streamed_text(s).empty());
    for (const json& e : s.events) CHECK(!e.contains("error"));
    REQUIRE(!s.events.empty());
    CHECK(s.events.back()["usage"]["completion_tokens"] == kTokens);  // every token, none cut short
  }
  check_alive(server);
}

TEST_CASE("glrnn-server hostile: a stream whose client stops reading is cut after --write-timeout and frees its slot", "[server]") {
  // One slot: the completion at the end can only run once the stalled stream has let it go.
  ServerProcess server({"-m", demo_model(), "-t", "1", "--parallel", "1", "--write-timeout", "1", "--max-tokens", "1000000"}, "hostile-stall");
  // A tiny receive window, never read. 100,000 tokens take a minute or more here, so the stream
  // cannot end on its own within the test; logprobs make each event larger, so the socket
  // buffers (the server's bounded at HttpServer::kSendBufferBytes) fill within seconds.
  RawConnection stalled(server.port(), /*receive_buffer=*/1024);
  REQUIRE(stalled.connected());
  REQUIRE(stalled.send(post_request(
      "/v1/completions", R"({"prompt": "The old man said", "max_tokens": 100000, "ignore_eos": true, "stream": true, "logprobs": 5})")));
  const auto running = [&] { return glrnn::test::metrics(server).at("sequences_running"); };
  bool started = false;
  for (int i = 0; i < 500 && !(started = running() == 1); ++i) std::this_thread::sleep_for(milliseconds(10));
  REQUIRE(started);
  const auto t0 = Clock::now();
  bool freed = false;
  // About 3.5 s on 2 cores (the buffers fill, then --write-timeout passes); the limit leaves room
  // for the sanitizer build, where each token costs several times more.
  while (!(freed = running() == 0) && seconds_since(t0) < 60) std::this_thread::sleep_for(milliseconds(50));
  INFO("slot freed after " << seconds_since(t0) << " s");
  CHECK(freed);
  CHECK(glrnn::test::metric(server, "tokens_generated_total") < 100000);  // cut, not finished
  const HttpResult next = post(server, "/v1/completions", {{"prompt", "The old man said"}, {"max_tokens", 8}});
  CHECK(next.status == 200);
  // The server closed the stalled connection: reading it now finds the cut stream, then the end.
  CHECK(stalled.wait_closed(milliseconds(5000)));
  CHECK(stalled.raw().rfind("HTTP/1.1 200", 0) == 0);
  CHECK(stalled.raw().find("data: [DONE]") == std::string::npos);
  check_alive(server);
}
