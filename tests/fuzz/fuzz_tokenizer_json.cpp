// libFuzzer target: tokenizer.json loading, then encoding and decoding with what was loaded.

#include "fuzz_common.hpp"
#include "glrnn/tokenizer/tokenizer_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = glrnn::fuzz::as_file(data, size, ".json");
  glrnn::fuzz::expect_only_glrnn_errors([&] {
    const glrnn::Tokenizer tok = glrnn::load_tokenizer(path);
    const std::vector<std::int32_t> ids = tok.encode("Hello world, <bos> \xE4\xBD\xA0\xFF!", true);
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
  });
  return 0;
}
