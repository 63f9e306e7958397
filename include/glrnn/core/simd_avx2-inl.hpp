// AVX2 primitives (see core/simd.hpp), compiled for the avx2 path and for the avxvnni path with
// GLRNN_SIMD_VNNI 1 (the same 256-bit vectors plus VEX-encoded vpdpbusd / vpdpwssd) by
// core/each_simd_path.hpp. No include guard and no includes: the enclosing header provides both.

constexpr int kLanes = 8;  // floats per vector
using F = __m256;
using I = __m256i;

inline F zero() { return _mm256_setzero_ps(); }
inline F set1(float v) { return _mm256_set1_ps(v); }
inline F load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, F v) { _mm256_storeu_ps(p, v); }
inline F add(F a, F b) { return _mm256_add_ps(a, b); }
inline F sub(F a, F b) { return _mm256_sub_ps(a, b); }
inline F mul(F a, F b) { return _mm256_mul_ps(a, b); }
inline F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
inline F max(F a, F b) { return _mm256_max_ps(a, b); }
inline F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
inline F min(F a, F b) { return _mm256_min_ps(a, b); }
inline F div(F a, F b) { return _mm256_div_ps(a, b); }
/// a < b ? yes : no, lane by lane (false where either is NaN).
inline F select_less(F a, F b, F yes, F no) { return _mm256_blendv_ps(no, yes, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
inline float hsum(F v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}
inline float hmax(F v) {
  const __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_movehdup_ps(t)));
}
/// kLanes bf16 -> float (exact: a shift).
inline F load(const bf16* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}
inline float half_to_float(f16 h) { return _cvtsh_ss(h.bits); }
/// kLanes f16 -> float (F16C).
inline F load(const f16* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
/// Rounds to the nearest integer, ties to even (as std::nearbyint in the default mode).
inline I round_to_i32(F v) { return _mm256_cvtps_epi32(v); }
inline F to_floats(I v) { return _mm256_cvtepi32_ps(v); }
inline I bits(F v) { return _mm256_castps_si256(v); }
inline F from_bits(I v) { return _mm256_castsi256_ps(v); }
template <int n>
inline I shift_left_i32(I v) { return _mm256_slli_epi32(v, n); }
template <int n>
inline I shift_right_i32(I v) { return _mm256_srai_epi32(v, n); }  // arithmetic

inline I loadu_i(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline void storeu_i(void* p, I v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
inline I set1_i32(std::int32_t v) { return _mm256_set1_epi32(v); }
inline I set1_i8(std::int8_t v) { return _mm256_set1_epi8(v); }
inline I broadcast_i32(const void* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}
inline I zero_i() { return _mm256_setzero_si256(); }
inline I add_i32(I a, I b) { return _mm256_add_epi32(a, b); }
inline I sub_i32(I a, I b) { return _mm256_sub_epi32(a, b); }
inline I mul_i32(I a, I b) { return _mm256_mullo_epi32(a, b); }
inline I xor_i(I a, I b) { return _mm256_xor_si256(a, b); }
inline I and_i(I a, I b) { return _mm256_and_si256(a, b); }
inline I or_i(I a, I b) { return _mm256_or_si256(a, b); }
/// dot_u8s8: acc + Σ of 4 adjacent products a[i] * b[i], a unsigned and b signed bytes, per int32
/// lane. Without VNNI the pairs pass through int16: they must not exceed 32767 (|a| <= 127 does it).
/// dot_i16: acc + Σ of 2 adjacent int16 products, per int32 lane (exact).
#if GLRNN_SIMD_VNNI
inline I dot_u8s8(I acc, I a, I b) { return _mm256_dpbusd_avx_epi32(acc, a, b); }
inline I dot_i16(I acc, I a, I b) { return _mm256_dpwssd_avx_epi32(acc, a, b); }
#else
inline I dot_u8s8(I acc, I a, I b) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
}
inline I dot_i16(I acc, I a, I b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
#endif
/// |w| and sign(w) * x for bytes: turns a signed-by-signed product into the unsigned-by-signed one
/// dot_u8s8 takes (w = -128 never occurs in glrnn's formats).
inline I abs_i8(I w) { return _mm256_sign_epi8(w, w); }
inline I sign_i8(I x, I w) { return _mm256_sign_epi8(x, w); }
/// acc + Σ of 4 adjacent products w[i] * x[i] of signed bytes, per int32 lane, through dot_u8s8
/// as |w| times sign(w)·x (|w|, |x| <= 127 in glrnn's formats and activations).
inline I dot_i8(I acc, I w, I x) { return dot_u8s8(acc, abs_i8(w), sign_i8(x, w)); }
/// dot_i8 with the sign moved to the other side, |x| times sign(x)·w: for an x that several
/// products share (a broadcast against the rows of a group), whose |x| is then computed once.
inline I dot_i8_shared_x(I acc, I w, I x) { return dot_u8s8(acc, abs_i8(x), sign_i8(w, x)); }
/// acc + Σ of 4 adjacent products w[i] * x[i], w in [0, 127], per int32 lane: dot_u8s8 as it is.
inline I dot_u7s8(I acc, I w, I x) { return dot_u8s8(acc, w, x); }
/// The int8 lanes of v widened to int16: lo the first half, hi the second.
inline void widen_i8(I v, I& lo, I& hi) {
  lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));
  hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));
}

inline std::int32_t hsum_i32(I v) {
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i t = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(2, 3, 0, 1))));
}
/// Stores the kLanes int32 lanes of v (each within range) as int8 / int16.
inline void store_i8(std::int8_t* p, I v) {
  const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi16(words, words));
}
inline void store_i16(std::int16_t* p, I v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

/// Blocks of 32 weights one vector holds.
constexpr int kBlocksPerVector = 1;
/// VNNI's dot_u8s8 accumulates in one instruction and cannot overflow; without it products of
/// int8 pairs pass through int16, so the matrix kernels multiply int16 pairs instead.
constexpr bool kVnni = GLRNN_SIMD_VNNI;
/// The 32 int8 of kBlocksPerVector blocks, the first at p, the next `stride` bytes on.
inline I load_i8_blocks(const std::int8_t* p, std::ptrdiff_t /*stride*/) { return loadu_i(p); }
/// A 16-entry int8 table in every 128-bit lane, for lookup_nibble_blocks.
inline I nibble_table(const std::int8_t* levels) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels)));
}
/// table[index] for the 32 4-bit indices of kBlocksPerVector blocks of 16 bytes (low nibbles are
/// elements 0-15, high nibbles 16-31), the first at p, the next `stride` bytes on.
inline I lookup_nibble_blocks(const std::uint8_t* p, std::ptrdiff_t /*stride*/, I table) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i index = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
  return _mm256_shuffle_epi8(table, index);
}
/// The low and the high nibble of every byte of v, as bytes.
inline void split_nibbles(I v, I& low, I& high) {
  const __m256i mask = _mm256_set1_epi8(0x0f);
  low = _mm256_and_si256(v, mask);
  high = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
}
/// table[index] for every byte (indices 0-15; a table from nibble_table).
inline I lookup16(I table, I index) { return _mm256_shuffle_epi8(table, index); }
/// 0xff in byte j where bit j of the little-endian 32-bit word at p is set, for
/// kBlocksPerVector blocks `stride` bytes apart (q5's fifth bits).
inline I fifth_bit_mask(const std::uint8_t* p, std::ptrdiff_t /*stride*/) {
  std::uint32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  // Byte j takes byte j / 8 of the word, then keeps bit j % 8.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}
/// Asks for the cache line at p to be brought into L2 (a hint; never faults).
inline void prefetch_l2(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1); }
inline void prefetch_l1(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
/// Per lane, the scale of the block the lane belongs to: s[kBlocksPerVector].
inline F per_block(const float* s) { return _mm256_set1_ps(s[0]); }
/// The f16 at the start of each of `count` (<= kLanes) units `stride` bytes apart (a block's
/// scale), as floats; lanes from `count` on are 0 and nothing past the units is read.
inline F gather_unit_scales(const void* first, int stride, int count = kLanes) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i offsets = _mm256_mullo_epi32(lanes, _mm256_set1_epi32(stride));
  const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes);
  const __m256i gathered =
      _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), static_cast<const int*>(first), offsets, valid, 1);
  const __m256i words = _mm256_and_si256(gathered, _mm256_set1_epi32(0xffff));
  return _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1)));
}
/// Of kLanes per-block values, the ones step `step` needs in its lanes (blocks step·kBlocksPerVector ..).
inline F step_lanes(F values, int step) { return _mm256_permutevar8x32_ps(values, _mm256_set1_epi32(step)); }

/// Transposes kLanes x kLanes 32-bit elements in place: rows[i] lane j <-> rows[j] lane i.
GLRNN_ALWAYS_INLINE void transpose(F r[kLanes]) {
  __m256 t[8], u[8];
  GLRNN_UNROLL
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  GLRNN_UNROLL
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  GLRNN_UNROLL
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}
GLRNN_ALWAYS_INLINE void transpose(I r[kLanes]) {
  F f[kLanes];
  GLRNN_UNROLL
  for (int i = 0; i < kLanes; ++i) f[i] = _mm256_castsi256_ps(r[i]);
  transpose(f);
  GLRNN_UNROLL
  for (int i = 0; i < kLanes; ++i) r[i] = _mm256_castps_si256(f[i]);
}

