// int8's SIMD codec (formats/int8.hpp): the int8 weights as they are stored. Compiled once per
// kernel path by kernels/kernels-inl.hpp, in namespace glrnn::kernels::<path> with that path's
// primitives (core/simd.hpp); see Codec there. No include guard.

template <>
struct Codec<Int8Format> {
  static constexpr bool kSimd = true;
  static constexpr StepValues kGroupDot = kVnni ? StepValues::Plus128 : StepValues::Weights;

  template <bool kPlus128>
  static I blocks(const q8_block* w) {
    const I q = load_i8_blocks(w[0].q, sizeof(w[0]));
    return kPlus128 ? xor_i(q, set1_i8(-128)) : q;
  }

  /// A tile's steps are stored one after the other, as the dot instructions read them.
  template <StepValues kValues>
  GLRNN_ALWAYS_INLINE static I step(const std::uint8_t* tile, int half, int g) {
    static_assert(kValues != StepValues::Indices, "int8 has no indices");
    const I w = loadu_i(tile_steps(tile, half) + g * kStepBytes);
    return kValues == StepValues::Plus128 ? xor_i(w, set1_i8(-128)) : w;
  }
};
