// glrnn-perplexity: how well a model predicts a text file.
//   --lines: every line is scored alone as <bos> line <eos> (the <eos> predicted, the <bos> not).
//   otherwise: the file is one token stream from <bos>, the state carried along; --window N
//   restarts from a fresh state and <bos> every N tokens.

#include <unistd.h>  // isatty

#include <cstdio>   // std::printf, std::fprintf
#include <optional>  // std::optional
#include <sstream>  // std::istringstream
#include <string>   // std::string, std::getline
#include <vector>   // std::vector

#include <glrnn/glrnn.hpp>

#include <glrnn/tools/cli.hpp>

namespace {

/// A progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(std::int64_t total) : total_(total), enabled_(isatty(2) != 0) {}
  void update(std::int64_t done, double nll_so_far) {
    if (!enabled_ || total_ <= 0) return;
    const int width = 40, filled = static_cast<int>(width * done / total_);
    std::fprintf(stderr, "\r[%s%s] %lld/%lld  ppl %.3f", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), std::exp(nll_so_far));
    if (done == total_) std::fprintf(stderr, "\n");
  }

 private:
  std::int64_t total_;
  bool enabled_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Perplexity of a model on a text file."};
  std::string model_dir, file;
  bool lines = false, json = false;
  std::int64_t window = 0;
  int threads = 0;
  glrnn::LoadOptions load_options;
  app.add_option("-m,--model", model_dir, "Model folder (config.json, *.safetensors, tokenizer.json) or a glrnn-convert file")->required();
  app.add_option("-f,--file", file, "Text file to score")->required();
  app.add_flag("--lines", lines, "Score each line alone as <bos> line <eos>");
  app.add_option("--window", window, "Stream mode: restart the state every N tokens; 0 = carry it through the file")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_flag("--json", json, "Print the result as one JSON object");
  app.add_option("-t,--threads", threads, "Threads; 0 = all cores")->capture_default_str()->check(CLI::NonNegativeNumber);

  glrnn::tools::add_load_options(app, load_options);
  std::string compare_type;
  app.add_option("--compare-type", compare_type,
                 "Also load the model with this weight type (e.g. f32) and report how often both predict the same "
                 "next token (top-1 agreement)");

  return glrnn::tools::run_tool("glrnn-perplexity", app, argc, argv, [&] {
    glrnn::set_num_threads(threads);
    const glrnn::Model model = glrnn::load_model(model_dir, load_options);
    const glrnn::Tokenizer tokenizer = glrnn::load_model_tokenizer(model_dir);
    const std::string text = glrnn::tools::read_file(file);
    // Logits buffers of at most ~32M floats, whatever the vocabulary.
    const std::int64_t chunk = std::max<std::int64_t>(1, std::min<std::int64_t>(512, (32 << 20) / model.vocab_size()));
    glrnn::Session session(model, chunk);
    glrnn::NllSum sum;
    std::vector<std::vector<std::int32_t>> sequences;
    if (lines) {
      std::istringstream in(text);
      for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        std::vector<std::int32_t> ids = tokenizer.encode(line, /*add_special=*/true);
        ids.push_back(model.info().eos_token_id);
        sequences.push_back(std::move(ids));
      }
    } else {
      const std::vector<std::int32_t> stream = tokenizer.encode(text, /*add_special=*/true);
      const std::size_t step = window > 0 ? static_cast<std::size_t>(window) : stream.size();
      for (std::size_t begin = 0; begin < stream.size(); begin += step) {
        std::vector<std::int32_t> part(stream.begin() + static_cast<std::ptrdiff_t>(begin),
                                       stream.begin() + static_cast<std::ptrdiff_t>(std::min(stream.size(), begin + step)));
        if (begin > 0) part.insert(part.begin(), model.info().bos_token_id);  // each window starts like the file
        sequences.push_back(std::move(part));
      }
    }
    std::optional<glrnn::Session> reference;
    if (!compare_type.empty()) {
      glrnn::LoadOptions reference_options = load_options;
      reference_options.weights = glrnn::find_weight_recipe(compare_type);
      GLRNN_CHECK(reference_options.weights.has_value(), glrnn::InputError,
                  "--compare-type '" + compare_type + "' is not one of " + glrnn::weight_recipe_names());
      reference.emplace(glrnn::load_model(model_dir, reference_options), chunk);
    }
    std::vector<std::int32_t> top1, reference_top1;
    glrnn::NllSum reference_sum;
    Progress progress(static_cast<std::int64_t>(sequences.size()));
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      session.reset();
      glrnn::score_tokens(session, sequences[i], chunk, sum, reference ? &top1 : nullptr);
      if (reference) {
        reference->reset();
        glrnn::score_tokens(*reference, sequences[i], chunk, reference_sum, &reference_top1);
      }
      progress.update(static_cast<std::int64_t>(i + 1), sum.mean());
    }
    GLRNN_CHECK(sum.tokens > 0, glrnn::InputError, "'" + file + "' has no tokens to score");
    std::int64_t agree = 0;
    for (std::size_t i = 0; i < top1.size(); ++i) agree += top1[i] == reference_top1[i];
    const double agreement = top1.empty() ? 0.0 : static_cast<double>(agree) / static_cast<double>(top1.size());
    if (json) {
      nlohmann::json out = {{"perplexity", sum.perplexity()}, {"mean_nll", sum.mean()}, {"tokens", sum.tokens},
                            {"sequences", sequences.size()}, {"mode", lines ? "lines" : "stream"}};
      if (reference)
        out["compare"] = {{"type", compare_type}, {"perplexity", reference_sum.perplexity()}, {"top1_agreement", agreement}};
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("sequences: %zu, predicted tokens: %lld, mean NLL: %.6f\n", sequences.size(),
                  static_cast<long long>(sum.tokens), sum.mean());
      if (reference)
        std::printf("with %s weights: perplexity %.4f; same most likely next token at %.2f%% of positions\n",
                    compare_type.c_str(), reference_sum.perplexity(), 100.0 * agreement);
      std::printf("perplexity: %.4f\n", sum.perplexity());
    }
  });
}
