// The weight formats: quantization error bounds, the registration list and the recipes made from it.

#include <algorithm>  // std::max
#include <cmath>      // std::fabs
#include <string>     // std::string
#include <vector>     // std::vector

#include <catch2/catch.hpp>

#include "glrnn/formats/recipe.hpp"
#include "glrnn/formats/registry.hpp"
#include "glrnn/sampling/sampler.hpp"

namespace {
std::vector<float> uniform_values(std::size_t n, std::uint64_t seed, float scale) {
  glrnn::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * static_cast<float>(2.0 * rng.uniform() - 1.0);
  return v;
}
}  // namespace

TEST_CASE("Quantized blocks reconstruct within their rounding bounds", "[formats]") {
  const std::vector<float> x = uniform_values(32 * 64, 11, 0.05f);
  for (std::size_t b = 0; b < x.size() / 32; ++b) {
    const float* xb = x.data() + b * 32;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
    glrnn::q8_block b8;
    glrnn::q4_block b4;
    glrnn::q5_block b5;
    glrnn::Int8Format::quantize(xb, 32, &b8);
    glrnn::Q4Format::quantize(xb, 32, &b4);
    glrnn::Q5Format::quantize(xb, 32, &b5);
    float q8[32], q4[32], q5[32];
    glrnn::Int8Format::dequantize(&b8, 32, q8);
    glrnn::Q4Format::dequantize(&b4, 32, q4);
    glrnn::Q5Format::dequantize(&b5, 32, q5);
    for (int i = 0; i < 32; ++i) {
      // int8: half a step of amax/127, plus the f16 rounding of the scale (2^-11 relative) at 127 steps.
      CHECK(std::fabs(q8[i] - xb[i]) <= amax / 127.0f * (0.5f + 127.0f * 0x1p-11f) + 1e-9f);
      // 4-bit: the widest gap between levels is 24/127 of the range (at the ends), so half of
      // it, with the scale refit allowed to stretch the grid up to 10%.
      CHECK(std::fabs(q4[i] - xb[i]) <= amax * 1.1f * 12.0f / 113.0f + 1e-9f);
      // 5-bit: half an even step of amax/15 or less inside the grid, but the grid reaches one
      // level less far up (15) than down (-16), so a weight at the short end may be clipped by up
      // to a whole step: one step, stretched likewise.
      CHECK(std::fabs(q5[i] - xb[i]) <= amax * 1.1f / 15.0f + 1e-9f);
    }
  }
  const float zeros[32] = {};
  float out[32];
  glrnn::q4_block z4;
  glrnn::Q4Format::quantize(zeros, 32, &z4);
  glrnn::Q4Format::dequantize(&z4, 32, out);
  CHECK(out[7] == 0.0f);
  glrnn::q8_block z8;
  glrnn::Int8Format::quantize(zeros, 32, &z8);
  glrnn::Int8Format::dequantize(&z8, 32, out);
  CHECK(out[31] == 0.0f);
}

TEST_CASE("q5 keeps every weight of a block that is already on its grid, in its documented layout", "[formats]") {
  // Weights 0.25 * (i - 16) for every index i, in a shuffled order so the fifth bits vary.
  float x[32];
  for (int i = 0; i < 32; ++i) x[i] = 0.25f * static_cast<float>((i * 13) % 32 - 16);
  glrnn::q5_block b;
  glrnn::Q5Format::quantize(x, 32, &b);
  float back[32];
  glrnn::Q5Format::dequantize(&b, 32, back);
  for (int i = 0; i < 32; ++i) CHECK(back[i] == x[i]);
  // Element 1 is index 13: low nibble 13 in byte 1, fifth bit 0; element 17 is (17 * 13) % 32 = 29:
  // high nibble of byte 1 holds 29 & 15, and bit 17 of the fifth bits is set.
  CHECK(glrnn::to_float(b.scale) == 0.25f);
  CHECK((b.q[1] & 0x0f) == 13);
  CHECK((b.q[1] >> 4) == (29 & 15));
  CHECK((b.fifth_bits[2] >> 1 & 1) == 1);
  CHECK((b.fifth_bits[0] >> 1 & 1) == 0);
}

TEST_CASE("Every registered format has a name, a row size and a recipe of its own", "[formats]") {
  for (glrnn::WeightType t : glrnn::kWeightTypes) {
    const glrnn::FormatInfo& f = glrnn::format_info(t);
    CAPTURE(std::string(f.name));
    CHECK(glrnn::parse_weight_type(f.name) == t);
    CHECK(f.row_bytes(64) == static_cast<std::size_t>(64 / f.block_elements) * f.unit_bytes);
    const std::optional<glrnn::WeightRecipe> recipe = glrnn::find_weight_recipe(f.name);
    REQUIRE(recipe.has_value());
    for (std::size_t role = 0; role < glrnn::kMatrixRoles; ++role)
      CHECK(recipe->format_for(static_cast<glrnn::MatrixRole>(role)) == t);
  }
  CHECK(glrnn::format_info(glrnn::WeightType::Int8).row_bytes(64) == 68);  // 8.5 bits per weight
  CHECK(glrnn::format_info(glrnn::WeightType::Q4).row_bytes(64) == 36);    // 4.5 bits per weight
  CHECK(glrnn::format_info(glrnn::WeightType::Q5).row_bytes(64) == 44);    // 5.5 bits per weight
  CHECK_FALSE(glrnn::parse_weight_type("q3").has_value());
  CHECK_FALSE(glrnn::find_weight_recipe("q3").has_value());
  CHECK(glrnn::weight_recipe_names().find("int8") != std::string::npos);
}

TEST_CASE("Row groups hold every unit of their rows and give each row back", "[formats]") {
  // formats/row_groups.hpp: random units (every code and every fifth bit occurs), grouped, must come
  // back unit for unit, bit for bit; rows past the last whole group stay as they were.
  glrnn::Rng rng(8);
  for (glrnn::WeightType type : glrnn::kWeightTypes) {
    const glrnn::FormatInfo& format = glrnn::format_info(type);
    if (!format.groups_rows()) continue;
    for (std::int64_t rows : {7, 16, 37}) {
      const std::int64_t cols = 96;
      std::vector<float> values(static_cast<std::size_t>(rows * cols));
      for (float& v : values) v = static_cast<float>(rng.uniform() - 0.5);
      std::vector<std::byte> units(static_cast<std::size_t>(rows) * format.row_bytes(cols)), grouped(units.size());
      format.quantize(values.data(), rows * cols, units.data());
      format.group_rows(units.data(), rows, cols, grouped.data());
      const glrnn::WeightMatrix by_rows{units.data(), type, rows, cols};
      const glrnn::WeightMatrix by_groups{grouped.data(), type, rows, cols, glrnn::RowOrder::Groups};
      CAPTURE(std::string(format.name), rows);
      CHECK(by_groups.grouped_rows() == rows / 16 * 16);
      const bool reordered = units != grouped;
      CHECK(reordered == (rows >= 16));
      std::vector<float> expected(static_cast<std::size_t>(cols)), got(expected.size());
      for (std::int64_t r = 0; r < rows; ++r) {
        by_rows.dequantize_row(r, expected.data());
        by_groups.dequantize_row(r, got.data());
        CHECK(got == expected);
      }
      if (type == glrnn::WeightType::Int8 && rows >= 16) {
        // The documented layout: row 3's weight 9 is byte 4·3 + 1 of step 2 of the first tile.
        const auto* row3 = reinterpret_cast<const glrnn::q8_block*>(units.data() + 3 * format.row_bytes(cols));
        CHECK(static_cast<std::int8_t>(grouped[glrnn::kRowGroupScaleBytes + 2 * 64 + 4 * 3 + 1]) == row3->q[9]);
      }
      // A split at a group's start keeps the groups; one inside a group is refused.
      if (rows > 16) {
        const glrnn::WeightMatrix rest = by_groups.row_range(16, rows - 16);
        rest.dequantize_row(rows - 17, got.data());
        by_rows.dequantize_row(rows - 1, expected.data());
        CHECK(got == expected);
        CHECK_THROWS_AS(by_groups.row_range(8, 8), glrnn::ShapeError);
      }
    }
  }
}
