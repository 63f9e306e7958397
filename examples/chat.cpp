// glrnn-chat: an interactive chat in Gemma's turn format. The state carries the conversation, so
// each turn prefills only its own new tokens, never the history. Commands: /reset, /save F,
// /load F (the conversation as a state file, resumed with no replay), /quit.

#include <unistd.h>  // isatty

#include <cstdio>    // std::printf, std::fprintf, std::fputs
#include <iostream>  // std::cin
#include <string>    // std::string, std::getline
#include <vector>    // std::vector

#include <glrnn/glrnn.hpp>

#include <glrnn/tools/cli.hpp>

int main(int argc, char** argv) {
  CLI::App app{"Chat with an instruction-tuned model (Gemma turn format). One line is one message."};
  std::string model_dir;
  std::int64_t max_new_tokens = 512;
  int threads = 0;
  glrnn::LoadOptions load_options;
  glrnn::SamplerParams sampling;
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("-m,--model", model_dir, "Model folder (config.json, *.safetensors, tokenizer.json) or a glrnn-convert file")->required();
  app.add_option("-n,--max-new-tokens,--n-predict", max_new_tokens, "Longest reply in tokens")->capture_default_str()
      ->check(CLI::PositiveNumber);
  glrnn::tools::add_sampling_options(app, sampling);
  glrnn::tools::ConstraintOptions constraint;
  glrnn::tools::add_constraint_options(app, constraint);
  app.add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str()->check(CLI::NonNegativeNumber);

  glrnn::tools::add_load_options(app, load_options);

  return glrnn::tools::run_tool("glrnn-chat", app, argc, argv, [&] {
    sampling.validate();  // flags first: a bad one should not wait for the model
    glrnn::set_num_threads(threads);
    const glrnn::Model model = glrnn::load_model(model_dir, load_options);
    const glrnn::Tokenizer tokenizer = glrnn::load_model_tokenizer(model_dir);
    const std::int32_t end_of_turn = tokenizer.token_id("<end_of_turn>");
    if (end_of_turn < 0)
      std::fprintf(stderr, "glrnn-chat: note: the tokenizer has no <end_of_turn> token, so the turn markers are plain "
                           "text and replies end at <eos> (not an instruction-tuned Gemma model)\n");
    glrnn::Session session(model);
    glrnn::Sampler sampler(sampling, model.vocab_size());
    glrnn::GenerateOptions options;
    options.max_new_tokens = max_new_tokens;
    options.stop_tokens = model.info().stop_token_ids;
    if (end_of_turn >= 0) options.stop_tokens.push_back(end_of_turn);
    options.grammar = glrnn::tools::load_constraint(constraint);  // every reply follows it
    if (options.grammar) options.vocabulary = glrnn::TokenVocabulary::from_tokenizer(tokenizer);

    const bool interactive = isatty(0) != 0;
    // The reply's last token was sampled but not run, and a reply cut off by -n lacks its
    // <end_of_turn>: the next turn first runs that token and closes the model's turn.
    std::vector<std::int32_t> unrun;
    std::string closing;
    if (interactive)
      std::fprintf(stderr, "glrnn-chat: /reset starts over, /save FILE and /load FILE keep a conversation, /quit or Ctrl-D leaves.\n");
    for (std::string line;;) {
      if (interactive) std::fputs("> ", stdout), std::fflush(stdout);
      if (!std::getline(std::cin, line) || line == "/quit") break;
      if (line == "/reset") {
        session.reset();
        unrun.clear();
        closing.clear();
        std::fprintf(stderr, "[conversation reset]\n");
        continue;
      }
      if (line.rfind("/save ", 0) == 0 || line.rfind("/load ", 0) == 0) {
        const std::string path = glrnn::trim_message(line.substr(6));
        try {
          if (line[1] == 's') {
            glrnn::StateMetadata metadata{{"glrnn-chat.closing", closing}};
            if (!unrun.empty()) glrnn::set_pending_token(metadata, unrun.front());
            session.save(path, metadata);
          } else {
            glrnn::StateMetadata metadata = session.load(path);
            closing = metadata["glrnn-chat.closing"];
            unrun.clear();
            if (const auto pending = glrnn::pending_token(metadata)) unrun.push_back(*pending);
          }
          std::fprintf(stderr, "[%s '%s' at position %lld]\n", line[1] == 's' ? "saved" : "loaded", path.c_str(),
                       static_cast<long long>(session.position()));
        } catch (const std::exception& e) {  // a bad file ends the command, not the conversation
          std::fprintf(stderr, "glrnn-chat: error: %s\n", e.what());
        }
        continue;
      }
      if (glrnn::trim_message(line).empty()) continue;
      // Only the new turn is tokenized and prefilled; the first one of a conversation gets <bos>.
      const bool first = session.position() == 0 && unrun.empty();
      std::vector<std::int32_t> turn = unrun;
      for (std::int32_t id : glrnn::encode_gemma_user_turn(tokenizer, closing, line, first)) turn.push_back(id);
      glrnn::StreamDecoder stream(tokenizer, /*skip_special=*/true);
      std::int32_t last = -1;
      const glrnn::GenerateStats stats =
          glrnn::generate(session, turn, sampler, options, [&](std::int32_t token, const Eigen::VectorXf&) {
            last = token;
            if (token != end_of_turn) std::fputs(stream.push(token).c_str(), stdout), std::fflush(stdout);
            return true;
          });
      std::printf("%s\n", stream.flush().c_str());
      std::fflush(stdout);
      unrun.assign(1, last);
      closing = last == end_of_turn ? "\n" : glrnn::gemma_turn_end();
      std::fprintf(stderr, "[prefill: %lld new tokens, %.1f tok/s | reply: %lld tokens, %.1f tok/s | position %lld]\n",
                   static_cast<long long>(stats.prompt_tokens), stats.prefill_tokens_per_second(),
                   static_cast<long long>(stats.generated_tokens), stats.decode_tokens_per_second(),
                   static_cast<long long>(session.position()));
    }
  });
}
