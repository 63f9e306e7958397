// Decode and prefill allocate nothing once a Session exists: every buffer is sized up front; and
// the state's size is known without allocating one.
// Counted by replacing the global operator new for this test program. Not in sanitizer builds:
// the sanitizers own the allocator there, and a partial replacement of operator new/delete makes
// AddressSanitizer report every Catch2 allocation as an alloc-dealloc mismatch.

#include <atomic>   // std::atomic
#include <cstdlib>  // std::malloc, std::free, std::aligned_alloc
#include <new>      // std::bad_alloc, std::align_val_t
#include <string>   // std::string
#include <vector>   // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"

#ifndef GLRNN_SANITIZED

namespace {
std::atomic<bool> counting_allocations{false};
std::atomic<long> allocations_counted{0};

void* counted_allocation(std::size_t size, std::size_t alignment) {
  if (counting_allocations) ++allocations_counted;
  void* p = alignment > alignof(std::max_align_t)
                ? std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)
                : std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t size) { return counted_allocation(size, alignof(std::max_align_t)); }
void* operator new(std::size_t size, std::align_val_t a) { return counted_allocation(size, static_cast<std::size_t>(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

TEST_CASE("Prefill, step, batched step and sampling allocate nothing after set-up", "[generate]") {
  // Every family, every weight recipe: each runs its own kernels (and quantizes its activations).
  const std::string model_dir = GENERATE(
      glrnn::test::model_path("griffin-demo"), glrnn::test::model_path("hgrn2-demo"), glrnn::test::data_path("gla-tiny"),
      glrnn::test::data_path("retnet-tiny"), glrnn::test::data_path("hgrn-tiny"),
      glrnn::test::data_path("hgrn2-hybrid-tiny"), glrnn::test::data_path("gla-hybrid-tiny"),
      glrnn::test::data_path("delta_net-tiny"), glrnn::test::data_path("gated_deltanet-hybrid-tiny"));
  const glrnn::WeightRecipe recipe = GENERATE(from_range(glrnn::weight_recipes()));
  CAPTURE(model_dir, recipe.name);
  glrnn::LoadOptions options;
  options.weights = recipe;
  const glrnn::Model model = glrnn::load_model(model_dir, options);
  std::vector<std::int32_t> prompt{model.info().bos_token_id};
  for (int i = 1; i < 40; ++i) prompt.push_back(static_cast<std::int32_t>((300 + 37 * i) % model.vocab_size()));
  glrnn::Session session(model, /*max_chunk=*/16);  // the 40-token prompt runs as 3 chunks
  glrnn::SamplerParams params;
  params.temperature = 0.7f;
  params.repetition_penalty = 1.1f;
  glrnn::Sampler sampler(params, model.vocab_size());

  counting_allocations = true;
  delete new int(1);  // the instrument itself: this one must be seen
  counting_allocations = false;
  REQUIRE(allocations_counted == 1);

  glrnn::BatchDecoder decoder(model, 3);
  glrnn::State a = model.make_state(), b = model.make_state(), c = model.make_state();
  // A hybrid's full-attention cache grows with the sequence unless room is made for it up front.
  for (glrnn::State* s : {&session.state(), &a, &b, &c}) s->reserve(64);
  const std::vector<glrnn::State*> batch{&a, &b, &c};
  const std::vector<std::int32_t> batch_tokens{2, 2, 2};

  allocations_counted = 0;
  counting_allocations = true;
  session.prefill(prompt);
  for (int i = 0; i < 20; ++i) session.step(sampler.sample(session.logits(), prompt));
  for (int i = 0; i < 5; ++i) decoder.step(batch_tokens, batch);
  const std::size_t state_bytes = model.state_bytes();
  counting_allocations = false;
  CHECK(allocations_counted == 0);
  CHECK(session.position() == 60);
  CHECK(a.position() == 5);
  // From the configuration: no state was made to measure it.
  CHECK(state_bytes + model.info().state_bytes_per_position * 64 == a.bytes());
}

#endif  // GLRNN_SANITIZED
