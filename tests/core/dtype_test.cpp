// Exact element conversions and the bf16 rounding of the embedding scale.

#include <cmath>    // std::isnan, std::isinf, std::signbit, std::ldexp
#include <cstdint>  // std::uint16_t, std::uint32_t

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"

TEST_CASE("bf16 -> float32 is a 16-bit shift", "[core]") {
  CHECK(glrnn::to_float(glrnn::bf16{0x3f80}) == 1.0f);
  CHECK(glrnn::to_float(glrnn::bf16{0xc049}) == -3.140625f);
  const float negative_zero = glrnn::to_float(glrnn::bf16{0x8000});
  CHECK(negative_zero == 0.0f);
  CHECK(std::signbit(negative_zero));
  CHECK(std::isinf(glrnn::to_float(glrnn::bf16{0x7f80})));
  CHECK(std::isnan(glrnn::to_float(glrnn::bf16{0x7fc0})));
  CHECK(glrnn::to_bf16(1.00390625f).bits == 0x3f80);  // halfway: ties to even
  CHECK(glrnn::to_bf16(1.01171875f).bits == 0x3f82);  // halfway: ties to even (upwards)
}

TEST_CASE("f16 -> float32 handles normals, subnormals, infinities and NaN", "[core]") {
  CHECK(glrnn::to_float(glrnn::f16{0x3c00}) == 1.0f);
  CHECK(glrnn::to_float(glrnn::f16{0xc000}) == -2.0f);
  CHECK(glrnn::to_float(glrnn::f16{0x7bff}) == 65504.0f);
  CHECK(glrnn::to_float(glrnn::f16{0x0001}) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(glrnn::to_float(glrnn::f16{0x03ff}) == std::ldexp(1023.0f, -24));
  CHECK(std::signbit(glrnn::to_float(glrnn::f16{0x8000})));
  CHECK(std::isinf(glrnn::to_float(glrnn::f16{0xfc00})));
  CHECK(std::isnan(glrnn::to_float(glrnn::f16{0x7e00})));
}

TEST_CASE("Embedding scale: sqrt(hidden) rounded to bfloat16", "[core]") {
  // docs/recurrent_gemma.md §3: widths whose sqrt is not a bf16 value.
  CHECK(glrnn::round_to_bf16(std::sqrt(64.0)) == 8.0f);
  CHECK(glrnn::round_to_bf16(std::sqrt(80.0)) == 8.9375f);
  CHECK(glrnn::round_to_bf16(std::sqrt(96.0)) == 9.8125f);
  CHECK(glrnn::round_to_bf16(std::sqrt(2560.0)) == 50.5f);
  CHECK(glrnn::round_to_bf16(std::sqrt(4096.0)) == 64.0f);
}

TEST_CASE("float32 -> f16 rounds to nearest even and inverts to_float exactly", "[core][quant]") {
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const glrnn::f16 h{static_cast<std::uint16_t>(bits)};
    const float f = glrnn::to_float(h);
    if (std::isnan(f)) continue;
    INFO(bits);
    REQUIRE(glrnn::to_f16(f).bits == h.bits);  // every f16 value survives the round trip
  }
  CHECK(glrnn::to_f16(1.0f + std::ldexp(1.0f, -11)).bits == 0x3c00);      // halfway: to even (down)
  CHECK(glrnn::to_f16(1.0f + 3 * std::ldexp(1.0f, -11)).bits == 0x3c02);  // halfway: to even (up)
  CHECK(glrnn::to_f16(1e6f).bits == 0x7c00);                              // beyond 65504: infinity
  CHECK(glrnn::to_f16(std::ldexp(1.0f, -25)).bits == 0x0000);             // half the smallest subnormal: to even
}
