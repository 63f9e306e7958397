// A user's own stack assembled from the layer headers alone: another block pattern (attention
// first), another width, an untied head and no soft cap, run through the same Model/Session API.

#include <memory>  // std::make_shared
#include <vector>  // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/random_weights.hpp"

namespace {

using AttentionBlock = glrnn::ResidualBlock<glrnn::RmsNorm, glrnn::Attention, glrnn::Mlp>;
using RecurrentResidual = glrnn::ResidualBlock<glrnn::RmsNorm, glrnn::RecurrentBlock, glrnn::Mlp>;
using CustomStack = glrnn::DecoderStack<glrnn::RmsNorm, glrnn::LinearHead, AttentionBlock, RecurrentResidual>;

/// Pattern A, R, R, A at width 32 with random weights owned by `rw`.
CustomStack make_custom_stack(glrnn::test::RandomWeights& rw) {
  const std::int64_t D = 32, H = 2, dh = D / H, W = 6, F = 48, V = 100, K = 3;
  const glrnn::RmsNormConfig norm{D, 1e-6f, true};
  const glrnn::MlpConfig mlp{D, F, glrnn::Activation::GeluTanh};
  const auto linear = [&](std::int64_t in, std::int64_t out) {
    return glrnn::LinearWeights{rw.weight({out, in}, 0.3f), rw.tensor({out}, 0.05f)};
  };
  std::vector<CustomStack::Block> blocks;
  for (int l = 0; l < 4; ++l) {
    glrnn::RmsNorm pre(norm, rw.tensor({D}, 0.1f)), post(norm, rw.tensor({D}, 0.1f));
    glrnn::Mlp ffn(mlp, {linear(D, F), linear(D, F), linear(F, D)});
    if (l == 0 || l == 3) {
      glrnn::Attention attn({D, H, 1, dh, W, dh / 2, 10000.0f},
                                 {{rw.weight({D, D}, 0.3f), {}}, {rw.weight({dh, D}, 0.3f), {}},
                                  {rw.weight({dh, D}, 0.3f), {}}, linear(D, D)});
      blocks.emplace_back(AttentionBlock(D, pre, attn, post, ffn));
    } else {
      glrnn::RecurrentBlockWeights w{linear(D, D), linear(D, D), linear(D, D),
                                     {rw.tensor({D, 1, K}, 0.3f), rw.tensor({D}, 0.05f)},
                                     {rw.weight({H, dh, dh}, 0.2f), rw.weight({H, dh, dh}, 0.2f),
                                      rw.tensor({H, dh}, 0.2f), rw.tensor({H, dh}, 0.2f), rw.tensor({D})}};
      blocks.emplace_back(RecurrentResidual(D, pre, glrnn::RecurrentBlock({D, D, H, K}, w), post, ffn));
    }
  }
  return CustomStack(glrnn::Embedding(rw.weight({V, D}), 1.0f), std::move(blocks), glrnn::RmsNorm(norm, rw.tensor({D}, 0.1f)),
                     glrnn::LinearHead(glrnn::Linear(D, V, {rw.weight({V, D}), {}}, "head")));
}

}  // namespace

TEST_CASE("A custom stack from the layer headers runs through Model and Session", "[models]") {
  auto weights = std::make_shared<glrnn::test::RandomWeights>(11);
  glrnn::ModelInfo info;
  info.family = "custom";
  info.vocab_size = 100;
  info.eos_token_id = -1;
  const glrnn::Model model(info, weights, make_custom_stack(*weights));

  std::vector<std::int32_t> tokens;
  for (int i = 0; i < 20; ++i) tokens.push_back((i * 37 + 5) % 100);  // 20 > 3 windows of 6
  glrnn::Session whole(model);
  glrnn::RowMatrixXf all;
  whole.prefill_all(tokens, all);

  glrnn::Session stepwise(model);
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    stepwise.step(tokens[t]);
    // Float32 rounding of two evaluation orders (matvec vs GEMM) on logits of order 10.
    CHECK((stepwise.logits().transpose() - all.row(static_cast<Eigen::Index>(t))).cwiseAbs().maxCoeff() < 1e-4f);
  }
  // State: two rings [6, 16] x 2 and two recurrent blocks (h [32] + history [2, 32]).
  CHECK(whole.state().bytes() == (2 * 2 * 6 * 16 + 2 * (32 + 2 * 32)) * sizeof(float));
}
