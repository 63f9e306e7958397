// libFuzzer target: config.json parsing for both families, and the sizes derived from it.

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "glrnn/models/hgrn2/config.hpp"
#include "glrnn/models/recurrent_gemma/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return 0;
  glrnn::fuzz::expect_only_glrnn_errors([&] {
    const auto c = glrnn::RecurrentGemmaConfig::from_json(glrnn::JsonConfig(j, "config.json"));
    (void)c.state_bytes();
  });
  glrnn::fuzz::expect_only_glrnn_errors([&] {
    const auto c = glrnn::Hgrn2Config::from_json(glrnn::JsonConfig(j, "config.json"));
    (void)c.state_bytes();
  });
  return 0;
}
