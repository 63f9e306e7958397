#pragma once
// GET /metrics: the scheduler's counters in Prometheus' text format (version 0.0.4).

#include <unistd.h>  // sysconf

#include <cstdint>  // std::int64_t
#include <cstdio>   // std::FILE, std::fopen, std::fscanf
#include <string>   // std::string
#include <utility>  // std::pair
#include <vector>   // std::vector

#include "scheduler.hpp"

namespace glrnn::server {

/// This process's resident set size in bytes (0 where /proc is missing).
inline std::int64_t resident_bytes() {
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  if (!statm) return 0;
  long long pages_total = 0, pages_resident = 0;
  const bool ok = std::fscanf(statm, "%lld %lld", &pages_total, &pages_resident) == 2;
  std::fclose(statm);
  return ok ? pages_resident * sysconf(_SC_PAGESIZE) : 0;
}

/// The cache's tiers side by side, one labelled series per tier (memory, disk with --cache-dir,
/// redis with --cache-redis).
inline void tier_metrics(std::string& out, const SchedulerMetrics& m) {
  std::vector<std::pair<const char*, const TierMetrics*>> tiers{{"memory", &m.memory}};
  if (m.disk_tier) tiers.push_back({"disk", &m.disk});
  if (m.shared) tiers.push_back({"redis", &*m.shared});
  const auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += std::string("# HELP glrnn_") + name + " " + help + "\n# TYPE glrnn_" + name + " " + type + "\n";
    for (const auto& [tier, metrics] : tiers) {
      char line[200];
      std::snprintf(line, sizeof line, "glrnn_%s{tier=\"%s\"} %lld\n", name, tier, static_cast<long long>(value(*metrics)));
      out += line;
    }
  };
  family("cache_tier_hits_total", "counter",
         "Lookups that found a usable state in this tier (a request that finds states in several goes on from the longest).",
         [](const TierMetrics& t) { return t.hits; });
  family("cache_tier_misses_total", "counter", "Lookups in this tier that found no usable state.",
         [](const TierMetrics& t) { return t.misses; });
  family("cache_tier_skipped_total", "counter",
         "Entries found unusable: another model's, damaged, truncated, or not their key.",
         [](const TierMetrics& t) { return t.skipped; });
  family("cache_tier_errors_total", "counter", "Failed reads and writes: unreachable, timed out, refused.",
         [](const TierMetrics& t) { return t.errors; });
  family("cache_tier_read_bytes_total", "counter", "Bytes of the states this tier gave back.",
         [](const TierMetrics& t) { return t.read_bytes; });
  family("cache_tier_writes_total", "counter", "States written to this tier (counted for disk and redis).",
         [](const TierMetrics& t) { return t.writes; });
  family("cache_tier_written_bytes_total", "counter", "Bytes written to this tier (counted for redis).",
         [](const TierMetrics& t) { return t.written_bytes; });
  family("cache_tier_dropped_writes_total", "counter", "Writes given up because the writer's queue was full.",
         [](const TierMetrics& t) { return t.dropped_writes; });
  out += "# HELP glrnn_cache_fetch_seconds Time to fetch a state from a tier, away from the model's thread.\n"
         "# TYPE glrnn_cache_fetch_seconds histogram\n";
  for (const auto& [tier, metrics] : tiers) {
    if (std::string(tier) == "memory") continue;
    const LatencyHistogram& h = metrics->fetch;
    char line[200];
    for (std::size_t i = 0; i < h.kBounds.size(); ++i) {
      std::snprintf(line, sizeof line, "glrnn_cache_fetch_seconds_bucket{tier=\"%s\",le=\"%g\"} %lld\n", tier, h.kBounds[i],
                    static_cast<long long>(h.at_most[i]));
      out += line;
    }
    std::snprintf(line, sizeof line,
                  "glrnn_cache_fetch_seconds_bucket{tier=\"%s\",le=\"+Inf\"} %lld\nglrnn_cache_fetch_seconds_sum{tier=\"%s\"} %.9g\n"
                  "glrnn_cache_fetch_seconds_count{tier=\"%s\"} %lld\n",
                  tier, static_cast<long long>(h.count), tier, h.sum, tier, static_cast<long long>(h.count));
    out += line;
  }
  if (m.shared) {
    out += "# HELP glrnn_cache_redis_up 1 while the connection to Redis works (0 before its first use and after a failure, "
           "until it reconnects).\n# TYPE glrnn_cache_redis_up gauge\n";
    out += std::string("glrnn_cache_redis_up ") + (m.shared_up ? "1" : "0") + "\n";
  }
}

inline std::string prometheus_text(const SchedulerMetrics& m) {
  std::string out;
  const auto metric = [&](const char* name, const char* type, const char* help, double value) {
    char line[160];
    out += std::string("# HELP glrnn_") + name + " " + help + "\n# TYPE glrnn_" + name + " " + type + "\n";
    std::snprintf(line, sizeof line, "glrnn_%s %.17g\n", name, value);
    out += line;
  };
  const auto d = [](std::int64_t v) { return static_cast<double>(v); };
  metric("requests_total", "counter", "Generation requests accepted.", d(m.requests));
  metric("requests_rejected_total", "counter", "Generation requests refused with 503 (queue full).", d(m.rejected));
  metric("prompt_tokens_total", "counter", "Prompt tokens received.", d(m.prompt_tokens));
  metric("prompt_tokens_cached_total", "counter", "Prompt tokens restored from the state cache, not run.", d(m.cached_tokens));
  metric("prefill_tokens_total", "counter", "Tokens run in prefill chunks (prompts and reply closes).", d(m.prefilled_tokens));
  metric("reply_close_tokens_total", "counter", "Tokens run after replies to cache them as the next turn renders them.",
         d(m.closing_tokens));
  metric("tokens_generated_total", "counter", "Tokens sampled.", d(m.generated_tokens));
  metric("prefill_tokens_per_second", "gauge", "Prefill throughput over the time spent prefilling.",
         m.prefill_seconds > 0 ? d(m.prefilled_tokens) / m.prefill_seconds : 0.0);
  metric("decode_tokens_per_second", "gauge", "Generated tokens over the time spent in decode steps.",
         m.decode_seconds > 0 ? d(m.generated_tokens) / m.decode_seconds : 0.0);
  metric("queue_length", "gauge", "Requests waiting for a slot.", d(m.queued));
  metric("sequences_running", "gauge", "Slots in use (prefilling, decoding or caching a reply).", d(m.running));
  metric("sequences_fetching", "gauge", "Admitted requests waiting for a state from the disk or Redis tier.", d(m.fetching));
  metric("cache_fetch_timeouts_total", "counter",
         "Requests that went on without the state they waited for (its fetch passed its deadline).", d(m.fetch_timeouts));
  metric("cache_lookups_total", "counter", "State cache lookups.", d(m.cache.lookups));
  metric("cache_hits_total", "counter", "State cache lookups that restored a prefix.", d(m.cache.hits));
  metric("cache_entries", "gauge", "States held in memory.", d(m.cache.memory_entries));
  metric("cache_bytes", "gauge", "Bytes of states held in memory.", d(m.cache.memory_bytes));
  metric("cache_disk_entries", "gauge", "States in the cache directory.", d(m.cache.disk_entries));
  metric("cache_disk_bytes", "gauge", "Bytes of state files in the cache directory.", d(m.cache.disk_bytes));
  metric("cache_disk_writes_total", "counter", "States written to the cache directory.", d(m.cache.disk_writes));
  metric("cache_disk_reads_total", "counter", "States read back from the cache directory.", d(m.cache.disk_reads));
  metric("cache_disk_skipped_total", "counter", "Cache files skipped: another model's, damaged, or not their key.",
         d(m.cache.disk_skipped));
  tier_metrics(out, m);
  metric("resident_memory_bytes", "gauge", "Resident set size of the server.", d(resident_bytes()));
  return out;
}

}  // namespace glrnn::server
