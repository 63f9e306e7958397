#pragma once
// A cache of sequence states keyed by the token ids that produced them. A fixed-size state stands
// for its whole prefix, so a program that meets a prefix again (the history of a chat, a shared
// document) restores the longest cached prefix of its tokens and runs only the tokens after it.
//
// Memory is bounded: past max_memory_bytes the least recently used entries leave. With a
// directory they are written there as state files (generate/state_file.hpp, written under a
// temporary name and renamed, so a file is complete or absent) and come back from there, also in
// a later process: the directory is indexed on construction. A file's name carries the model
// fingerprint and the key's hash; a file of another model, a damaged one or one whose tokens are
// not the key is skipped, never an error. Not thread-safe: one owner calls it.

#include <algorithm>      // std::equal, std::min, std::sort
#include <cstdint>        // std::int32_t, std::int64_t, std::uint64_t
#include <cstdio>         // std::snprintf, std::sscanf
#include <cstring>        // std::memcpy
#include <filesystem>     // std::filesystem
#include <fstream>        // std::ifstream
#include <list>           // std::list
#include <optional>       // std::optional
#include <string>         // std::string
#include <string_view>    // std::string_view
#include <unordered_map>  // std::unordered_map
#include <utility>        // std::move, std::exchange
#include <vector>         // std::vector

#include "glrnn/core/error.hpp"
#include "glrnn/core/hash.hpp"
#include "glrnn/generate/state_file.hpp"
#include "glrnn/models/model.hpp"

namespace glrnn {

struct StateCacheOptions {
  std::size_t max_memory_bytes = std::size_t{1} << 30;  // states and their keys held in memory
  std::string directory;                                 // empty: no disk tier
  std::size_t max_disk_bytes = 0;                        // 0: no limit
  // The caller writes the directory's files, away from the cache's thread: states leaving memory
  // wait in take_disk_writes() (see DiskWrite) instead of being written on the way out.
  bool write_behind = false;
};

struct StateCacheStats {
  std::int64_t lookups = 0, hits = 0, restored_tokens = 0;
  std::int64_t memory_entries = 0, memory_bytes = 0;
  std::int64_t disk_entries = 0, disk_bytes = 0;
  std::int64_t disk_writes = 0, disk_reads = 0;
  std::int64_t disk_skipped = 0;  // files found unusable: another model's, damaged, or not the key
  std::int64_t disk_write_errors = 0;  // files that could not be written (a full disk)
};

/// How a cache entry is named and stored, shared by the disk tier and by caches outside this
/// class (a server's shared tier): the name carries the model's fingerprint, the key's hash and
/// its length; the bytes are a state file whose metadata holds the key's tokens, so a reader
/// checks that an entry is this model's state for exactly its tokens. Immutable: any thread may
/// use it.
class StateCacheEntries {
 public:
  explicit StateCacheEntries(Model model) : model_(std::move(model)) {
    State fresh = model_.make_state();
    empty_bytes_ = serialize_state(model_, fresh, {{kTokensKey, ""}}).size();
  }

  const Model& model() const { return model_; }

  /// hashes[i] is the hash of tokens[0, i].
  static std::vector<std::uint64_t> prefix_hashes(const std::vector<std::int32_t>& tokens, std::size_t length) {
    std::vector<std::uint64_t> hashes(length);
    std::uint64_t hash = fnv1a64({});
    for (std::size_t i = 0; i < length; ++i) hashes[i] = hash = extend(hash, tokens[i]);
    return hashes;
  }
  static std::uint64_t prefix_hash(const std::vector<std::int32_t>& tokens, std::size_t length) {
    std::uint64_t hash = fnv1a64({});
    for (std::size_t i = 0; i < length; ++i) hash = extend(hash, tokens[i]);
    return hash;
  }

  /// "FINGERPRINT-HASH-LENGTH" (hexadecimal, hexadecimal, decimal).
  std::string name(std::uint64_t hash, std::size_t length) const {
    char name[64];
    std::snprintf(name, sizeof name, "%016llx-%016llx-%zu", static_cast<unsigned long long>(model_.info().fingerprint),
                  static_cast<unsigned long long>(hash), length);
    return name;
  }

  /// The size of the entry of a key of `length` tokens: bytes of another size are not an entry
  /// of this model, and are skipped before they are read.
  std::uintmax_t bytes(std::size_t length) const {
    return empty_bytes_ + model_.info().state_bytes_per_position * length + sizeof(std::int32_t) * length;
  }

  /// Whether a key this long fits in an entry (its tokens are one metadata value).
  static bool storable(std::size_t length) { return length * sizeof(std::int32_t) <= detail::kMaxStateString; }

  /// The metadata of the entry of `key` (see encode).
  static StateMetadata metadata(const std::vector<std::int32_t>& key) {
    StateMetadata metadata;
    metadata[kTokensKey].assign(reinterpret_cast<const char*>(key.data()), key.size() * sizeof(std::int32_t));
    return metadata;
  }

  /// The entry's bytes: `state`, the state after running `key`.
  std::string encode(const std::vector<std::int32_t>& key, State& state) const {
    return serialize_state(model_, state, metadata(key));
  }

  /// The state the entry's bytes hold for tokens[0, length), or nothing when they are not that:
  /// another model's, damaged, truncated, or another key with the same hash.
  std::optional<State> decode(std::string_view bytes, const std::vector<std::int32_t>& tokens, std::size_t length) const {
    if (bytes.size() != this->bytes(length) || tokens.size() < length) return std::nullopt;
    State state = model_.make_state();
    try {
      const StateMetadata metadata = deserialize_state(model_, state, bytes);
      const auto key = metadata.find(kTokensKey);
      if (key == metadata.end() || key->second.size() != length * sizeof(std::int32_t) ||
          state.position() != static_cast<std::int64_t>(length) ||
          std::memcmp(key->second.data(), tokens.data(), key->second.size()) != 0)
        return std::nullopt;
    } catch (const Error&) {
      return std::nullopt;
    }
    return state;
  }

 private:
  static constexpr const char* kTokensKey = "glrnn.state_cache.tokens";  // the key, as little-endian int32
  static std::uint64_t extend(std::uint64_t hash, std::int32_t token) {
    char bytes[sizeof token];
    std::memcpy(bytes, &token, sizeof token);
    return fnv1a64(std::string_view(bytes, sizeof bytes), hash);
  }

  Model model_;
  std::uintmax_t empty_bytes_ = 0;  // an entry with an empty key
};

class StateCache {
 public:
  /// Indexes `options.directory` (created when missing). Throws IoError when it cannot be made.
  StateCache(Model model, StateCacheOptions options) : entries_(std::move(model)), options_(std::move(options)) {
    if (!options_.directory.empty()) index_directory();
  }

  const StateCacheStats& stats() const { return stats_; }
  const StateCacheEntries& entries() const { return entries_; }

  /// Keeps a copy of `state`, the state after running `tokens` from a fresh one. Throws
  /// InputError when the state's position is not the number of tokens.
  void insert(const std::vector<std::int32_t>& tokens, const State& state) {
    GLRNN_CHECK(state.valid() && state.position() == static_cast<std::int64_t>(tokens.size()), InputError,
                "a cached state must have run exactly its key's " + std::to_string(tokens.size()) + " tokens");
    if (tokens.empty()) return;
    const std::uint64_t hash = StateCacheEntries::prefix_hash(tokens, tokens.size());
    const auto found = memory_.find(hash);
    if (found != memory_.end() && found->second->tokens == tokens) {
      lru_.splice(lru_.begin(), lru_, found->second);  // the same prefix gives the same state
      return;
    }
    const auto disk = disk_.find(hash);
    const bool on_disk = disk != disk_.end() && disk->second.length == tokens.size();
    add_to_memory(Entry{hash, tokens, state.clone(), on_disk});
  }

  /// The length of the longest cached prefix of tokens[0, max_length), with `out` set to a copy of
  /// its state; 0, with `out` untouched, when there is none. Reads the disk tier unless
  /// `read_disk` is false (a caller that reads files elsewhere: see DiskRead).
  std::size_t restore(const std::vector<std::int32_t>& tokens, std::size_t max_length, State& out, bool read_disk = true) {
    ++stats_.lookups;
    const std::vector<std::uint64_t> hashes = StateCacheEntries::prefix_hashes(tokens, std::min(max_length, tokens.size()));
    for (std::size_t length = hashes.size(); length > 0; --length) {
      const std::uint64_t hash = hashes[length - 1];
      const auto found = memory_.find(hash);
      if (found != memory_.end() && is_prefix(found->second->tokens, tokens, length)) {
        lru_.splice(lru_.begin(), lru_, found->second);
        out = found->second->state.clone();
        return hit(length);
      }
      const auto disk = disk_.find(hash);
      if (read_disk && disk != disk_.end() && disk->second.length == length && load_from_disk(hash, tokens, out)) return hit(length);
    }
    return 0;
  }

  /// A file of the disk tier to read away from the cache's thread: the longest prefix of
  /// tokens[0, max_length) that is on disk and longer than `longer_than`, if any. read() touches
  /// nothing of the cache (any thread may run it); accept() or reject() then tells the cache.
  struct DiskRead {
    std::uint64_t hash = 0;
    std::size_t length = 0;
    std::string path;
    std::uintmax_t bytes = 0;

    /// The state the file holds for tokens[0, length), or nothing when it is unusable (another
    /// model's, damaged, replaced, or another key with the same hash).
    std::optional<State> read(const StateCacheEntries& entries, const std::vector<std::int32_t>& tokens) const {
      std::error_code ec;
      if (std::filesystem::file_size(path, ec) != bytes || ec) return std::nullopt;  // replaced since it was indexed
      std::ifstream in(path, std::ios::binary);
      std::string contents(bytes, '\0');
      if (!in.read(contents.data(), static_cast<std::streamsize>(bytes))) return std::nullopt;
      return entries.decode(contents, tokens, length);
    }
  };

  std::optional<DiskRead> disk_read(const std::vector<std::int32_t>& tokens, std::size_t max_length, std::size_t longer_than) const {
    const std::vector<std::uint64_t> hashes = StateCacheEntries::prefix_hashes(tokens, std::min(max_length, tokens.size()));
    for (std::size_t length = hashes.size(); length > longer_than; --length) {
      const auto disk = disk_.find(hashes[length - 1]);
      if (disk != disk_.end() && disk->second.length == length)
        return DiskRead{disk->first, length, disk->second.path, entries_.bytes(length)};
    }
    return std::nullopt;
  }

  /// A read that gave a state: it joins the memory tier. `restored` is what restore() returned
  /// for the same lookup (0: it counted a miss, which this turns into a hit).
  void accept(const DiskRead& read, const std::vector<std::int32_t>& tokens, State state, std::size_t restored) {
    if (restored == 0) ++stats_.hits;
    stats_.restored_tokens += static_cast<std::int64_t>(read.length - restored);
    admit(read, tokens, std::move(state));
  }

  /// A read that gave nothing: the file leaves the index (it is skipped from now on).
  void reject(const DiskRead& read) {
    ++stats_.disk_skipped;
    const auto disk = disk_.find(read.hash);
    if (disk != disk_.end() && disk->second.length == read.length) forget_disk(disk);
  }

  /// Whether exactly `tokens` is cached, in memory or on disk (the disk entry not yet verified).
  bool contains(const std::vector<std::int32_t>& tokens) const {
    if (tokens.empty()) return false;
    const std::uint64_t hash = StateCacheEntries::prefix_hash(tokens, tokens.size());
    const auto found = memory_.find(hash);
    if (found != memory_.end() && found->second->tokens == tokens) return true;
    const auto disk = disk_.find(hash);
    return disk != disk_.end() && disk->second.length == tokens.size();
  }

  /// A state leaving memory for the directory, to be written away from the cache's thread (with
  /// write_behind): write() touches nothing of the cache, written() then indexes the file. Until
  /// then a lookup does not find the state (it was the least recently used one).
  struct DiskWrite {
    std::uint64_t hash = 0;
    std::vector<std::int32_t> tokens;
    State state;
    std::string path;

    /// Writes the file under a temporary name and renames it, so it is whole or absent: its
    /// size, or 0 when it could not be written (a full disk loses a cache entry, never a request).
    std::uintmax_t write(const StateCacheEntries& entries) {
      const std::string temporary = path + ".tmp";
      std::error_code ec;
      try {
        save_state(entries.model(), state, temporary, StateCacheEntries::metadata(tokens));
      } catch (const Error&) {
        std::filesystem::remove(temporary, ec);
        return 0;
      }
      std::filesystem::rename(temporary, path, ec);
      const std::uintmax_t bytes = ec ? 0 : std::filesystem::file_size(path, ec);
      if (ec) std::filesystem::remove(temporary, ec);
      return ec ? 0 : bytes;
    }
  };

  /// With write_behind: the states that have left memory for the directory since the last call.
  std::vector<DiskWrite> take_disk_writes() { return std::exchange(disk_writes_, {}); }

  /// A DiskWrite's outcome (its size from write(), 0 when it failed).
  void written(const DiskWrite& write, std::uintmax_t bytes) {
    if (bytes == 0) {
      ++stats_.disk_write_errors;
      return;
    }
    ++stats_.disk_writes;
    add_to_disk(write.hash, write.path, write.tokens.size(), static_cast<std::size_t>(bytes));
    const auto in_memory = memory_.find(write.hash);  // back in memory since (inserted again)
    if (in_memory != memory_.end() && in_memory->second->tokens == write.tokens) in_memory->second->on_disk = true;
  }

  /// Writes every entry held only in memory, and those waiting in take_disk_writes(), to the
  /// directory (e.g. before the process ends), so a later process finds them all. Does nothing
  /// without a directory.
  void flush() {
    if (options_.directory.empty()) return;
    for (DiskWrite& write : take_disk_writes()) written(write, write.write(entries_));
    for (Entry& entry : lru_)
      if (!entry.on_disk) entry.on_disk = write_to_disk(entry);
  }

 private:
  struct Entry {
    std::uint64_t hash;
    std::vector<std::int32_t> tokens;
    State state;
    bool on_disk;  // a file in the directory holds it too
    std::size_t bytes() const { return state.bytes() + tokens.size() * sizeof(std::int32_t); }
  };
  struct DiskEntry {
    std::string path;
    std::size_t length;  // tokens in the key
    std::size_t bytes;
    std::list<std::uint64_t>::iterator lru;
  };
  static bool is_prefix(const std::vector<std::int32_t>& key, const std::vector<std::int32_t>& tokens, std::size_t length) {
    return key.size() == length && std::equal(key.begin(), key.end(), tokens.begin());
  }

  std::size_t hit(std::size_t length) {
    ++stats_.hits;
    stats_.restored_tokens += static_cast<std::int64_t>(length);
    return length;
  }

  void add_to_memory(Entry entry) {
    const auto old = memory_.find(entry.hash);
    if (old != memory_.end()) take_from_memory(old->second);
    stats_.memory_bytes += static_cast<std::int64_t>(entry.bytes());
    ++stats_.memory_entries;
    lru_.push_front(std::move(entry));
    memory_[lru_.front().hash] = lru_.begin();
    while (!lru_.empty() && static_cast<std::size_t>(stats_.memory_bytes) > options_.max_memory_bytes) {
      Entry last = take_from_memory(std::prev(lru_.end()));
      if (last.on_disk || options_.directory.empty() || !StateCacheEntries::storable(last.tokens.size())) continue;
      std::string path = file_path(last.hash, last.tokens.size());
      DiskWrite write{last.hash, std::move(last.tokens), std::move(last.state), std::move(path)};
      if (options_.write_behind) disk_writes_.push_back(std::move(write));
      else written(write, write.write(entries_));
    }
  }

  std::string file_path(std::uint64_t hash, std::size_t length) const {
    return (std::filesystem::path(options_.directory) / (entries_.name(hash, length) + ".state")).string();
  }

  Entry take_from_memory(std::list<Entry>::iterator it) {
    stats_.memory_bytes -= static_cast<std::int64_t>(it->bytes());
    --stats_.memory_entries;
    memory_.erase(it->hash);
    Entry entry = std::move(*it);
    lru_.erase(it);
    return entry;
  }

  /// Writes an entry that stays in memory (flush) as a state file; false, and it stays memory-only,
  /// when it cannot.
  bool write_to_disk(Entry& entry) {
    if (!StateCacheEntries::storable(entry.tokens.size())) return false;
    DiskWrite write{entry.hash, entry.tokens, std::move(entry.state), file_path(entry.hash, entry.tokens.size())};
    const std::uintmax_t bytes = write.write(entries_);
    entry.state = std::move(write.state);
    written(write, bytes);
    return bytes > 0;
  }

  void add_to_disk(std::uint64_t hash, std::string path, std::size_t length, std::size_t bytes) {
    const auto old = disk_.find(hash);
    if (old != disk_.end()) forget_disk(old);
    disk_lru_.push_front(hash);
    disk_[hash] = DiskEntry{std::move(path), length, bytes, disk_lru_.begin()};
    stats_.disk_bytes += static_cast<std::int64_t>(bytes);
    ++stats_.disk_entries;
    while (options_.max_disk_bytes > 0 && static_cast<std::size_t>(stats_.disk_bytes) > options_.max_disk_bytes &&
           disk_lru_.size() > 1) {
      const auto last = disk_.find(disk_lru_.back());
      std::error_code ec;
      std::filesystem::remove(last->second.path, ec);
      const auto in_memory = memory_.find(last->first);
      if (in_memory != memory_.end()) in_memory->second->on_disk = false;
      forget_disk(last);
    }
  }

  void forget_disk(std::unordered_map<std::uint64_t, DiskEntry>::iterator it) {
    stats_.disk_bytes -= static_cast<std::int64_t>(it->second.bytes);
    --stats_.disk_entries;
    disk_lru_.erase(it->second.lru);
    disk_.erase(it);
  }

  /// Loads the file of `hash` when it holds this model's state for tokens[0, its length); it then
  /// moves to memory and `out` gets a copy. An unusable file leaves the index and is skipped.
  bool load_from_disk(std::uint64_t hash, const std::vector<std::int32_t>& tokens, State& out) {
    const DiskEntry& entry = disk_.at(hash);
    const DiskRead read{hash, entry.length, entry.path, entries_.bytes(entry.length)};
    std::optional<State> state = read.read(entries_, tokens);
    if (!state) {
      reject(read);
      return false;
    }
    out = state->clone();
    admit(read, tokens, std::move(*state));
    return true;
  }

  /// A state read from its file moves to memory, its file to the front of the disk tier's order.
  void admit(const DiskRead& read, const std::vector<std::int32_t>& tokens, State state) {
    ++stats_.disk_reads;
    const auto disk = disk_.find(read.hash);
    if (disk != disk_.end()) disk_lru_.splice(disk_lru_.begin(), disk_lru_, disk->second.lru);
    add_to_memory(Entry{read.hash, std::vector<std::int32_t>(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(read.length)),
                        std::move(state), disk != disk_.end()});
  }

  /// Finds this model's files, oldest first into the LRU order, and removes the temporary files
  /// of writes that a crash interrupted.
  void index_directory() {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(options_.directory, ec);
    GLRNN_CHECK(fs::is_directory(options_.directory, ec), IoError,
                "cannot create the state cache directory '" + options_.directory + "'");
    char prefix[20];
    std::snprintf(prefix, sizeof prefix, "%016llx-", static_cast<unsigned long long>(entries_.model().info().fingerprint));
    struct Found {
      fs::file_time_type time;
      std::uint64_t hash;
      std::size_t length, bytes;
      std::string path;
    };
    std::vector<Found> found;
    for (const fs::directory_entry& file : fs::directory_iterator(options_.directory, ec)) {
      const std::string name = file.path().filename().string();
      if (name.rfind(prefix, 0) != 0 || !file.is_regular_file(ec)) continue;  // another model's or not ours
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
        fs::remove(file.path(), ec);
        continue;
      }
      unsigned long long hash = 0;
      std::size_t length = 0;
      int used = 0;
      if (std::sscanf(name.c_str() + 17, "%16llx-%zu.state%n", &hash, &length, &used) != 2 ||
          static_cast<std::size_t>(used) != name.size() - 17 || length == 0)
        continue;
      const std::uintmax_t bytes = file.file_size(ec);
      // A file of another size is not one this cache wrote: never read (a planted 4 GB file costs
      // nothing), only counted as skipped.
      if (ec || bytes != entries_.bytes(length)) {
        ++stats_.disk_skipped;
        continue;
      }
      found.push_back({file.last_write_time(ec), hash, length, static_cast<std::size_t>(bytes), file.path().string()});
    }
    std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.time < b.time; });
    for (Found& f : found) add_to_disk(f.hash, std::move(f.path), f.length, f.bytes);
  }

  StateCacheEntries entries_;
  StateCacheOptions options_;
  StateCacheStats stats_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::uint64_t, std::list<Entry>::iterator> memory_;
  std::list<std::uint64_t> disk_lru_;  // hashes, most recently used first
  std::unordered_map<std::uint64_t, DiskEntry> disk_;
  std::vector<DiskWrite> disk_writes_;  // with write_behind: left memory, not yet taken
};

}  // namespace glrnn
