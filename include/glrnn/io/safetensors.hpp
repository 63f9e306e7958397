#pragma once
// Reading safetensors checkpoints (spec: docs/formats.md §1). A SafetensorsFile is one mapped file whose
// header has been fully validated, so every TensorInfo it hands out points inside the mapping and
// has a size consistent with its dtype and shape. A Checkpoint joins the shards of a model.

#include <algorithm>    // std::sort, std::lower_bound
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::int64_t, std::uint64_t
#include <filesystem>   // std::filesystem::path, is_directory, exists
#include <functional>   // std::less
#include <map>          // std::map
#include <memory>       // std::unique_ptr, std::make_unique
#include <optional>     // std::optional
#include <set>          // std::set
#include <string>       // std::string, std::to_string
#include <string_view>  // std::string_view
#include <utility>      // std::move, std::pair
#include <vector>       // std::vector

#include <nlohmann/json.hpp>

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/io/mapped_file.hpp"

namespace glrnn {

/// One tensor of a validated safetensors file. The data is little-endian, row-major and NOT
/// necessarily aligned for its dtype: read it with std::memcpy or copy it out.
struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;  // outermost first; empty = scalar
  const std::byte* data;            // into the mapping
  std::size_t nbytes;
  const std::string* file;  // path of the file that holds it, for error messages

  /// Number of elements: 1 for a scalar, 0 when any dimension is 0.
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
  }

  /// "[2560, 1, 4]"; "[]" for a scalar.
  std::string shape_str() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }
};

namespace detail {

// Limits of the reference implementation (huggingface/safetensors), so that files it rejects are
// rejected here too.
inline constexpr std::uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;
inline constexpr std::size_t kSafetensorsMaxRank = 8;
// Dimensions above 2^53 cannot round-trip through JSON readers that use doubles.
inline constexpr std::uint64_t kSafetensorsMaxDim = std::uint64_t{1} << 53;
// nlohmann's dump() recurses, so a header of nested brackets would overflow the stack; the
// reference reader (serde_json) stops at the same depth.
inline constexpr int kMaxJsonDepth = 128;

/// A JSON value shortened for an error message (a hostile header can hold megabytes in one value).
inline std::string json_excerpt(const nlohmann::json& value) {
  constexpr std::size_t kMaxChars = 60;
  std::string text = value.dump();
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

/// Parses [first, last) as JSON, rejecting a key repeated within one object (nlohmann silently
/// keeps the last value, which would hide a tensor listed twice) and nesting deeper than
/// kMaxJsonDepth. `where` (a path) starts every message; `what` names the document ("the header").
inline nlohmann::json parse_json_unique_keys(const char* first, const char* last, const std::string& where,
                                             const std::string& what) {
  using Event = nlohmann::json::parse_event_t;
  std::vector<std::set<std::string>> open_objects;  // keys seen so far in each enclosing object
  std::optional<std::string> duplicate;
  const nlohmann::json::parser_callback_t on_event = [&](int depth, Event event, nlohmann::json& parsed) {
    if ((event == Event::object_start || event == Event::array_start) && depth >= kMaxJsonDepth)
      throw FormatError(where + ": " + what + " nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) +
                        " levels");
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      open_objects.pop_back();
    } else if (event == Event::key && !duplicate) {
      std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second) duplicate = std::move(key);
    }
    return true;
  };
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(first, last, on_event);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(where + ": " + what + " is not valid JSON (" + e.what() + ")");
  }
  if (duplicate) throw FormatError(where + ": duplicate key '" + *duplicate + "' in " + what);
  return document;
}

/// A JSON value as a non-negative integer, if it is one (nlohmann stores those as unsigned).
inline std::optional<std::uint64_t> json_unsigned(const nlohmann::json& value) {
  if (!value.is_number_unsigned()) return std::nullopt;
  return value.get<std::uint64_t>();
}

/// The header's "__metadata__" value, which must be an object of strings.
inline std::map<std::string, std::string> safetensors_metadata(const std::string& path, const nlohmann::json& value) {
  if (!value.is_object())
    throw FormatError(path + ": __metadata__ must be an object of strings, got " + json_excerpt(value));
  std::map<std::string, std::string> metadata;
  for (const auto& item : value.items()) {
    if (!item.value().is_string())
      throw FormatError(path + ": __metadata__ value of '" + item.key() + "' must be a string, got " +
                        json_excerpt(item.value()));
    metadata.emplace(item.key(), item.value().get<std::string>());
  }
  return metadata;
}

/// Validates one header entry and returns its tensor, pointing into `data_section` (data_size
/// bytes). `begin` receives the entry's offset in the data section.
inline TensorInfo safetensors_entry(const std::string& path, const std::string& name, const nlohmann::json& entry,
                                    const std::byte* data_section, std::uint64_t data_size, std::uint64_t& begin) {
  const std::string where = path + ": tensor '" + name + "': ";
  if (!entry.is_object())
    throw FormatError(where + "expected an object with dtype, shape and data_offsets, got " + json_excerpt(entry));
  for (const auto& item : entry.items()) {
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      throw FormatError(where + "unexpected key '" + item.key() + "' (expected only dtype, shape, data_offsets)");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) throw FormatError(where + "missing key '" + key + "'");
  }

  const nlohmann::json& dtype_json = entry["dtype"];
  if (!dtype_json.is_string()) throw FormatError(where + "dtype must be a string, got " + json_excerpt(dtype_json));
  const std::string& dtype_text = dtype_json.get_ref<const std::string&>();
  const std::optional<DType> dtype = parse_dtype(dtype_text);
  if (!dtype) throw FormatError(where + "unknown dtype '" + dtype_text + "'");

  const nlohmann::json& shape_json = entry["shape"];
  if (!shape_json.is_array()) throw FormatError(where + "shape must be an array, got " + json_excerpt(shape_json));
  if (shape_json.size() > kSafetensorsMaxRank)
    throw FormatError(where + "shape has rank " + std::to_string(shape_json.size()) + ", more than the maximum " +
                      std::to_string(kSafetensorsMaxRank));
  std::vector<std::int64_t> shape;
  for (const nlohmann::json& dim_json : shape_json) {
    const std::optional<std::uint64_t> dim = json_unsigned(dim_json);
    if (!dim || *dim > kSafetensorsMaxDim)
      throw FormatError(where + "shape " + json_excerpt(shape_json) +
                        " must hold non-negative integers no larger than 2^53");
    shape.push_back(static_cast<std::int64_t>(*dim));
  }

  const nlohmann::json& offsets_json = entry["data_offsets"];
  const bool offsets_are_pair = offsets_json.is_array() && offsets_json.size() == 2;
  const std::optional<std::uint64_t> first = offsets_are_pair ? json_unsigned(offsets_json[0]) : std::nullopt;
  const std::optional<std::uint64_t> last = offsets_are_pair ? json_unsigned(offsets_json[1]) : std::nullopt;
  if (!first || !last)
    throw FormatError(where + "data_offsets must be [begin, end] with non-negative integers, got " +
                      json_excerpt(offsets_json));
  if (*first > *last) throw FormatError(where + "data_offsets " + json_excerpt(offsets_json) + " begin after they end");

  TensorInfo info{name, *dtype, std::move(shape), nullptr, 0, &path};
  std::uint64_t numel = 1;
  for (std::int64_t d : info.shape) {
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(d), &numel))
      throw FormatError(where + "the element count of shape " + info.shape_str() + " overflows 64 bits");
  }
  std::uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(dtype_size(*dtype)), &nbytes))
    throw FormatError(where + "the byte size of shape " + info.shape_str() + " of " + dtype_text +
                      " overflows 64 bits");
  if (nbytes != *last - *first)
    throw FormatError(where + "shape " + info.shape_str() + " of " + dtype_text + " needs " + std::to_string(nbytes) +
                      " bytes but data_offsets span " + std::to_string(*last - *first));
  if (*last > data_size)
    throw FormatError(where + "data_offsets " + json_excerpt(offsets_json) + " extend past the end of the " +
                      std::to_string(data_size) + "-byte data section");

  begin = *first;
  info.data = data_section + *first;
  info.nbytes = static_cast<std::size_t>(nbytes);
  return info;
}

/// Checks that the non-empty tensors tile [0, data_size) exactly, as the reference implementation
/// requires: no overlap (two views of one byte), no hole, nothing after the last tensor.
/// `begins[i]` is the offset of `tensors[i]`.
inline void check_safetensors_tiling(const std::string& path, const std::vector<TensorInfo>& tensors,
                                     const std::vector<std::uint64_t>& begins, std::uint64_t data_size) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].nbytes > 0) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return begins[a] < begins[b]; });

  std::uint64_t expected = 0;  // where the next tensor must begin
  const TensorInfo* previous = nullptr;
  for (std::size_t i : order) {
    const TensorInfo& t = tensors[i];
    if (begins[i] < expected)
      throw FormatError(path + ": tensor '" + t.name + "' (bytes " + std::to_string(begins[i]) + ".." +
                        std::to_string(begins[i] + t.nbytes) + ") overlaps tensor '" + previous->name +
                        "', which ends at " + std::to_string(expected));
    if (begins[i] > expected)
      throw FormatError(path + ": hole of " + std::to_string(begins[i] - expected) + " bytes in the data section " +
                        (previous ? "between tensor '" + previous->name + "' and" : std::string("before")) +
                        " tensor '" + t.name + "'");
    expected = begins[i] + t.nbytes;
    previous = &t;
  }
  if (expected != data_size)
    throw FormatError(path + ": " + std::to_string(data_size - expected) +
                      " trailing bytes after the last tensor in the data section");
}

}  // namespace detail

/// One mapped .safetensors file, validated on open. tensors() is sorted by name.
class SafetensorsFile {
 public:
  /// Maps and validates the file. Throws IoError if it cannot be read and FormatError (message
  /// starting with the path) if it breaks the format.
  explicit SafetensorsFile(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
    const std::byte* bytes = file_->data();
    const std::size_t size = file_->size();
    const std::string& where = file_->path();

    if (size < 8)
      throw FormatError(where + ": file is " + std::to_string(size) +
                        " bytes, shorter than the 8-byte header length that starts a safetensors file");
    std::uint64_t header_size = 0;  // little-endian whatever the host's byte order
    for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | std::to_integer<std::uint64_t>(bytes[i]);
    if (header_size == 0) throw FormatError(where + ": header length is 0; expected a JSON object");
    if (header_size > detail::kSafetensorsMaxHeaderBytes)
      throw FormatError(where + ": header length " + std::to_string(header_size) + " exceeds the limit of " +
                        std::to_string(detail::kSafetensorsMaxHeaderBytes) + " bytes");
    if (header_size > size - 8)
      throw FormatError(where + ": header length " + std::to_string(header_size) + " exceeds the " +
                        std::to_string(size - 8) + " bytes that follow it in the file");

    const char* header = reinterpret_cast<const char*>(bytes + 8);
    const nlohmann::json document = detail::parse_json_unique_keys(header, header + header_size, where, "the header");
    if (!document.is_object())
      throw FormatError(where + ": the header must be a JSON object, got " + detail::json_excerpt(document));

    const std::byte* data_section = bytes + 8 + header_size;
    const std::uint64_t data_size = size - 8 - header_size;
    std::vector<std::uint64_t> begins;
    for (const auto& item : document.items()) {
      if (item.key() == "__metadata__") {
        metadata_ = detail::safetensors_metadata(where, item.value());
        continue;
      }
      std::uint64_t begin = 0;
      tensors_.push_back(detail::safetensors_entry(where, item.key(), item.value(), data_section, data_size, begin));
      begins.push_back(begin);
    }
    detail::check_safetensors_tiling(where, tensors_, begins, data_size);
    std::sort(tensors_.begin(), tensors_.end(),
              [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  }

  const std::string& path() const { return file_->path(); }

  /// The tensor called `name`, or nullptr if the file has none.
  const TensorInfo* find(std::string_view name) const {
    const auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                                     [](const TensorInfo& t, std::string_view n) { return t.name < n; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
  }

  /// All tensors, sorted by name (header order carries no meaning in the format).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  /// The header's "__metadata__" object (empty if absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  // On the heap so that TensorInfo::file and TensorInfo::data stay valid when this object moves.
  std::unique_ptr<MappedFile> file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

namespace detail {

/// A shard name from an index may only name a file next to the index: anything else could reach
/// outside the checkpoint directory.
inline bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name.find('/') == std::string::npos && name.find('\\') == std::string::npos &&
         name.find("..") == std::string::npos && name.find('\0') == std::string::npos;
}

inline bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

/// Opens every shard named by a model.safetensors.index.json and checks that the index and the
/// shards agree exactly.
inline std::vector<SafetensorsFile> open_safetensors_shards(const std::filesystem::path& index_path) {
  const std::string where = index_path.string();
  const MappedFile index(where);
  const char* text = reinterpret_cast<const char*>(index.data());
  const nlohmann::json document = parse_json_unique_keys(text, text + index.size(), where, "the index");
  const auto weight_map = document.is_object() ? document.find("weight_map") : document.end();
  if (!document.is_object() || weight_map == document.end() || !weight_map->is_object())
    throw FormatError(where + ": expected a JSON object with a \"weight_map\" object (tensor name -> shard file)");

  std::map<std::string, std::vector<std::string>> tensors_by_shard;
  for (const auto& item : weight_map->items()) {
    if (!item.value().is_string())
      throw FormatError(where + ": weight_map entry of tensor '" + item.key() + "' must be a shard file name, got " +
                        json_excerpt(item.value()));
    const std::string& shard = item.value().get_ref<const std::string&>();
    if (!is_plain_file_name(shard))
      throw FormatError(where + ": shard '" + shard + "' of tensor '" + item.key() +
                        "' must be a plain file name in the index's directory");
    tensors_by_shard[shard].push_back(item.key());
  }

  const std::filesystem::path dir = index_path.parent_path();
  std::vector<SafetensorsFile> shards;
  shards.reserve(tensors_by_shard.size());
  for (const auto& [shard, names] : tensors_by_shard) {
    const SafetensorsFile& file = shards.emplace_back((dir / shard).string());
    for (const std::string& name : names) {
      if (!file.find(name))
        throw FormatError(where + ": tensor '" + name + "' is listed in shard '" + shard +
                          "' but that file does not contain it");
    }
  }
  // Every listed tensor is now known to be in its shard, so a shard tensor listed elsewhere is
  // stored twice.
  auto shard_entry = tensors_by_shard.begin();  // shards[i] was opened from the i-th entry
  for (const SafetensorsFile& file : shards) {
    const std::string& shard = (shard_entry++)->first;
    for (const TensorInfo& t : file.tensors()) {
      const auto listed = weight_map->find(t.name);
      if (listed == weight_map->end())
        throw FormatError(where + ": shard '" + shard + "' holds tensor '" + t.name +
                          "', which weight_map does not list");
      if (listed->get_ref<const std::string&>() != shard)
        throw FormatError(where + ": tensor '" + t.name + "' is stored in both '" + shard + "' and '" +
                          listed->get_ref<const std::string&>() + "'");
    }
  }
  return shards;
}

}  // namespace detail

/// A model's weights: one .safetensors file, or the shards listed by model.safetensors.index.json.
class Checkpoint {
 public:
  /// `path` is a directory holding model.safetensors (single file, preferred when both exist, as
  /// transformers does) or model.safetensors.index.json (sharded); or a .safetensors file; or an
  /// index file ending in ".index.json". Throws IoError if nothing is found or readable and
  /// FormatError if a file is malformed or the index and shards disagree.
  explicit Checkpoint(const std::string& path) : path_(path) {
    namespace fs = std::filesystem;
    std::error_code ec;  // a path that cannot be inspected is reported by MappedFile below
    const fs::path p(path);
    if (fs::is_directory(p, ec)) {
      const fs::path single = p / "model.safetensors";
      const fs::path index = p / "model.safetensors.index.json";
      if (fs::exists(single, ec)) {
        files_.emplace_back(single.string());
      } else if (fs::exists(index, ec)) {
        files_ = detail::open_safetensors_shards(index);
      } else {
        throw IoError("no model.safetensors or model.safetensors.index.json in '" + path + "'");
      }
    } else if (detail::ends_with(path, ".index.json")) {
      files_ = detail::open_safetensors_shards(p);
    } else {
      files_.emplace_back(path);
    }
    // Shards were checked to hold disjoint names, so every insertion succeeds.
    for (const SafetensorsFile& file : files_)
      for (const TensorInfo& t : file.tensors()) by_name_.emplace(t.name, &t);
  }

  /// The tensor called `name` in any shard, or nullptr.
  const TensorInfo* find(std::string_view name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }

  /// The tensor called `name`; throws FormatError naming the checkpoint if it is absent.
  const TensorInfo& get(std::string_view name) const {
    const TensorInfo* t = find(name);
    if (!t) throw FormatError(path_ + ": tensor '" + std::string(name) + "' is missing");
    return *t;
  }

  /// Every tensor of every shard, sorted by name.
  std::vector<const TensorInfo*> all() const {
    std::vector<const TensorInfo*> out;
    out.reserve(by_name_.size());
    for (const auto& entry : by_name_) out.push_back(entry.second);
    return out;
  }

  /// The path given to the constructor.
  const std::string& path() const { return path_; }
  /// The files, in shard order.
  const std::vector<SafetensorsFile>& files() const { return files_; }

 private:
  std::string path_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, const TensorInfo*, std::less<>> by_name_;
};

}  // namespace glrnn
