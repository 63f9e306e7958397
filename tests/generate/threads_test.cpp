// One loaded model shared by several threads, each with its own session, gives every thread what
// a single-threaded run gives. Also built alone with ThreadSanitizer (scripts/sanitize.sh).

#include <atomic>     // std::atomic
#include <chrono>     // std::chrono::milliseconds
#include <stdexcept>  // std::runtime_error
#include <thread>     // std::thread, std::this_thread::sleep_for
#include <vector>     // std::vector

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
  std::atomic<std::int64_t> chunks{0};
  // A thread the program starts itself (OpenMP's own count would start it with one per core).
  std::thread([&] {
    count_seen = glrnn::num_threads();
    glrnn::parallel_for(0, 1 << 20, 1 << 20, [&](std::int64_t, std::int64_t) { chunks.fetch_add(1); });
  }).join();
  glrnn::set_num_threads(saved);
  CHECK(count_seen == 1);
  CHECK(chunks == 1);
}

// The parallel loops themselves, on whichever threads the build has (OpenMP's, or glrnn's own
// pool in builds without it: scripts/sanitize.sh builds this file that way under TSan).

TEST_CASE("A parallel loop covers its range once, on at most the threads asked for", "[generate][threads]") {
  constexpr std::int64_t kItems = 100000;
  for (const int threads : {1, 2, 3, 8}) {
    std::vector<std::atomic<int>> hits(kItems);
    std::atomic<int> bad_thread{0};
    glrnn::parallel_chunks(0, kItems, 1 << 10, threads, [&](int t, std::int64_t lo, std::int64_t hi) {
      if (t < 0 || t >= threads) bad_thread.fetch_add(1);
      for (std::int64_t i = lo; i < hi; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
    });
    CAPTURE(threads);
    CHECK(bad_thread.load() == 0);
    std::int64_t once = 0;
    for (const auto& h : hits) once += h.load() == 1;
    CHECK(once == kItems);
  }
}

TEST_CASE("A parallel loop inside a parallel loop's body runs on the thread that reached it", "[generate][threads]") {
  const int saved = glrnn::num_threads();
  glrnn::set_num_threads(4);
  std::atomic<std::int64_t> inner_items{0};
  glrnn::parallel_for(0, 64, 1 << 20, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i)
      glrnn::parallel_for(0, 1000, 1 << 20, [&](std::int64_t a, std::int64_t b) { inner_items.fetch_add(b - a); });
  });
  glrnn::set_num_threads(saved);
  CHECK(inner_items.load() == 64 * 1000);
}

TEST_CASE("Program threads each running parallel loops at once get their own results", "[generate][threads]") {
  const int saved = glrnn::num_threads();
  glrnn::set_num_threads(3);
  constexpr int kCallers = 4, kLoops = 200;
  std::vector<std::int64_t> sums(kCallers);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int l = 0; l < kLoops; ++l) {
        std::atomic<std::int64_t> sum{0};
        glrnn::parallel_for(0, 3000 + c, 1 << 12, [&](std::int64_t lo, std::int64_t hi) {
          std::int64_t part = 0;
          for (std::int64_t i = lo; i < hi; ++i) part += i;
          sum.fetch_add(part);
        });
        sums[static_cast<std::size_t>(c)] += sum.load();
      }
    });
  for (std::thread& t : callers) t.join();
  glrnn::set_num_threads(saved);
  for (int c = 0; c < kCallers; ++c) {
    const std::int64_t n = 3000 + c;
    CHECK(sums[static_cast<std::size_t>(c)] == kLoops * (n * (n - 1) / 2));
  }
}

#ifndef _OPENMP
TEST_CASE("An exception thrown on one of glrnn's own threads reaches the loop's caller", "[generate][threads]") {
  // (With OpenMP an exception may not leave a parallel region: glrnn's bodies never throw.)
  // The calling thread dawdles over its chunks, so the workers take some, and they throw.
  for (int round = 0; round < 3; ++round) {
    CHECK_THROWS_WITH(glrnn::parallel_chunks(0, 1000, 1 << 20, 4,
                                             [&](int t, std::int64_t, std::int64_t) {
                                               if (t != 0) throw std::runtime_error("from a worker");
                                               std::this_thread::sleep_for(std::chrono::milliseconds(5));
                                             }),
                      "from a worker");
  }
  // The pool still works afterwards.
  std::atomic<std::int64_t> items{0};
  glrnn::parallel_chunks(0, 1000, 1 << 20, 4, [&](int, std::int64_t lo, std::int64_t hi) { items.fetch_add(hi - lo); });
  CHECK(items.load() == 1000);
}
#endif
