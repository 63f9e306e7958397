#pragma once
// Row groups: the layout the integer kernels read (docs/kernels.md §3). A matrix of an integer
// format is stored as groups of kRowGroup consecutive rows; rows past the last whole group follow
// row by row, as units. Within a group, block b of all 16 rows is one *tile*, the tiles in block
// order, each as many bytes as the 16 units it replaces:
//
//   16 f16 scales, row by row;
//   Int8 layout:    8 steps of 64 bytes; step g holds weights 4g..4g+3 of row r at bytes 4r..4r+3;
//   Nibbles layout: 4 chunks of 64 bytes; byte 4r + i of chunk j holds weight 8j + i of row r in
//                   its low nibble and weight 8j + 4 + i in its high nibble (indices into the
//                   format's levels), so one chunk unpacks to steps 2j and 2j + 1;
//   NibblesFifthBit: the Nibbles chunks of the 4 low bits, then per chunk two 64-bit words of
//                   fifth bits: bit 4r + i of word k is the fifth bit of weight 8j + 4k + i.
//
// So one vector load gives the same 4 weights of 16 rows (AVX-512) or of 8 (AVX2, NEON: the
// first or second half of a step), the dot instructions sum each row's 4 products in its own
// lane, and a block's sums for all rows need no horizontal sum; the scales of a block load as
// one vector. A format of another layout is never grouped.

#include <cstddef>  // std::size_t, std::byte
#include <cstdint>  // std::int64_t, std::uint8_t, std::uint64_t
#include <cstring>  // std::memcpy

#include "glrnn/core/threading.hpp"
#include "glrnn/formats/format.hpp"

namespace glrnn {

/// Rows per group: one AVX-512 vector of 4-byte steps.
constexpr std::int64_t kRowGroup = 16;
/// Bytes of a tile's scales, before its weights.
constexpr std::size_t kRowGroupScaleBytes = kRowGroup * 2;
/// Bytes of a step: 4 weights of every row of a group.
constexpr std::size_t kStepBytes = 4 * kRowGroup;

/// What a step decodes to in a vector (each format's codec, formats/<name>-inl.hpp): the weights,
/// the weights + 128 (VNNI's unsigned operand), or for q5 its 5-bit indices, the weights + 16,
/// which every path multiplies as small unsigned bytes without a table.
enum class StepValues { Weights, Plus128, Indices };

/// How a weight matrix's rows are stored.
enum class RowOrder {
  Rows,    // row after row, each a run of units
  Groups,  // groups of kRowGroup rows, the rest row after row (this file)
};

/// Whether matrices of a format with this layout can be stored in row groups.
constexpr bool groups_rows(UnitLayout layout) {
  return layout == UnitLayout::Int8 || layout == UnitLayout::Nibbles || layout == UnitLayout::NibblesFifthBit;
}

namespace detail {

/// The stored integer of element e of a unit: the int8 weight, or the index into the levels.
template <class Format>
int element_code(const typename Format::Unit& u, int e) {
  if constexpr (Format::kLayout == UnitLayout::Int8) {
    return u.q[e];
  } else {
    const int half = kQuantBlock / 2;
    int code = e < half ? (u.q[e] & 0x0f) : (u.q[e - half] >> 4);
    if constexpr (Format::kLayout == UnitLayout::NibblesFifthBit) code |= ((u.fifth_bits[e / 8] >> (e % 8)) & 1) << 4;
    return code;
  }
}

template <class Format>
void set_element_code(typename Format::Unit& u, int e, int code) {
  if constexpr (Format::kLayout == UnitLayout::Int8) {
    u.q[e] = static_cast<std::int8_t>(code);
  } else {
    const int half = kQuantBlock / 2;
    if (e < half) u.q[e] = static_cast<std::uint8_t>((u.q[e] & 0xf0) | (code & 0x0f));
    else u.q[e - half] = static_cast<std::uint8_t>((u.q[e - half] & 0x0f) | ((code & 0x0f) << 4));
    if constexpr (Format::kLayout == UnitLayout::NibblesFifthBit)
      u.fifth_bits[e / 8] = static_cast<std::uint8_t>((u.fifth_bits[e / 8] & ~(1 << (e % 8))) | (((code >> 4) & 1) << (e % 8)));
  }
}

/// Where element e of row r lives in a tile: its byte, and the shift of its 4 low bits there (0 or
/// 4; 0 for Int8), and for NibblesFifthBit the byte and bit of its fifth bit.
struct TilePlace {
  std::size_t byte;
  int shift;
  std::size_t fifth_byte;
  int fifth_bit;
};
template <class Format>
TilePlace tile_place(int r, int e) {
  if constexpr (Format::kLayout == UnitLayout::Int8) {
    return {kRowGroupScaleBytes + static_cast<std::size_t>((e / 4) * 64 + 4 * r + e % 4), 0, 0, 0};
  } else {
    const int chunk = e / 8, k = (e % 8) / 4, lane = 4 * r + e % 4;
    const std::size_t fifth = kRowGroupScaleBytes + 4 * 64 + static_cast<std::size_t>(chunk * 16 + k * 8 + lane / 8);
    return {kRowGroupScaleBytes + static_cast<std::size_t>(chunk * 64 + lane), 4 * k, fifth, lane % 8};
  }
}

}  // namespace detail

/// Block b of the 16 rows at `rows` (row r at rows + r·blocks units) -> one tile.
template <class Format>
void write_tile(const typename Format::Unit* rows, std::int64_t blocks, std::int64_t b, std::uint8_t* tile) {
  std::memset(tile, 0, kRowGroup * sizeof(typename Format::Unit));
  for (int r = 0; r < kRowGroup; ++r) {
    const typename Format::Unit& u = rows[r * blocks + b];
    std::memcpy(tile + 2 * r, &u.scale, 2);
    for (int e = 0; e < kQuantBlock; ++e) {
      const int code = detail::element_code<Format>(u, e);
      const detail::TilePlace at = detail::tile_place<Format>(r, e);
      if constexpr (Format::kLayout == UnitLayout::Int8) {
        tile[at.byte] = static_cast<std::uint8_t>(code);
      } else {
        tile[at.byte] = static_cast<std::uint8_t>(tile[at.byte] | ((code & 0x0f) << at.shift));
        if constexpr (Format::kLayout == UnitLayout::NibblesFifthBit)
          tile[at.fifth_byte] = static_cast<std::uint8_t>(tile[at.fifth_byte] | (((code >> 4) & 1) << at.fifth_bit));
      }
    }
  }
}

/// Row r's unit of a tile.
template <class Format>
typename Format::Unit read_tile(const std::uint8_t* tile, int r) {
  typename Format::Unit u{};
  std::memcpy(&u.scale, tile + 2 * r, 2);
  for (int e = 0; e < kQuantBlock; ++e) {
    const detail::TilePlace at = detail::tile_place<Format>(r, e);
    int code = (tile[at.byte] >> at.shift) & (Format::kLayout == UnitLayout::Int8 ? 0xff : 0x0f);
    if constexpr (Format::kLayout == UnitLayout::Int8) code = static_cast<std::int8_t>(code);
    if constexpr (Format::kLayout == UnitLayout::NibblesFifthBit) code |= ((tile[at.fifth_byte] >> at.fifth_bit) & 1) << 4;
    detail::set_element_code<Format>(u, e, code);
  }
  return u;
}

/// A [rows, blocks] matrix of units, row after row -> row groups at `out` (as many bytes).
template <class Format>
void group_rows(const typename Format::Unit* in, std::int64_t rows, std::int64_t blocks, std::byte* out) {
  using Unit = typename Format::Unit;
  const std::int64_t grouped = rows / kRowGroup * kRowGroup;
  auto* tiles = reinterpret_cast<std::uint8_t*>(out);
  // A load regroups whole models (a file from before row groups, a checkpoint quantized at load).
  parallel_for(0, grouped / kRowGroup, kRowGroup * blocks * kQuantBlock * 8, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t r = lo * kRowGroup; r < hi * kRowGroup; r += kRowGroup)
      for (std::int64_t b = 0; b < blocks; ++b)
        write_tile<Format>(in + r * blocks, blocks, b, tiles + (r * blocks + b * kRowGroup) * static_cast<std::int64_t>(sizeof(Unit)));
  });
  std::memcpy(out + grouped * blocks * static_cast<std::int64_t>(sizeof(Unit)), in + grouped * blocks,
              static_cast<std::size_t>((rows - grouped) * blocks) * sizeof(Unit));
}

/// Unit b of row r of a matrix whose rows [0, grouped_rows) are in row groups (`blocks` units per row).
template <class Format>
typename Format::Unit grouped_unit(const std::byte* data, std::int64_t grouped_rows, std::int64_t blocks, std::int64_t r,
                                   std::int64_t b) {
  using Unit = typename Format::Unit;
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
  const auto unit_bytes = static_cast<std::int64_t>(sizeof(Unit));
  if (r >= grouped_rows) {
    Unit u;
    std::memcpy(&u, bytes + (r * blocks + b) * unit_bytes, sizeof u);
    return u;
  }
  const std::int64_t group = r / kRowGroup * kRowGroup;
  return read_tile<Format>(bytes + (group * blocks + b * kRowGroup) * unit_bytes, static_cast<int>(r - group));
}

/// Row r of a matrix in row groups as float32, a block at a time (allocates nothing).
template <class Format>
void dequantize_grouped_row(const std::byte* data, std::int64_t rows, std::int64_t blocks, std::int64_t r, float* out) {
  for (std::int64_t b = 0; b < blocks; ++b) {
    const typename Format::Unit unit = grouped_unit<Format>(data, rows / kRowGroup * kRowGroup, blocks, r, b);
    Format::dequantize(&unit, kQuantBlock, out + b * kQuantBlock);
  }
}

}  // namespace glrnn
