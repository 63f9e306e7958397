// One loaded model shared by several threads, each with its own session, gives every thread what
// a single-threaded run gives. Also built alone with ThreadSanitizer (scripts/sanitize.sh).

#include <thread>  // std::thread
#include <vector>  // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"

namespace {

struct Run {
  std::vector<std::int32_t> tokens;
  Eigen::VectorXf last_logits;
};

/// Samples 24 tokens (temperature 0.8, fixed seed) after a prompt that depends on `which`.
Run generate_one(const glrnn::Model& model, int which) {
  std::vector<std::int32_t> prompt{model.info().bos_token_id};
  for (int i = 1; i < 9 + 5 * which; ++i) prompt.push_back(static_cast<std::int32_t>(4 + (i * 53 + which * 11) % 250));
  glrnn::Session session(model);
  glrnn::SamplerParams params;
  params.temperature = 0.8f;
  params.seed = 1000 + static_cast<std::uint64_t>(which);
  glrnn::Sampler sampler(params, model.info().vocab_size);
  glrnn::GenerateOptions options;
  options.max_new_tokens = 24;
  Run run;
  glrnn::generate(session, prompt, sampler, options, [&](std::int32_t token, const Eigen::VectorXf& logits) {
    run.tokens.push_back(token);
    run.last_logits = logits;
    return true;
  });
  return run;
}

}  // namespace

TEST_CASE("Four threads sharing one model each get the single-threaded result", "[generate][threads]") {
  const std::string model_dir = GENERATE(glrnn::test::model_path("griffin-demo"), glrnn::test::model_path("hgrn2-demo"));
  const glrnn::Model model = glrnn::load_model(model_dir);
  constexpr int kThreads = 4;
  std::vector<Run> alone;
  for (int t = 0; t < kThreads; ++t) alone.push_back(generate_one(model, t));

  std::vector<Run> together(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { together[t] = generate_one(model, t); });
  for (std::thread& thread : threads) thread.join();

  for (int t = 0; t < kThreads; ++t) {
    CAPTURE(model_dir, t);
    REQUIRE(alone[t].tokens.size() == 24);
    // Same kernels on the same inputs: concurrency may change nothing, not even rounding.
    CHECK(together[t].tokens == alone[t].tokens);
    CHECK(together[t].last_logits == alone[t].last_logits);
  }
}

TEST_CASE("The thread count holds for every thread that calls into glrnn", "[generate][threads]") {
  const int saved = glrnn::num_threads();
  glrnn::set_num_threads(1);
  int count_seen = 0;
  std::int64_t chunks = 0;
  // A thread the program starts itself (OpenMP's own count would start it with one per core).
  std::thread([&] {
    count_seen = glrnn::num_threads();
    glrnn::parallel_for(0, 1 << 20, 1 << 20, [&](std::int64_t, std::int64_t) {
#pragma omp atomic
      ++chunks;
    });
  }).join();
  glrnn::set_num_threads(saved);
  CHECK(count_seen == 1);
  CHECK(chunks == 1);
}
