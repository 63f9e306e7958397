// Whole models under every weight recipe, and converted files: they load what was converted, as
// it was converted, and damaged or foreign ones are refused with a message.

#include <cstdio>      // std::printf
#include <deque>       // std::deque
#include <map>         // std::map
#include <filesystem>  // std::filesystem::resize_file, file_size
#include <string>      // std::string
#include <vector>      // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {
/// A copy of converted file `in` at `out` with every matrix in rows, as files were written before
/// row groups (formats/row_groups.hpp): the same units, row after row, the formats without the suffix.
void write_rows_layout(const std::string& in, const std::string& out) {
  const glrnn::SafetensorsFile file(in);
  nlohmann::json formats = nlohmann::json::parse(file.metadata().at(glrnn::kConvertedFormatsKey));
  std::map<std::string, std::string> metadata = file.metadata();
  std::deque<std::vector<std::byte>> rows_bytes;
  std::vector<glrnn::TensorToWrite> tensors;
  for (const glrnn::TensorInfo& t : file.tensors()) {
    const void* data = t.data;
    if (formats.contains(t.name)) {
      const glrnn::PackedFormat packed = *glrnn::parse_packed_format(formats[t.name].get<std::string>());
      formats[t.name] = std::string(glrnn::weight_type_name(packed.format));
      if (packed.order == glrnn::RowOrder::Groups) {
        const std::int64_t rows = t.shape[0], blocks = t.shape[1] / static_cast<std::int64_t>(glrnn::format_info(packed.format).unit_bytes);
        std::vector<std::byte>& units = rows_bytes.emplace_back(t.nbytes);
        glrnn::with_format(packed.format, [&](auto format) {
          using Format = decltype(format);
          if constexpr (glrnn::groups_rows(Format::kLayout)) {
            auto* out_units = reinterpret_cast<typename Format::Unit*>(units.data());
            for (std::int64_t r = 0; r < rows; ++r)
              for (std::int64_t b = 0; b < blocks; ++b)
                out_units[r * blocks + b] = glrnn::grouped_unit<Format>(t.data, rows / 16 * 16, blocks, r, b);
          }
        });
        data = units.data();
      }
    }
    glrnn::Shape shape;
    shape.rank = static_cast<int>(t.shape.size());
    for (int i = 0; i < shape.rank; ++i) shape.dims[static_cast<std::size_t>(i)] = t.shape[static_cast<std::size_t>(i)];
    tensors.push_back({t.name, t.dtype, shape, data, t.nbytes});
  }
  metadata[glrnn::kConvertedFormatsKey] = formats.dump();
  nlohmann::json as_json(metadata);
  glrnn::write_safetensors(out, as_json, std::move(tensors));
}
}  // namespace

TEST_CASE("Models in every weight recipe stay close to float32, and converted files load what was converted",
          "[models][io]") {
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
  // RMS (measured on these models), q5 about half of q4's; through the layers that becomes 1-1.8%
  // (int8), 8-17% (q4) and 4.4-10% (q5) of the logits' RMS here, bounded with 1.5x margin.
  // Perplexity moves far less (README).
  const std::vector<std::pair<const char*, double>> recipes{
      {"f32", 1e-6}, {"bf16", 1e-6}, {"int8", 0.03}, {"q4", 0.25}, {"q5", 0.15}};
  for (const auto& [name, tolerance] : recipes) {
    CAPTURE(fixture, name);
    glrnn::LoadOptions options;
    options.weights = glrnn::find_weight_recipe(name);
    const glrnn::Model converted_at_load = glrnn::load_model(fixture, options);
    CHECK(converted_at_load.info().weights == name);
    const glrnn::RowMatrixXf at_load = logits(converted_at_load);
    const double relative_error = (at_load - reference).norm() / reference.norm();
    std::printf("[quant] %s %s relative logit error %.4f, %.2f bits per weight\n", fixture.c_str(), name, relative_error,
                converted_at_load.info().bits_per_weight);
    CHECK(relative_error < tolerance);

    const std::string file = (glrnn::test::test_temp_dir() / (std::string("converted-") + name + ".safetensors")).string();
    glrnn::convert_model(fixture, file, *options.weights);
    const glrnn::Model from_file = glrnn::load_model(file);
    CHECK(from_file.info().weights == name);
    CHECK(from_file.info().bits_per_weight == converted_at_load.info().bits_per_weight);
    CHECK(from_file.info().stop_token_ids == converted_at_load.info().stop_token_ids);
    CHECK(glrnn::test::max_abs_diff(logits(from_file), at_load) == 0.0);  // the same bytes, mapped
    // A file of integer matrices in rows (written before row groups) is regrouped at load: the
    // kernels then see the same tiles and give the same bits.
    const std::string rows_file = (glrnn::test::test_temp_dir() / (std::string("rows-") + name + ".safetensors")).string();
    write_rows_layout(file, rows_file);
    CHECK(glrnn::test::max_abs_diff(logits(glrnn::load_model(rows_file)), at_load) == 0.0);
    CHECK(glrnn::load_model_tokenizer(file).encode("The president", false) ==
          glrnn::load_model_tokenizer(fixture).encode("The president", false));
  }
}

TEST_CASE("Converted files: damaged or foreign files are refused with a message", "[models][io]") {
  const std::string dir = glrnn::test::make_temp_dir("convert_errors");
  const glrnn::WeightRecipe q4 = *glrnn::find_weight_recipe("q4");
  CHECK_THROWS_WITH(glrnn::convert_model(dir + "/missing", dir + "/out.safetensors", q4), Catch::Contains("not a model folder"));
  // A plain safetensors file is not a model: its folder is.
  CHECK_THROWS_WITH(glrnn::load_model(glrnn::test::data_path("recurrentgemma-tiny/model.safetensors")),
                    Catch::Contains("glrnn-convert"));
  const std::string file = dir + "/tiny-q4.safetensors";
  glrnn::convert_model(glrnn::test::model_path("griffin-demo"), file, q4);
  // Packed bytes whose format the metadata does not give cannot be read.
  {
    const glrnn::SafetensorsFile converted(file);
    glrnn::test::SafetensorsBuilder builder;
    for (const auto& [key, value] : converted.metadata())
      if (key != glrnn::kConvertedFormatsKey) builder.metadata(key, value);
    for (const glrnn::TensorInfo& t : converted.tensors())
      builder.add(t.name, std::string(glrnn::dtype_name(t.dtype)), t.shape,
                  std::string(reinterpret_cast<const char*>(t.data), t.nbytes));
    const std::string unknown = glrnn::test::write_temp_file(builder.build(), "unknown-format.safetensors");
    CHECK_THROWS_WITH(glrnn::load_model(unknown), Catch::Contains("does not say in which weight format"));
    // A row order glrnn does not have, or row groups of a format without them, is refused by name.
    nlohmann::json formats = nlohmann::json::parse(converted.metadata().at(glrnn::kConvertedFormatsKey));
    for (const std::string bad : {"q4:groups8", "bf16:groups16"}) {
      formats[formats.begin().key()] = bad;
      glrnn::test::SafetensorsBuilder renamed = builder;
      renamed.metadata(glrnn::kConvertedFormatsKey, formats.dump());
      const std::string path = glrnn::test::write_temp_file(renamed.build(), "bad-order.safetensors");
      CHECK_THROWS_WITH(glrnn::load_model(path), Catch::Contains("unknown weight format \"" + bad + "\""));
    }
  }
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 100);
  CHECK_THROWS_AS(glrnn::load_model(file), glrnn::FormatError);
}
