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
