// Compiles one text once for each SIMD kernel path of this architecture that the compiler builds
// (the paths: GLRNN_KERNEL_PATHS in core/cpu.hpp; docs/kernels.md §1). The includer defines
//   GLRNN_EACH_PATH_SCOPE  the namespace under glrnn the paths' namespaces go in (simd, kernels, ...)
//   GLRNN_EACH_PATH_TEXT   the file to compile per path
//   GLRNN_EACH_PATH_AFTER  optionally, a file included after each path's region, outside any
//                          namespace (to specialise a template on the path, say)
// and includes this file, which includes GLRNN_EACH_PATH_TEXT inside each path's target region,
// in namespace glrnn::<scope>::<path>, after `using namespace glrnn::simd::<path>` (the path's
// primitives), and undefines the three at its end. While the text and the after-file are
// compiled these macros describe the path:
//   GLRNN_PATH              its KernelPath enumerator
//   GLRNN_PATH_NAMESPACE    its namespace's name (its name in GLRNN_KERNELS)
//   GLRNN_SIMD_PRIMITIVES   its primitives' file (core/simd_*-inl.hpp)
//   GLRNN_SIMD_VNNI, GLRNN_SIMD_BF16, GLRNN_SIMD_AMX, GLRNN_SIMD_DOTPROD, GLRNN_SIMD_I8MM
//                           1 where it has x86's int8 (VNNI) or bf16 dot products or AMX's
//                           tiles, Arm's int8 dot products or int8 matrix multiplies, else 0
// A new path is an entry here and its line in GLRNN_KERNEL_PATHS. No include guard: every use
// includes it again.

#if GLRNN_X86_KERNELS
#define GLRNN_PATH Avx2
#define GLRNN_PATH_NAMESPACE avx2
#define GLRNN_PATH_ISA GLRNN_ISA_AVX2
#define GLRNN_SIMD_PRIMITIVES "glrnn/core/simd_avx2-inl.hpp"
#define GLRNN_SIMD_VNNI 0
#define GLRNN_SIMD_BF16 0
#include "glrnn/core/simd_path_region-inl.hpp"

#define GLRNN_PATH AvxVnni
#define GLRNN_PATH_NAMESPACE avxvnni
#define GLRNN_PATH_ISA GLRNN_ISA_AVXVNNI
#define GLRNN_SIMD_PRIMITIVES "glrnn/core/simd_avx2-inl.hpp"
#define GLRNN_SIMD_VNNI 1
#define GLRNN_SIMD_BF16 0
#include "glrnn/core/simd_path_region-inl.hpp"

#define GLRNN_PATH Avx512
#define GLRNN_PATH_NAMESPACE avx512
#define GLRNN_PATH_ISA GLRNN_ISA_AVX512
#define GLRNN_SIMD_PRIMITIVES "glrnn/core/simd_avx512-inl.hpp"
#define GLRNN_SIMD_VNNI 0
#define GLRNN_SIMD_BF16 0
#include "glrnn/core/simd_path_region-inl.hpp"

#define GLRNN_PATH Avx512Vnni
#define GLRNN_PATH_NAMESPACE avx512vnni
#define GLRNN_PATH_ISA GLRNN_ISA_AVX512VNNI
#define GLRNN_SIMD_PRIMITIVES "glrnn/core/simd_avx512-inl.hpp"
#define GLRNN_SIMD_VNNI 1
#define GLRNN_SIMD_BF16 0
#include "glrnn/core/simd_path_region-inl.hpp"

#define GLRNN_PATH Avx512Bf16
#define GLRNN_PATH_NAMESPACE avx512bf16
#define GLRNN_PATH_ISA GLRNN_ISA_AVX512BF16
#define GLRNN_SIMD_PRIMITIVES "glrnn/core/simd_avx512-inl.hpp"
#define GLRNN_SIMD_VNNI 1
#define GLRNN_SIMD_BF16 1
#include "glrnn/core/simd_path_region-inl.hpp"

#define GLRNN_PATH Amx
#define GLRNN_PATH_NAMESPACE amx
#define GLRNN_PATH_ISA GLRNN_ISA_AMX
#define GLRNN_SIMD_PRIMITIVES "glrnn/core/simd_avx512-inl.hpp"
#define GLRNN_SIMD_VNNI 1
#define GLRNN_SIMD_BF16 1
#define GLRNN_SIMD_AMX 1
#include "glrnn/core/simd_path_region-inl.hpp"
#endif  // GLRNN_X86_KERNELS

#if GLRNN_ARM_KERNELS
#define GLRNN_PATH Neon  // AArch64's baseline: no target region
#define GLRNN_PATH_NAMESPACE neon
#define GLRNN_SIMD_PRIMITIVES "glrnn/core/simd_neon-inl.hpp"
#include "glrnn/core/simd_path_region-inl.hpp"

#if GLRNN_ARM_DOTPROD_KERNELS
#define GLRNN_PATH DotProd
#define GLRNN_PATH_NAMESPACE dotprod
#define GLRNN_PATH_ISA GLRNN_ISA_DOTPROD
#define GLRNN_SIMD_PRIMITIVES "glrnn/core/simd_neon-inl.hpp"
#define GLRNN_SIMD_DOTPROD 1
#include "glrnn/core/simd_path_region-inl.hpp"

#define GLRNN_PATH I8mm
#define GLRNN_PATH_NAMESPACE i8mm
#define GLRNN_PATH_ISA GLRNN_ISA_I8MM
#define GLRNN_SIMD_PRIMITIVES "glrnn/core/simd_neon-inl.hpp"
#define GLRNN_SIMD_DOTPROD 1
#define GLRNN_SIMD_I8MM 1
#include "glrnn/core/simd_path_region-inl.hpp"
#endif  // GLRNN_ARM_DOTPROD_KERNELS
#endif  // GLRNN_ARM_KERNELS

#undef GLRNN_EACH_PATH_SCOPE
#undef GLRNN_EACH_PATH_TEXT
#undef GLRNN_EACH_PATH_AFTER
