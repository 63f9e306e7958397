#pragma once
// The shared tier of the state cache: a Redis server that every replica of a service reads and
// writes, so a conversation's next turn finds the state of its history whichever replica it
// lands on (docs/replicas.md).
//
// An entry is the state file's bytes (glrnn::StateCacheEntries, which also checks on reading
// that a value is this model's state for exactly the request's tokens) under the key
// "glrnn:" + the entry's name (model fingerprint, key hash, key length), with a TTL. Reads run on
// the scheduler's fetching thread, writes on a writer thread of their own behind a bounded queue:
// the model's thread never waits for Redis. Redis is a cache: every fault (unreachable, slow,
// restarted, out of memory, a foreign or damaged value) is a miss or a lost write, counted,
// never an error for a request; a lost connection is retried with backoff, and the log says so
// once per change.

#include <hiredis/hiredis.h>

#include <algorithm>           // std::min
#include <chrono>              // std::chrono
#include <cstdint>             // std::int32_t, std::int64_t, std::uint64_t
#include <cstdio>              // std::fprintf
#include <cstdlib>             // std::getenv
#include <fstream>             // std::ifstream
#include <functional>          // std::function
#include <memory>              // std::unique_ptr, std::make_shared
#include <mutex>               // std::mutex, std::lock_guard, std::unique_lock
#include <optional>            // std::optional
#include <string>              // std::string
#include <string_view>         // std::string_view
#include <utility>             // std::move
#include <vector>              // std::vector

#include <glrnn/core/error.hpp>
#include <glrnn/generate/state_cache.hpp>

#include "shared_tier.hpp"
#include "write_queue.hpp"

namespace glrnn::server {

/// Where the shared tier is. The password never comes from the URL (it would show in the process
/// list): see read_redis_password.
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user;      // Redis 6 ACL user; empty: the default user
  std::string password;  // empty: none

  std::string url() const {
    const bool v6 = host.find(':') != std::string::npos;
    return "redis://" + (user.empty() ? "" : user + "@") + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) +
           (db != 0 ? "/" + std::to_string(db) : "");
  }
};

namespace detail {
inline int parse_redis_number(std::string_view text, int max, const std::string& url, const char* what) {
  GLRNN_CHECK(!text.empty() && text.size() <= 5 && text.find_first_not_of("0123456789") == std::string_view::npos, InputError,
              "--cache-redis '" + url + "': the " + what + " '" + std::string(text) + "' is not a number");
  const int value = std::stoi(std::string(text));
  GLRNN_CHECK(value <= max, InputError,
              "--cache-redis '" + url + "': the " + what + " " + std::to_string(value) + " is above " + std::to_string(max));
  return value;
}
}  // namespace detail

/// redis://[USER@]HOST[:PORT][/DB] (an IPv6 host in brackets). Throws InputError naming what it
/// cannot use: another scheme (rediss://, unix://), a password in the URL, a query, a bad port
/// or database number.
inline RedisAddress parse_redis_url(const std::string& url) {
  const std::string scheme = "redis://";
  GLRNN_CHECK(url.rfind(scheme, 0) == 0, InputError,
              "--cache-redis '" + url + "': expected redis://HOST:PORT[/DB] (TLS with rediss:// and unix sockets are not supported)");
  std::string_view rest(url);
  rest.remove_prefix(scheme.size());
  GLRNN_CHECK(rest.find_first_of("?#") == std::string_view::npos, InputError,
              "--cache-redis '" + url + "': options in the URL (?...) are not supported");
  RedisAddress address;
  const std::size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    GLRNN_CHECK(userinfo.find(':') == std::string_view::npos, InputError,
                "--cache-redis: a password in the URL would show in the process list; give it in GLRNN_REDIS_PASSWORD "
                "or with --cache-redis-password-file");
    address.user = std::string(userinfo);
    rest.remove_prefix(at + 1);
  }
  const std::size_t slash = rest.find('/');
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) address.db = detail::parse_redis_number(db, 65535, url, "database");
    rest = rest.substr(0, slash);
  }
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    GLRNN_CHECK(close != std::string_view::npos, InputError, "--cache-redis '" + url + "': an IPv6 host without its ']'");
    address.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    GLRNN_CHECK(rest.empty() || rest.front() == ':', InputError, "--cache-redis '" + url + "': unexpected text after the host");
    if (!rest.empty()) port = rest.substr(1);
  } else {
    const std::size_t colon = rest.find(':');
    address.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  GLRNN_CHECK(!address.host.empty(), InputError, "--cache-redis '" + url + "': no host");
  if (!port.empty() || rest.find(':') != std::string_view::npos) {
    address.port = detail::parse_redis_number(port, 65535, url, "port");
    GLRNN_CHECK(address.port > 0, InputError, "--cache-redis '" + url + "': port 0");
  }
  return address;
}

/// The password from `file` (its first line) when given, else from the environment variable
/// GLRNN_REDIS_PASSWORD, else none. Throws IoError when the file cannot be read.
inline std::string read_redis_password(const std::string& file) {
  if (file.empty()) {
    const char* env = std::getenv("GLRNN_REDIS_PASSWORD");
    return env ? env : "";
  }
  std::ifstream in(file);
  GLRNN_CHECK(in.good(), IoError, "--cache-redis-password-file: cannot read '" + file + "'");
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

struct RedisTierOptions {
  RedisAddress address;
  std::int64_t ttl_seconds = 86400;                // 0: entries stay until Redis evicts them
  std::size_t max_queue_bytes = std::size_t{256} << 20;  // states waiting to be written
  std::chrono::milliseconds read_timeout{2000};    // a command of the fetching thread
  std::chrono::milliseconds write_timeout{5000};   // a command of the writer (a state can be tens of MB)
};

/// Says in the log when Redis stops and starts answering, once per change (two connections
/// share one).
class RedisHealth {
 public:
  explicit RedisHealth(std::string url) : url_(std::move(url)) {}

  void reachable() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_ == State::Down) std::fprintf(stderr, "glrnn-server: redis %s: reachable again\n", url_.c_str());
    state_ = State::Up;
  }
  void failed(const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (state_ != State::Down)
      std::fprintf(stderr, "glrnn-server: redis %s: %s; requests go on without the shared tier, reconnecting with backoff\n",
                   url_.c_str(), why.c_str());
    state_ = State::Down;
  }
  bool up() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_ == State::Up;
  }

 private:
  enum class State { Unknown, Up, Down };
  const std::string url_;
  mutable std::mutex mutex_;
  State state_ = State::Unknown;
};

/// One connection, used by one thread: connects when asked, and after a failure waits a backoff
/// (0.1 s doubling to 5 s) before the next attempt, so a Redis that is down costs nothing.
class RedisLink {
 public:
  RedisLink(const RedisAddress& address, RedisHealth& health, std::chrono::milliseconds timeout)
      : address_(address), health_(&health), timeout_(timeout) {}
  ~RedisLink() { close(); }
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  /// The connected context, or nullptr while Redis is unreachable and the backoff runs.
  redisContext* get() {
    if (context_) return context_;
    const auto now = std::chrono::steady_clock::now();
    if (now < retry_at_) return nullptr;
    const timeval tv = to_timeval(std::min(timeout_, std::chrono::milliseconds(1000)));
    context_ = redisConnectWithTimeout(address_.host.c_str(), address_.port, tv);
    if (!context_ || context_->err) {
      fail(context_ ? std::string("cannot connect: ") + context_->errstr : "cannot allocate a connection");
      return nullptr;
    }
    const timeval command_tv = to_timeval(timeout_);
    redisSetTimeout(context_, command_tv);
    if (!address_.password.empty()) {
      const std::unique_ptr<redisReply, Free> reply(
          address_.user.empty() ? command("AUTH %b", address_.password.data(), address_.password.size())
                                : command("AUTH %b %b", address_.user.data(), address_.user.size(), address_.password.data(),
                                          address_.password.size()));
      if (!ok(reply.get(), "AUTH")) return nullptr;
    }
    if (address_.db != 0) {
      const std::unique_ptr<redisReply, Free> reply(command("SELECT %d", address_.db));
      if (!ok(reply.get(), "SELECT")) return nullptr;
    }
    backoff_ = kFirstBackoff;
    health_->reachable();
    return context_;
  }

  /// The connection failed (an I/O error, a timeout): it is closed, and retried after the backoff.
  void fail(const std::string& why) {
    close();
    health_->failed(why);
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  }

  /// The error of the last command on the context, for fail().
  std::string error() const { return context_ && context_->err ? context_->errstr : "no reply"; }

  struct Free {
    void operator()(redisReply* reply) const {
      if (reply) freeReplyObject(reply);
    }
  };

 private:
  static constexpr std::chrono::milliseconds kFirstBackoff{100}, kMaxBackoff{5000};

  static timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
    return tv;
  }
  template <class... Args>
  redisReply* command(const char* format, Args... args) {
    return static_cast<redisReply*>(redisCommand(context_, format, args...));
  }
  /// Whether a setup command succeeded; fails the connection when not.
  bool ok(const redisReply* reply, const char* what) {
    if (reply && reply->type != REDIS_REPLY_ERROR) return true;
    fail(std::string(what) + " failed: " + (reply ? std::string(reply->str, reply->len) : error()));
    return false;
  }
  void close() {
    if (context_) redisFree(context_);
    context_ = nullptr;
  }

  RedisAddress address_;
  RedisHealth* health_;
  std::chrono::milliseconds timeout_;
  redisContext* context_ = nullptr;
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_ = kFirstBackoff;
};

class RedisTier final : public SharedTier {
 public:
  /// Connects lazily (a Redis that is down at start is retried like one that went down later).
  RedisTier(RedisTierOptions options, const StateCacheEntries& entries)
      : options_(std::move(options)),
        entries_(&entries),
        health_(options_.address.url()),
        reader_(options_.address, health_, options_.read_timeout),
        writer_link_(options_.address, health_, options_.write_timeout),
        writes_(options_.max_queue_bytes) {}
  RedisTier(const RedisTier&) = delete;
  RedisTier& operator=(const RedisTier&) = delete;

  bool up() const override { return health_.up(); }
  TierMetrics metrics() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return metrics_;
  }

  /// Redis' key of the entry of a key of `length` tokens with this hash.
  std::string key(std::uint64_t hash, std::size_t length) const { return "glrnn:" + entries_->name(hash, length); }

  /// The sizes of all the keys are asked in one pipelined round trip; values of another size are
  /// skipped without reading them.
  std::optional<Found> fetch(const std::vector<std::int32_t>& tokens, const std::vector<std::size_t>& lengths) override {
    const auto start = std::chrono::steady_clock::now();
    TierMetrics counted;
    std::optional<Found> found = lookup(tokens, lengths, counted);
    ++(found ? counted.hits : counted.misses);
    if (found) counted.read_bytes += static_cast<std::int64_t>(entries_->bytes(found->length));
    std::lock_guard<std::mutex> lock(mutex_);
    metrics_.hits += counted.hits;
    metrics_.misses += counted.misses;
    metrics_.skipped += counted.skipped;
    metrics_.errors += counted.errors;
    metrics_.read_bytes += counted.read_bytes;
    metrics_.fetch.add(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return found;
  }

  /// Queued for the writer thread (which encodes it too), unless the queue is full; what is
  /// still queued when the tier goes is dropped (Redis is a cache).
  void write(std::vector<std::int32_t> key, State state, std::function<void()> done) override {
    if (!StateCacheEntries::storable(key.size())) return done();
    const std::size_t bytes = state.bytes();
    auto entry = std::make_shared<Entry>(Entry{std::move(key), std::move(state)});
    const auto dropped = [this, done] {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++metrics_.dropped_writes;
      }
      done();
    };
    if (!writes_.push(bytes, [this, entry, done] {
          store(*entry);
          done();
        }, dropped)) dropped();
  }

 private:
  struct Entry {
    std::vector<std::int32_t> key;
    State state;
  };

  std::optional<Found> lookup(const std::vector<std::int32_t>& tokens, const std::vector<std::size_t>& lengths, TierMetrics& counted) {
    if (lengths.empty()) return std::nullopt;
    redisContext* context = reader_.get();
    if (!context) {
      ++counted.errors;
      return std::nullopt;
    }
    const std::vector<std::uint64_t> hashes = StateCacheEntries::prefix_hashes(tokens, lengths.front());  // the longest
    std::vector<std::string> keys;
    for (std::size_t length : lengths) {
      keys.push_back(key(hashes[length - 1], length));
      redisAppendCommand(context, "STRLEN %b", keys.back().data(), keys.back().size());
    }
    std::vector<long long> sizes(keys.size(), 0);
    for (long long& size : sizes) {
      redisReply* raw = nullptr;
      if (redisGetReply(context, reinterpret_cast<void**>(&raw)) != REDIS_OK) {
        ++counted.errors;
        reader_.fail("STRLEN failed: " + reader_.error());
        return std::nullopt;
      }
      const std::unique_ptr<redisReply, RedisLink::Free> reply(raw);
      if (reply->type == REDIS_REPLY_INTEGER) size = reply->integer;
      else if (reply->type == REDIS_REPLY_ERROR) ++(std::string_view(reply->str, reply->len).rfind("WRONGTYPE", 0) == 0
                                                     ? counted.skipped  // a key of another type: not ours
                                                     : counted.errors); // e.g. LOADING after a restart
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (sizes[i] == 0) continue;
      if (static_cast<std::uintmax_t>(sizes[i]) != entries_->bytes(lengths[i])) {
        ++counted.skipped;  // another model's (a reused key), truncated, or not ours
        continue;
      }
      std::string value;
      if (!read_value(context, keys[i], static_cast<std::size_t>(sizes[i]), value)) {
        ++counted.errors;
        reader_.fail("GETRANGE failed: " + reader_.error());
        return std::nullopt;
      }
      if (value.empty()) continue;  // evicted, expired or replaced since STRLEN
      std::optional<State> state = entries_->decode(value, tokens, lengths[i]);
      if (state) return Found{lengths[i], std::move(*state)};
      ++counted.skipped;
    }
    return std::nullopt;
  }

  /// The value of `key`, `size` bytes, into `value` (left empty when it is no longer that size).
  /// Read in pieces of 1 MiB, pipelined: hiredis grows its input buffer by 1 MiB at a time past
  /// 1 MiB, copying it each time, so one 34 MB reply took four times as long as the transfer
  /// (150 ms against 35 ms on loopback). The pieces need not come from one version of the value:
  /// the entry's checksum finds a mix. False on a connection failure.
  static bool read_value(redisContext* context, const std::string& key, std::size_t size, std::string& value) {
    constexpr std::size_t kPiece = std::size_t{1} << 20;
    std::size_t pieces = 0;
    for (std::size_t at = 0; at < size; at += kPiece, ++pieces)
      redisAppendCommand(context, "GETRANGE %b %lld %lld", key.data(), key.size(), static_cast<long long>(at),
                         static_cast<long long>(std::min(at + kPiece, size) - 1));
    value.reserve(size);
    bool whole = true;
    for (std::size_t i = 0; i < pieces; ++i) {
      redisReply* raw = nullptr;
      if (redisGetReply(context, reinterpret_cast<void**>(&raw)) != REDIS_OK) return false;
      const std::unique_ptr<redisReply, RedisLink::Free> reply(raw);
      if (reply->type == REDIS_REPLY_STRING) value.append(reply->str, reply->len);
      else whole = false;
    }
    if (!whole || value.size() != size) value.clear();
    return true;
  }

  /// The writer thread: encodes the entry and SETs it with the TTL; counts what came of it.
  void store(Entry& entry) {
    const std::string value = entries_->encode(entry.key, entry.state);
    entry.state = State();  // its memory goes before the round trip
    const bool written = set(key(StateCacheEntries::prefix_hash(entry.key, entry.key.size()), entry.key.size()), value);
    std::lock_guard<std::mutex> lock(mutex_);
    ++(written ? metrics_.writes : metrics_.errors);
    if (written) metrics_.written_bytes += static_cast<std::int64_t>(value.size());
  }

  bool set(const std::string& key, const std::string& value) {
    redisContext* context = writer_link_.get();
    if (!context) return false;
    // As an argument vector: a format string would build the command by appending, with the same
    // 1 MiB growth steps as the reads (see read_value); this sizes it once.
    const std::string ttl = std::to_string(options_.ttl_seconds);
    const char* argv[] = {"SET", key.data(), value.data(), "EX", ttl.data()};
    const std::size_t lengths[] = {3, key.size(), value.size(), 2, ttl.size()};
    const std::unique_ptr<redisReply, RedisLink::Free> reply(
        static_cast<redisReply*>(redisCommandArgv(context, options_.ttl_seconds > 0 ? 5 : 3, argv, lengths)));
    if (!reply) {
      writer_link_.fail("SET failed: " + writer_link_.error());
      return false;
    }
    return reply->type != REDIS_REPLY_ERROR;  // e.g. OOM: Redis is full and evicts nothing
  }

  const RedisTierOptions options_;
  const StateCacheEntries* entries_;
  RedisHealth health_;
  RedisLink reader_;       // the fetching thread's
  RedisLink writer_link_;  // the writer thread's

  mutable std::mutex mutex_;  // guards metrics_
  TierMetrics metrics_;

  WriteQueue writes_;  // last: its thread uses the rest, and stops first
};

}  // namespace glrnn::server
