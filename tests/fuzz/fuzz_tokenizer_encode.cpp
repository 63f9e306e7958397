// libFuzzer target: encoding arbitrary bytes (invalid UTF-8 included) with the demo tokenizer,
// decoding the ids back, streaming them, and decoding arbitrary ids.

#include "fuzz_common.hpp"
#include "glrnn/tokenizer/stream_decoder.hpp"
#include "glrnn/tokenizer/tokenizer_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const glrnn::Tokenizer tok = glrnn::load_tokenizer(GLRNN_FUZZ_TOKENIZER);
  const std::string text(reinterpret_cast<const char*>(data), size);
  glrnn::fuzz::expect_only_glrnn_errors([&] {
    const std::vector<std::int32_t> ids = tok.encode(text, size % 2 == 0);
    const std::string round_trip = tok.decode(ids, false);
    // Byte fallback keeps every byte: valid UTF-8 text decodes back to itself.
    // (except a literal "▁", which the decoder turns into the space it stands for)
    if (glrnn::utf8::is_valid(text) && text.find("\xE2\x96\x81") == std::string::npos && size % 2 == 1 &&
        round_trip != text)
      std::abort();
    glrnn::StreamDecoder stream(tok, false);
    std::string streamed;
    for (std::int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    // Streaming equals one decode unless a byte run is invalid: then one decode turns the whole
    // run into U+FFFD, valid characters before the bad byte included, which a stream has printed.
    if (round_trip.find("\xEF\xBF\xBD") == std::string::npos && streamed != round_trip) std::abort();
    std::vector<std::int32_t> arbitrary;
    for (std::size_t i = 0; i + 1 < size; i += 2) arbitrary.push_back((data[i] << 8 | data[i + 1]) % (tok.vocab_size() + 8) - 4);
    (void)tok.decode(arbitrary, true);  // ids outside the vocabulary must throw InputError
  });
  return 0;
}
