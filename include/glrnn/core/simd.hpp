#pragma once
// Vector primitives for each SIMD kernel path (x86 and AArch64), compiled in every translation unit
// whatever its flags: each path's code sits in a region that sets the instruction set for the
// functions in it (GCC's `#pragma GCC target`, Clang's `#pragma clang attribute`), so no definition
// here depends on -march, and two translation units built with different flags agree
// (docs/kernels.md).
//
// Each path is a namespace with the same names (F: a vector of float lanes, I: an integer vector
// of the same width, and the operations on them); a kernel written once against those names is
// compiled per path by including its "-inl" file inside each region (kernels/*.hpp).

#include <cstddef>  // std::ptrdiff_t
#include <cstdint>  // std::int8_t, std::int16_t, std::int32_t, std::uint8_t
#include <cstring>  // std::memcpy

#include "glrnn/core/cpu.hpp"  // GLRNN_X86_KERNELS, GLRNN_ARM_*: which paths this compiler builds
#include "glrnn/core/dtype.hpp"

#if GLRNN_X86_KERNELS
#include <immintrin.h>
#endif
#if GLRNN_ARM_KERNELS
#include <arm_neon.h>
#endif

#if GLRNN_X86_KERNELS || GLRNN_ARM_KERNELS
// GCC 12 flags its own _mm512_undefined_*() as uninitialized (GCC bug 105593); the regions
// silence that so programs built with -Werror are not broken by these headers.
#if defined(__clang__)
#define GLRNN_BEGIN_TARGET(isa)                                                             \
  _Pragma("clang diagnostic push") _Pragma(GLRNN_CLANG_TARGET_PUSH(isa))
#define GLRNN_CLANG_TARGET_PUSH(isa) GLRNN_STRINGIFY(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define GLRNN_END_TARGET _Pragma("clang attribute pop") _Pragma("clang diagnostic pop")
#else
#define GLRNN_BEGIN_TARGET(isa)                                                                    \
  _Pragma("GCC push_options") _Pragma(GLRNN_STRINGIFY(GCC target(isa))) _Pragma("GCC diagnostic push") \
      _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define GLRNN_END_TARGET _Pragma("GCC diagnostic pop") _Pragma("GCC pop_options")
#endif
#define GLRNN_STRINGIFY(x) #x
// Register tiles are arrays indexed by small constant loops: unrolled whatever -O level the
// including program uses, they stay in registers. The transposes are inlined for the same reason.
#define GLRNN_ALWAYS_INLINE inline __attribute__((always_inline))
#if defined(__clang__)
#define GLRNN_UNROLL _Pragma("unroll")
#else
#define GLRNN_UNROLL _Pragma("GCC unroll 16")
#endif
#endif

#if GLRNN_X86_KERNELS
#define GLRNN_ISA_AVX2 "avx2,fma,f16c"
#define GLRNN_ISA_AVXVNNI "avx2,fma,f16c,avxvnni"
#define GLRNN_ISA_AVX512 "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl"
#define GLRNN_ISA_AVX512VNNI "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"
#define GLRNN_ISA_AVX512BF16 "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512bf16"

// ----------------------------------------------------------------------------------------------
// AVX2 with and without AVX-VNNI (Alder Lake, Sierra Forest, Arrow Lake: CPUs with VNNI but no
// AVX-512): the same primitives but the int8 dot products, so one text serves both.
GLRNN_BEGIN_TARGET(GLRNN_ISA_AVX2)
namespace glrnn::simd::avx2 {
#define GLRNN_SIMD_VNNI 0
#include "glrnn/core/simd_avx2-inl.hpp"
#undef GLRNN_SIMD_VNNI
}  // namespace glrnn::simd::avx2
GLRNN_END_TARGET

GLRNN_BEGIN_TARGET(GLRNN_ISA_AVXVNNI)
namespace glrnn::simd::avxvnni {
#define GLRNN_SIMD_VNNI 1
#include "glrnn/core/simd_avx2-inl.hpp"
#undef GLRNN_SIMD_VNNI
}  // namespace glrnn::simd::avxvnni
GLRNN_END_TARGET

// ----------------------------------------------------------------------------------------------
// AVX-512 with and without VNNI, and with BF16: the same primitives but dot_u8s8 and dot_bf16,
// so one text serves all three.
GLRNN_BEGIN_TARGET(GLRNN_ISA_AVX512)
namespace glrnn::simd::avx512 {
#define GLRNN_SIMD_VNNI 0
#define GLRNN_SIMD_BF16 0
#include "glrnn/core/simd_avx512-inl.hpp"
#undef GLRNN_SIMD_BF16
#undef GLRNN_SIMD_VNNI
}  // namespace glrnn::simd::avx512
GLRNN_END_TARGET

GLRNN_BEGIN_TARGET(GLRNN_ISA_AVX512VNNI)
namespace glrnn::simd::avx512vnni {
#define GLRNN_SIMD_VNNI 1
#define GLRNN_SIMD_BF16 0
#include "glrnn/core/simd_avx512-inl.hpp"
#undef GLRNN_SIMD_BF16
#undef GLRNN_SIMD_VNNI
}  // namespace glrnn::simd::avx512vnni
GLRNN_END_TARGET

GLRNN_BEGIN_TARGET(GLRNN_ISA_AVX512BF16)
namespace glrnn::simd::avx512bf16 {
#define GLRNN_SIMD_VNNI 1
#define GLRNN_SIMD_BF16 1
#include "glrnn/core/simd_avx512-inl.hpp"
#undef GLRNN_SIMD_BF16
#undef GLRNN_SIMD_VNNI
}  // namespace glrnn::simd::avx512bf16
GLRNN_END_TARGET

#endif  // GLRNN_X86_KERNELS

#if GLRNN_ARM_KERNELS
// ----------------------------------------------------------------------------------------------
// AArch64: NEON (Advanced SIMD, in every AArch64 CPU), NEON with the dot-product extension
// (Armv8.2+: Cortex-A55/A76 and later, Neoverse, Apple M1 and later), and that with the int8
// matrix multiplies (i8mm): the same primitives but the int8 dot products, so one text serves all.
namespace glrnn::simd::neon {
#define GLRNN_SIMD_DOTPROD 0
#include "glrnn/core/simd_neon-inl.hpp"
#undef GLRNN_SIMD_DOTPROD
}  // namespace glrnn::simd::neon

#if GLRNN_ARM_DOTPROD_KERNELS
// GCC's arm_neon.h declares vdotq_s32 for Armv8.2 with the extension (every CPU with it is
// Armv8.2+); clang takes the feature's name.
#if defined(__clang__)
#define GLRNN_ISA_DOTPROD "dotprod"
#define GLRNN_ISA_I8MM "dotprod,i8mm"
#else
#define GLRNN_ISA_DOTPROD "arch=armv8.2-a+dotprod"
#define GLRNN_ISA_I8MM "arch=armv8.2-a+dotprod+i8mm"
#endif
GLRNN_BEGIN_TARGET(GLRNN_ISA_DOTPROD)
namespace glrnn::simd::dotprod {
#define GLRNN_SIMD_DOTPROD 1
#include "glrnn/core/simd_neon-inl.hpp"
#undef GLRNN_SIMD_DOTPROD
}  // namespace glrnn::simd::dotprod
GLRNN_END_TARGET

// The same primitives again where the int8 matrix multiplies may be used (kernels/gemm_i8mm-inl.hpp).
GLRNN_BEGIN_TARGET(GLRNN_ISA_I8MM)
namespace glrnn::simd::i8mm {
#define GLRNN_SIMD_DOTPROD 1
#include "glrnn/core/simd_neon-inl.hpp"
#undef GLRNN_SIMD_DOTPROD
}  // namespace glrnn::simd::i8mm
GLRNN_END_TARGET
#endif  // GLRNN_ARM_DOTPROD_KERNELS
#endif  // GLRNN_ARM_KERNELS
