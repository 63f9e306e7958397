// Batched decoding equals running each sequence alone, with sequences joining and leaving.

#include <vector>  // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"

TEST_CASE("Batched decoding equals running each sequence alone", "[generate]") {
  const std::string fixture = GENERATE(std::string("recurrentgemma-tiny"), std::string("hgrn2-tiny"), std::string("gla-tiny"), std::string("retnet-tiny"), std::string("hgrn-tiny"), std::string("hgrn2-hybrid-tiny"), std::string("gla-hybrid-tiny"),
                                       std::string("delta_net-tiny"), std::string("gated_deltanet-hybrid-tiny"));
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path(fixture));
  const std::int32_t bos = model.info().bos_token_id;
  // Four sequences at different positions: prompts of 3, 20, 7 and 41 tokens (past the window of
  // 16 for RecurrentGemma).
  std::vector<glrnn::Session> batched, alone;
  for (int length : {3, 20, 7, 41}) {
    std::vector<std::int32_t> prompt{bos};
    for (int i = 1; i < length; ++i) prompt.push_back(3 + (i * 37 + length) % 500);
    batched.emplace_back(model).prefill(prompt);
    alone.emplace_back(model).prefill(prompt);
  }
  glrnn::BatchDecoder decoder(model, 4);
  for (int step = 0; step < 12; ++step) {
    // Sequence 3 joins at step 4, sequence 1 leaves after step 7.
    std::vector<int> members{0, 2};
    if (step <= 7) members.push_back(1);
    if (step >= 4) members.push_back(3);
    std::vector<std::int32_t> tokens;
    std::vector<glrnn::State*> states;
    for (int m : members) {
      tokens.push_back(static_cast<std::int32_t>(5 + (step * 31 + m * 7) % 400));
      states.push_back(&batched[static_cast<std::size_t>(m)].state());
    }
    const glrnn::RowMatrixXf& logits = decoder.step(tokens, states);
    for (std::size_t i = 0; i < members.size(); ++i) {
      const Eigen::VectorXf& expected = alone[static_cast<std::size_t>(members[i])].step(tokens[i]);
      CAPTURE(step, members[i]);
      // A batch runs the projections as one matrix product, a single sequence as matrix-vector
      // products: float32 rounding apart, on logits of magnitude ~15.
      CHECK((logits.row(static_cast<Eigen::Index>(i)).transpose() - expected).cwiseAbs().maxCoeff() < 1e-4f);
      CHECK(batched[static_cast<std::size_t>(members[i])].position() == alone[static_cast<std::size_t>(members[i])].position());
    }
  }
}

TEST_CASE("Batched decoding refuses a bad batch before any work", "[generate]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny"));
  const glrnn::Model other = glrnn::load_model(glrnn::test::data_path("hgrn2-tiny"));
  glrnn::State a = model.make_state(), b = model.make_state(), foreign = other.make_state();
  glrnn::BatchDecoder decoder(model, 2);
  CHECK_THROWS_WITH(decoder.step({5, 6}, {&a, &a}), Catch::Contains("twice"));
  CHECK_THROWS_WITH(decoder.step({5, 6}, {&a, &foreign}), Catch::Contains("another model"));
  CHECK_THROWS_WITH(decoder.step({5, 6, 7}, {&a, &b, &b}), Catch::Contains("1 to 2"));
  CHECK_THROWS_WITH(decoder.step({5, 9999}, {&a, &b}), Catch::Contains("token id 9999"));
  CHECK(a.position() == 0);
  CHECK(b.position() == 0);
  decoder.step({5, 6}, {&a, &b});
  CHECK(a.position() == 1);
}
