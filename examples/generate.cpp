// glrnn-generate: continue a prompt with a model. A text prompt is tokenized with the model
// folder's tokenizer.json and the continuation is streamed as text; a prompt of token ids gets
// token ids back.

#include <chrono>    // std::chrono::steady_clock
#include <cstdio>    // std::printf, std::fputs, std::fflush
#include <fstream>   // std::ofstream
#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

#include <glrnn/glrnn.hpp>

#include <glrnn/tools/cli.hpp>

namespace {

// Metadata key of a state file, present when the run printed ids: a continuation with no prompt
// does the same. (The pending token's key is the library's: glrnn::kPendingTokenKey.)
constexpr const char* kPrintsIds = "glrnn-generate.prints_ids";

void write_row(std::ofstream& out, const float* row, Eigen::Index n) {
  char number[32];
  out << '[';
  for (Eigen::Index i = 0; i < n; ++i) {
    std::snprintf(number, sizeof number, "%.9g", static_cast<double>(row[i]));  // 9 digits: exact float32
    out << (i ? "," : "") << number;
  }
  out << ']';
}

void write_ids(std::ofstream& out, const std::vector<std::int32_t>& ids) {
  out << '[';
  for (std::size_t i = 0; i < ids.size(); ++i) out << (i ? "," : "") << ids[i];
  out << ']';
}

/// {"prompt_ids", "generated_ids", "prompt_logits" [P][V], "generated_logits" [N][V]}
void write_logits_json(const std::string& path, const std::vector<std::int32_t>& prompt,
                       const std::vector<std::int32_t>& generated, const glrnn::RowMatrixXf& prompt_logits,
                       const glrnn::RowMatrixXf& generated_logits) {
  std::ofstream out(path);
  GLRNN_CHECK(out.good(), glrnn::IoError, "cannot write '" + path + "'");
  out << "{\"prompt_ids\":";
  write_ids(out, prompt);
  out << ",\"generated_ids\":";
  write_ids(out, generated);
  for (const auto& [key, rows] : {std::pair{"prompt_logits", &prompt_logits}, {"generated_logits", &generated_logits}}) {
    out << ",\"" << key << "\":[";
    for (Eigen::Index r = 0; r < rows->rows(); ++r) {
      if (r) out << ',';
      write_row(out, rows->row(r).data(), rows->cols());
    }
    out << ']';
  }
  out << "}\n";
  GLRNN_CHECK(out.good(), glrnn::IoError, "failed writing '" + path + "'");
}

/// --parallel: the continuations are printed when all are done, one per line, "[i] ...".
void run_parallel(const glrnn::Model& model, const std::vector<std::int32_t>& prompt, glrnn::SamplerParams sampling,
                  const glrnn::GenerateOptions& options, std::int64_t parallel, const glrnn::Tokenizer* tokenizer) {
  std::vector<glrnn::Sampler> samplers;
  for (std::int64_t i = 0; i < parallel; ++i, ++sampling.seed) samplers.emplace_back(sampling, model.vocab_size());
  glrnn::GenerateStats stats;
  const auto outputs = glrnn::generate_parallel(model, prompt, samplers, options, stats);
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    std::string text;
    if (tokenizer) {
      text = tokenizer->decode(outputs[i]);
    } else {
      for (std::int32_t id : outputs[i]) text += (text.empty() ? "" : " ") + std::to_string(id);
    }
    std::printf("[%zu] %s\n", i, text.c_str());
  }
  const std::size_t state_bytes =
      model.info().state_bytes_at(static_cast<std::int64_t>(prompt.size()) + stats.decode_steps) * static_cast<std::size_t>(parallel);
  std::fprintf(stderr, "%s | %lld sequences in parallel\n", glrnn::format_stats(stats, state_bytes).c_str(),
               static_cast<long long>(parallel));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Continue a prompt with a glrnn model."};
  std::string model_dir, prompt_text, prompt_file, prompt_ids, logits_out, state_in, state_out;
  std::int64_t max_new_tokens = 64;
  int threads = 0;
  glrnn::LoadOptions load_options;
  bool ignore_eos = false;
  glrnn::SamplerParams sampling;
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // the last -n wins, as in llama.cpp
  app.add_option("-m,--model", model_dir, "Model folder (config.json + *.safetensors) or a glrnn-convert file")->required();
  CLI::Option* text = app.add_option("-p,--prompt", prompt_text, "Prompt text");
  CLI::Option* file = app.add_option("-f,--prompt-file", prompt_file, "Read the prompt text from a file");
  CLI::Option* ids = app.add_option("--prompt-ids", prompt_ids, "Prompt as comma-separated token ids, e.g. 2,17,33");
  text->excludes(file)->excludes(ids);
  file->excludes(ids);
  app.add_option("-n,--max-new-tokens,--n-predict", max_new_tokens, "Tokens to generate")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  glrnn::tools::add_sampling_options(app, sampling);
  glrnn::tools::ConstraintOptions constraint;
  glrnn::tools::add_constraint_options(app, constraint);
  app.add_flag("--ignore-eos", ignore_eos, "Do not stop at the end-of-sequence token");
  app.add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--logits-out", logits_out, "Write prompt and generated logits to this JSON file");
  app.add_option("--state-in", state_in, "Continue from a state saved with --state-out (the prompt is then optional)");
  app.add_option("--state-out", state_out, "Save the state at the end, to continue later with --state-in");
  std::int64_t parallel = 1;
  app.add_option("--parallel", parallel, "Generate this many continuations at once (seeds seed, seed+1, ...)")
      ->capture_default_str()->check(CLI::Range(1, 1024));

  glrnn::tools::add_load_options(app, load_options);

  return glrnn::tools::run_tool("glrnn-generate", app, argc, argv, [&] {
    const std::size_t prompts_given = text->count() + file->count() + ids->count();
    GLRNN_CHECK(prompts_given == 1 || (prompts_given == 0 && !state_in.empty()), glrnn::InputError,
                "give the prompt with one of --prompt, --prompt-file or --prompt-ids");
    glrnn::set_num_threads(threads);
    glrnn::Model model = glrnn::load_model(model_dir, load_options);
    glrnn::Session session(model);
    // A saved state resumes with no replay; the token sampled last but not run yet comes first.
    std::vector<std::int32_t> prompt;
    bool print_ids = ids->count() > 0;
    if (!state_in.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      const glrnn::StateMetadata saved = session.load(state_in);
      std::fprintf(stderr, "state: resumed at position %lld from '%s' in %.1f ms\n",
                   static_cast<long long>(session.position()), state_in.c_str(),
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      if (const auto pending = glrnn::pending_token(saved)) prompt.push_back(*pending);
      if (prompts_given == 0) print_ids = saved.count(kPrintsIds) > 0;  // go on as the saved run printed
    }
    std::optional<glrnn::Tokenizer> tokenizer;
    if (ids->count()) {
      for (std::int32_t id : glrnn::tools::parse_token_ids(prompt_ids)) prompt.push_back(id);
    } else if (!print_ids) {
      tokenizer = glrnn::load_model_tokenizer(model_dir);
      const std::string text_prompt = file->count() ? glrnn::tools::read_file(prompt_file) : prompt_text;
      // <bos> and the template's other special tokens only at the start of a sequence.
      for (std::int32_t id : tokenizer->encode(text_prompt, /*add_special=*/session.position() == 0)) prompt.push_back(id);
    }
    GLRNN_CHECK(!prompt.empty(), glrnn::InputError, "nothing to run: the saved state holds no pending token and no prompt was given");
    glrnn::GenerateOptions options;
    options.max_new_tokens = max_new_tokens;
    if (!ignore_eos) options.stop_tokens = model.info().stop_token_ids;
    if (constraint.given()) {
      // The matcher's place in a grammar is not part of a state file, and ids give no text.
      GLRNN_CHECK(state_in.empty() && state_out.empty() && parallel == 1 && tokenizer, glrnn::InputError,
                  "--json-schema and --grammar do not combine with --state-in, --state-out, --parallel or --prompt-ids");
      options.grammar = glrnn::tools::load_constraint(constraint);
      options.vocabulary = glrnn::TokenVocabulary::from_tokenizer(*tokenizer);
    }
    if (parallel > 1) {
      GLRNN_CHECK(logits_out.empty() && state_out.empty(), glrnn::InputError,
                  "--parallel does not combine with --logits-out or --state-out");
      run_parallel(session.model(), prompt, sampling, options, parallel, tokenizer ? &*tokenizer : nullptr);
      return;
    }
    glrnn::Sampler sampler(sampling, model.vocab_size());

    const bool keep_logits = !logits_out.empty();
    glrnn::RowMatrixXf prompt_logits, generated_logits(0, model.vocab_size());
    std::vector<std::int32_t> generated;
    std::optional<glrnn::StreamDecoder> stream;
    if (tokenizer) stream.emplace(*tokenizer, /*skip_special=*/false);
    const glrnn::GenerateStats stats = glrnn::generate(
        session, prompt, sampler, options,
        [&](std::int32_t token, const Eigen::VectorXf& logits) {
          if (stream) std::fputs(stream->push(token).c_str(), stdout);
          else std::printf("%s%d", generated.empty() ? "" : " ", token);
          std::fflush(stdout);
          generated.push_back(token);
          if (keep_logits) {
            generated_logits.conservativeResize(generated_logits.rows() + 1, Eigen::NoChange);
            generated_logits.bottomRows(1) = logits.transpose();
          }
          return true;
        },
        keep_logits ? &prompt_logits : nullptr);
    if (stream) std::fputs(stream->flush().c_str(), stdout);
    std::printf("\n");
    std::fflush(stdout);  // the output comes before the stats line on a shared terminal
    if (keep_logits) write_logits_json(logits_out, prompt, generated, prompt_logits, generated_logits);
    if (!state_out.empty()) {
      glrnn::StateMetadata metadata;
      if (!generated.empty()) glrnn::set_pending_token(metadata, generated.back());
      if (print_ids) metadata[kPrintsIds] = "1";
      session.save(state_out, metadata);
    }
    std::fprintf(stderr, "%s\n", glrnn::format_stats(stats, session.state().bytes()).c_str());
  });
}
