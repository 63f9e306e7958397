#pragma once
// glrnn-bench constrain: what a JSON Schema costs per token. For each tokenizer, the time to
// compute the mask of allowed tokens at every position of a document that follows the schema
// (p50 and p99): cold (nothing kept) and as generation runs (masks and the walk's transitions
// kept per matcher state, docs/constraints.md, "Masks"). Then decode tok/s of a model geometry with random weights,
// sampling with the default sampler with and without the schema, in interleaved rounds.

#include <algorithm>  // std::sort
#include <cstdio>     // std::printf
#include <memory>     // std::make_shared

#include <glrnn/tools/cli.hpp>

#include "common.hpp"

namespace glrnn::bench {

struct MaskTimes {
  std::string tokenizer;
  std::int32_t vocab = 0;
  double vocabulary_seconds = 0, cold_p50 = 0, cold_p99 = 0, kept_p50 = 0, kept_p99 = 0;
  std::size_t positions = 0;
};

inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

inline MaskTimes bench_masks(const std::string& tokenizer_path, const std::shared_ptr<const Grammar>& grammar,
                             const std::string& document) {
  MaskTimes r;
  r.tokenizer = tokenizer_path;
  const Tokenizer tokenizer = load_tokenizer(tokenizer_path);
  r.vocab = tokenizer.vocab_size();
  Clock::time_point t0 = Clock::now();
  const auto vocabulary = TokenVocabulary::from_tokenizer(tokenizer);
  r.vocabulary_seconds = seconds_since(t0);
  const std::vector<std::int32_t> ids = tokenizer.encode(document, false);
  std::vector<double> cold, kept;
  TokenConstraint cold_walk(grammar, vocabulary, {}), kept_walk(grammar, vocabulary, {});
  for (std::int32_t id : ids) {
    cold_walk.forget_masks();
    t0 = Clock::now();
    const bool allowed = cold_walk.mask().allows(id);
    cold.push_back(seconds_since(t0));
    t0 = Clock::now();
    kept_walk.mask();
    kept.push_back(seconds_since(t0));
    GLRNN_CHECK(allowed, InputError, "the document does not follow the schema at token " + std::to_string(id));
    cold_walk.accept(id);
    kept_walk.accept(id);
  }
  r.positions = ids.size();
  r.cold_p50 = percentile(cold, 0.5);
  r.cold_p99 = percentile(cold, 0.99);
  r.kept_p50 = percentile(kept, 0.5);
  r.kept_p99 = percentile(kept, 0.99);
  return r;
}

/// Decode tok/s of `steps` sampled tokens, constrained when `grammar` is set (a sequence whose
/// grammar completes starts over on the same state).
inline double constrained_decode_tok_s(Session& session, const std::shared_ptr<const Grammar>& grammar,
                                       const std::shared_ptr<const TokenVocabulary>& vocabulary, int steps, std::uint64_t seed) {
  SamplerParams sampling;  // the defaults: temperature 0.8, top-k 40, top-p 0.95
  sampling.seed = seed;
  SequenceParams params;
  params.max_new_tokens = steps + 1;
  params.grammar = grammar;
  std::vector<double> seconds;
  Sequence sequence(session.lend_state(), Sampler(sampling, session.model().vocab_size()), params, {}, nullptr, vocabulary);
  const Eigen::VectorXf* logits = &session.logits();
  for (int i = 0; i < steps; ++i) {
    const Clock::time_point t0 = Clock::now();
    sequence.next(*logits);
    if (sequence.finished()) {
      State state = std::move(sequence.state());
      sequence = Sequence(std::move(state), sequence.sampler(), params, {}, nullptr, vocabulary);
      continue;
    }
    logits = &session.step(sequence);
    seconds.push_back(seconds_since(t0));
  }
  session.return_state(std::move(sequence.state()));
  // Every step counts (not the median): the cost of a mask falls on the steps that compute one.
  double total = 0;
  for (double t : seconds) total += t;
  return static_cast<double>(seconds.size()) / total;
}

inline void bench_constrain(const std::vector<std::string>& tokenizers, const std::string& schema_path,
                            const std::string& document_path, const std::string& config_path, const std::string& type,
                            int steps, int rounds, bool json) {
  const auto grammar = tools::load_constraint({schema_path, ""});
  std::string document = tools::read_file(document_path);
  while (!document.empty() && (document.back() == '\n' || document.back() == ' ')) document.pop_back();  // the file's last line end
  std::vector<MaskTimes> masks;
  for (const std::string& t : tokenizers) masks.push_back(bench_masks(t, grammar, document));

  // Decode with the last tokenizer's vocabulary, cut to the model's (Gemma 3's tokenizer has
  // more ids than RecurrentGemma's 256,000 rows).
  const glrnn::Model model = random_model(config_path, recipe_named(type)).first;
  const Tokenizer tokenizer = load_tokenizer(tokenizers.back());
  std::vector<std::string> bytes(static_cast<std::size_t>(model.vocab_size()));
  const auto full = TokenVocabulary::from_tokenizer(tokenizer);
  for (std::int32_t id = 0; id < model.vocab_size() && id < full->size(); ++id) bytes[static_cast<std::size_t>(id)] = full->bytes(id);
  const auto vocabulary = std::make_shared<const TokenVocabulary>(std::move(bytes));
  Session session(model);
  session.step(1);  // first touch of every page
  std::vector<double> free_tok_s, constrained_tok_s, ratios;
  for (int round = 0; round < rounds; ++round) {
    free_tok_s.push_back(constrained_decode_tok_s(session, nullptr, vocabulary, steps, 7 + static_cast<std::uint64_t>(round)));
    constrained_tok_s.push_back(constrained_decode_tok_s(session, grammar, vocabulary, steps, 7 + static_cast<std::uint64_t>(round)));
    ratios.push_back(constrained_tok_s.back() / free_tok_s.back());
  }
  const std::string kernels(kernel_path_name(kernel_path()));
  if (json) {
    nlohmann::json out = {{"schema", schema_path}, {"kernels", kernels}, {"threads", num_threads()}, {"masks", nlohmann::json::array()},
                          {"decode", {{"config", config_path}, {"type", type}, {"free_tok_s", median(free_tok_s)},
                                      {"constrained_tok_s", median(constrained_tok_s)}, {"ratio", median(ratios)}}}};
    for (const MaskTimes& m : masks)
      out["masks"].push_back({{"tokenizer", m.tokenizer}, {"vocab", m.vocab}, {"vocabulary_seconds", m.vocabulary_seconds},
                              {"positions", m.positions}, {"cold_p50_ms", m.cold_p50 * 1e3}, {"cold_p99_ms", m.cold_p99 * 1e3},
                              {"kept_p50_ms", m.kept_p50 * 1e3}, {"kept_p99_ms", m.kept_p99 * 1e3}});
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("kernels %s, %d threads, schema %s\n\n", kernels.c_str(), num_threads(), schema_path.c_str());
  std::printf("| tokenizer | vocab | vocabulary s | positions | mask p50 ms (cold) | p99 ms (cold) | mask p50 ms (kept) | p99 ms (kept) |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const MaskTimes& m : masks)
    std::printf("| %s | %d | %.3f | %zu | %.3f | %.3f | %.4f | %.3f |\n", m.tokenizer.c_str(), m.vocab, m.vocabulary_seconds,
                m.positions, m.cold_p50 * 1e3, m.cold_p99 * 1e3, m.kept_p50 * 1e3, m.kept_p99 * 1e3);
  std::printf("\n| config | type | free tok/s | with schema tok/s | ratio (median of %d interleaved rounds) |\n|---|---|---|---|---|\n",
              rounds);
  std::printf("| %s | %s | %.2f | %.2f | %.3f |\n", config_path.c_str(), type.c_str(), median(free_tok_s), median(constrained_tok_s),
              median(ratios));
}

}  // namespace glrnn::bench
