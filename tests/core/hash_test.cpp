// CRC-32 eight bytes a step against the definition, a byte a step: the standard check value,
// every length and alignment up to past two steps, and a checksum continued over pieces.

#include <cstdint>  // std::uint32_t
#include <string>   // std::string

#include <catch2/catch.hpp>

#include "glrnn/core/hash.hpp"

namespace {
std::uint32_t crc32_bytewise(const unsigned char* p, std::size_t n, std::uint32_t crc = 0) {
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = crc & 1 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  return ~crc;
}
}  // namespace

TEST_CASE("CRC-32: eight bytes a step equals the bytewise definition", "[core]") {
  CHECK(glrnn::crc32("123456789", 9) == 0xCBF43926u);  // the check value of CRC-32/ISO-HDLC (zlib)
  CHECK(glrnn::crc32("", 0) == 0u);
  std::string bytes(300, '\0');
  std::uint32_t x = 12345;
  for (char& c : bytes) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  for (std::size_t offset = 0; offset < 8; ++offset)
    for (std::size_t n = 0; n + offset <= 40; ++n) {
      INFO("offset " << offset << ", " << n << " bytes");
      CHECK(glrnn::crc32(data + offset, n) == crc32_bytewise(data + offset, n));
    }
  CHECK(glrnn::crc32(data, 300) == crc32_bytewise(data, 300));
  CHECK(glrnn::crc32(data + 123, 300 - 123, glrnn::crc32(data, 123)) == glrnn::crc32(data, 300));
}
