// Log-probabilities: the log-softmax of the raw logits, and the most probable tokens in order.

#include <cmath>   // std::log, std::exp
#include <vector>  // std::vector

#include <catch2/catch.hpp>

#include "glrnn/sampling/logprobs.hpp"

TEST_CASE("Log-probabilities of the next token", "[sampling]") {
  Eigen::VectorXf logits(5);
  logits << 2.0f, 0.0f, 2.0f, -1.0f, 1000.0f;

  SECTION("a token's log-probability is its log-softmax, also for logits that overflow exp") {
    CHECK(glrnn::token_logprob(logits, 4) == Approx(0.0f).margin(1e-6));
    CHECK(glrnn::token_logprob(logits, 0) == Approx(-998.0f));
    Eigen::VectorXf uniform = Eigen::VectorXf::Constant(4, 3.0f);
    CHECK(glrnn::token_logprob(uniform, 2) == Approx(-std::log(4.0f)));
  }
  SECTION("the top tokens come most probable first, ties by the lower id") {
    const std::vector<glrnn::TokenLogprob> top = glrnn::top_logprobs(logits, 3);
    REQUIRE(top.size() == 3);
    CHECK(top[0].id == 4);
    CHECK(top[1].id == 0);
    CHECK(top[2].id == 2);
    CHECK(top[1].logprob == top[2].logprob);
    CHECK(glrnn::top_logprobs(logits, 0).empty());
    CHECK(glrnn::top_logprobs(logits, 99).size() == 5);
  }
  SECTION("the probabilities sum to one") {
    Eigen::VectorXf small(3);
    small << 0.5f, -0.25f, 1.5f;
    double total = 0.0;
    for (const glrnn::TokenLogprob& t : glrnn::top_logprobs(small, 3)) total += std::exp(static_cast<double>(t.logprob));
    CHECK(total == Approx(1.0).epsilon(1e-6));
  }
  SECTION("a token outside the logits is refused") {
    CHECK_THROWS_AS(glrnn::token_logprob(logits, 5), glrnn::InputError);
    CHECK_THROWS_WITH(glrnn::token_logprob(logits, -1), Catch::Contains("-1"));
  }
}
