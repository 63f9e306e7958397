// Sequence and Stepper: a sequence saved with its pending token and restored continues as the
// uninterrupted run; stop strings and tokens end it with the right text and reason; a batched
// Stepper step equals each sequence stepped alone.

#include <string>  // std::string
#include <vector>  // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {

glrnn::SamplerParams sampled(std::uint64_t seed) {
  glrnn::SamplerParams p;
  p.temperature = 0.9f;
  p.seed = seed;
  return p;
}

/// Runs a sequence to its end on its own state with a Session's scratch; returns its events.
std::vector<glrnn::SequenceEvent> run_to_end(glrnn::Session& runner, glrnn::Sequence& sequence,
                                             const Eigen::VectorXf& first_logits) {
  std::vector<glrnn::SequenceEvent> events;
  const Eigen::VectorXf* logits = &first_logits;
  for (;;) {
    events.push_back(sequence.next(*logits));
    if (sequence.finished()) return events;
    logits = &runner.step(sequence);
  }
}

std::vector<std::int32_t> tokens_of(const std::vector<glrnn::SequenceEvent>& events) {
  std::vector<std::int32_t> tokens;
  for (const glrnn::SequenceEvent& e : events) tokens.push_back(e.token);
  return tokens;
}

std::string text_of(const std::vector<glrnn::SequenceEvent>& events) {
  std::string text;
  for (const glrnn::SequenceEvent& e : events) text += e.text;
  return text;
}

/// The demo model after a prompt: where a test's sequences start from.
struct DemoAfterPrompt {
  explicit DemoAfterPrompt(const std::string& text)
      : model(glrnn::load_model(glrnn::test::model_path("griffin-demo"))),
        tokenizer(glrnn::load_model_tokenizer(glrnn::test::model_path("griffin-demo"))),
        session(model),
        prompt(tokenizer.encode(text, true)),
        logits(session.prefill(prompt)) {}

  /// A sequence from the prompt's state, sampling as `sampling` says.
  glrnn::Sequence sequence(const glrnn::SamplerParams& sampling, const glrnn::SequenceParams& params) const {
    return glrnn::Sequence(session.state().clone(), glrnn::Sampler(sampling, model.vocab_size()), params, prompt, &tokenizer);
  }

  glrnn::Model model;
  glrnn::Tokenizer tokenizer;
  glrnn::Session session;
  std::vector<std::int32_t> prompt;
  Eigen::VectorXf logits;  // after the prompt
};

}  // namespace

TEST_CASE("A sequence saved with its pending token continues as the uninterrupted run", "[generate]") {
  const DemoAfterPrompt start("Once upon a time");
  const glrnn::Model& model = start.model;
  glrnn::SequenceParams params;
  params.max_new_tokens = 30;

  glrnn::Session runner(model);
  glrnn::Sequence whole = start.sequence(sampled(5), params);
  const std::vector<std::int32_t> expected = tokens_of(run_to_end(runner, whole, start.logits));
  REQUIRE(expected.size() == 30);
  CHECK(whole.finish_reason() == glrnn::FinishReason::Length);

  // The same run, saved after 12 tokens (the 12th pending) and restored into a fresh state.
  glrnn::Sequence first = start.sequence(sampled(5), params);
  const Eigen::VectorXf* logits = &start.logits;
  std::vector<std::int32_t> tokens;
  for (int i = 0; i < 12; ++i) {
    tokens.push_back(first.next(*logits).token);
    if (i < 11) logits = &runner.step(first);
  }
  const std::string file = (glrnn::test::test_temp_dir() / "sequence.state").string();
  first.save(model, file);
  glrnn::State restored = model.make_state();
  const glrnn::StateMetadata metadata = glrnn::load_state(model, restored, file);
  const std::optional<std::int32_t> pending = glrnn::pending_token(metadata);
  REQUIRE(pending == tokens.back());
  // Going on needs the sampler's place too: the one the first part left.
  glrnn::SequenceParams rest = params;
  rest.max_new_tokens = 30 - 12;
  std::vector<std::int32_t> history = start.prompt;
  history.insert(history.end(), tokens.begin(), tokens.end());
  glrnn::Sequence second(std::move(restored), first.sampler(), rest, history, &start.tokenizer);
  glrnn::Session resumed(model);
  resumed.return_state(std::move(second.state()));
  const Eigen::VectorXf after_pending = resumed.step(*pending);
  second.state() = resumed.lend_state();
  for (std::int32_t t : tokens_of(run_to_end(runner, second, after_pending))) tokens.push_back(t);
  CHECK(tokens == expected);
}

TEST_CASE("A sequence ends at a stop string with the text before it, at a stop token, and at its limit", "[generate]") {
  const DemoAfterPrompt start("He looked at the old house and");
  const Eigen::VectorXf& logits = start.logits;
  glrnn::SamplerParams greedy;
  greedy.temperature = 0.0f;
  glrnn::Session runner(start.model);

  glrnn::SequenceParams free_params;
  free_params.max_new_tokens = 40;
  glrnn::Sequence free_run = start.sequence(greedy, free_params);
  const std::string text = text_of(run_to_end(runner, free_run, logits));
  REQUIRE(text.size() > 12);
  const std::string stop = text.substr(8, 4);  // a stop string the greedy text reaches

  glrnn::SequenceParams stop_params = free_params;
  stop_params.stop_strings = {stop};
  glrnn::Sequence stopped = start.sequence(greedy, stop_params);
  const std::vector<glrnn::SequenceEvent> events = run_to_end(runner, stopped, logits);
  CHECK(events.back().finish == glrnn::FinishReason::Stop);
  CHECK(text_of(events) == text.substr(0, text.find(stop)));
  CHECK_FALSE(stopped.pending().has_value());
  CHECK_THROWS_AS(stopped.next(logits), glrnn::InputError);

  glrnn::SequenceParams token_params = free_params;
  token_params.stop_tokens = {free_run.generated()[3]};
  glrnn::Sequence at_token = start.sequence(greedy, token_params);
  CHECK(run_to_end(runner, at_token, logits).size() == 4);
  CHECK(at_token.finish_reason() == glrnn::FinishReason::Stop);
}

TEST_CASE("A Stepper's batched step equals each sequence stepped alone", "[generate]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("hgrn2-tiny"));
  glrnn::Session session(model);
  const std::vector<std::int32_t> prompt{2, 17, 33, 8, 91};
  const Eigen::VectorXf logits = session.prefill(prompt);
  glrnn::SequenceParams params;
  params.max_new_tokens = 10;
  std::vector<glrnn::Sequence> batched, alone;
  for (std::uint64_t seed = 0; seed < 3; ++seed) {
    batched.emplace_back(session.state().clone(), glrnn::Sampler(sampled(seed), model.vocab_size()), params, prompt);
    alone.emplace_back(session.state().clone(), glrnn::Sampler(sampled(seed), model.vocab_size()), params, prompt);
  }
  glrnn::Stepper stepper(model, 3, 8);
  glrnn::Session runner(model);
  std::vector<Eigen::VectorXf> batch_logits(3, logits);
  for (int step = 0; step < 9; ++step) {
    std::vector<glrnn::Sequence*> running;
    for (int b = 0; b < 3; ++b) {
      batched[b].next(batch_logits[b]);
      running.push_back(&batched[b]);
    }
    const glrnn::RowMatrixXf& rows = stepper.decode(running);
    for (int b = 0; b < 3; ++b) batch_logits[b] = rows.row(b).transpose();
  }
  for (int b = 0; b < 3; ++b) {
    run_to_end(runner, alone[b], logits);
    batched[b].next(batch_logits[b]);
    CHECK(batched[b].generated() == alone[b].generated());
  }
}

TEST_CASE("generate and generate_parallel with no new tokens prefill and return nothing", "[generate]") {
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("hgrn2-tiny"));
  glrnn::GenerateOptions options;
  options.max_new_tokens = 0;
  std::vector<glrnn::Sampler> samplers(2, glrnn::Sampler(sampled(1), model.vocab_size()));
  glrnn::GenerateStats stats;
  const auto outputs = glrnn::generate_parallel(model, {2, 17, 33}, samplers, options, stats);
  REQUIRE(outputs.size() == 2);
  CHECK(outputs[0].empty());
  CHECK(stats.generated_tokens == 0);
  glrnn::Session session(model);
  glrnn::Sampler sampler(sampled(1), model.vocab_size());
  int calls = 0;
  const glrnn::GenerateStats single = glrnn::generate(session, {2, 17, 33}, sampler, options, [&](std::int32_t, const Eigen::VectorXf&) {
    ++calls;
    return true;
  });
  CHECK(calls == 0);
  CHECK(session.position() == 3);
  CHECK(single.prompt_tokens == 3);
}
