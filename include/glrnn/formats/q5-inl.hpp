// q5's SIMD codec (formats/q5.hpp): q4's nibbles for the low four bits, and a mask of fifth bits
// per vector (one primitive per path, fifth_bit_mask). The row-group kernels multiply the 5-bit
// indices, the weights + 16, as small unsigned bytes, so they need no table. Compiled once per
// kernel path by kernels/kernels-inl.hpp, in namespace glrnn::kernels::<path> with that path's
// primitives (core/simd.hpp); see Codec there. No include guard.

template <>
struct Codec<Q5Format> {
  static constexpr bool kSimd = true;
  static constexpr StepValues kGroupDot = StepValues::Indices;
  static_assert(Q5Format::kLevels[0] == -16 && Q5Format::kLevels[31] == 15, "the codec reads the levels as i - 16");
  /// The low four bits looked up as i - 16, that is 0xf0 | low; a set fifth bit clears the 0xf0.
  /// With 128 added they look up as 0x70 | low, and the same XOR gives 0x80 | low.
  static constexpr std::int8_t kLow[16] = {-16, -15, -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3, -2, -1};
  static constexpr Plus128 kLowPlus128{kLow};

  template <bool kPlus128>
  static I blocks(const q5_block* w) {
    const I low = lookup_nibble_blocks(w[0].q, sizeof(w[0]), nibble_table(kPlus128 ? kLowPlus128.v : kLow));
    return xor_i(low, and_i(fifth_bit_mask(w[0].fifth_bits, sizeof(w[0])), set1_i8(-16)));
  }

  /// A tile holds q4's chunks of low bits, then per chunk two 64-bit words of fifth bits
  /// (formats/row_groups.hpp).
  template <StepValues kValues>
  GLRNN_ALWAYS_INLINE static I step(const std::uint8_t* tile, int half, int g) {
    const I bits = Codec<Q4Format>::step_indices(tile, half, g);
    const std::uint8_t* fifth = tile + kRowGroupScaleBytes + 4 * kStepBytes + half * kLanes / 2 + g / 2 * 16 + g % 2 * 8;
    const I fifth_bits = and_i(fifth_bit_mask(fifth, 4), set1_i8(kValues == StepValues::Indices ? 0x10 : -16));
    if constexpr (kValues == StepValues::Indices) return or_i(bits, fifth_bits);
    return xor_i(lookup16(nibble_table(kValues == StepValues::Plus128 ? kLowPlus128.v : kLow), bits), fifth_bits);
  }
};
