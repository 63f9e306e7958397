// Saved states: a restored state continues bit-identically, forks are independent, and a damaged
// or foreign file is refused without touching the state.

#include <sys/resource.h>  // getrlimit, setrlimit, RLIMIT_FSIZE

#include <csignal>     // std::signal, SIGXFSZ
#include <cstring>     // std::memcpy
#include <filesystem>  // std::filesystem::exists
#include <fstream>     // std::ifstream
#include <iterator>    // std::istreambuf_iterator
#include <string>      // std::string
#include <vector>      // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {

std::vector<std::int32_t> state_test_tokens(std::int32_t first, int n, std::int32_t vocab) {
  std::vector<std::int32_t> t{first};
  for (int i = 1; i < n; ++i) t.push_back(3 + (i * 97 + 13) % (vocab - 3));
  return t;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Logits of `tokens` fed one at a time.
Eigen::MatrixXf continue_with(glrnn::Session& session, const std::vector<std::int32_t>& tokens) {
  Eigen::MatrixXf out(session.model().vocab_size(), static_cast<Eigen::Index>(tokens.size()));
  for (std::size_t i = 0; i < tokens.size(); ++i) out.col(static_cast<Eigen::Index>(i)) = session.step(tokens[i]);
  return out;
}

}  // namespace

TEST_CASE("A restored state continues bit-identically", "[generate]") {
  // The tiny RecurrentGemma's window is 16: 40 positions wrap its ring 2.5 times, so the restore
  // lands in the middle of a wrapped window; HGRN2's state is the outer-product matrices; the fla
  // hybrids add a window of 8 and a full-attention cache that grows.
  const std::string fixture = GENERATE(std::string("recurrentgemma-tiny"), std::string("hgrn2-tiny"), std::string("gla-tiny"), std::string("retnet-tiny"), std::string("hgrn-tiny"), std::string("hgrn2-hybrid-tiny"), std::string("gla-hybrid-tiny"),
                                       std::string("delta_net-tiny"), std::string("gated_deltanet-hybrid-tiny"));
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path(fixture));
  const auto vocab = static_cast<std::int32_t>(model.vocab_size());
  const std::vector<std::int32_t> prompt = state_test_tokens(model.info().bos_token_id, 40, vocab);
  const std::vector<std::int32_t> more = state_test_tokens(7, 25, vocab);

  glrnn::Session original(model);
  original.prefill(prompt);
  const std::string bytes = glrnn::serialize_state(model, original.state(), {{"note", "kept"}});
  const Eigen::MatrixXf expected = continue_with(original, more);

  glrnn::Session restored(model);
  restored.prefill({model.info().bos_token_id, 5, 6});  // whatever it held before is replaced
  const glrnn::StateMetadata metadata = glrnn::deserialize_state(model, restored.state(), bytes);
  CHECK(metadata.at("note") == "kept");
  CHECK(restored.position() == 40);
  CHECK((continue_with(restored, more) - expected).cwiseAbs().maxCoeff() == 0.0f);

  SECTION("through a file") {
    glrnn::Session a(model), b(model);
    a.prefill(prompt);
    const std::string file = (glrnn::test::test_temp_dir() / ("state-" + fixture + ".bin")).string();
    a.save(file, {{"k", "v"}});
    CHECK(b.load(file).at("k") == "v");
    CHECK((continue_with(b, more) - continue_with(a, more)).cwiseAbs().maxCoeff() == 0.0f);
  }
}

TEST_CASE("A damaged or foreign state file is refused and leaves the state unchanged", "[generate]") {
  const glrnn::Model griffin = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  const glrnn::Model hgrn2 = glrnn::load_model(glrnn::test::data_path("hgrn2-tiny"));
  glrnn::Session source(griffin);
  source.prefill({2, 10, 20, 30});
  const std::string good = glrnn::serialize_state(griffin, source.state());

  glrnn::Session target(griffin);
  target.prefill({2, 40, 50});
  const std::string before = glrnn::serialize_state(griffin, target.state());
  const auto refused = [&](const std::string& bytes, const std::string& text) {
    CHECK_THROWS_WITH(glrnn::deserialize_state(griffin, target.state(), bytes), Catch::Contains(text));
    CHECK(glrnn::serialize_state(griffin, target.state()) == before);
  };
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{30}, good.size() / 2, good.size() - 1})
    refused(good.substr(0, cut), cut < 12 ? "state" : "checksum");
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  refused(flipped, "checksum mismatch");
  std::string version = good;
  version[8] = 9;
  refused(version, "version 9");
  std::string magic = good;
  magic[0] = 'X';
  refused(magic, "not a glrnn state file");
  refused(glrnn::serialize_state(hgrn2, glrnn::Session(hgrn2).state()), "another model");
  CHECK_THROWS_AS(glrnn::deserialize_state(griffin, target.state(), glrnn::serialize_state(hgrn2, glrnn::Session(hgrn2).state())),
                  glrnn::InputError);
  CHECK_THROWS_AS(glrnn::load_state(griffin, target.state(), "/nonexistent/state.bin"), glrnn::IoError);
}

TEST_CASE("Forked sessions continue independently and identically", "[generate]") {
  const std::string fixture = GENERATE(std::string("recurrentgemma-tiny"), std::string("hgrn2-tiny"), std::string("gla-tiny"), std::string("retnet-tiny"), std::string("hgrn-tiny"), std::string("hgrn2-hybrid-tiny"), std::string("gla-hybrid-tiny"),
                                       std::string("delta_net-tiny"), std::string("gated_deltanet-hybrid-tiny"));
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path(fixture));
  glrnn::Session parent(model);
  parent.prefill(state_test_tokens(model.info().bos_token_id, 30, static_cast<std::int32_t>(model.vocab_size())));
  glrnn::Session child = parent.fork();
  const Eigen::MatrixXf a = continue_with(child, {11, 12, 13});
  continue_with(parent, {40, 41});  // the parent goes elsewhere; the child is unaffected
  glrnn::Session second = parent.fork();
  CHECK(second.position() == 32);
  glrnn::Session again(model);
  again.prefill(state_test_tokens(model.info().bos_token_id, 30, static_cast<std::int32_t>(model.vocab_size())));
  CHECK((continue_with(again, {11, 12, 13}) - a).cwiseAbs().maxCoeff() == 0.0f);
}

TEST_CASE("State files are little-endian as docs/formats.md §7 lays them out", "[generate]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  glrnn::Session session(model);
  session.prefill({2, 10, 20});
  const std::string bytes = glrnn::serialize_state(model, session.state(), {{"k", "v"}});
  const auto u8 = [&](std::size_t i) { return static_cast<unsigned>(static_cast<unsigned char>(bytes[i])); };
  const auto le = [&](std::size_t offset, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(u8(offset + static_cast<std::size_t>(i))) << (8 * i);
    return v;
  };
  CHECK(bytes.substr(0, 8) == std::string("GLRNNST\0", 8));
  CHECK(le(8, 4) == GLRNN_STATE_FORMAT_VERSION);
  CHECK(le(12, 4) == 0);                               // reserved
  CHECK(le(16, 8) == model.info().fingerprint);
  CHECK(le(24, 8) == 3);                               // position
  std::uint32_t buffers = 0;
  session.state().visit([&](const std::string&, float*, std::size_t) { ++buffers; });
  CHECK(le(32, 4) == buffers);
  // The first buffer: its name, its float count, then its floats as IEEE bits.
  std::string first_name;
  float* first_data = nullptr;
  std::size_t first_count = 0;
  session.state().visit([&](const std::string& name, float* data, std::size_t count) {
    if (first_data) return;
    first_name = name;
    first_data = data;
    first_count = count;
  });
  const std::size_t name_length = le(36, 4);
  CHECK(bytes.substr(40, name_length) == first_name);
  CHECK(le(40 + name_length, 8) == first_count);
  for (std::size_t i = 0; i < first_count; i += 97) {
    std::uint32_t bits;
    std::memcpy(&bits, first_data + i, 4);
    CHECK(le(48 + name_length + 4 * i, 4) == bits);
  }
  CHECK(le(bytes.size() - 4, 4) == glrnn::crc32(bytes.data(), bytes.size() - 4));
}

TEST_CASE("A failed save leaves the state file that was there", "[generate]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  glrnn::Session session(model);
  session.prefill({2, 10, 20});
  const std::string path = (glrnn::test::test_temp_dir() / "kept.state").string();
  session.save(path);
  const std::string saved = file_bytes(path);
  session.step(30);
  // Writes beyond half the file's size fail (EFBIG), as on a full disk.
  struct rlimit old_limit {};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tight = old_limit;
  tight.rlim_cur = saved.size() / 2;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &tight) == 0);
  CHECK_THROWS_AS(session.save(path), glrnn::IoError);
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  CHECK(file_bytes(path) == saved);
  CHECK_FALSE(std::filesystem::exists(path + ".partial"));
  session.save(path);  // with room again, the new state replaces it
  CHECK(file_bytes(path) != saved);
}
