// glrnn-tokenize: text to token ids (a JSON array), or ids back to text.

#include <cstdio>    // std::printf, std::fputs
#include <iostream>  // std::cin
#include <iterator>  // std::istreambuf_iterator
#include <string>    // std::string

#include <glrnn/generate/model_tokenizer.hpp>
#include <glrnn/tokenizer/tokenizer_json.hpp>
#include <glrnn/tools/cli.hpp>

int main(int argc, char** argv) {
  CLI::App app{"Tokenize text with a Hugging Face tokenizer.json (reads stdin without --text)."};
  std::string tokenizer_path, text, decode_ids;
  bool add_special = false, pieces = false, skip_special = false;
  app.add_option("--tokenizer,-m,--model", tokenizer_path, "tokenizer.json, a model folder holding one, or a converted model file")->required();
  CLI::Option* text_option = app.add_option("--text", text, "Text to tokenize (default: standard input)");
  CLI::Option* decode_option = app.add_option("--decode", decode_ids, "Comma-separated ids to turn back into text");
  text_option->excludes(decode_option);
  app.add_flag("--add-special", add_special, "Add the special tokens of the tokenizer's template (e.g. <bos>)");
  app.add_flag("--pieces", pieces, "Print one 'id -> piece' line per token instead of JSON");
  app.add_flag("--skip-special", skip_special, "With --decode: leave special tokens out");

  return glrnn::tools::run_tool("glrnn-tokenize", app, argc, argv, [&] {
    // A tokenizer.json, or what a model folder or a converted model file holds.
    const bool json_file = tokenizer_path.size() >= 5 && tokenizer_path.compare(tokenizer_path.size() - 5, 5, ".json") == 0;
    const glrnn::Tokenizer tokenizer =
        json_file ? glrnn::load_tokenizer(tokenizer_path) : glrnn::load_model_tokenizer(tokenizer_path);
    if (decode_option->count()) {
      std::printf("%s\n", tokenizer.decode(glrnn::tools::parse_token_ids(decode_ids), skip_special).c_str());
      return;
    }
    if (!text_option->count()) text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    const std::vector<std::int32_t> ids = tokenizer.encode(text, add_special);
    if (pieces) {
      for (std::int32_t id : ids) std::printf("%6d -> %s\n", id, nlohmann::json(tokenizer.piece(id)).dump().c_str());
      return;
    }
    std::printf("%s\n", nlohmann::json(ids).dump().c_str());
  });
}
