// libFuzzer target: the safetensors header parser and validation.

#include "fuzz_common.hpp"
#include "glrnn/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = glrnn::fuzz::as_file(data, size, ".safetensors");
  glrnn::fuzz::expect_only_glrnn_errors([&] {
    const glrnn::SafetensorsFile file(path);
    volatile unsigned sum = 0;  // touch every tensor's first and last byte: out of bounds is a finding
    for (const glrnn::TensorInfo& t : file.tensors())
      if (t.nbytes > 0) sum = sum + static_cast<unsigned>(t.data[0]) + static_cast<unsigned>(t.data[t.nbytes - 1]);
  });
  return 0;
}
