#pragma once
// What the glrnn-server tests share: the server as a subprocess on a free loopback port (started
// with --port 0, the port read from its ready line), requests through cpp-httplib's client, and
// server-sent events read as they arrive.

#include <fcntl.h>      // open
#include <poll.h>       // poll
#include <signal.h>     // kill, SIGTERM, SIGKILL
#include <sys/prctl.h>  // prctl, PR_SET_PDEATHSIG
#include <sys/wait.h>   // waitpid, WIFEXITED, WEXITSTATUS
#include <unistd.h>     // fork, execv, pipe, dup2, read, close

#include <chrono>      // std::chrono
#include <cstdio>      // std::sscanf
#include <fstream>     // std::ifstream
#include <functional>  // std::function
#include <map>         // std::map
#include <sstream>     // std::istringstream
#include <stdexcept>   // std::runtime_error
#include <string>      // std::string
#include <thread>      // std::this_thread
#include <vector>      // std::vector

// Eigen first: httplib.h includes <resolv.h>, whose _res macro is a parameter name in Eigen.
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace glrnn::test {

using json = nlohmann::json;

/// A bundled demo model's folder (models/NAME).
inline std::string demo_model(const std::string& name = "griffin-demo") { return model_path(name); }

/// A chat message of the user.
inline json user(const std::string& text) { return {{"role", "user"}, {"content", text}}; }

/// glrnn-server running as a child process; stopped with SIGTERM when destroyed.
class ServerProcess {
 public:
  /// Starts the server with `args` after --port 0 and waits for its ready line.
  explicit ServerProcess(const std::vector<std::string>& args, const std::string& log_name = "server") {
    static int started = 0;
    log_ = (test_temp_dir() / (log_name + "-" + std::to_string(++started) + ".log")).string();
    std::vector<std::string> argv{GLRNN_SERVER_PATH, "--port", "0", "--host", "127.0.0.1"};
    argv.insert(argv.end(), args.begin(), args.end());
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // a test that aborts takes its server with it
      const int err = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out[1], 1);
      dup2(err, 2);
      close(out[0]);
      std::vector<char*> raw;
      for (std::string& a : argv) raw.push_back(a.data());
      raw.push_back(nullptr);
      execv(raw[0], raw.data());
      _exit(127);
    }
    close(out[1]);
    stdout_ = out[0];
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buffer[256];
      const ssize_t n = read(stdout_, buffer, sizeof buffer);
      if (n <= 0) break;
      line.append(buffer, static_cast<std::size_t>(n));
    }
    ready_line_ = line.substr(0, line.find('\n'));
    const std::size_t colon = ready_line_.rfind(':');
    if (ready_line_.rfind("glrnn-server: listening on http://127.0.0.1:", 0) != 0 || colon == std::string::npos ||
        std::sscanf(ready_line_.c_str() + colon + 1, "%d", &port_) != 1)
      throw std::runtime_error("glrnn-server did not start: '" + ready_line_ + "'\n" + log());
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  /// Stops the server; a sanitizer's report in its log (the sanitizer builds run these tests)
  /// fails the test that ran it, whatever the server answered.
  ~ServerProcess() {
    stop();
    const std::string text = log();
    INFO("glrnn-server's log:\n" << text);
    CHECK(text.find("Sanitizer:") == std::string::npos);
    CHECK(text.find("runtime error:") == std::string::npos);
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }  // -1 once stopped
  const std::string& ready_line() const { return ready_line_; }
  std::string log() const {
    std::ifstream in(log_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

  /// Sends SIGTERM and waits (SIGKILL after `timeout`); returns the exit status, 128 + signal
  /// when killed by one, -1 when it had to be killed here.
  int stop(std::chrono::seconds timeout = std::chrono::seconds(20)) {
    if (pid_ <= 0) return status_;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        status_ = -1;
        pid_ = -1;
        close(stdout_);
        return status_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
    close(stdout_);
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int stdout_ = -1, port_ = 0, status_ = -1;
  std::string log_, ready_line_;
};

struct HttpResult {
  int status = 0;
  json body;       // null when the body is not JSON
  std::string raw;
};

inline HttpResult to_result(const httplib::Result& r) {
  HttpResult out;
  if (!r) return out;
  out.status = r->status;
  out.raw = r->body;
  out.body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (out.body.is_discarded()) out.body = nullptr;
  return out;
}

inline HttpResult post_raw(const ServerProcess& server, const std::string& path, const std::string& body,
                           const httplib::Headers& headers = {}) {
  httplib::Client c = server.client();
  return to_result(c.Post(path.c_str(), headers, body, "application/json"));
}

inline HttpResult post(const ServerProcess& server, const std::string& path, const json& body, const httplib::Headers& headers = {}) {
  return post_raw(server, path, body.dump(), headers);
}

inline HttpResult get(const ServerProcess& server, const std::string& path, const httplib::Headers& headers = {}) {
  httplib::Client c = server.client();
  return to_result(c.Get(path.c_str(), headers));
}

/// A streamed response: the JSON events in order, and whether [DONE] closed it.
struct StreamResult {
  int status = 0;
  std::vector<json> events;
  bool done = false;
  std::string raw;
};

/// POSTs a streaming request, parsing "data: ..." events as they come; `on_event` returning false
/// drops the connection (a client that goes away).
inline StreamResult post_stream(const ServerProcess& server, const std::string& path, const json& body,
                                const std::function<bool(const json&)>& on_event = {}) {
  httplib::Client c = server.client();
  StreamResult out;
  std::string buffer;
  bool keep_going = true;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body.dump();
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    out.raw.append(data, n);
    buffer.append(data, n);
    for (std::size_t end; keep_going && (end = buffer.find("\n\n")) != std::string::npos;) {
      const std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") {
        out.done = true;
        continue;
      }
      out.events.push_back(json::parse(payload));
      if (on_event && !on_event(out.events.back())) keep_going = false;
    }
    return keep_going;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  c.send(req, res, error);
  out.status = res.status;
  return out;
}

/// The text of choice `index` of a streamed completion (chat deltas or completion text).
inline std::string streamed_text(const StreamResult& r, std::int64_t index = 0) {
  std::string text;
  for (const json& e : r.events)
    for (const json& c : e.value("choices", json::array()))
      if (c["index"] == index) text += c.contains("delta") ? c["delta"].value("content", "") : c.value("text", "");
  return text;
}

/// The finish_reason that closed choice `index` of a stream ("" if none did).
inline std::string streamed_finish(const StreamResult& r, std::int64_t index = 0) {
  for (const json& e : r.events)
    for (const json& c : e.value("choices", json::array()))
      if (c["index"] == index && c["finish_reason"].is_string()) return c["finish_reason"];
  return "";
}

/// GET /metrics as name -> value ("glrnn_<name> <value>" lines), all from one snapshot.
inline std::map<std::string, double> metrics(const ServerProcess& server) {
  const HttpResult r = get(server, "/metrics");
  std::map<std::string, double> values;
  std::istringstream lines(r.raw);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("glrnn_", 0) == 0) values[line.substr(6, line.find(' ') - 6)] = std::stod(line.substr(line.find(' ') + 1));
  return values;
}

/// One value from GET /metrics.
inline double metric(const ServerProcess& server, const std::string& name) {
  const std::map<std::string, double> values = metrics(server);
  const auto it = values.find(name);
  if (it == values.end()) throw std::runtime_error("no metric " + name);
  return it->second;
}

/// Waits (up to 20 s) until no request is queued or running, the point after which /metrics
/// holds every counter of the requests before; false if that never came.
inline bool wait_idle(const ServerProcess& server) {
  for (int i = 0; i < 1000; ++i) {
    const std::map<std::string, double> m = metrics(server);
    if (m.at("sequences_running") == 0 && m.at("queue_length") == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace glrnn::test
