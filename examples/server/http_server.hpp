#pragma once
// glrnn-server's HTTP/1.1 transport. One thread reads every connection with epoll until it holds
// a whole request (http_message.hpp), so a client that sends slowly costs a socket, never a
// thread: a request head and a body each have a deadline for the whole of them, not per read,
// and idle keep-alive connections have one too. The number of open connections is capped (one
// more gets 503 and is closed). A whole request goes to a pool of worker threads, where the
// handler answers it, whole or as a stream; a response is written with a deadline per write, so
// a client that stops reading frees its worker. A refused request is answered and its
// connection drained briefly before it closes (so the client reads the answer, not a reset).

#include <fcntl.h>        // fcntl
#include <netdb.h>        // getaddrinfo
#include <netinet/in.h>   // sockaddr_in
#include <netinet/tcp.h>  // TCP_NODELAY
#include <poll.h>         // poll
#include <sys/epoll.h>    // epoll_*
#include <sys/eventfd.h>  // eventfd
#include <sys/socket.h>   // socket, bind, listen, accept4, send, recv
#include <unistd.h>       // close, read, write

#include <atomic>              // std::atomic
#include <cerrno>              // errno
#include <chrono>              // std::chrono
#include <condition_variable>  // std::condition_variable
#include <cstdio>              // std::snprintf
#include <cstring>             // std::strerror
#include <deque>               // std::deque
#include <functional>          // std::function
#include <memory>              // std::unique_ptr
#include <mutex>               // std::mutex
#include <string>              // std::string
#include <string_view>         // std::string_view
#include <thread>              // std::thread
#include <unordered_map>       // std::unordered_map
#include <utility>             // std::move
#include <vector>              // std::vector

#include "http_message.hpp"

namespace glrnn::server {

struct HttpServerOptions {
  HttpLimits limits;
  std::size_t max_connections = 512;  // open at once; the next is answered 503 and closed
  std::size_t workers = 16;           // requests answered at once (streams hold one each)
  std::chrono::milliseconds head_timeout{10'000};   // from a request's first byte to its blank line
  std::chrono::milliseconds body_timeout{60'000};   // from the head to the body's last byte
  std::chrono::milliseconds idle_timeout{5'000};    // a keep-alive connection between requests
  std::chrono::milliseconds write_timeout{10'000};  // one write to a client that does not read
};

inline const char* http_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

namespace detail {

/// Writes all of `data` to a non-blocking socket, waiting at most `timeout` for each wait to
/// become writable. False when the peer is gone or did not read in time.
inline bool write_all(int fd, std::string_view data, std::chrono::milliseconds timeout) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (ready > 0 && !(p.revents & (POLLERR | POLLHUP))) continue;
      if (ready < 0 && errno == EINTR) continue;
    }
    return false;
  }
  return true;
}

}  // namespace detail

/// The answer to one request: whole (send), or a stream (begin_stream, write..., end_stream):
/// chunked for HTTP/1.1, delimited by closing the connection for HTTP/1.0.
class HttpResponse {
 public:
  HttpResponse(int fd, const HttpRequest& request, std::chrono::milliseconds write_timeout)
      : fd_(fd), http10_(request.minor_version == 0), keep_alive_(request.keep_alive), write_timeout_(write_timeout) {}

  void add_header(std::string name, std::string value) { headers_ += name + ": " + value + "\r\n"; }

  bool send(int status, std::string_view content_type, std::string_view body) {
    if (started_) return false;
    started_ = true;
    status_ = status;
    std::string head = status_line(status) + headers_;
    if (!content_type.empty()) head += "Content-Type: " + std::string(content_type) + "\r\n";
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    head += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    head.append(body.data(), body.size());
    return ok_ = detail::write_all(fd_, head, write_timeout_);
  }

  bool begin_stream(std::string_view content_type) {
    if (started_) return false;
    started_ = streaming_ = true;
    status_ = 200;
    if (http10_) keep_alive_ = false;
    std::string head = status_line(200) + headers_ + "Content-Type: " + std::string(content_type) + "\r\n";
    head += http10_ ? "Connection: close\r\n\r\n" : keep_alive_ ? "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
                                                                : "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    return ok_ = detail::write_all(fd_, head, write_timeout_);
  }

  /// One piece of a stream; false (and the stream is over) when the client is gone or has not
  /// read for write_timeout.
  bool write(std::string_view data) {
    if (!ok_ || !streaming_ || data.empty()) return ok_;
    if (http10_) return ok_ = detail::write_all(fd_, data, write_timeout_);
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string chunk = size;
    chunk.append(data.data(), data.size());
    chunk += "\r\n";
    return ok_ = detail::write_all(fd_, chunk, write_timeout_);
  }

  bool end_stream() {
    if (!ok_ || !streaming_) return ok_;
    streaming_ = false;
    return http10_ || (ok_ = detail::write_all(fd_, "0\r\n\r\n", write_timeout_));
  }

  /// Whether the client has closed its side (a stream's client went away while nothing was written).
  bool client_gone() const {
    char byte;
    const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  /// The client is gone: nothing more is written and the connection closes.
  void drop() { started_ = true, ok_ = false; }

  bool started() const { return started_; }
  int status() const { return status_; }  // 0 while nothing was sent
  /// The connection can take the client's next request.
  bool reusable() const { return ok_ && started_ && !streaming_ && keep_alive_; }

 private:
  std::string status_line(int status) const {
    return "HTTP/1.1 " + std::to_string(status) + " " + http_reason(status) + "\r\n";
  }

  int fd_;
  bool http10_, keep_alive_;
  std::chrono::milliseconds write_timeout_;
  std::string headers_;
  bool started_ = false, streaming_ = false, ok_ = true;
  int status_ = 0;
};

class HttpServer {
 public:
  /// SO_SNDBUF of every connection (the kernel doubles it for its bookkeeping): ample for a
  /// stream of tokens or a reply of many MB on loopback and LANs.
  static constexpr int kSendBufferBytes = 256 * 1024;

  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;
  /// The body (application/json) of a refusal the transport makes itself.
  using ErrorBody = std::function<std::string(int status, const std::string& message)>;

  /// Throws std::runtime_error when the kernel gives no epoll or eventfd descriptor.
  HttpServer(HttpServerOptions options, Handler handler, ErrorBody error_body)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        error_body_(std::move(error_body)),
        // Made here, before any thread can call stop(), which writes to wake_fd_.
        epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)),
        wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      for (int fd : {epoll_fd_, wake_fd_})
        if (fd >= 0) ::close(fd);
      throw std::runtime_error(std::string("cannot create the server's event descriptors: ") + std::strerror(errno));
    }
  }
  ~HttpServer() {
    stop();
    for (int fd : {listen_fd_, epoll_fd_, wake_fd_})
      if (fd >= 0) ::close(fd);
  }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds host:port (port 0: any free one); returns the port. Throws std::runtime_error.
  int bind(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
      throw std::runtime_error("cannot resolve " + host);
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
    listen_fd_ = ::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, found->ai_protocol);
    const int on = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (listen_fd_ < 0 || ::bind(listen_fd_, found->ai_addr, found->ai_addrlen) != 0 || ::listen(listen_fd_, 1024) != 0)
      throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + std::strerror(errno));
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length);
    return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }

  /// Serves until stop(); then waits for the requests being answered.
  void run() {
    watch(listen_fd_);
    watch(wake_fd_);
    for (std::size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { work(); });
    epoll_event events[64];
    while (!stopping_) {
      const int n = ::epoll_wait(epoll_fd_, events, 64, 100);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_fd_) accept_all();
        else if (fd == wake_fd_) take_returned();
        else if (const auto it = connections_.find(fd); it != connections_.end()) read_from(it->second);
      }
      expire(Clock::now());
    }
    ::close(listen_fd_);
    listen_fd_ = -1;
    for (auto& c : connections_) close_now(*c.second);
    connections_.clear();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      workers_stop_ = true;
    }
    ready_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
    for (auto& c : returned_) close_now(*c);
    returned_.clear();
  }

  /// Stops accepting and ends run() (callable from any thread, idempotent).
  void stop() {
    stopping_ = true;
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

  /// Connections open now (served, waiting or being read).
  std::size_t open_connections() const { return open_; }
  std::int64_t refused_connections() const { return refused_; }
  std::int64_t timed_out_requests() const { return timed_out_; }

 private:
  using Clock = std::chrono::steady_clock;
  enum class Wait { Idle, Head, Body, Closing };

  struct Connection {
    explicit Connection(int f, HttpLimits limits) : fd(f), reader(limits) {}
    int fd;
    RequestReader reader;
    std::string unread;  // bytes after the request handed to a worker (a pipelined next one)
    Wait wait = Wait::Idle;
    Clock::time_point deadline;
    bool continued = false;  // "100 Continue" sent for this request
  };

  void watch(int fd) {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLRDHUP;
    e.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e);
  }

  void accept_all() {
    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a connection that failed before it was taken
      const int on = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // each streamed token leaves at once
      // A bounded send buffer (Linux would grow it to net.ipv4.tcp_wmem's maximum, 4 MiB by
      // default): it bounds what a client that stops reading makes the kernel hold for it, and how
      // long a stalled stream writes before --write-timeout can see it.
      const int send_buffer = kSendBufferBytes;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
      ++open_;
      auto c = std::make_unique<Connection>(fd, options_.limits);
      c->deadline = Clock::now() + options_.idle_timeout;
      Connection& connection = *c;
      connections_.emplace(fd, std::move(c));
      watch(fd);
      if (open_ > options_.max_connections) {
        ++refused_;
        refuse(connection, 503, "the server has " + std::to_string(options_.max_connections) +
                                    " connections open (--max-connections); retry later");
      }
    }
  }

  /// Reads what a connection has, at most 1 MiB a turn: epoll reports it again if more is
  /// waiting, so a client sending at full speed cannot hold the loop from the others.
  void read_from(std::unique_ptr<Connection>& c) {
    char buffer[64 * 1024];
    for (int turn = 0; turn < 16; ++turn) {
      const ssize_t n = ::recv(c->fd, buffer, sizeof buffer, 0);
      if (n > 0) {
        if (c->wait == Wait::Closing) continue;  // draining before the close
        if (!take_bytes(c, std::string_view(buffer, static_cast<std::size_t>(n)))) return;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      // The client closed (or failed): a request it left unfinished is answered at once.
      if (n == 0 && c->reader.started() && c->wait != Wait::Closing)
        return refuse(*c, 400, "the connection ended before the request did (a wrong Content-Length?)");
      const int fd = c->fd;
      close_now(*c);
      connections_.erase(fd);
      return;
    }
  }

  /// Feeds bytes to the connection's request; false once it has left the event loop (handed to
  /// a worker, refused or closed).
  bool take_bytes(std::unique_ptr<Connection>& c, std::string_view bytes) {
    while (!bytes.empty()) {
      const std::size_t used = c->reader.feed(bytes);
      bytes.remove_prefix(used);
      const auto now = Clock::now();
      if (c->wait == Wait::Idle && c->reader.started()) c->wait = Wait::Head, c->deadline = now + options_.head_timeout;
      if (c->reader.failed()) return refuse(*c, c->reader.error().status, c->reader.error().message), false;
      if (c->wait == Wait::Head && c->reader.reading_body()) {
        c->wait = Wait::Body;
        c->deadline = now + options_.body_timeout;
        if (c->reader.request().expects_continue && !c->continued) {
          c->continued = true;
          detail::write_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", options_.write_timeout);
        }
      }
      if (c->reader.done()) {
        c->unread.assign(bytes.data(), bytes.size());
        hand_over(c);
        return false;
      }
    }
    return true;
  }

  /// A whole request leaves the event loop for a worker.
  void hand_over(std::unique_ptr<Connection>& c) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
    const int fd = c->fd;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_queue_.push_back(std::move(c));
    }
    connections_.erase(fd);
    ready_.notify_one();
  }

  void work() {
    for (;;) {
      std::unique_ptr<Connection> c;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return workers_stop_ || !ready_queue_.empty(); });
        if (ready_queue_.empty()) return;
        c = std::move(ready_queue_.front());
        ready_queue_.pop_front();
      }
      const HttpRequest request = c->reader.take();
      HttpResponse response(c->fd, request, options_.write_timeout);
      try {
        handler_(request, response);
      } catch (const std::exception& e) {
        if (!response.started()) response.send(500, "application/json", error_body_(500, e.what()));
      }
      if (!response.started()) response.send(500, "application/json", error_body_(500, "the request was not answered"));
      if (!response.reusable() || stopping_) {
        close_now(*c);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        returned_.push_back(std::move(c));
      }
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
    }
  }

  /// Connections back from the workers wait for their next request (or read one already there).
  void take_returned() {
    std::uint64_t count;
    [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof count);
    std::deque<std::unique_ptr<Connection>> back;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      back.swap(returned_);
    }
    for (auto& owned : back) {
      const int fd = owned->fd;
      auto& c = connections_.emplace(fd, std::move(owned)).first->second;
      c->wait = Wait::Idle;
      c->continued = false;
      c->deadline = Clock::now() + options_.idle_timeout;
      watch(fd);
      const std::string unread = std::move(c->unread);
      c->unread.clear();
      if (!unread.empty()) take_bytes(c, unread);
    }
  }

  /// Deadlines, checked after every wait (at most 100 ms apart): an idle connection closes; a
  /// request that has not arrived whole in time is answered 408.
  void expire(Clock::time_point now) {
    if (now < next_expiry_) return;
    next_expiry_ = now + std::chrono::milliseconds(100);
    std::vector<int> late;
    for (auto& [fd, c] : connections_)
      if (now >= c->deadline) late.push_back(fd);
    for (int fd : late) {
      Connection& c = *connections_.at(fd);
      if (c.wait == Wait::Head || c.wait == Wait::Body) {
        ++timed_out_;
        refuse(c, 408, c.wait == Wait::Head ? "the request head did not arrive in time" : "the request body did not arrive in time");
      } else {
        close_now(c);
        connections_.erase(fd);
      }
    }
  }

  /// Answers a request the transport refuses, then drains the connection for up to a second
  /// before closing it: closing with unread bytes would reset it and lose the answer.
  void refuse(Connection& c, int status, const std::string& message) {
    const std::string body = error_body_(status, message);
    std::string response = "HTTP/1.1 " + std::to_string(status) + " " + http_reason(status) +
                           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n" + body;
    ::send(c.fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);  // small: fits the socket buffer
    ::shutdown(c.fd, SHUT_WR);
    c.wait = Wait::Closing;
    c.deadline = Clock::now() + std::chrono::seconds(1);
  }

  void close_now(Connection& c) {
    ::close(c.fd);
    --open_;
  }

  HttpServerOptions options_;
  Handler handler_;
  ErrorBody error_body_;
  int listen_fd_ = -1;
  const int epoll_fd_, wake_fd_;  // made by the constructor
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> open_{0};
  std::atomic<std::int64_t> refused_{0}, timed_out_{0};
  Clock::time_point next_expiry_{};

  // The event loop's own.
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;

  std::vector<std::thread> workers_;
  std::mutex mutex_;  // guards what follows
  std::condition_variable ready_;
  std::deque<std::unique_ptr<Connection>> ready_queue_, returned_;
  bool workers_stop_ = false;
};

}  // namespace glrnn::server
