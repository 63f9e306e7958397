#pragma once
// Dot products of one stored weight row with float32 activations, per storage format, with the
// instruction set chosen at compile time: AVX-512 (with VNNI for the integer formats), AVX2, or
// portable C++. Decode is bound by reading the weights, so each kernel loads a row once, in wide
// contiguous chunks, and keeps several independent accumulators in flight.
//
// The block formats take activations quantized the same way (int8 blocks of 32, one float scale
// each, see QuantizedActivations): an int8 x int8 product summed in int32 within a block is exact,
// and one float multiply per block applies both scales.

#include <algorithm>  // std::max
#include <cmath>      // std::fabs, std::lround
#include <cstdint>    // std::int8_t, std::int32_t, std::int64_t

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "glrnn/core/dtype.hpp"
#include "glrnn/core/quant.hpp"

namespace glrnn::kernels {

/// Activations as int8 blocks of 32 with a float scale per block, for the block formats' integer
/// dot products.
struct QuantizedActivations {
  std::int8_t* q = nullptr;  // [n]
  float* scale = nullptr;    // [n / 32]

  /// Floats of arena space for n activations (n a multiple of 32), a multiple of 64 bytes so that
  /// consecutive rows of activations stay aligned for the 512-bit loads.
  static std::int64_t floats_for(std::int64_t n) { return (n / 4 + n / kQuantBlock + 15) / 16 * 16; }
  /// Lays both arrays out in `space` (floats_for(n) floats, 64-byte aligned).
  static QuantizedActivations in(float* space, std::int64_t n) {
    return {reinterpret_cast<std::int8_t*>(space), space + n / 4};
  }
};

/// x[n] (n a multiple of 32) -> symmetric int8 blocks, scale = max|x| / 127 per block.
inline void quantize_activations(const float* x, std::int64_t n, QuantizedActivations& out) {
  for (std::int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f, inv = d > 0.0f ? 1.0f / d : 0.0f;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) out.q[b * kQuantBlock + i] = static_cast<std::int8_t>(std::lround(xb[i] * inv));
    out.scale[b] = d;
  }
}

namespace detail {

/// A block's f16 scale as float: one instruction with F16C, else the exact portable conversion.
inline float scale_of(f16 s) {
#if defined(__F16C__)
  return _cvtsh_ss(s.bits);
#else
  return to_float(s);
#endif
}

#if defined(__AVX2__)
inline float horizontal_sum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

/// Sum over 4-byte groups of unsigned a[i] * signed b[i], as int32 lanes.
inline __m256i dot_u8_s8(__m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b);
#else
  // Pairs of products fit in int16 here: a = |w| <= 127, |b| <= 127.
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
#endif
}
#endif

/// Widens 8 bf16 to floats.
#if defined(__AVX2__)
inline __m256 load_bf16x8(const bf16* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}
#endif

}  // namespace detail

/// Σ w[i] x[i] for a float or bf16 row. (Reading several rows side by side, to have more memory
/// streams per core, measured 2x slower on AVX-512 machines: one row at a time it is.)
template <class T>
inline float dot(const T* w, const float* x, std::int64_t n) {
  std::int64_t i = 0;
  float sum = 0.0f;
#if defined(__AVX512F__)
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const auto load = [](const T* p) {
    if constexpr (std::is_same_v<T, float>) {
      return _mm512_loadu_ps(p);
    } else {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
    }
  };
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 4; ++k) acc[k] = _mm512_fmadd_ps(load(w + i + 16 * k), _mm512_loadu_ps(x + i + 16 * k), acc[k]);
  for (; i + 16 <= n; i += 16) acc[0] = _mm512_fmadd_ps(load(w + i), _mm512_loadu_ps(x + i), acc[0]);
  sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const auto load = [](const T* p) {
    if constexpr (std::is_same_v<T, float>) return _mm256_loadu_ps(p);
    else return detail::load_bf16x8(p);
  };
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load(w + i + 8 * k), _mm256_loadu_ps(x + i + 8 * k), acc[k]);
  sum = detail::horizontal_sum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
#else
  // Independent accumulators let the compiler vectorise without -ffast-math.
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += to_float(w[i + j]) * x[i + j];
  for (float a : acc) sum += a;
#endif
  for (; i < n; ++i) sum += to_float(w[i]) * x[i];
  return sum;
}

namespace detail {
/// Σ w[i] x[i] over a row of blocks, with unpack(block) giving a block's 32 int8 weights as a
/// vector (AVX2) or into an array (portable): the formats differ only there.
template <class Block, class Unpack>
inline float block_dot(const Block* w, const QuantizedActivations& x, std::int64_t blocks, Unpack&& unpack) {
#if defined(__AVX2__)
  const auto block = [&](std::int64_t k, __m256 acc) {
    const __m256i wq = unpack(w[k]);
    const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(x.q + k * kQuantBlock));
    // |w| * sign(w) x: unsigned by signed, which the int8 dot instructions take.
    const __m256i products = dot_u8_s8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), _mm256_set1_ps(scale_of(w[k].scale) * x.scale[k]), acc);
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();  // two chains: blocks overlap in flight
  std::int64_t k = 0;
  for (; k + 2 <= blocks; k += 2) {
    acc0 = block(k, acc0);
    acc1 = block(k + 1, acc1);
  }
  if (k < blocks) acc0 = block(k, acc0);
  return horizontal_sum(_mm256_add_ps(acc0, acc1));
#else
  float sum = 0.0f;
  std::int8_t q[kQuantBlock];
  for (std::int64_t b = 0; b < blocks; ++b) {
    unpack(w[b], q);
    std::int32_t s = 0;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) s += q[i] * x.q[b * kQuantBlock + i];
    sum += scale_of(w[b].scale) * x.scale[b] * static_cast<float>(s);
  }
  return sum;
#endif
}
}  // namespace detail

#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
namespace detail {
/// AVX-512 form of block_dot: two blocks per 512-bit vector; unpack2(k) gives blocks k and k + 1.
template <class Block, class Unpack2, class Unpack>
inline float block_dot_512(const Block* w, const QuantizedActivations& x, std::int64_t blocks, Unpack2&& unpack2,
                           Unpack&& unpack) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const auto pair = [&](std::int64_t k, __m512 acc) {
    const __m512i wq = unpack2(k);
    const __m512i xq = _mm512_load_si512(x.q + k * kQuantBlock);  // blocks k, k + 1 are adjacent in x
    // |w| * sign(w) x, as the unsigned-by-signed dot instruction takes it.
    const __m512i signed_x = _mm512_mask_sub_epi8(xq, _mm512_movepi8_mask(wq), _mm512_setzero_si512(), xq);
    const __m512i products = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wq), signed_x);
    const __m512 scales = _mm512_insertf32x8(_mm512_set1_ps(scale_of(w[k].scale) * x.scale[k]),
                                             _mm256_set1_ps(scale_of(w[k + 1].scale) * x.scale[k + 1]), 1);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(products), scales, acc);
  };
  std::int64_t k = 0;
  for (; k + 4 <= blocks; k += 4) {
    acc0 = pair(k, acc0);
    acc1 = pair(k + 2, acc1);
  }
  for (; k + 2 <= blocks; k += 2) acc0 = pair(k, acc0);
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  if (k < blocks) sum += block_dot(w + k, {x.q + k * kQuantBlock, x.scale + k}, 1, unpack);
  return sum;
}
}  // namespace detail
#endif

/// Σ w[i] x[i] for a q8_0 row of `blocks` blocks against quantized activations.
inline float dot(const q8_0* w, const QuantizedActivations& x, std::int64_t blocks) {
#if defined(__AVX2__)
  const auto unpack = [](const q8_0& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q)); };
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
  return detail::block_dot_512(
      w, x, blocks, [&](std::int64_t k) { return _mm512_inserti64x4(_mm512_castsi256_si512(unpack(w[k])), unpack(w[k + 1]), 1); },
      unpack);
#else
  return detail::block_dot(w, x, blocks, unpack);
#endif
#else
  return detail::block_dot(w, x, blocks, [](const q8_0& b, std::int8_t* q) {
    for (std::int64_t i = 0; i < kQuantBlock; ++i) q[i] = b.q[i];
  });
#endif
}

/// Σ w[i] x[i] for a q4_0 row: nibbles are indices into kQ4Levels.
inline float dot(const q4_0* w, const QuantizedActivations& x, std::int64_t blocks) {
#if defined(__AVX2__)
  const __m256i levels = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kQ4Levels)));
  const auto indices = [](const q4_0& b) {  // elements 0..31 in order, before masking to 4 bits
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.q));
    return _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  };
  const auto unpack = [&](const q4_0& b) {
    return _mm256_shuffle_epi8(levels, _mm256_and_si256(indices(b), _mm256_set1_epi8(0x0f)));
  };
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
  const __m512i levels512 = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kQ4Levels)));
  return detail::block_dot_512(
      w, x, blocks,
      [&](std::int64_t k) {
        const __m512i index = _mm512_inserti64x4(_mm512_castsi256_si512(indices(w[k])), indices(w[k + 1]), 1);
        return _mm512_shuffle_epi8(levels512, _mm512_and_si512(index, _mm512_set1_epi8(0x0f)));
      },
      unpack);
#else
  return detail::block_dot(w, x, blocks, unpack);
#endif
#else
  return detail::block_dot(w, x, blocks, [](const q4_0& b, std::int8_t* q) {
    for (std::int64_t i = 0; i < kQuantBlock / 2; ++i) {
      q[i] = kQ4Levels[b.q[i] & 0x0f];
      q[i + kQuantBlock / 2] = kQ4Levels[b.q[i] >> 4];
    }
  });
#endif
}

}  // namespace glrnn::kernels
