// Block-quantized weights: the f16 scale conversion, quantization error bounds, the SIMD dot
// products against a plain double-precision reference, every matmul path, converted files, and
// whole models in each weight type.

#include <cmath>    // std::fabs, std::isnan
#include <cstdint>  // std::uint16_t
#include <vector>   // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "glrnn/io/convert.hpp"
#include "support/random_weights.hpp"
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {

std::vector<float> random_values(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  glrnn::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * static_cast<float>(2.0 * rng.uniform() - 1.0);
  return v;
}

template <class Block>
std::vector<Block> quantize_rows(const std::vector<float>& w) {
  std::vector<Block> blocks(w.size() / glrnn::kQuantBlock);
  for (std::size_t b = 0; b < blocks.size(); ++b) blocks[b] = glrnn::quantize_block<Block>(w.data() + b * glrnn::kQuantBlock);
  return blocks;
}

/// The matrix a block format stores, widened: the exact weights its kernels multiply by.
template <class Block>
glrnn::RowMatrixXf dequantized(const std::vector<Block>& blocks, Eigen::Index rows, Eigen::Index cols) {
  glrnn::RowMatrixXf w(rows, cols);
  glrnn::kernels::widen(blocks.data(), rows * cols, w.data());
  return w;
}

}  // namespace

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

TEST_CASE("Quantized blocks reconstruct within their rounding bounds", "[core][quant]") {
  const std::vector<float> x = random_values(32 * 64, 11, 0.05f);
  for (std::size_t b = 0; b < x.size() / 32; ++b) {
    const float* xb = x.data() + b * 32;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
    float q8[32], q4[32];
    glrnn::dequantize_block(glrnn::quantize_block_q8(xb), q8);
    glrnn::dequantize_block(glrnn::quantize_block_q4(xb), q4);
    for (int i = 0; i < 32; ++i) {
      // int8: half a step of amax/127, plus the f16 rounding of the scale (2^-11 relative) at 127 steps.
      CHECK(std::fabs(q8[i] - xb[i]) <= amax / 127.0f * (0.5f + 127.0f * 0x1p-11f) + 1e-9f);
      // 4-bit: the widest gap between levels is 24/127 of the range (at the ends), so half of
      // it, with the scale refit allowed to stretch the grid up to 10%.
      CHECK(std::fabs(q4[i] - xb[i]) <= amax * 1.1f * 12.0f / 113.0f + 1e-9f);
    }
  }
  float zeros[32] = {}, out[32];
  glrnn::dequantize_block(glrnn::quantize_block_q4(zeros), out);
  CHECK(out[7] == 0.0f);
  glrnn::dequantize_block(glrnn::quantize_block_q8(zeros), out);
  CHECK(out[31] == 0.0f);
}

TEMPLATE_TEST_CASE("Block kernels: every matmul path equals a float product with the stored weights", "[core][quant]",
                   glrnn::q8_0, glrnn::q4_0) {
  const Eigen::Index rows = 45, cols = 96;  // odd rows, 3 blocks per row (an odd count too)
  const std::vector<TestType> blocks = quantize_rows<TestType>(random_values(rows * cols, 5, 0.1f));
  const glrnn::TensorView<const TestType> w{blocks.data(), glrnn::Shape{rows, cols}};
  const glrnn::RowMatrixXf exact_w = dequantized(blocks, rows, cols);
  glrnn::test::RandomWeights rw(8);
  glrnn::Scratch scratch(glrnn::kernels::matmul_scratch_floats(w), 40);
  for (Eigen::Index tokens : {1, 3, 16, 17, 40}) {  // matvec, small batch (edges), GEMM
    const glrnn::RowMatrixXf x = rw.matrix(tokens, cols);
    glrnn::RowMatrixXf y(tokens, rows);
    glrnn::kernels::matmul(w, x, y, scratch);
    const glrnn::RowMatrixXf expected = (x.cast<double>() * exact_w.cast<double>().transpose()).cast<float>();
    CAPTURE(tokens);
    // Up to 16 rows the activations are quantized to int8 blocks (scale max|x|/127): each
    // product is off by at most half a step of x, so |error| <= sum |w| * max|x| / 254 per block,
    // bounded here by 2% of the row's scale; beyond 16 rows the GEMM is float32 throughout.
    const double tolerance = tokens <= 16 ? 0.02 * exact_w.cwiseAbs().rowwise().sum().maxCoeff() * x.cwiseAbs().maxCoeff() / 4
                                          : 1e-4;
    CHECK(glrnn::test::max_abs_diff(y, expected) < tolerance);
  }
}

TEST_CASE("Models in every weight type stay close to float32, and converted files load what was converted",
          "[quant][io]") {
  const std::string fixture = glrnn::test::model_path(GENERATE(std::string("griffin-demo"), std::string("hgrn2-demo")));
  const std::vector<std::int32_t> tokens{2, 541, 2368, 483, 464, 2346, 828, 528, 17, 900, 33, 1500};
  const auto logits = [&](const glrnn::Model& model) {
    glrnn::Session session(model);
    glrnn::RowMatrixXf out;
    session.prefill_all(tokens, out);
    return out;
  };
  const glrnn::RowMatrixXf reference = logits(glrnn::load_model(fixture));
  // Relative RMS error of the logits over 12 positions. bf16 is lossless for these bf16
  // checkpoints. The block formats add noise of about 0.4% (int8) and 7.5% (4-bit) of each weight's
  // RMS (measured on these models); through the layers that becomes 0.9-1.9% (int8) and 8-17%
  // (4-bit) of the logits' RMS here, bounded with 1.5x margin. Perplexity moves far less (README).
  const std::vector<std::pair<const char*, double>> types{{"f32", 1e-6}, {"bf16", 1e-6}, {"int8", 0.03}, {"q4", 0.25}};
  for (const auto& [name, tolerance] : types) {
    CAPTURE(fixture, name);
    glrnn::LoadOptions options;
    options.weight_type = glrnn::parse_weight_type(name);
    const glrnn::Model converted_at_load = glrnn::load_model(fixture, options);
    CHECK(std::string(glrnn::weight_type_name(converted_at_load.info().weight_type)) == name);
    const glrnn::RowMatrixXf at_load = logits(converted_at_load);
    const double relative_error = (at_load - reference).norm() / reference.norm();
    std::printf("[quant] %s %s relative logit error %.4f\n", fixture.c_str(), name, relative_error);
    CHECK(relative_error < tolerance);

    const std::string file = (glrnn::test::test_temp_dir() / (std::string("converted-") + name + ".safetensors")).string();
    glrnn::convert_model(fixture, file, *options.weight_type);
    const glrnn::Model from_file = glrnn::load_model(file);
    CHECK(from_file.info().weight_type == *options.weight_type);
    CHECK(from_file.info().stop_token_ids == converted_at_load.info().stop_token_ids);
    CHECK(glrnn::test::max_abs_diff(logits(from_file), at_load) == 0.0);  // the same bytes, mapped
    CHECK(glrnn::load_tokenizer(file).encode("The president", false) ==
          glrnn::load_tokenizer(fixture).encode("The president", false));
  }
}

TEST_CASE("Converted files: damaged or foreign files are refused with a message", "[quant][io]") {
  const std::string dir = glrnn::test::make_temp_dir("convert_errors");
  CHECK_THROWS_WITH(glrnn::convert_model(dir + "/missing", dir + "/out.safetensors", glrnn::WeightType::Q8_0),
                    Catch::Contains("not a model folder"));
  // A plain safetensors file is not a model: its folder is.
  CHECK_THROWS_WITH(glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny/model.safetensors")),
                    Catch::Contains("glrnn-convert"));
  const std::string file = dir + "/tiny-q4.safetensors";
  glrnn::convert_model(glrnn::test::model_path("griffin-demo"), file, glrnn::WeightType::Q4_0);
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 100);
  CHECK_THROWS_AS(glrnn::load_model(file), glrnn::FormatError);
}
