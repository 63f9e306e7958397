#pragma once
// The tiers of the server's state cache besides its memory: what /metrics says of each (hits,
// misses, faults, bytes, fetch latency), and the interface of a tier that other processes share
// (redis_tier.hpp), which the scheduler reads on its fetching thread and writes without waiting.

#include <array>       // std::array
#include <cstdint>     // std::int32_t, std::int64_t
#include <functional>  // std::function
#include <optional>    // std::optional
#include <vector>      // std::vector

#include <glrnn/models/model.hpp>

namespace glrnn::server {

/// Fetch latencies in Prometheus' histogram form: counts at or below each bound, a sum, a count.
struct LatencyHistogram {
  static constexpr std::array<double, 10> kBounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0};  // seconds
  std::array<std::int64_t, kBounds.size()> at_most{};  // cumulative, as Prometheus' buckets are
  std::int64_t count = 0;
  double sum = 0.0;

  void add(double seconds) {
    for (std::size_t i = 0; i < kBounds.size(); ++i)
      if (seconds <= kBounds[i]) ++at_most[i];
    ++count;
    sum += seconds;
  }
};

struct TierMetrics {
  std::int64_t hits = 0;            // prompts that went on from a state of this tier
  std::int64_t misses = 0;          // lookups in it that found no usable state
  std::int64_t skipped = 0;         // entries found unusable: another model's, damaged, truncated, not their key
  std::int64_t errors = 0;          // failed reads and writes (unreachable, timed out, refused, disk full)
  std::int64_t read_bytes = 0;      // of the states it gave back
  std::int64_t writes = 0, written_bytes = 0;
  std::int64_t dropped_writes = 0;  // writes given up because the writer's queue was full
  LatencyHistogram fetch;           // fetches away from the model's thread (disk, Redis)
};

/// A cache tier shared with other replicas. Its faults are misses and lost writes, never errors.
class SharedTier {
 public:
  virtual ~SharedTier() = default;

  struct Found {
    std::size_t length;
    State state;
  };
  /// For one fetching thread: the state of the longest tokens[0, length), for `lengths` given
  /// longest first, that the tier holds for exactly these tokens; nothing when none is usable.
  virtual std::optional<Found> fetch(const std::vector<std::int32_t>& tokens, const std::vector<std::size_t>& lengths) = 0;
  /// Stores `state`, the state after running `key`, without blocking the caller (it may drop the
  /// write). `done` runs once the write has succeeded, failed or been dropped, on any thread.
  virtual void write(std::vector<std::int32_t> key, State state, std::function<void()> done) = 0;
  /// Any thread may ask these.
  virtual TierMetrics metrics() const = 0;
  virtual bool up() const = 0;
};

}  // namespace glrnn::server
