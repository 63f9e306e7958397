#pragma once
// Builds safetensors files in memory for tests, including deliberately broken ones, and writes them
// to a per-process scratch directory.

#include <unistd.h>  // getpid

#include <cstddef>       // std::size_t
#include <cstdint>       // std::int64_t, std::uint64_t
#include <cstring>       // std::memcpy
#include <filesystem>    // std::filesystem::path, temp_directory_path, create_directories, remove_all
#include <fstream>       // std::ofstream
#include <stdexcept>     // std::runtime_error
#include <string>        // std::string, std::to_string
#include <system_error>  // std::error_code
#include <utility>       // std::move
#include <vector>        // std::vector

#include <nlohmann/json.hpp>

namespace glrnn::test {

/// The in-memory bytes of `values`, usable as tensor data (float -> F32, glrnn::bf16 -> BF16, ...).
template <class T>
std::string raw_bytes(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

/// The 8-byte little-endian header length that starts a safetensors file; any value, so tests can
/// claim a length the file does not have.
inline std::string length_prefix(std::uint64_t header_length) {
  std::string bytes(8, '\0');
  for (std::size_t i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header_length >> (8 * i)) & 0xffu);
  return bytes;
}

/// A file made of the length of `header_json`, the header, then `data`, exactly as given: for
/// headers the builder would never produce.
inline std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  return length_prefix(header_json.size()) + header_json + data;
}

/// Lays tensors out back to back in the order they are added. data_offsets follow each tensor's
/// byte count whatever its shape says, so a size that contradicts the shape can be built too.
class SafetensorsBuilder {
 public:
  SafetensorsBuilder& add(const std::string& name, const std::string& dtype, std::vector<std::int64_t> shape,
                          std::string bytes) {
    const std::size_t begin = data_.size();
    data_ += bytes;
    header_[name] = {{"dtype", dtype}, {"shape", std::move(shape)}, {"data_offsets", {begin, data_.size()}}};
    return *this;
  }

  SafetensorsBuilder& add_f32(const std::string& name, std::vector<std::int64_t> shape,
                              const std::vector<float>& values) {
    return add(name, "F32", std::move(shape), raw_bytes(values));
  }

  /// Adds a key to "__metadata__".
  SafetensorsBuilder& metadata(const std::string& key, const std::string& value) {
    header_["__metadata__"][key] = value;
    return *this;
  }

  /// Pads the header with trailing spaces, as writers do to align the data section.
  SafetensorsBuilder& header_padding(std::size_t spaces) {
    padding_ = spaces;
    return *this;
  }

  std::string header_json() const { return header_.dump() + std::string(padding_, ' '); }
  const std::string& data() const { return data_; }
  std::string build() const { return safetensors_bytes(header_json(), data_); }

 private:
  nlohmann::ordered_json header_ = nlohmann::ordered_json::object();
  std::string data_;
  std::size_t padding_ = 0;
};

/// This process's scratch directory, created on first use and removed at exit.
inline const std::filesystem::path& test_temp_dir() {
  struct ScratchDir {
    std::filesystem::path path = std::filesystem::temp_directory_path() / ("glrnn-test-" + std::to_string(::getpid()));
    ScratchDir() {
      std::filesystem::remove_all(path);  // left by an earlier process that had the same pid
      std::filesystem::create_directories(path);
    }
    ~ScratchDir() {
      std::error_code ignored;  // a destructor at exit has no one to report to
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const ScratchDir dir;
  return dir.path;
}

/// An empty directory test_temp_dir()/name (emptied if it exists); returns its path.
inline std::string make_temp_dir(const std::string& name) {
  const std::filesystem::path dir = test_temp_dir() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

/// Writes `bytes` to test_temp_dir()/name (`name` may contain subdirectories); returns the path.
inline std::string write_temp_file(const std::string& bytes, const std::string& name) {
  const std::filesystem::path path = test_temp_dir() / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write test file '" + path.string() + "'");
  return path.string();
}

}  // namespace glrnn::test
