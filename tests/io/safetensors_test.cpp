// Tests of the safetensors reader: valid files, every validation error, and sharded checkpoints.

#include <catch2/catch.hpp>

#include <cstddef>    // std::size_t, std::to_integer
#include <cstdint>    // std::int64_t, std::uint16_t, std::uint64_t
#include <cstring>    // std::memcpy
#include <exception>  // std::exception
#include <string>     // std::string
#include <utility>    // std::move
#include <vector>     // std::vector

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/io/mapped_file.hpp"
#include "glrnn/io/safetensors.hpp"
#include "support/safetensors_builder.hpp"

namespace {

/// Matches an exception whose what() contains `fragment`, so a test pins both type and message.
class StWhatContains : public Catch::MatcherBase<std::exception> {
 public:
  explicit StWhatContains(std::string fragment) : fragment_(std::move(fragment)) {}
  bool match(const std::exception& e) const override {
    return std::string(e.what()).find(fragment_) != std::string::npos;
  }
  std::string describe() const override { return "has a message containing \"" + fragment_ + "\""; }

 private:
  std::string fragment_;
};

StWhatContains st_what_contains(std::string fragment) { return StWhatContains(std::move(fragment)); }

glrnn::SafetensorsFile st_open(const std::string& bytes, const std::string& name) {
  return glrnn::SafetensorsFile(glrnn::test::write_temp_file(bytes, name));
}

template <class T>
T st_read(const glrnn::TensorInfo& t, std::size_t i) {
  T value;
  std::memcpy(&value, t.data + i * sizeof(T), sizeof(T));
  return value;
}

/// A valid file exercising everything optional: metadata, padding, three float dtypes, a scalar
/// and an empty tensor. The 1-byte U8 tensor puts the F32 data at an odd offset.
std::string st_valid_bytes() {
  const std::vector<std::uint16_t> bf16_bits = {0x3f80, 0xc000, 0x3e80};         // 1, -2, 0.25
  const std::vector<std::uint16_t> f16_bits = {0x3c00, 0xc000, 0x0001, 0x7c00};  // 1, -2, 2^-24, inf
  return glrnn::test::SafetensorsBuilder()
      .metadata("format", "pt")
      .add("b.bf16", "BF16", {3}, glrnn::test::raw_bytes(bf16_bits))
      .add("c.u8", "U8", {1}, std::string(1, '\x07'))
      .add_f32("a.f32", {2, 3}, {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, -7.0f})
      .add("d.f16", "F16", {2, 2}, glrnn::test::raw_bytes(f16_bits))
      .add_f32("e.scalar", {}, {42.0f})
      .add("f.empty", "F32", {0}, "")
      .header_padding(5)
      .build();
}

/// A header entry as JSON text.
std::string st_entry(const std::string& name, const std::string& dtype, const std::string& shape, std::uint64_t begin,
                     std::uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

}  // namespace

TEST_CASE("safetensors: a valid file reads back metadata, shapes and values", "[io]") {
  const std::string path = glrnn::test::write_temp_file(st_valid_bytes(), "st_valid.safetensors");
  const glrnn::SafetensorsFile file(path);
  CHECK(file.path() == path);
  REQUIRE(file.metadata().size() == 1);
  CHECK(file.metadata().at("format") == "pt");

  REQUIRE(file.tensors().size() == 6);
  CHECK(file.tensors()[0].name == "a.f32");  // sorted by name, not header order
  CHECK(file.tensors()[5].name == "f.empty");
  CHECK(file.find("missing") == nullptr);
  CHECK(file.find("a.f3") == nullptr);

  const glrnn::TensorInfo* f32 = file.find("a.f32");
  REQUIRE(f32 != nullptr);
  CHECK(f32->dtype == glrnn::DType::F32);
  CHECK(f32->shape == std::vector<std::int64_t>{2, 3});
  CHECK(f32->shape_str() == "[2, 3]");
  CHECK(f32->numel() == 6);
  CHECK(f32->nbytes == 24);
  CHECK(*f32->file == path);
  CHECK(st_read<float>(*f32, 0) == 1.5f);
  CHECK(st_read<float>(*f32, 2) == 3.25f);
  CHECK(st_read<float>(*f32, 4) == 1e-3f);
  CHECK(st_read<float>(*f32, 5) == -7.0f);

  const glrnn::TensorInfo* bf = file.find("b.bf16");
  REQUIRE(bf != nullptr);
  CHECK(bf->dtype == glrnn::DType::BF16);
  CHECK(glrnn::to_float(st_read<glrnn::bf16>(*bf, 0)) == 1.0f);
  CHECK(glrnn::to_float(st_read<glrnn::bf16>(*bf, 1)) == -2.0f);
  CHECK(glrnn::to_float(st_read<glrnn::bf16>(*bf, 2)) == 0.25f);

  const glrnn::TensorInfo* half = file.find("d.f16");
  REQUIRE(half != nullptr);
  CHECK(half->dtype == glrnn::DType::F16);
  CHECK(half->nbytes == 8);
  CHECK(glrnn::to_float(st_read<glrnn::f16>(*half, 0)) == 1.0f);
  CHECK(glrnn::to_float(st_read<glrnn::f16>(*half, 1)) == -2.0f);
  CHECK(glrnn::to_float(st_read<glrnn::f16>(*half, 2)) == 5.9604644775390625e-8f);
  CHECK(glrnn::to_float(st_read<glrnn::f16>(*half, 3)) > 3.4e38f);

  const glrnn::TensorInfo* u8 = file.find("c.u8");
  REQUIRE(u8 != nullptr);
  CHECK(std::to_integer<int>(u8->data[0]) == 7);

  const glrnn::TensorInfo* scalar = file.find("e.scalar");
  REQUIRE(scalar != nullptr);
  CHECK(scalar->shape.empty());
  CHECK(scalar->shape_str() == "[]");
  CHECK(scalar->numel() == 1);
  CHECK(st_read<float>(*scalar, 0) == 42.0f);

  const glrnn::TensorInfo* empty = file.find("f.empty");
  REQUIRE(empty != nullptr);
  CHECK(empty->numel() == 0);
  CHECK(empty->nbytes == 0);
}

TEST_CASE("safetensors: tensors survive moving the file object", "[io]") {
  glrnn::SafetensorsFile original = st_open(st_valid_bytes(), "st_move.safetensors");
  const glrnn::TensorInfo* before = original.find("a.f32");
  const glrnn::SafetensorsFile moved = std::move(original);
  CHECK(moved.find("a.f32") == before);
  CHECK(*before->file == moved.path());
  CHECK(st_read<float>(*before, 0) == 1.5f);
}

TEST_CASE("safetensors: minimal files without tensors or with only empty tensors are valid", "[io]") {
  CHECK(st_open(glrnn::test::safetensors_bytes("{}", ""), "st_min1.safetensors").tensors().empty());
  const glrnn::SafetensorsFile empties =
      st_open(glrnn::test::safetensors_bytes("{" + st_entry("z", "F32", "[0, 5]", 0, 0) + "," +
                                                 st_entry("y", "BF16", "[3, 0]", 0, 0) + ",\"__metadata__\":{}}   ",
                                             ""),
              "st_min2.safetensors");
  CHECK(empties.tensors().size() == 2);
  CHECK(empties.metadata().empty());
}

TEST_CASE("safetensors: every truncation of a valid file is a FormatError", "[io]") {
  const std::string bytes = st_valid_bytes();
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    INFO("truncated to " << length << " of " << bytes.size() << " bytes");
    REQUIRE_THROWS_AS(st_open(bytes.substr(0, length), "st_truncated.safetensors"), glrnn::FormatError);
  }
  REQUIRE_THROWS_MATCHES(st_open(bytes.substr(0, 5), "st_truncated.safetensors"), glrnn::FormatError,
                         st_what_contains("shorter than the 8-byte header length"));
  REQUIRE_THROWS_MATCHES(st_open(bytes.substr(0, 5), "st_truncated.safetensors"), glrnn::FormatError,
                         st_what_contains("st_truncated.safetensors: "));
  REQUIRE_THROWS_MATCHES(st_open(bytes.substr(0, bytes.size() - 1), "st_truncated.safetensors"), glrnn::FormatError,
                         st_what_contains("extend past the end"));
}

TEST_CASE("safetensors: header length is checked before the header is read", "[io]") {
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::length_prefix(0) + "{}", "st_len.safetensors"), glrnn::FormatError,
                         st_what_contains("header length is 0"));
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::length_prefix(3) + "{}", "st_len.safetensors"), glrnn::FormatError,
                         st_what_contains("header length 3 exceeds the 2 bytes"));
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::length_prefix(~std::uint64_t{0}) + "{}", "st_len.safetensors"),
                         glrnn::FormatError, st_what_contains("exceeds the limit of 100000000 bytes"));
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::length_prefix(100'000'001) + "{}", "st_len.safetensors"),
                         glrnn::FormatError, st_what_contains("exceeds the limit"));
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::length_prefix(100'000'000) + "{}", "st_len.safetensors"),
                         glrnn::FormatError, st_what_contains("exceeds the 2 bytes"));
}

TEST_CASE("safetensors: the header must be one JSON object", "[io]") {
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::safetensors_bytes("{\"a\": ", ""), "st_json.safetensors"),
                         glrnn::FormatError, st_what_contains("the header is not valid JSON ("));
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::safetensors_bytes("{} {}", ""), "st_json.safetensors"),
                         glrnn::FormatError, st_what_contains("not valid JSON"));
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::safetensors_bytes("{\"\xff\":1}", ""), "st_json.safetensors"),
                         glrnn::FormatError, st_what_contains("not valid JSON"));
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::safetensors_bytes("[1, 2]", ""), "st_json.safetensors"),
                         glrnn::FormatError, st_what_contains("the header must be a JSON object, got [1,2]"));
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::safetensors_bytes("\"x\"", ""), "st_json.safetensors"),
                         glrnn::FormatError, st_what_contains("must be a JSON object"));
  // Deep nesting would overflow the stack when the value is printed or destroyed.
  const std::string deep = "{\"w\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::safetensors_bytes(deep, ""), "st_json.safetensors"), glrnn::FormatError,
                         st_what_contains("the header nests arrays and objects deeper than 128 levels"));
}

TEST_CASE("safetensors: duplicate keys are rejected", "[io]") {
  const std::string tensor = st_entry("w", "U8", "[2]", 0, 2);
  REQUIRE_THROWS_MATCHES(
      st_open(glrnn::test::safetensors_bytes("{" + tensor + "," + tensor + "}", "ab"), "st_dup.safetensors"),
      glrnn::FormatError, st_what_contains("duplicate key 'w' in the header"));
  const std::string repeated_dtype =
      "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::safetensors_bytes(repeated_dtype, "ab"), "st_dup.safetensors"),
                         glrnn::FormatError, st_what_contains("duplicate key 'dtype'"));
  // The same key in two different objects is not a duplicate.
  const std::string header = "{\"a\":{\"a\":1}}";
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::safetensors_bytes(header, ""), "st_dup.safetensors"), glrnn::FormatError,
                         st_what_contains("unexpected key 'a'"));
}

TEST_CASE("safetensors: __metadata__ must map strings to strings", "[io]") {
  REQUIRE_THROWS_MATCHES(
      st_open(glrnn::test::safetensors_bytes("{\"__metadata__\":[\"pt\"]}", ""), "st_meta.safetensors"),
      glrnn::FormatError, st_what_contains("__metadata__ must be an object of strings"));
  REQUIRE_THROWS_MATCHES(st_open(glrnn::test::safetensors_bytes("{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", ""),
                                 "st_meta.safetensors"),
                         glrnn::FormatError, st_what_contains("__metadata__ value of 'n' must be a string, got 3"));
}

TEST_CASE("safetensors: malformed tensor entries", "[io]") {
  const auto open_header = [](const std::string& entries, const std::string& data) {
    return st_open(glrnn::test::safetensors_bytes("{" + entries + "}", data), "st_entry.safetensors");
  };
  const std::string data24(24, '\0');

  SECTION("unknown dtype") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "F4", "[2]", 0, 1), "x"), glrnn::FormatError,
                           st_what_contains("tensor 'w': unknown dtype 'F4'"));
  }
  SECTION("shape and byte size disagree") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "F32", "[2, 3]", 0, 20), data24.substr(0, 20)), glrnn::FormatError,
                           st_what_contains("tensor 'w': shape [2, 3] of F32 needs 24 bytes but data_offsets span 20"));
  }
  SECTION("element count overflows") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "F32", "[1099511627776, 1099511627776]", 0, 0), ""),
                           glrnn::FormatError, st_what_contains("tensor 'w': the element count of shape"));
  }
  SECTION("byte count overflows") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "F64", "[4194304, 1099511627776]", 0, 0), ""), glrnn::FormatError,
                           st_what_contains("byte size of shape [4194304, 1099511627776] of F64 overflows"));
  }
  SECTION("dimension above 2^53") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "U8", "[9007199254740993]", 0, 0), ""), glrnn::FormatError,
                           st_what_contains("no larger than 2^53"));
  }
  SECTION("negative or fractional dimension") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "U8", "[-1]", 0, 0), ""), glrnn::FormatError,
                           st_what_contains("tensor 'w': shape [-1] must hold non-negative integers"));
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "U8", "[2.0]", 0, 2), "ab"), glrnn::FormatError,
                           st_what_contains("must hold non-negative integers"));
  }
  SECTION("rank above 8") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "U8", "[1,1,1,1,1,1,1,1,1]", 0, 1), "a"), glrnn::FormatError,
                           st_what_contains("rank 9, more than the maximum 8"));
  }
  SECTION("shape not an array") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "U8", "2", 0, 2), "ab"), glrnn::FormatError,
                           st_what_contains("shape must be an array, got 2"));
  }
  SECTION("bad data_offsets") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "U8", "[0]", 2, 1), "ab"), glrnn::FormatError,
                           st_what_contains("data_offsets [2,1] begin after they end"));
    REQUIRE_THROWS_MATCHES(open_header("\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,1,2]}", "ab"),
                           glrnn::FormatError, st_what_contains("data_offsets must be [begin, end]"));
    REQUIRE_THROWS_MATCHES(open_header("\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[-1,1]}", "ab"),
                           glrnn::FormatError, st_what_contains("data_offsets must be [begin, end]"));
  }
  SECTION("range beyond the data section") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "F32", "[6]", 0, 24), data24.substr(0, 20)), glrnn::FormatError,
                           st_what_contains("tensor 'w': data_offsets [0,24] extend past the end of the 20-byte"));
    REQUIRE_THROWS_MATCHES(open_header(st_entry("w", "U8", "[0]", 25, 25), data24), glrnn::FormatError,
                           st_what_contains("extend past the end"));
  }
  SECTION("missing, extra and mistyped keys") {
    REQUIRE_THROWS_MATCHES(open_header("\"w\":{\"dtype\":\"U8\",\"shape\":[2]}", "ab"), glrnn::FormatError,
                           st_what_contains("tensor 'w': missing key 'data_offsets'"));
    REQUIRE_THROWS_MATCHES(
        open_header("\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],\"align\":1}", "ab"),
        glrnn::FormatError, st_what_contains("tensor 'w': unexpected key 'align'"));
    REQUIRE_THROWS_MATCHES(open_header("\"w\":{\"dtype\":8,\"shape\":[2],\"data_offsets\":[0,2]}", "ab"),
                           glrnn::FormatError, st_what_contains("dtype must be a string"));
    REQUIRE_THROWS_MATCHES(open_header("\"w\":[1,2]", "ab"), glrnn::FormatError,
                           st_what_contains("tensor 'w': expected an object"));
  }
}

TEST_CASE("safetensors: tensors must tile the data section exactly", "[io]") {
  const auto open_header = [](const std::string& entries, const std::string& data) {
    return st_open(glrnn::test::safetensors_bytes("{" + entries + "}", data), "st_tiling.safetensors");
  };
  const std::string data(16, '\0');

  SECTION("overlap") {
    REQUIRE_THROWS_MATCHES(
        open_header(st_entry("a", "F32", "[2]", 0, 8) + "," + st_entry("b", "F32", "[3]", 4, 16), data),
        glrnn::FormatError, st_what_contains("tensor 'b' (bytes 4..16) overlaps tensor 'a'"));
    REQUIRE_THROWS_MATCHES(
        open_header(st_entry("a", "F32", "[4]", 0, 16) + "," + st_entry("b", "F32", "[4]", 0, 16), data),
        glrnn::FormatError, st_what_contains("overlaps"));
  }
  SECTION("hole between tensors and at the start") {
    REQUIRE_THROWS_MATCHES(
        open_header(st_entry("a", "F32", "[1]", 0, 4) + "," + st_entry("b", "F32", "[2]", 8, 16), data),
        glrnn::FormatError, st_what_contains("hole of 4 bytes in the data section between tensor 'a' and tensor 'b'"));
    REQUIRE_THROWS_MATCHES(open_header(st_entry("a", "F32", "[2]", 8, 16), data), glrnn::FormatError,
                           st_what_contains("hole of 8 bytes in the data section before tensor 'a'"));
  }
  SECTION("trailing bytes") {
    REQUIRE_THROWS_MATCHES(open_header(st_entry("a", "F32", "[3]", 0, 12), data), glrnn::FormatError,
                           st_what_contains("4 trailing bytes after the last tensor"));
    REQUIRE_THROWS_MATCHES(open_header("", "xyz"), glrnn::FormatError, st_what_contains("3 trailing bytes"));
  }
  SECTION("empty tensors overlap nothing") {
    const glrnn::SafetensorsFile file =
        open_header(st_entry("a", "F32", "[4]", 0, 16) + "," + st_entry("b", "F32", "[0]", 4, 4) + "," +
                        st_entry("c", "F32", "[2, 0]", 16, 16),
                    data);
    CHECK(file.tensors().size() == 3);
  }
}

TEST_CASE("mapped file: errors name the path and the reason", "[io]") {
  const std::string dir = glrnn::test::make_temp_dir("st_mapped_dir");
  REQUIRE_THROWS_MATCHES(glrnn::MappedFile(dir + "/absent.bin"), glrnn::IoError,
                         st_what_contains("cannot open '" + dir + "/absent.bin': No such file or directory"));
  REQUIRE_THROWS_MATCHES(glrnn::MappedFile(dir), glrnn::IoError, st_what_contains("'" + dir + "': Is a directory"));
  REQUIRE_THROWS_MATCHES(glrnn::SafetensorsFile(dir), glrnn::IoError, st_what_contains("Is a directory"));

  const glrnn::MappedFile empty(glrnn::test::write_temp_file("", "st_mapped_dir/empty.bin"));
  CHECK(empty.size() == 0);

  glrnn::MappedFile source(glrnn::test::write_temp_file("hello", "st_mapped_dir/hello.bin"));
  const glrnn::MappedFile moved = std::move(source);
  REQUIRE(moved.size() == 5);
  CHECK(std::to_integer<char>(moved.data()[4]) == 'o');
  CHECK(moved.path() == dir + "/hello.bin");
}

namespace {

/// A two-shard checkpoint in a fresh directory; returns the directory. Tensors "a", "b" in shard 1
/// and "c" in shard 2 unless `weight_map` (JSON text) overrides the index.
std::string st_sharded_dir(const std::string& name, const std::string& weight_map = "") {
  const std::string dir = glrnn::test::make_temp_dir(name);
  glrnn::test::write_temp_file(
      glrnn::test::SafetensorsBuilder().add_f32("a", {2}, {1.0f, 2.0f}).add_f32("b", {}, {3.0f}).build(),
      name + "/model-00001-of-00002.safetensors");
  glrnn::test::write_temp_file(
      glrnn::test::SafetensorsBuilder().metadata("format", "pt").add_f32("c", {1, 2}, {4.0f, 5.0f}).build(),
      name + "/model-00002-of-00002.safetensors");
  const std::string default_map =
      "{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\","
      "\"c\":\"model-00002-of-00002.safetensors\"}";
  glrnn::test::write_temp_file(
      "{\"metadata\":{\"total_size\":20},\"weight_map\":" + (weight_map.empty() ? default_map : weight_map) + "}",
      name + "/model.safetensors.index.json");
  return dir;
}

}  // namespace

TEST_CASE("checkpoint: a sharded checkpoint finds tensors across shards", "[io]") {
  const std::string dir = st_sharded_dir("st_sharded_ok");
  const glrnn::Checkpoint checkpoint(dir);
  CHECK(checkpoint.path() == dir);
  const std::vector<const glrnn::TensorInfo*> all = checkpoint.all();
  REQUIRE(all.size() == 3);
  CHECK(all[0]->name == "a");
  CHECK(all[2]->name == "c");
  CHECK(st_read<float>(checkpoint.get("a"), 1) == 2.0f);
  CHECK(st_read<float>(checkpoint.get("b"), 0) == 3.0f);
  CHECK(st_read<float>(checkpoint.get("c"), 1) == 5.0f);
  CHECK(*checkpoint.get("c").file == dir + "/model-00002-of-00002.safetensors");
  CHECK(checkpoint.find("d") == nullptr);
  REQUIRE_THROWS_MATCHES(checkpoint.get("d"), glrnn::FormatError, st_what_contains(dir + ": tensor 'd' is missing"));

  const glrnn::Checkpoint through_index(dir + "/model.safetensors.index.json");
  CHECK(through_index.all().size() == 3);
}

TEST_CASE("checkpoint: index and shards must agree", "[io]") {
  const std::string shard1 = "\"model-00001-of-00002.safetensors\"";
  const std::string shard2 = "\"model-00002-of-00002.safetensors\"";

  SECTION("tensor listed but missing from its shard") {
    const std::string dir = st_sharded_dir(
        "st_sharded_bad", "{\"a\":" + shard1 + ",\"b\":" + shard1 + ",\"c\":" + shard2 + ",\"d\":" + shard2 + "}");
    REQUIRE_THROWS_MATCHES(
        glrnn::Checkpoint(dir), glrnn::FormatError,
        st_what_contains("tensor 'd' is listed in shard 'model-00002-of-00002.safetensors' but that file does not"));
  }
  SECTION("shard tensor not listed") {
    const std::string dir = st_sharded_dir("st_sharded_bad", "{\"a\":" + shard1 + ",\"c\":" + shard2 + "}");
    REQUIRE_THROWS_MATCHES(
        glrnn::Checkpoint(dir), glrnn::FormatError,
        st_what_contains("shard 'model-00001-of-00002.safetensors' holds tensor 'b', which weight_map does not list"));
  }
  SECTION("tensor stored in two shards") {
    const std::string dir = glrnn::test::make_temp_dir("st_sharded_bad");
    glrnn::test::write_temp_file(glrnn::test::SafetensorsBuilder().add_f32("a", {1}, {1.0f}).build(),
                                 "st_sharded_bad/one.safetensors");
    glrnn::test::write_temp_file(
        glrnn::test::SafetensorsBuilder().add_f32("a", {1}, {1.0f}).add_f32("b", {1}, {2.0f}).build(),
        "st_sharded_bad/two.safetensors");
    glrnn::test::write_temp_file("{\"weight_map\":{\"a\":\"one.safetensors\",\"b\":\"two.safetensors\"}}",
                                 "st_sharded_bad/model.safetensors.index.json");
    REQUIRE_THROWS_MATCHES(glrnn::Checkpoint(dir), glrnn::FormatError,
                           st_what_contains("tensor 'a' is stored in both 'two.safetensors' and 'one.safetensors'"));
  }
  SECTION("shard names must stay inside the directory") {
    for (const std::string bad : {"sub/model.safetensors", "../model.safetensors", "/etc/passwd", "..", ""}) {
      INFO("shard name '" << bad << "'");
      const std::string dir = st_sharded_dir("st_sharded_bad", "{\"a\":\"" + bad + "\"}");
      REQUIRE_THROWS_MATCHES(glrnn::Checkpoint(dir), glrnn::FormatError,
                             st_what_contains("shard '" + bad + "' of tensor 'a' must be a plain file name"));
    }
  }
  SECTION("missing shard file") {
    const std::string dir = st_sharded_dir("st_sharded_bad", "{\"a\":\"model-00003-of-00002.safetensors\"}");
    REQUIRE_THROWS_MATCHES(
        glrnn::Checkpoint(dir), glrnn::IoError,
        st_what_contains("cannot open '" + dir + "/model-00003-of-00002.safetensors': No such file or directory"));
  }
  SECTION("malformed index") {
    const std::string dir = st_sharded_dir("st_sharded_bad");
    glrnn::test::write_temp_file("{\"weight_map\": ", "st_sharded_bad/model.safetensors.index.json");
    REQUIRE_THROWS_MATCHES(glrnn::Checkpoint(dir), glrnn::FormatError, st_what_contains("the index is not valid JSON"));
    glrnn::test::write_temp_file("{\"metadata\": {}}", "st_sharded_bad/model.safetensors.index.json");
    REQUIRE_THROWS_MATCHES(glrnn::Checkpoint(dir), glrnn::FormatError,
                           st_what_contains("with a \"weight_map\" object"));
    glrnn::test::write_temp_file("[]", "st_sharded_bad/model.safetensors.index.json");
    REQUIRE_THROWS_MATCHES(glrnn::Checkpoint(dir), glrnn::FormatError,
                           st_what_contains("with a \"weight_map\" object"));
    glrnn::test::write_temp_file("{\"weight_map\": {\"a\": 1}}", "st_sharded_bad/model.safetensors.index.json");
    REQUIRE_THROWS_MATCHES(glrnn::Checkpoint(dir), glrnn::FormatError,
                           st_what_contains("weight_map entry of tensor 'a' must be a shard file name, got 1"));
  }
  SECTION("a broken shard is reported with its own path") {
    const std::string dir = st_sharded_dir("st_sharded_bad");
    glrnn::test::write_temp_file("garbage", "st_sharded_bad/model-00002-of-00002.safetensors");
    REQUIRE_THROWS_MATCHES(glrnn::Checkpoint(dir), glrnn::FormatError,
                           st_what_contains(dir + "/model-00002-of-00002.safetensors: file is 7 bytes"));
  }
}

TEST_CASE("checkpoint: single files and directories without a checkpoint", "[io]") {
  const std::string dir = glrnn::test::make_temp_dir("st_single");
  REQUIRE_THROWS_MATCHES(glrnn::Checkpoint(dir), glrnn::IoError,
                         st_what_contains("no model.safetensors or model.safetensors.index.json in '" + dir + "'"));
  REQUIRE_THROWS_MATCHES(glrnn::Checkpoint(dir + "/nothing.safetensors"), glrnn::IoError,
                         st_what_contains("No such file"));

  const std::string file = glrnn::test::write_temp_file(st_valid_bytes(), "st_single/model.safetensors");
  const glrnn::Checkpoint by_dir(dir);
  CHECK(by_dir.all().size() == 6);
  CHECK(by_dir.get("a.f32").nbytes == 24);
  const glrnn::Checkpoint by_file(file);
  CHECK(by_file.path() == file);
  CHECK(by_file.find("e.scalar") != nullptr);
  REQUIRE_THROWS_MATCHES(by_file.get("lm_head.weight"), glrnn::FormatError,
                         st_what_contains(file + ": tensor 'lm_head.weight' is missing"));
}

TEST_CASE("safetensors: the recurrentgemma-tiny fixture opens", "[io]") {
  const glrnn::Checkpoint checkpoint(GLRNN_TEST_DATA_DIR "/recurrentgemma-tiny/model.safetensors");
  CHECK(checkpoint.all().size() == 112);
  const glrnn::TensorInfo& embed = checkpoint.get("model.embed_tokens.weight");
  CHECK(embed.dtype == glrnn::DType::F32);
  CHECK(embed.shape == std::vector<std::int64_t>{512, 64});
  CHECK(embed.nbytes == 512u * 64u * 4u);
}
