#pragma once
// A minimal HTTP/1.1 client on POSIX sockets for the server benchmark, so that the load
// generator depends on nothing the server uses: one request per connection (Connection: close),
// bodies with Content-Length or chunked, handed over as they arrive, and a reader of
// server-sent events.

#include <arpa/inet.h>   // inet_pton, htons
#include <netinet/in.h>  // sockaddr_in
#include <netinet/tcp.h> // TCP_NODELAY
#include <sys/socket.h>  // socket, connect, send, recv
#include <unistd.h>      // close

#include <cctype>      // std::tolower
#include <cstdint>     // std::uint16_t
#include <cstdlib>     // std::strtoul, std::atoi, std::atoll
#include <functional>  // std::function
#include <string>      // std::string

#include "glrnn/core/error.hpp"

namespace glrnn::bench {

/// Body bytes as they arrive.
using BodyReceiver = std::function<void(const char* data, std::size_t n)>;

/// Sends one request to host:port and returns the status; the body goes to `on_body`. Throws
/// IoError when the server cannot be reached or the response is not HTTP.
inline int http_request(const std::string& host, int port, const std::string& method, const std::string& path,
                        const std::string& body, const BodyReceiver& on_body) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  GLRNN_CHECK(fd >= 0, IoError, "socket() failed");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  GLRNN_CHECK(inet_pton(AF_INET, host.c_str(), &address.sin_addr) == 1, IoError, "not an IPv4 address: " + host);
  GLRNN_CHECK(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0, IoError,
              "cannot connect to " + host + ":" + std::to_string(port));
  std::string head = method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
  if (!body.empty()) head += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  const std::string request = head + "\r\n" + body;
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    GLRNN_CHECK(n > 0, IoError, "send() failed");
    sent += static_cast<std::size_t>(n);
  }

  std::string buffer;  // received, not yet consumed
  bool eof = false;
  const auto fill = [&] {
    char chunk[16384];
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) eof = true;
    else buffer.append(chunk, static_cast<std::size_t>(n));
  };
  const auto line = [&] {  // one CRLF-terminated line, without the CRLF
    std::size_t end;
    while ((end = buffer.find("\r\n")) == std::string::npos && !eof) fill();
    GLRNN_CHECK(end != std::string::npos, IoError, "the connection closed inside a response line");
    std::string l = buffer.substr(0, end);
    buffer.erase(0, end + 2);
    return l;
  };
  const std::string status_line = line();
  GLRNN_CHECK(status_line.rfind("HTTP/1.", 0) == 0 && status_line.size() >= 12, IoError, "not an HTTP response: " + status_line);
  const int status = std::atoi(status_line.c_str() + 9);
  bool chunked = false;
  long long length = -1;
  for (std::string h; !(h = line()).empty();) {
    std::string lower = h;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos) chunked = true;
    if (lower.rfind("content-length:", 0) == 0) length = std::atoll(h.c_str() + 15);
  }
  if (chunked) {
    for (;;) {
      const std::size_t size = std::strtoul(line().c_str(), nullptr, 16);
      if (size == 0) break;
      while (buffer.size() < size + 2 && !eof) fill();
      GLRNN_CHECK(buffer.size() >= size + 2, IoError, "the connection closed inside a chunk");
      on_body(buffer.data(), size);
      buffer.erase(0, size + 2);
    }
  } else {
    for (;;) {
      if (!buffer.empty()) on_body(buffer.data(), buffer.size());
      if (length >= 0) length -= static_cast<long long>(buffer.size());
      buffer.clear();
      if (length == 0 || eof) break;
      fill();
    }
  }
  return status;
}

/// Splits a stream of server-sent events into their data payloads.
class SseReader {
 public:
  template <class OnEvent>
  void push(const char* data, std::size_t n, OnEvent&& on_event) {
    pending_.append(data, n);
    for (std::size_t end; (end = pending_.find("\n\n")) != std::string::npos;) {
      const std::string event = pending_.substr(0, end);
      pending_.erase(0, end + 2);
      if (event.rfind("data: ", 0) == 0) on_event(event.substr(6));
    }
  }

 private:
  std::string pending_;
};

}  // namespace glrnn::bench
