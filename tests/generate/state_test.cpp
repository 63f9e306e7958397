// Saved states: a restored state continues bit-identically, forks are independent, and a damaged
// or foreign file is refused without touching the state.

#include <string>  // std::string
#include <vector>  // std::vector

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

/// Logits of `tokens` fed one at a time.
Eigen::MatrixXf continue_with(glrnn::Session& session, const std::vector<std::int32_t>& tokens) {
  Eigen::MatrixXf out(session.model().vocab_size(), static_cast<Eigen::Index>(tokens.size()));
  for (std::size_t i = 0; i < tokens.size(); ++i) out.col(static_cast<Eigen::Index>(i)) = session.step(tokens[i]);
  return out;
}

}  // namespace

TEST_CASE("A restored state continues bit-identically", "[generate]") {
  // The tiny RecurrentGemma's window is 16: 40 positions wrap its ring 2.5 times, so the restore
  // lands in the middle of a wrapped window; HGRN2's state is the outer-product matrices.
  const std::string fixture = GENERATE(std::string("recurrentgemma-tiny"), std::string("hgrn2-tiny"));
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
  const std::string fixture = GENERATE(std::string("recurrentgemma-tiny"), std::string("hgrn2-tiny"));
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
