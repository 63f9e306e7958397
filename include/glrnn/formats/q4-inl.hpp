// q4's SIMD codec (formats/q4.hpp): 4-bit indices looked up in a 16-byte table of levels, one
// byte shuffle per vector. Compiled once per kernel path by kernels/kernels-inl.hpp, in namespace
// glrnn::kernels::<path> with that path's primitives (core/simd.hpp); see Codec there. No include
// guard.

template <>
struct Codec<Q4Format> {
  static constexpr bool kSimd = true;
  static constexpr StepValues kGroupDot = kVnni ? StepValues::Plus128 : StepValues::Weights;
  static constexpr Plus128 kLevelsPlus128{Q4Format::kLevels};

  template <bool kPlus128>
  static I blocks(const q4_block* w) {
    return lookup_nibble_blocks(w[0].q, sizeof(w[0]), nibble_table(kPlus128 ? kLevelsPlus128.v : Q4Format::kLevels));
  }

  /// Step g's 4-bit indices: a tile's 64-byte chunk j holds steps 2j (low nibbles) and 2j + 1
  /// (high nibbles), so a caller that takes both steps in turn loads and splits it once. q5's
  /// tiles hold their low bits the same way.
  GLRNN_ALWAYS_INLINE static I step_indices(const std::uint8_t* tile, int half, int g) {
    I low, high;
    split_nibbles(loadu_i(tile_steps(tile, half) + g / 2 * kStepBytes), low, high);
    return g % 2 ? high : low;
  }

  template <StepValues kValues>
  GLRNN_ALWAYS_INLINE static I step(const std::uint8_t* tile, int half, int g) {
    static_assert(kValues != StepValues::Indices, "q4's indices are not its weights plus a constant");
    return lookup16(nibble_table(kValues == StepValues::Plus128 ? kLevelsPlus128.v : Q4Format::kLevels),
                    step_indices(tile, half, g));
  }
};
