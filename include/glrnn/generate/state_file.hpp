#pragma once
// Saving and restoring a sequence's state. Because the state has a fixed size, a conversation or a
// processed prompt can be stored and resumed with no replay. Format (docs/formats.md §7; every
// number little-endian whatever the host, floats as their IEEE bits), version 1:
//
//   magic "GLRNNST\0" | u32 format version | u32 reserved (0) | u64 model fingerprint
//   i64 position | u32 buffer count, then per buffer: u32 name length, name, u64 float count, floats
//   u32 metadata count, then per entry: u32 key length, key, u32 value length, value
//   u32 CRC-32 of everything before it
//
// Loading checks the checksum, version and fingerprint, and every buffer's name and size against
// the model's state before it changes anything: a failed load leaves the state as it was. Saving
// writes a temporary file next to the target and renames it, so a failed save leaves the file
// that was there.

#include <cstdint>      // std::uint32_t, std::uint64_t, std::int64_t
#include <cstdio>       // std::rename, std::remove
#include <cstring>      // std::memcpy
#include <fstream>      // std::ifstream, std::ofstream
#include <type_traits>  // std::make_unsigned_t, std::is_same_v
#include <map>          // std::map
#include <sstream>      // std::ostringstream
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include "glrnn/core/hash.hpp"
#include "glrnn/models/model.hpp"
#include "glrnn/version.hpp"

namespace glrnn {

/// Key/value strings stored with a state (what a tool needs to go on, e.g. a sampled token).
using StateMetadata = std::map<std::string, std::string>;

namespace detail {
constexpr char kStateMagic[8] = {'G', 'L', 'R', 'N', 'N', 'S', 'T', '\0'};
constexpr std::uint32_t kMaxStateMetadata = 1024, kMaxStateString = 1 << 20;

/// The unsigned integer with T's bytes (floats by their bits).
template <class T>
using bits_of = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;

template <class T>
void put(std::string& out, T value) {
  bits_of<T> bits;
  std::memcpy(&bits, &value, sizeof value);
  for (std::size_t i = 0; i < sizeof value; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

template <class T>
T get_le(const char* p) {
  bits_of<T> bits = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) bits |= static_cast<bits_of<T>>(static_cast<unsigned char>(p[i])) << (8 * i);
  T value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/// floats[n] as little-endian bytes, and back: a copy on little-endian hosts.
inline void put_floats(std::string& out, const float* data, std::size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  out.append(reinterpret_cast<const char*>(data), n * sizeof(float));
#else
  for (std::size_t i = 0; i < n; ++i) put<float>(out, data[i]);
#endif
}
inline void get_floats(std::string_view bytes, float* data) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  std::memcpy(data, bytes.data(), bytes.size());
#else
  for (std::size_t i = 0; i < bytes.size() / sizeof(float); ++i) data[i] = get_le<float>(bytes.data() + i * sizeof(float));
#endif
}

/// Bounds-checked reading of a state file's bytes.
class StateReader {
 public:
  StateReader(std::string_view bytes, std::string source) : bytes_(bytes), source_(std::move(source)) {}
  template <class T>
  T get(const char* what) {
    return get_le<T>(take(sizeof(T), what).data());
  }
  std::string_view take(std::size_t n, const char* what) {
    GLRNN_CHECK(n <= bytes_.size() - offset_, FormatError,
                source_ + ": truncated state file (" + what + " at byte " + std::to_string(offset_) + ")");
    const std::string_view piece = bytes_.substr(offset_, n);
    offset_ += n;
    return piece;
  }
  std::string string(std::uint32_t max, const char* what) {
    const auto n = get<std::uint32_t>(what);
    GLRNN_CHECK(n <= max, FormatError, source_ + ": " + what + " is " + std::to_string(n) + " bytes long");
    return std::string(take(n, what));
  }
  bool at_end() const { return offset_ == bytes_.size(); }
  const std::string& source() const { return source_; }

 private:
  std::string_view bytes_;
  std::string source_;
  std::size_t offset_ = 0;
};
}  // namespace detail

/// The state and metadata as the bytes of a state file.
inline std::string serialize_state(const Model& model, State& state, const StateMetadata& metadata = {}) {
  std::string out(detail::kStateMagic, sizeof detail::kStateMagic);
  detail::put<std::uint32_t>(out, GLRNN_STATE_FORMAT_VERSION);
  detail::put<std::uint32_t>(out, 0);
  detail::put<std::uint64_t>(out, model.info().fingerprint);
  detail::put<std::int64_t>(out, state.position());
  std::uint32_t buffers = 0;
  state.visit([&](const std::string&, float*, std::size_t) { ++buffers; });
  detail::put<std::uint32_t>(out, buffers);
  state.visit([&](const std::string& name, float* data, std::size_t count) {
    detail::put<std::uint32_t>(out, static_cast<std::uint32_t>(name.size()));
    out += name;
    detail::put<std::uint64_t>(out, count);
    detail::put_floats(out, data, count);
  });
  detail::put<std::uint32_t>(out, static_cast<std::uint32_t>(metadata.size()));
  for (const auto& [key, value] : metadata) {
    detail::put<std::uint32_t>(out, static_cast<std::uint32_t>(key.size()));
    out += key;
    detail::put<std::uint32_t>(out, static_cast<std::uint32_t>(value.size()));
    out += value;
  }
  detail::put<std::uint32_t>(out, crc32(out.data(), out.size()));
  return out;
}

/// Restores `state` from a state file's bytes and returns its metadata. Throws FormatError for a
/// damaged or foreign file and InputError for a state of another model; `state` is then unchanged.
inline StateMetadata deserialize_state(const Model& model, State& state, std::string_view bytes,
                                       const std::string& source = "state") {
  GLRNN_CHECK(bytes.size() >= sizeof detail::kStateMagic + 4, FormatError, source + ": too short for a glrnn state file");
  GLRNN_CHECK(std::string_view(bytes.data(), sizeof detail::kStateMagic) ==
                  std::string_view(detail::kStateMagic, sizeof detail::kStateMagic),
              FormatError, source + ": not a glrnn state file (bad magic)");
  const auto stored_crc = detail::get_le<std::uint32_t>(bytes.data() + bytes.size() - 4);
  detail::StateReader in(bytes.substr(0, bytes.size() - 4), source);
  in.take(sizeof detail::kStateMagic, "magic");
  const auto version = in.get<std::uint32_t>("version");
  GLRNN_CHECK(version == GLRNN_STATE_FORMAT_VERSION, FormatError,
              source + ": state format version " + std::to_string(version) + ", this glrnn reads version " +
                  std::to_string(GLRNN_STATE_FORMAT_VERSION));
  GLRNN_CHECK(crc32(bytes.data(), bytes.size() - 4) == stored_crc, FormatError,
              source + ": checksum mismatch (the file is damaged)");
  in.get<std::uint32_t>("reserved");
  GLRNN_CHECK(in.get<std::uint64_t>("fingerprint") == model.info().fingerprint, InputError,
              source + ": this state belongs to another model (fingerprint differs)");
  const auto position = in.get<std::int64_t>("position");
  GLRNN_CHECK(position >= 0, FormatError, source + ": negative position");

  // Validate every buffer against a fresh state at that position (growing caches sized for it),
  // then copy and take it: all or nothing.
  State restored = model.make_state();
  restored.set_position(position);
  struct Target {
    std::string name;
    float* data;
    std::size_t count;
  };
  std::vector<Target> targets;
  restored.visit([&](const std::string& name, float* data, std::size_t count) { targets.push_back({name, data, count}); });
  const auto buffers = in.get<std::uint32_t>("buffer count");
  GLRNN_CHECK(buffers == targets.size(), FormatError,
              source + ": " + std::to_string(buffers) + " buffers, the model's state has " + std::to_string(targets.size()));
  std::vector<std::string_view> payloads;
  for (const Target& t : targets) {
    const std::string name = in.string(detail::kMaxStateString, "buffer name");
    const auto count = in.get<std::uint64_t>("buffer size");
    GLRNN_CHECK(name == t.name && count == t.count, FormatError,
                source + ": buffer '" + name + "' of " + std::to_string(count) + " floats where the model has '" + t.name +
                    "' of " + std::to_string(t.count));
    payloads.push_back(in.take(t.count * sizeof(float), "buffer data"));
  }
  StateMetadata metadata;
  const auto entries = in.get<std::uint32_t>("metadata count");
  GLRNN_CHECK(entries <= detail::kMaxStateMetadata, FormatError, source + ": too many metadata entries");
  for (std::uint32_t i = 0; i < entries; ++i) {
    std::string key = in.string(detail::kMaxStateString, "metadata key");
    metadata[key] = in.string(detail::kMaxStateString, "metadata value");
  }
  GLRNN_CHECK(in.at_end(), FormatError, source + ": unexpected bytes after the metadata");
  for (std::size_t i = 0; i < targets.size(); ++i) detail::get_floats(payloads[i], targets[i].data);
  state = std::move(restored);
  return metadata;
}

/// Writes a state file: all of it, or (on failure) nothing, with the file that was at `path` left
/// as it was. Throws IoError.
inline void save_state(const Model& model, State& state, const std::string& path, const StateMetadata& metadata = {}) {
  const std::string bytes = serialize_state(model, state, metadata);
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    GLRNN_CHECK(out.good(), IoError, "cannot write '" + partial + "'");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out.good()) {
      std::remove(partial.c_str());
      throw IoError("failed writing '" + partial + "' (disk full?); '" + path + "' is unchanged");
    }
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    throw IoError("cannot rename '" + partial + "' to '" + path + "'");
  }
}

/// Reads a state file into `state` (see deserialize_state). Throws IoError, FormatError, InputError.
inline StateMetadata load_state(const Model& model, State& state, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GLRNN_CHECK(in.good(), IoError, "cannot open '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return deserialize_state(model, state, bytes.str(), path);
}

}  // namespace glrnn
