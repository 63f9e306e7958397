// AArch64 primitives (see core/simd.hpp), compiled for the neon path and, with GLRNN_SIMD_DOTPROD 1
// (SDOT, Armv8.2's FEAT_DotProd), for the dotprod and i8mm paths by core/each_simd_path.hpp. No
// include guard and no includes: the enclosing header provides both.
//
// A vector here is a pair of 128-bit registers, 8 floats or 32 bytes, as wide as an AVX2 vector:
// the kernels need one integer vector to hold a whole block of 32 weights, and AArch64's 32 vector
// registers hold the same register tiles as AVX2's 16 of twice the width (docs/kernels.md §7).

constexpr int kLanes = 8;  // floats per vector
struct F {
  float32x4_t lo, hi;
};
struct I {
  int32x4_t lo, hi;
};

inline int8x16_t bytes_lo(I v) { return vreinterpretq_s8_s32(v.lo); }
inline int8x16_t bytes_hi(I v) { return vreinterpretq_s8_s32(v.hi); }
inline I from_bytes(int8x16_t lo, int8x16_t hi) { return {vreinterpretq_s32_s8(lo), vreinterpretq_s32_s8(hi)}; }

inline F zero() { return {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
inline F set1(float v) { return {vdupq_n_f32(v), vdupq_n_f32(v)}; }
inline F load(const float* p) { return {vld1q_f32(p), vld1q_f32(p + 4)}; }
inline void store(float* p, F v) {
  vst1q_f32(p, v.lo);
  vst1q_f32(p + 4, v.hi);
}
inline F add(F a, F b) { return {vaddq_f32(a.lo, b.lo), vaddq_f32(a.hi, b.hi)}; }
inline F sub(F a, F b) { return {vsubq_f32(a.lo, b.lo), vsubq_f32(a.hi, b.hi)}; }
inline F mul(F a, F b) { return {vmulq_f32(a.lo, b.lo), vmulq_f32(a.hi, b.hi)}; }
inline F fma(F a, F b, F c) { return {vfmaq_f32(c.lo, a.lo, b.lo), vfmaq_f32(c.hi, a.hi, b.hi)}; }
inline F max(F a, F b) { return {vmaxq_f32(a.lo, b.lo), vmaxq_f32(a.hi, b.hi)}; }
inline F abs(F a) { return {vabsq_f32(a.lo), vabsq_f32(a.hi)}; }
inline F min(F a, F b) { return {vminq_f32(a.lo, b.lo), vminq_f32(a.hi, b.hi)}; }
inline F div(F a, F b) { return {vdivq_f32(a.lo, b.lo), vdivq_f32(a.hi, b.hi)}; }
/// a < b ? yes : no, lane by lane (false where either is NaN).
inline F select_less(F a, F b, F yes, F no) {
  return {vbslq_f32(vcltq_f32(a.lo, b.lo), yes.lo, no.lo), vbslq_f32(vcltq_f32(a.hi, b.hi), yes.hi, no.hi)};
}
inline float hsum(F v) { return vaddvq_f32(vaddq_f32(v.lo, v.hi)); }
inline float hmax(F v) { return vmaxvq_f32(vmaxq_f32(v.lo, v.hi)); }
/// kLanes bf16 -> float (exact: a shift).
inline F load(const bf16* p) {
  const uint16x8_t raw = vld1q_u16(reinterpret_cast<const std::uint16_t*>(p));
  return {vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(raw), 16)), vreinterpretq_f32_u32(vshll_high_n_u16(raw, 16))};
}
inline float half_to_float(f16 h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h.bits))), 0); }
/// kLanes f16 -> float.
inline F load(const f16* p) {
  const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(reinterpret_cast<const std::uint16_t*>(p)));
  return {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
}
/// Rounds to the nearest integer, ties to even (as std::nearbyint in the default mode).
inline I round_to_i32(F v) { return {vcvtnq_s32_f32(v.lo), vcvtnq_s32_f32(v.hi)}; }
inline F to_floats(I v) { return {vcvtq_f32_s32(v.lo), vcvtq_f32_s32(v.hi)}; }
inline I bits(F v) { return {vreinterpretq_s32_f32(v.lo), vreinterpretq_s32_f32(v.hi)}; }
inline F from_bits(I v) { return {vreinterpretq_f32_s32(v.lo), vreinterpretq_f32_s32(v.hi)}; }
template <int n>
inline I shift_left_i32(I v) { return {vshlq_n_s32(v.lo, n), vshlq_n_s32(v.hi, n)}; }
template <int n>
inline I shift_right_i32(I v) { return {vshrq_n_s32(v.lo, n), vshrq_n_s32(v.hi, n)}; }  // arithmetic

inline I loadu_i(const void* p) {
  const auto* b = static_cast<const std::int8_t*>(p);
  return from_bytes(vld1q_s8(b), vld1q_s8(b + 16));
}
inline void storeu_i(void* p, I v) {
  auto* b = static_cast<std::int8_t*>(p);
  vst1q_s8(b, bytes_lo(v));
  vst1q_s8(b + 16, bytes_hi(v));
}
inline I set1_i32(std::int32_t v) { return {vdupq_n_s32(v), vdupq_n_s32(v)}; }
inline I set1_i8(std::int8_t v) { return from_bytes(vdupq_n_s8(v), vdupq_n_s8(v)); }
inline I broadcast_i32(const void* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return set1_i32(v);
}
inline I zero_i() { return set1_i32(0); }
inline I add_i32(I a, I b) { return {vaddq_s32(a.lo, b.lo), vaddq_s32(a.hi, b.hi)}; }
inline I sub_i32(I a, I b) { return {vsubq_s32(a.lo, b.lo), vsubq_s32(a.hi, b.hi)}; }
inline I mul_i32(I a, I b) { return {vmulq_s32(a.lo, b.lo), vmulq_s32(a.hi, b.hi)}; }
inline I xor_i(I a, I b) { return {veorq_s32(a.lo, b.lo), veorq_s32(a.hi, b.hi)}; }
inline I and_i(I a, I b) { return {vandq_s32(a.lo, b.lo), vandq_s32(a.hi, b.hi)}; }
inline I or_i(I a, I b) { return {vorrq_s32(a.lo, b.lo), vorrq_s32(a.hi, b.hi)}; }

/// acc + Σ of 4 adjacent products w[i] * x[i] of signed bytes, per int32 lane. With the dot-product
/// extension one SDOT per register; without, products widened to int16 (|w|, |x| <= 127, so a pair
/// of them fits) and added pairwise twice.
inline int32x4_t dot_i8_half(int32x4_t acc, int8x16_t w, int8x16_t x) {
#if GLRNN_SIMD_DOTPROD
  return vdotq_s32(acc, w, x);
#else
  const int16x8_t pairs = vpaddq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x)), vmull_high_s8(w, x));
  return vpadalq_s16(acc, pairs);
#endif
}
inline I dot_i8(I acc, I w, I x) {
  return {dot_i8_half(acc.lo, bytes_lo(w), bytes_lo(x)), dot_i8_half(acc.hi, bytes_hi(w), bytes_hi(x))};
}
/// dot_i8 for an x that several products share: the same here (signed products are native).
inline I dot_i8_shared_x(I acc, I w, I x) { return dot_i8(acc, w, x); }
/// acc + Σ of 4 adjacent products w[i] * x[i], w in [0, 127], per int32 lane: signed products serve.
inline I dot_u7s8(I acc, I w, I x) { return dot_i8(acc, w, x); }
/// acc + Σ of 2 adjacent int16 products, per int32 lane (exact).
inline int32x4_t dot_i16_half(int32x4_t acc, int16x8_t a, int16x8_t b) {
  return vaddq_s32(acc, vpaddq_s32(vmull_s16(vget_low_s16(a), vget_low_s16(b)), vmull_high_s16(a, b)));
}
inline I dot_i16(I acc, I a, I b) {
  return {dot_i16_half(acc.lo, vreinterpretq_s16_s32(a.lo), vreinterpretq_s16_s32(b.lo)),
          dot_i16_half(acc.hi, vreinterpretq_s16_s32(a.hi), vreinterpretq_s16_s32(b.hi))};
}
/// The int8 lanes of v widened to int16: lo the first half, hi the second.
inline void widen_i8(I v, I& lo, I& hi) {
  lo = {vreinterpretq_s32_s16(vmovl_s8(vget_low_s8(bytes_lo(v)))), vreinterpretq_s32_s16(vmovl_high_s8(bytes_lo(v)))};
  hi = {vreinterpretq_s32_s16(vmovl_s8(vget_low_s8(bytes_hi(v)))), vreinterpretq_s32_s16(vmovl_high_s8(bytes_hi(v)))};
}

inline std::int32_t hsum_i32(I v) { return vaddvq_s32(vaddq_s32(v.lo, v.hi)); }
/// Stores the kLanes int32 lanes of v (each within range) as int8 / int16.
inline void store_i8(std::int8_t* p, I v) { vst1_s8(p, vqmovn_s16(vcombine_s16(vqmovn_s32(v.lo), vqmovn_s32(v.hi)))); }
inline void store_i16(std::int16_t* p, I v) { vst1q_s16(p, vcombine_s16(vqmovn_s32(v.lo), vqmovn_s32(v.hi))); }

/// Blocks of 32 weights one vector holds.
constexpr int kBlocksPerVector = 1;
/// Whether the kernels multiply unsigned by signed bytes with a correction (x86's VNNI). Here the
/// signed products are native (dot_i8), so the matrix kernels multiply int16 pairs instead.
constexpr bool kVnni = false;
/// The 32 int8 of kBlocksPerVector blocks, the first at p, the next `stride` bytes on.
inline I load_i8_blocks(const std::int8_t* p, std::ptrdiff_t /*stride*/) { return loadu_i(p); }
/// A 16-entry int8 table, for lookup_nibble_blocks.
inline I nibble_table(const std::int8_t* levels) {
  const int8x16_t t = vld1q_s8(levels);
  return from_bytes(t, t);
}
/// table[index] for the 32 4-bit indices of kBlocksPerVector blocks of 16 bytes (low nibbles are
/// elements 0-15, high nibbles 16-31), the first at p, the next `stride` bytes on.
inline I lookup_nibble_blocks(const std::uint8_t* p, std::ptrdiff_t /*stride*/, I table) {
  const uint8x16_t packed = vld1q_u8(p);
  const int8x16_t t = bytes_lo(table);
  return from_bytes(vqtbl1q_s8(t, vandq_u8(packed, vdupq_n_u8(0x0f))), vqtbl1q_s8(t, vshrq_n_u8(packed, 4)));
}
/// The low and the high nibble of every byte of v, as bytes.
inline void split_nibbles(I v, I& low, I& high) {
  const uint8x16_t a = vreinterpretq_u8_s8(bytes_lo(v)), b = vreinterpretq_u8_s8(bytes_hi(v)), mask = vdupq_n_u8(0x0f);
  low = from_bytes(vreinterpretq_s8_u8(vandq_u8(a, mask)), vreinterpretq_s8_u8(vandq_u8(b, mask)));
  high = from_bytes(vreinterpretq_s8_u8(vshrq_n_u8(a, 4)), vreinterpretq_s8_u8(vshrq_n_u8(b, 4)));
}
/// table[index] for every byte (indices 0-15; a table from nibble_table).
inline I lookup16(I table, I index) {
  const int8x16_t t = bytes_lo(table);
  return from_bytes(vqtbl1q_s8(t, vreinterpretq_u8_s8(bytes_lo(index))), vqtbl1q_s8(t, vreinterpretq_u8_s8(bytes_hi(index))));
}
/// 0xff in byte j where bit j of the little-endian 32-bit word at p is set, for
/// kBlocksPerVector blocks `stride` bytes apart (q5's fifth bits).
inline I fifth_bit_mask(const std::uint8_t* p, std::ptrdiff_t /*stride*/) {
  std::uint32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  const uint8x16_t word = vreinterpretq_u8_u32(vdupq_n_u32(bits));
  // Byte j takes byte j / 8 of the word, then keeps bit j % 8.
  static constexpr std::uint8_t kLow[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  static constexpr std::uint8_t kHigh[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  static constexpr std::uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t bit = vld1q_u8(kBit);
  return from_bytes(vreinterpretq_s8_u8(vtstq_u8(vqtbl1q_u8(word, vld1q_u8(kLow)), bit)),
                    vreinterpretq_s8_u8(vtstq_u8(vqtbl1q_u8(word, vld1q_u8(kHigh)), bit)));
}
/// Asks for the cache line at p to be brought into L2 (a hint; never faults).
inline void prefetch_l2(const void* p) { __builtin_prefetch(p, 0, 2); }
inline void prefetch_l1(const void* p) { __builtin_prefetch(p, 0, 3); }
/// Per lane, the scale of the block the lane belongs to: s[kBlocksPerVector].
inline F per_block(const float* s) { return set1(s[0]); }
/// The f16 at the start of each of `count` (<= kLanes) units `stride` bytes apart (a block's
/// scale), as floats; lanes from `count` on are 0 and nothing past the units is read.
inline F gather_unit_scales(const void* first, int stride, int count = kLanes) {
  std::uint16_t h[kLanes] = {};
  for (int i = 0; i < count; ++i) std::memcpy(&h[i], static_cast<const std::uint8_t*>(first) + i * stride, sizeof h[i]);
  return {vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h))), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h + 4)))};
}
/// Of kLanes per-block values, the ones step `step` needs in its lanes (blocks step·kBlocksPerVector ..).
inline F step_lanes(F values, int step) {
  float t[kLanes];
  store(t, values);
  return set1(t[step]);
}

/// Transposes 4 x 4 floats in place.
GLRNN_ALWAYS_INLINE void transpose4(float32x4_t& a, float32x4_t& b, float32x4_t& c, float32x4_t& d) {
  const float32x4_t ab0 = vtrn1q_f32(a, b), ab1 = vtrn2q_f32(a, b), cd0 = vtrn1q_f32(c, d), cd1 = vtrn2q_f32(c, d);
  a = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(ab0), vreinterpretq_f64_f32(cd0)));
  b = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(ab1), vreinterpretq_f64_f32(cd1)));
  c = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(ab0), vreinterpretq_f64_f32(cd0)));
  d = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(ab1), vreinterpretq_f64_f32(cd1)));
}
/// Transposes kLanes x kLanes 32-bit elements in place: rows[i] lane j <-> rows[j] lane i, as four
/// 4 x 4 quadrants, the off-diagonal two swapped.
GLRNN_ALWAYS_INLINE void transpose(F r[kLanes]) {
  transpose4(r[0].lo, r[1].lo, r[2].lo, r[3].lo);
  transpose4(r[4].hi, r[5].hi, r[6].hi, r[7].hi);
  transpose4(r[0].hi, r[1].hi, r[2].hi, r[3].hi);
  transpose4(r[4].lo, r[5].lo, r[6].lo, r[7].lo);
  for (int i = 0; i < 4; ++i) {
    const float32x4_t top_right = r[i].hi;
    r[i].hi = r[4 + i].lo;
    r[4 + i].lo = top_right;
  }
}
GLRNN_ALWAYS_INLINE void transpose(I r[kLanes]) {
  F f[kLanes];
  GLRNN_UNROLL
  for (int i = 0; i < kLanes; ++i) f[i] = {vreinterpretq_f32_s32(r[i].lo), vreinterpretq_f32_s32(r[i].hi)};
  transpose(f);
  GLRNN_UNROLL
  for (int i = 0; i < kLanes; ++i) r[i] = {vreinterpretq_s32_f32(f[i].lo), vreinterpretq_s32_f32(f[i].hi)};
}
