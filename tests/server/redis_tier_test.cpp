// The Redis tier's parts that need no Redis: its address (what --cache-redis takes and what it
// refuses by name), and a Redis that cannot be reached, which is a miss and a lost write, at once
// and without an error. With a real redis-server: tests/server/cluster_test.py.

#include <chrono>   // std::chrono
#include <future>   // std::promise
#include <string>   // std::string
#include <vector>   // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "server/redis_tier.hpp"
#include "support/reference.hpp"

using glrnn::server::parse_redis_url;

TEST_CASE("Redis tier: --cache-redis takes redis://[USER@]HOST[:PORT][/DB] and names what it refuses", "[server]") {
  const auto a = parse_redis_url("redis://127.0.0.1:6380/2");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 6380);
  CHECK(a.db == 2);
  CHECK(a.user.empty());
  CHECK(a.url() == "redis://127.0.0.1:6380/2");
  const auto b = parse_redis_url("redis://cache.internal");
  CHECK(b.host == "cache.internal");
  CHECK(b.port == 6379);
  CHECK(b.db == 0);
  const auto c = parse_redis_url("redis://glrnn@[::1]:7000/");
  CHECK(c.user == "glrnn");
  CHECK(c.host == "::1");
  CHECK(c.port == 7000);
  CHECK(c.url() == "redis://glrnn@[::1]:7000");

  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(parse_redis_url("rediss://h:6379"), Contains("TLS"));
  CHECK_THROWS_WITH(parse_redis_url("unix:///run/redis.sock"), Contains("unix sockets"));
  CHECK_THROWS_WITH(parse_redis_url("redis://:secret@h:6379"), Contains("GLRNN_REDIS_PASSWORD"));
  CHECK_THROWS_WITH(parse_redis_url("redis://user:secret@h:6379"), Contains("process list"));
  CHECK_THROWS_WITH(parse_redis_url("redis://h:port"), Contains("port 'port' is not a number"));
  CHECK_THROWS_WITH(parse_redis_url("redis://h:70000"), Contains("above 65535"));
  CHECK_THROWS_WITH(parse_redis_url("redis://h:0"), Contains("port 0"));
  CHECK_THROWS_WITH(parse_redis_url("redis://h/x"), Contains("database 'x'"));
  CHECK_THROWS_WITH(parse_redis_url("redis://h:6379?timeout=1"), Contains("options in the URL"));
  CHECK_THROWS_WITH(parse_redis_url("redis://:6379"), Contains("no host"));
  CHECK_THROWS_WITH(parse_redis_url("redis://[::1:6379"), Contains("']'"));
}

TEST_CASE("Redis tier: an unreachable Redis is a miss and a lost write at once, counted, never an error", "[server]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  const glrnn::StateCacheEntries entries(model);
  glrnn::server::RedisTierOptions options;
  options.address = parse_redis_url("redis://127.0.0.1:1");  // nothing listens on port 1
  options.read_timeout = options.write_timeout = std::chrono::milliseconds(200);
  glrnn::server::RedisTier tier(options, entries);

  const std::vector<std::int32_t> tokens{2, 5, 9, 11};
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(tier.fetch(tokens, {3, 2}));
  CHECK_FALSE(tier.fetch(tokens, {3}));  // within the backoff: not even a connection attempt
  std::promise<void> written;
  glrnn::State state = model.make_state();
  tier.write(tokens, state.clone(), [&] { written.set_value(); });
  REQUIRE(written.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));

  const glrnn::server::TierMetrics m = tier.metrics();
  CHECK(m.misses == 2);
  CHECK(m.hits == 0);
  CHECK(m.errors == 3);
  CHECK(m.writes == 0);
  CHECK(m.fetch.count == 2);
  CHECK_FALSE(tier.up());
}
