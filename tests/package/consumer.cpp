// A program built against the installed glrnn package: greedy continuation of a prompt.
// Usage: consumer MODEL_DIR ID [ID...]   -> prints 8 generated ids, space-separated, on one line.

#include <cstddef>    // std::size_t
#include <cstdint>    // std::int32_t, INT32_MAX
#include <exception>  // std::exception
#include <iostream>   // std::cout, std::cerr
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string, std::stoll
#include <vector>     // std::vector

#include <glrnn/glrnn.hpp>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: consumer MODEL_DIR ID [ID...]\n";
    return 1;
  }
  try {
    std::vector<std::int32_t> prompt;
    for (int i = 2; i < argc; ++i) {
      const std::string arg = argv[i];
      std::size_t used = 0;
      const long long id = std::stoll(arg, &used);
      if (used != arg.size() || id < 0 || id > INT32_MAX) throw std::invalid_argument("'" + arg + "' is not a token id");
      prompt.push_back(static_cast<std::int32_t>(id));
    }

    glrnn::Model model = glrnn::load_model(argv[1]);
    glrnn::Session session(model);
    glrnn::SamplerParams params;
    params.temperature = 0.0f;  // greedy
    glrnn::Sampler sampler(params, model.vocab_size());
    glrnn::GenerateOptions options;
    options.max_new_tokens = 8;  // no stop tokens: always 8

    std::vector<std::int32_t> generated;
    glrnn::generate(session, prompt, sampler, options, [&](std::int32_t token, const Eigen::VectorXf&) {
      generated.push_back(token);
      return true;
    });

    for (std::size_t i = 0; i < generated.size(); ++i) std::cout << (i ? " " : "") << generated[i];
    std::cout << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "consumer: error: " << e.what() << "\n";
    return 1;
  }
}
