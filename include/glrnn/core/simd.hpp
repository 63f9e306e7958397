#pragma once
// Vector primitives for each SIMD kernel path (x86 and AArch64), compiled in every translation unit
// whatever its flags: each path's code sits in a region that sets the instruction set for the
// functions in it (GCC's `#pragma GCC target`, Clang's `#pragma clang attribute`), so no definition
// here depends on -march, and two translation units built with different flags agree
// (docs/kernels.md).
//
// Each path is a namespace with the same names (F: a vector of float lanes, I: an integer vector
// of the same width, and the operations on them); a kernel written once against those names is
// compiled per path by core/each_simd_path.hpp, which includes its "-inl" file inside each region
// (kernels/kernels.hpp, the benchmarks' probes).

#include <cstddef>  // std::ptrdiff_t
#include <cstdint>  // std::int8_t, std::int16_t, std::int32_t, std::uint8_t
#include <cstring>  // std::memcpy

#include "glrnn/core/cpu.hpp"  // GLRNN_X86_KERNELS, GLRNN_ARM_*: which paths this compiler builds
#include "glrnn/core/dtype.hpp"

// A prefetch changes no memory, so GCC takes a function whose only effect is prefetching for one
// without effects and drops the calls to it that it has not inlined: GCC 12 dropped every panel
// prefetch of the matrix products that way. Such a function starts with this empty statement,
// which the compiler must keep.
#define GLRNN_KEEP_CALLS() __asm__ __volatile__("")

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
// The tile instructions are written as assembly (kernels/gemm_amx-inl.hpp), which needs no flag.
#define GLRNN_ISA_AMX GLRNN_ISA_AVX512BF16
#endif  // GLRNN_X86_KERNELS

// GCC's arm_neon.h declares vdotq_s32 for Armv8.2 with the extension (every CPU with it is
// Armv8.2+); clang takes the feature's name.
#if GLRNN_ARM_DOTPROD_KERNELS
#if defined(__clang__)
#define GLRNN_ISA_DOTPROD "dotprod"
#define GLRNN_ISA_I8MM "dotprod,i8mm"
#else
#define GLRNN_ISA_DOTPROD "arch=armv8.2-a+dotprod"
#define GLRNN_ISA_I8MM "arch=armv8.2-a+dotprod+i8mm"
#endif
#endif

// The primitives of each path. Paths of one family share a file, which differs only where the
// family's feature macros say: AVX2 with and without AVX-VNNI (Alder Lake, Sierra Forest, Arrow
// Lake: VNNI but no AVX-512); AVX-512 with VNNI and with BF16; NEON with the dot products and the
// int8 matrix multiplies (kernels/gemm_i8mm-inl.hpp).
#define GLRNN_EACH_PATH_SCOPE simd
#define GLRNN_EACH_PATH_TEXT GLRNN_SIMD_PRIMITIVES
#include "glrnn/core/each_simd_path.hpp"
