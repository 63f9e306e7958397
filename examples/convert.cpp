// glrnn-convert: a Hugging Face model folder -> one file with the weights in the layout and formats
// glrnn's kernels read (a weight recipe: f32, bf16, int8, q4, ...), the config and the tokenizer in
// its metadata.
// Every glrnn tool accepts the file in place of the folder; loading it maps the weights as they are.

#include <chrono>   // std::chrono::steady_clock
#include <cstdio>   // std::printf
#include <string>   // std::string

#include <glrnn/glrnn.hpp>
#include <glrnn/tools/cli.hpp>

int main(int argc, char** argv) {
  CLI::App app{"Convert a Hugging Face model folder to one glrnn model file."};
  std::string input, output, type_name = "bf16";
  int threads = 0;
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("input", input, "Model folder (config.json, *.safetensors, tokenizer.json)")->required();
  app.add_option("output", output, "File to write, e.g. model-int8.safetensors")->required();
  app.add_option("--type", type_name, "Weight recipe: " + glrnn::weight_recipe_names())->capture_default_str();
  app.add_option("-t,--threads", threads, "Threads for quantizing; 0 = all cores")->capture_default_str()
      ->check(CLI::NonNegativeNumber);

  return glrnn::tools::run_tool("glrnn-convert", app, argc, argv, [&] {
    const std::optional<glrnn::WeightRecipe> recipe = glrnn::find_weight_recipe(type_name);
    GLRNN_CHECK(recipe.has_value(), glrnn::InputError, "--type '" + type_name + "' is not one of " + glrnn::weight_recipe_names());
    GLRNN_CHECK(output.size() > 12 && output.compare(output.size() - 12, 12, ".safetensors") == 0, glrnn::InputError,
                "the output file name must end in .safetensors, got '" + output + "'");
    glrnn::set_num_threads(threads);
    const auto t0 = std::chrono::steady_clock::now();
    const glrnn::ConvertStats stats = glrnn::convert_model(input, output, *recipe);
    std::fprintf(stderr, "glrnn-convert: wrote %s: %zu tensors, %.1f MB, %s weights (%.2f bits per weight), in %.1f s\n",
                 output.c_str(), stats.tensors, static_cast<double>(stats.file_bytes) / 1e6, type_name.c_str(), stats.bits_per_weight,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
}
