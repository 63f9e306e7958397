// Token choice: greedy, the filters, and seeded reproducibility.

#include <limits>  // std::numeric_limits
#include <set>     // std::set
#include <vector>  // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"

TEST_CASE("Sampler", "[sampling]") {
  Eigen::VectorXf logits(6);
  logits << 1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f;

  SECTION("temperature 0 is argmax, the first of equal maxima as torch.argmax") {
    glrnn::SamplerParams p;
    p.temperature = 0.0f;
    glrnn::Sampler s(p, 6);
    CHECK(s.sample(logits) == 1);
  }
  SECTION("top-k 1 is greedy whatever the temperature") {
    glrnn::SamplerParams p;
    p.temperature = 5.0f;
    p.top_k = 1;
    glrnn::Sampler s(p, 6);
    for (int i = 0; i < 20; ++i) CHECK(s.sample(logits) == 1);
  }
  SECTION("top-k and top-p keep only the most likely tokens") {
    glrnn::SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 3;
    p.top_p = 1.0f;
    glrnn::Sampler s(p, 6);
    std::set<int> seen;
    for (int i = 0; i < 400; ++i) seen.insert(s.sample(logits));
    CHECK(seen == std::set<int>{1, 2, 3});
    p.top_k = 0;
    p.top_p = 0.5f;  // tokens 1 and 3 hold 2 x 0.39 of the mass; the first alone is below 0.5
    glrnn::Sampler nucleus(p, 6);
    seen.clear();
    for (int i = 0; i < 400; ++i) seen.insert(nucleus.sample(logits));
    CHECK(seen == std::set<int>{1, 3});
  }
  SECTION("min-p drops tokens far below the best one") {
    glrnn::SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.5f;  // keeps p >= 0.5 p_max: logits within ln 2 of the best
    glrnn::Sampler s(p, 6);
    std::set<int> seen;
    for (int i = 0; i < 400; ++i) seen.insert(s.sample(logits));
    CHECK(seen == std::set<int>{1, 3});
  }
  SECTION("repetition penalty lowers the tokens seen") {
    glrnn::SamplerParams p;
    p.temperature = 0.0f;
    p.repetition_penalty = 2.0f;
    glrnn::Sampler s(p, 6);
    CHECK(s.sample(logits, {1, 3}) == 2);  // 3 / 2 = 1.5 < 2
  }
  SECTION("presence and frequency penalties lower the generated tokens, as OpenAI defines them") {
    glrnn::SamplerParams p;
    p.temperature = 0.0f;
    p.presence_penalty = 1.5f;  // tokens 1 and 3 tie at 3; a generated one drops to 1.5, below token 2
    glrnn::Sampler s(p, 6);
    CHECK(s.sample(logits, {}, {1}) == 3);
    CHECK(s.sample(logits, {}, {1, 3, 3}) == 2);  // presence counts once however often
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.6f;  // token 1 generated twice: 3 - 1.2 = 1.8 < 2; token 3 once: 2.4
    glrnn::Sampler f(p, 6);
    CHECK(f.sample(logits, {}, {1, 1, 3}) == 3);
    CHECK(f.sample(logits, {}, {1, 1, 3, 3}) == 2);
    CHECK(f.sample(logits) == 1);  // the counts of the previous call are gone
    p.frequency_penalty = -1.0f;   // negative values encourage repetition
    glrnn::Sampler r(p, 6);
    CHECK(r.sample(logits, {}, {4, 4, 4, 4, 4}) == 4);
  }
  SECTION("the same seed gives the same tokens") {
    glrnn::SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.seed = 42;
    glrnn::Sampler a(p, 6), b(p, 6);
    std::vector<int> ta, tb;
    for (int i = 0; i < 50; ++i) {
      ta.push_back(a.sample(logits));
      tb.push_back(b.sample(logits));
    }
    CHECK(ta == tb);
    CHECK(std::set<int>(ta.begin(), ta.end()).size() > 2);
  }
  SECTION("invalid parameters are refused") {
    glrnn::SamplerParams p;
    p.top_p = 0.0f;
    CHECK_THROWS_AS(glrnn::Sampler(p, 6), glrnn::InputError);
    p = {};
    p.temperature = -1.0f;
    CHECK_THROWS_WITH(glrnn::Sampler(p, 6), Catch::Contains("temperature"));
    p = {};
    p.frequency_penalty = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(glrnn::Sampler(p, 6), Catch::Contains("frequency"));
  }
}

TEST_CASE("Without top-k the sampler sorts only as far as it walks, and draws as a full sort would", "[sampling]") {
  // A reference that sorts the whole vocabulary and walks it with the same uniform draws. The
  // sampler sums the softmax in another order, so a draw could differ only where r falls within
  // rounding (1e-16) of a boundary: none does in these 2,400 draws.
  const std::int32_t vocab = 50000;
  Eigen::VectorXf logits(vocab);
  glrnn::Rng noise(99);
  for (std::int32_t i = 0; i < vocab; ++i) logits[i] = static_cast<float>(noise.uniform() * 12.0 - 6.0);
  logits[123] = logits[456];  // a tie, broken by the lower id
  glrnn::SamplerParams params;
  params.top_k = 0;
  params.temperature = 0.7f;
  params.top_p = GENERATE(1.0f, 0.9f);
  params.min_p = GENERATE(0.0f, 0.05f);
  params.seed = 17;
  CAPTURE(params.top_p, params.min_p);
  glrnn::Sampler sampler(params, vocab);
  glrnn::Rng rng(params.seed);
  std::vector<std::pair<double, std::int32_t>> order;  // (logit, id), best first
  for (std::int32_t i = 0; i < vocab; ++i) order.emplace_back(logits[i] / params.temperature, i);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return static_cast<float>(a.first) > static_cast<float>(b.first) ||
           (static_cast<float>(a.first) == static_cast<float>(b.first) && a.second < b.second);
  });
  std::vector<double> prob(order.size());
  double total = 0.0;
  for (std::size_t i = 0; i < order.size(); ++i) total += (prob[i] = std::exp(order[i].first - order[0].first));
  for (double& p : prob) p /= total;
  std::size_t keep = order.size();
  if (params.top_p < 1.0f) {
    double mass = 0.0;
    std::size_t n = 0;
    while (n < keep && mass < params.top_p) mass += prob[n++];
    keep = n;
  }
  if (params.min_p > 0.0f) {
    std::size_t n = 1;
    while (n < keep && prob[n] >= params.min_p * prob[0]) ++n;
    keep = n;
  }
  double remaining = 0.0;
  for (std::size_t i = 0; i < keep; ++i) remaining += prob[i];
  std::int64_t deep = 0;  // draws past the first 256 ranks, where the sort had to go further
  for (int draw = 0; draw < 600; ++draw) {
    double r = rng.uniform() * remaining;
    std::size_t i = 0;
    while (i + 1 < keep && r >= prob[i]) r -= prob[i++];
    deep += i >= 256;
    REQUIRE(sampler.sample(logits) == order[i].second);
  }
  if (params.top_p == 1.0f && params.min_p == 0.0f) CHECK(deep > 100);
}
