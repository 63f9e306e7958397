#pragma once
// Writing a safetensors file (spec: docs/formats.md §1): an 8-byte little-endian header length, the JSON
// header, then the tensors' bytes. Used by glrnn-convert and by the benchmarks that need a
// checkpoint of a real geometry on disk.

#include <algorithm>  // std::stable_sort
#include <cstdint>    // std::uint64_t
#include <cstdio>     // std::rename, std::remove
#include <fstream>    // std::ofstream
#include <string>     // std::string
#include <vector>     // std::vector

#include <nlohmann/json.hpp>

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/core/tensor.hpp"

namespace glrnn {

/// One tensor to write; `data` must stay valid until write_safetensors returns.
struct TensorToWrite {
  std::string name;
  DType dtype;
  Shape shape;
  const void* data;
  std::size_t nbytes;
};

/// Writes `tensors` and the string-valued `metadata` to `output` and returns the file's size. The
/// file is written next to `output` and renamed at the end, so a failure never leaves a partial
/// file under that name. Wider element types come first and the data section starts 64-byte
/// aligned, so every tensor of a mapped file is aligned for its type.
inline std::uint64_t write_safetensors(const std::string& output, const nlohmann::json& metadata,
                                       std::vector<TensorToWrite> tensors) {
  std::stable_sort(tensors.begin(), tensors.end(),
                   [](const TensorToWrite& a, const TensorToWrite& b) { return dtype_size(a.dtype) > dtype_size(b.dtype); });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const std::vector<std::int64_t> shape(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.rank);
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))}, {"shape", shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string header_text = header.dump();
  header_text.append((64 - (8 + header_text.size()) % 64) % 64, ' ');  // the format allows trailing spaces

  const std::string partial = output + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    GLRNN_CHECK(out.good(), IoError, "cannot create '" + partial + "'");
    const std::uint64_t length = header_text.size();
    unsigned char prefix[8];
    for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(length >> (8 * i));  // little-endian
    out.write(reinterpret_cast<const char*>(prefix), 8);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    for (const TensorToWrite& t : tensors) out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.nbytes));
    out.close();
    if (!out) {
      std::remove(partial.c_str());
      throw IoError("cannot write '" + partial + "' (disk full?)");
    }
  }
  GLRNN_CHECK(std::rename(partial.c_str(), output.c_str()) == 0, IoError, "cannot rename '" + partial + "' to '" + output + "'");
  return 8 + header_text.size() + offset;
}

}  // namespace glrnn
