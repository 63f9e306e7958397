// The state cache: the longest cached prefix comes back and continues bit-identically; memory is
// bounded by LRU; evicted states go to the directory and come back, also in a new cache (a
// restart); files of another model or damaged ones are skipped without an error; an entry's bytes
// (what another tier stores) come back only as this model's state for exactly their tokens.

#include <algorithm>   // std::min
#include <filesystem>  // std::filesystem
#include <optional>    // std::optional
#include <fstream>     // std::fstream
#include <string>      // std::string
#include <vector>      // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {

std::vector<std::int32_t> cache_test_tokens(std::int32_t first, int n, std::int32_t salt, std::int32_t vocab) {
  std::vector<std::int32_t> t{first};
  for (int i = 1; i < n; ++i) t.push_back(3 + (i * 97 + salt) % (vocab - 3));
  return t;
}

/// The state after running tokens[0, n) from a fresh one.
glrnn::State cached_state_after(const glrnn::Model& model, const std::vector<std::int32_t>& tokens, std::size_t n) {
  glrnn::Session session(model);
  session.prefill(std::vector<std::int32_t>(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n)));
  return session.state().clone();
}

/// The logits after running `more` on a copy of `state`.
Eigen::VectorXf cached_logits_after(const glrnn::Model& model, const glrnn::State& state, const std::vector<std::int32_t>& more) {
  glrnn::Session session(model);
  session.state() = state.clone();
  return session.prefill(more);
}

std::vector<std::int32_t> key_prefix(const std::vector<std::int32_t>& tokens, std::size_t n) {
  return {tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n)};
}

std::size_t cache_files_in(const std::string& dir, const std::string& ending) {
  std::size_t n = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    const std::string name = f.path().filename().string();
    n += name.size() >= ending.size() && name.compare(name.size() - ending.size(), ending.size(), ending) == 0;
  }
  return n;
}

}  // namespace

TEST_CASE("State cache: the longest cached prefix is restored and continues exactly", "[generate]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  const auto vocab = static_cast<std::int32_t>(model.vocab_size());
  const std::vector<std::int32_t> tokens = cache_test_tokens(model.info().bos_token_id, 30, 13, vocab);
  glrnn::StateCache cache(model, {});
  cache.insert(key_prefix(tokens, 8), cached_state_after(model, tokens, 8));
  cache.insert(key_prefix(tokens, 20), cached_state_after(model, tokens, 20));

  glrnn::State out;
  CHECK(cache.restore(tokens, tokens.size(), out) == 20);
  CHECK(out.position() == 20);
  const std::vector<std::int32_t> rest(tokens.begin() + 20, tokens.end());
  CHECK((cached_logits_after(model, out, rest) - cached_logits_after(model, cached_state_after(model, tokens, 20), rest)).cwiseAbs().maxCoeff() == 0.0f);
  CHECK(cache.restore(tokens, 19, out) == 8);  // at most max_length tokens
  CHECK(out.position() == 8);
  CHECK(cache.restore(cache_test_tokens(model.info().bos_token_id, 30, 14, vocab), 30, out) == 0);
  CHECK(out.position() == 8);  // untouched by a miss
  CHECK(cache.contains(key_prefix(tokens, 20)));
  CHECK_FALSE(cache.contains(key_prefix(tokens, 19)));
  CHECK(cache.stats().lookups == 3);
  CHECK(cache.stats().hits == 2);
  CHECK(cache.stats().restored_tokens == 28);
  CHECK(cache.stats().memory_entries == 2);
  CHECK_THROWS_WITH(cache.insert(key_prefix(tokens, 9), cached_state_after(model, tokens, 8)), Catch::Contains("9 tokens"));
}

TEST_CASE("State cache: memory is bounded by LRU and evicted states come back from disk", "[generate]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  const auto vocab = static_cast<std::int32_t>(model.vocab_size());
  const std::int32_t bos = model.info().bos_token_id;
  std::vector<std::vector<std::int32_t>> keys;
  for (std::int32_t salt = 0; salt < 3; ++salt) keys.push_back(cache_test_tokens(bos, 12, salt, vocab));
  const std::size_t entry_bytes = model.state_bytes() + 12 * sizeof(std::int32_t);
  glrnn::State out;

  SECTION("without a directory the least recently used entry is dropped") {
    glrnn::StateCache cache(model, {2 * entry_bytes, "", 0});
    cache.insert(keys[0], cached_state_after(model, keys[0], 12));
    cache.insert(keys[1], cached_state_after(model, keys[1], 12));
    CHECK(cache.restore(keys[0], 12, out) == 12);  // keys[0] is now the most recent
    cache.insert(keys[2], cached_state_after(model, keys[2], 12));
    CHECK(cache.stats().memory_entries == 2);
    CHECK(cache.restore(keys[1], 12, out) == 0);
    CHECK(cache.restore(keys[0], 12, out) == 12);
  }
  SECTION("with a directory evicted states are written, read back, and survive a new cache") {
    const std::string dir = glrnn::test::make_temp_dir("state-cache");
    {
      glrnn::StateCache cache(model, {entry_bytes, dir, 0});
      for (const auto& key : keys) cache.insert(key, cached_state_after(model, key, 12));
      CHECK(cache.stats().memory_entries == 1);
      CHECK(cache.stats().disk_writes == 2);
      CHECK(cache_files_in(dir, ".state") == 2);
      CHECK(cache.restore(keys[0], 12, out) == 12);  // from disk
      CHECK(cache.stats().disk_reads == 1);
      const std::vector<std::int32_t> more{5, 6, 7};
      CHECK((cached_logits_after(model, out, more) - cached_logits_after(model, cached_state_after(model, keys[0], 12), more)).cwiseAbs().maxCoeff() == 0.0f);
      cache.flush();  // what is only in memory goes to disk too
      CHECK(cache_files_in(dir, ".state") == 3);
    }
    CHECK(cache_files_in(dir, ".tmp") == 0);
    glrnn::StateCache restarted(model, {0, dir, 0});
    CHECK(restarted.stats().disk_entries == 3);
    for (const auto& key : keys) CHECK(restarted.restore(key, 12, out) == 12);
    CHECK(restarted.stats().memory_entries == 0);  // a limit of 0 keeps nothing in memory

    SECTION("the disk limit removes the oldest files") {
      glrnn::StateCache limited(model, {0, dir, 2 * std::filesystem::file_size(std::filesystem::directory_iterator(dir)->path())});
      CHECK(limited.stats().disk_entries == 2);
      CHECK(cache_files_in(dir, ".state") == 2);
    }
  }
}

TEST_CASE("State cache: another model's, damaged or misnamed files are skipped, not errors", "[generate]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  const glrnn::Model other = glrnn::load_model(glrnn::test::data_path("hgrn2-tiny"));
  const auto vocab = static_cast<std::int32_t>(std::min(model.vocab_size(), other.vocab_size()));
  const std::vector<std::int32_t> key = cache_test_tokens(model.info().bos_token_id, 10, 3, vocab);
  const std::string dir = glrnn::test::make_temp_dir("state-cache-foreign");
  std::string file;
  {
    glrnn::StateCache cache(model, {0, dir, 0});
    cache.insert(key, cached_state_after(model, key, 10));
    REQUIRE(cache_files_in(dir, ".state") == 1);
    file = std::filesystem::directory_iterator(dir)->path().string();
  }
  // The file is replaced in each section; the cache must then miss without throwing. A file of
  // the wrong size is skipped when the directory is indexed (never read, never counted); one of
  // the right size when it is read.
  const auto skipped = [&](bool right_size) {
    glrnn::State out;
    glrnn::StateCache cache(model, {0, dir, 0});
    CHECK(cache.stats().disk_entries == (right_size ? 1 : 0));
    CHECK(cache.stats().disk_bytes == (right_size ? static_cast<std::int64_t>(std::filesystem::file_size(file)) : 0));
    CHECK(cache.restore(key, key.size(), out) == 0);
    CHECK_FALSE(out.valid());
    CHECK(cache.stats().disk_skipped == 1);
  };
  SECTION("another model's state under this model's name") {
    glrnn::State foreign = cached_state_after(other, key, 10);
    glrnn::save_state(other, foreign, file);
    skipped(false);
    glrnn::StateCache others(other, {0, dir, 0});  // another model's cache ignores this model's files
    CHECK(others.stats().disk_entries == 0);
  }
  SECTION("a damaged file") {
    std::filesystem::resize_file(file, std::filesystem::file_size(file) / 2);
    skipped(false);
  }
  SECTION("a damaged file of the right size") {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(file) / 2));
    f.put('\x7f');
    f.close();
    skipped(true);
  }
  SECTION("a planted file of 4 GB (sparse) is skipped unread") {
    std::filesystem::resize_file(file, std::uintmax_t{4} << 30);
    skipped(false);
  }
  SECTION("a file whose tokens are not its key") {
    glrnn::State state = cached_state_after(model, key, 10);
    glrnn::save_state(model, state, file);  // no tokens in the metadata
    skipped(false);
  }
}

TEST_CASE("State cache entries: a value is taken back only as this model's state for exactly its tokens", "[generate]") {
  // What a cache tier outside the process (Redis) stores: the same checks as the disk tier's.
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  const glrnn::Model other = glrnn::load_model(glrnn::test::data_path("hgrn2-tiny"));
  const auto vocab = static_cast<std::int32_t>(std::min(model.vocab_size(), other.vocab_size()));
  const std::vector<std::int32_t> tokens = cache_test_tokens(model.info().bos_token_id, 12, 5, vocab);
  const glrnn::StateCacheEntries entries(model);
  glrnn::State state = cached_state_after(model, tokens, 10);
  const std::string value = entries.encode(key_prefix(tokens, 10), state);
  CHECK(value.size() == entries.bytes(10));

  const std::optional<glrnn::State> back = entries.decode(value, tokens, 10);
  REQUIRE(back);
  CHECK((cached_logits_after(model, *back, {7}) - cached_logits_after(model, state, {7})).cwiseAbs().maxCoeff() == 0.0f);

  std::vector<std::int32_t> changed = tokens;
  changed[3] += 1;
  CHECK_FALSE(entries.decode(value, changed, 10));  // another key with the same length
  CHECK_FALSE(entries.decode(value, tokens, 9));
  CHECK_FALSE(entries.decode(value.substr(0, value.size() - 1), tokens, 10));
  std::string garbled = value;
  garbled[garbled.size() / 2] ^= 0x40;
  CHECK_FALSE(entries.decode(garbled, tokens, 10));  // the checksum
  const glrnn::StateCacheEntries other_entries(other);
  glrnn::State other_state = cached_state_after(other, tokens, 10);
  CHECK_FALSE(entries.decode(other_entries.encode(key_prefix(tokens, 10), other_state), tokens, 10));

  // Names carry the fingerprint, the key's hash and its length.
  const std::string name = entries.name(glrnn::StateCacheEntries::prefix_hash(tokens, 10), 10);
  CHECK(name.size() == 16 + 1 + 16 + 1 + 2);
  CHECK(name != other_entries.name(glrnn::StateCacheEntries::prefix_hash(tokens, 10), 10));
  CHECK(glrnn::StateCacheEntries::prefix_hashes(tokens, 10).back() == glrnn::StateCacheEntries::prefix_hash(tokens, 10));
}

TEST_CASE("State cache: with write_behind, states leaving memory are written by the caller and then found on disk", "[generate]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  const auto vocab = static_cast<std::int32_t>(model.vocab_size());
  const std::string dir = (std::filesystem::temp_directory_path() / "glrnn_state_cache_write_behind").string();
  std::filesystem::remove_all(dir);
  const std::vector<std::int32_t> a = cache_test_tokens(model.info().bos_token_id, 9, 1, vocab);
  const std::vector<std::int32_t> b = cache_test_tokens(model.info().bos_token_id, 9, 2, vocab);
  const glrnn::State state_a = cached_state_after(model, a, 9);
  glrnn::StateCacheOptions options;
  options.max_memory_bytes = state_a.bytes() + 100;  // one entry
  options.directory = dir;
  options.write_behind = true;
  glrnn::StateCache cache(model, options);
  cache.insert(a, state_a);
  cache.insert(b, cached_state_after(model, b, 9));  // a leaves memory, not yet for the disk
  CHECK(cache_files_in(dir, ".state") == 0);
  glrnn::State out;
  CHECK(cache.restore(a, a.size(), out) == 0);
  std::vector<glrnn::StateCache::DiskWrite> writes = cache.take_disk_writes();
  REQUIRE(writes.size() == 1);
  CHECK(writes[0].tokens == a);
  CHECK(cache.take_disk_writes().empty());
  const std::uintmax_t bytes = writes[0].write(cache.entries());  // what another thread does
  CHECK(bytes == cache.entries().bytes(9));
  cache.written(writes[0], bytes);
  CHECK(cache.stats().disk_writes == 1);
  CHECK(cache.restore(a, a.size(), out) == 9);
  CHECK((cached_logits_after(model, out, {5}) - cached_logits_after(model, state_a, {5})).cwiseAbs().maxCoeff() == 0.0f);

  // A failed write is counted and indexes nothing; flush() writes what is still waiting.
  glrnn::StateCache::DiskWrite failed = std::move(writes[0]);
  cache.written(failed, 0);
  CHECK(cache.stats().disk_write_errors == 1);
  const std::vector<std::int32_t> c = cache_test_tokens(model.info().bos_token_id, 9, 3, vocab);
  cache.insert(c, cached_state_after(model, c, 9));  // the state of a or b leaves memory
  cache.flush();
  glrnn::StateCache restarted(model, options);
  CHECK(restarted.stats().disk_entries == 3);
  std::filesystem::remove_all(dir);
}
