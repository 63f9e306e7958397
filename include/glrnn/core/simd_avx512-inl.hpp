// AVX-512 primitives (see core/simd.hpp), compiled for the avx512 path, the avx512vnni path with
// GLRNN_SIMD_VNNI 1, and the avx512bf16 and amx paths with GLRNN_SIMD_BF16 1 as well, by
// core/each_simd_path.hpp. No include guard and no includes: the enclosing header provides both.

constexpr int kLanes = 16;
using F = __m512;
using I = __m512i;

inline F zero() { return _mm512_setzero_ps(); }
inline F set1(float v) { return _mm512_set1_ps(v); }
inline F load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, F v) { _mm512_storeu_ps(p, v); }
inline F add(F a, F b) { return _mm512_add_ps(a, b); }
inline F sub(F a, F b) { return _mm512_sub_ps(a, b); }
inline F mul(F a, F b) { return _mm512_mul_ps(a, b); }
inline F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
inline F max(F a, F b) { return _mm512_max_ps(a, b); }
inline F abs(F a) { return _mm512_abs_ps(a); }
inline F min(F a, F b) { return _mm512_min_ps(a, b); }
inline F div(F a, F b) { return _mm512_div_ps(a, b); }
/// a < b ? yes : no, lane by lane (false where either is NaN).
inline F select_less(F a, F b, F yes, F no) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), no, yes); }
inline float hsum(F v) { return _mm512_reduce_add_ps(v); }
inline float hmax(F v) { return _mm512_reduce_max_ps(v); }
inline F load(const bf16* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}
inline float half_to_float(f16 h) { return _cvtsh_ss(h.bits); }
inline F load(const f16* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline I round_to_i32(F v) { return _mm512_cvtps_epi32(v); }
inline F to_floats(I v) { return _mm512_cvtepi32_ps(v); }
inline I bits(F v) { return _mm512_castps_si512(v); }
inline F from_bits(I v) { return _mm512_castsi512_ps(v); }
template <int n>
inline I shift_left_i32(I v) { return _mm512_slli_epi32(v, n); }
template <int n>
inline I shift_right_i32(I v) { return _mm512_srai_epi32(v, n); }  // arithmetic

inline I loadu_i(const void* p) { return _mm512_loadu_si512(p); }
inline void storeu_i(void* p, I v) { _mm512_storeu_si512(p, v); }
inline I set1_i32(std::int32_t v) { return _mm512_set1_epi32(v); }
inline I set1_i8(std::int8_t v) { return _mm512_set1_epi8(v); }
inline I broadcast_i32(const void* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm512_set1_epi32(v);
}
inline I zero_i() { return _mm512_setzero_si512(); }
inline I add_i32(I a, I b) { return _mm512_add_epi32(a, b); }
inline I sub_i32(I a, I b) { return _mm512_sub_epi32(a, b); }
inline I mul_i32(I a, I b) { return _mm512_mullo_epi32(a, b); }
inline I xor_i(I a, I b) { return _mm512_xor_si512(a, b); }
inline I and_i(I a, I b) { return _mm512_and_si512(a, b); }
inline I or_i(I a, I b) { return _mm512_or_si512(a, b); }
#if GLRNN_SIMD_VNNI
inline I dot_u8s8(I acc, I a, I b) { return _mm512_dpbusd_epi32(acc, a, b); }
inline I dot_i16(I acc, I a, I b) { return _mm512_dpwssd_epi32(acc, a, b); }
#else
inline I dot_u8s8(I acc, I a, I b) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(a, b), _mm512_set1_epi16(1)));
}
inline I dot_i16(I acc, I a, I b) { return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b)); }
#endif
#if GLRNN_SIMD_BF16
/// acc + a·b over pairs of bf16 (each int32 lane of a and b holds two): lane i of acc gains
/// a[2i]·b[2i] + a[2i+1]·b[2i+1], in float32 with round-to-nearest (vdpbf16ps).
inline F dot_bf16(F acc, I a, I b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
#endif
inline I abs_i8(I w) { return _mm512_abs_epi8(w); }
inline I sign_i8(I x, I w) { return _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x); }
/// acc + Σ of 4 adjacent products w[i] * x[i] of signed bytes, per int32 lane, through dot_u8s8
/// as |w| times sign(w)·x (|w|, |x| <= 127 in glrnn's formats and activations).
inline I dot_i8(I acc, I w, I x) { return dot_u8s8(acc, abs_i8(w), sign_i8(x, w)); }
inline I dot_i8_shared_x(I acc, I w, I x) { return dot_u8s8(acc, abs_i8(x), sign_i8(w, x)); }
inline I dot_u7s8(I acc, I w, I x) { return dot_u8s8(acc, w, x); }
inline void widen_i8(I v, I& lo, I& hi) {
  lo = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(v));
  hi = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(v, 1));
}

inline std::int32_t hsum_i32(I v) { return _mm512_reduce_add_epi32(v); }
inline void store_i8(std::int8_t* p, I v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtsepi32_epi8(v)); }
inline void store_i16(std::int16_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtsepi32_epi16(v)); }

constexpr int kBlocksPerVector = 2;
constexpr bool kVnni = GLRNN_SIMD_VNNI;
inline I load_i8_blocks(const std::int8_t* p, std::ptrdiff_t stride) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + stride)), 1);
}
inline I nibble_table(const std::int8_t* levels) {
  return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels)));
}
inline I lookup_nibble_blocks(const std::uint8_t* p, std::ptrdiff_t stride, I table) {
  // [a, a, b, b] in the four 128-bit lanes, the second copy of each shifted down by a nibble.
  const __m512i pairs = _mm512_inserti64x4(
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + stride))), 1);
  const __m512i shifts = _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0, 0x0004000400040004,
                                           0x0004000400040004);
  const __m512i index = _mm512_and_si512(_mm512_srlv_epi16(pairs, shifts), _mm512_set1_epi8(0x0f));
  return _mm512_shuffle_epi8(table, index);
}
inline void split_nibbles(I v, I& low, I& high) {
  const __m512i mask = _mm512_set1_epi8(0x0f);
  low = _mm512_and_si512(v, mask);
  high = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
}
inline I lookup16(I table, I index) { return _mm512_shuffle_epi8(table, index); }
inline I fifth_bit_mask(const std::uint8_t* p, std::ptrdiff_t stride) {
  std::uint32_t first, second;
  std::memcpy(&first, p, sizeof first);
  std::memcpy(&second, p + stride, sizeof second);
  return _mm512_movm_epi8((static_cast<std::uint64_t>(second) << 32) | first);
}
inline void prefetch_l2(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1); }
inline void prefetch_l1(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
inline F per_block(const float* s) { return _mm512_insertf32x8(_mm512_set1_ps(s[0]), _mm256_set1_ps(s[1]), 1); }
inline F gather_unit_scales(const void* first, int stride, int count = kLanes) {
  const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(stride));
  const __mmask16 valid = static_cast<__mmask16>((1u << count) - 1u);
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, offsets, first, 1)));
}
inline F step_lanes(F values, int step) {
  // Lanes 0-7 take value 2·step, lanes 8-15 value 2·step + 1.
  const __m512i index = _mm512_add_epi32(_mm512_set1_epi32(2 * step),
                                         _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  return _mm512_permutexvar_ps(index, values);
}

GLRNN_ALWAYS_INLINE void transpose(F r[kLanes]) {
  __m512 t[16], u[16];
  GLRNN_UNROLL
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  GLRNN_UNROLL
  for (int i = 0; i < 4; ++i) {  // u[4i + j]: column 4L + j of rows 4i .. 4i+3, in 128-bit lane L
    u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  GLRNN_UNROLL
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
    t[8 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
  }
  GLRNN_UNROLL
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
  }
}
GLRNN_ALWAYS_INLINE void transpose(I r[kLanes]) {
  F f[kLanes];
  GLRNN_UNROLL
  for (int i = 0; i < kLanes; ++i) f[i] = _mm512_castsi512_ps(r[i]);
  transpose(f);
  GLRNN_UNROLL
  for (int i = 0; i < kLanes; ++i) r[i] = _mm512_castps_si512(f[i]);
}
