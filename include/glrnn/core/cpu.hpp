#pragma once
// Which instruction set glrnn's kernels run with. Every kernel is compiled for each path of the
// target architecture in every translation unit (see core/simd.hpp), so a program built with no
// -march flag runs the same code as one built with -march=native; the path is chosen once, at
// first use, from the CPU's features (x86: CPUID; AArch64: the kernel's hardware capabilities on
// Linux, sysctl on macOS). The environment variable GLRNN_KERNELS (a path's name) or
// set_kernel_path() forces one, for tests and comparisons (docs/kernels.md).

#include <atomic>       // std::atomic
#include <cstddef>      // std::size_t
#include <cstdlib>      // std::getenv
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view

#include "glrnn/core/error.hpp"

// Which paths this compiler builds (core/simd.hpp). The SIMD paths need GCC or clang. On AArch64
// the dot-product and matrix-multiply paths need intrinsics that a function may use whatever the
// flags of its program: GCC's, and clang's from LLVM 16 (Apple clang 15) on; an older clang
// declares them only when the whole program is built for those features.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GLRNN_X86_KERNELS 1
#else
#define GLRNN_X86_KERNELS 0
#endif
#if defined(__aarch64__) && defined(__ARM_NEON) && (defined(__GNUC__) || defined(__clang__))
#define GLRNN_ARM_KERNELS 1
#if !defined(__clang__) || (defined(__ARM_FEATURE_DOTPROD) && defined(__ARM_FEATURE_MATMUL_INT8)) || \
    (defined(__apple_build_version__) ? __clang_major__ >= 15 : __clang_major__ >= 16)
#define GLRNN_ARM_DOTPROD_KERNELS 1
#else
#define GLRNN_ARM_DOTPROD_KERNELS 0
#endif
#else
#define GLRNN_ARM_KERNELS 0
#define GLRNN_ARM_DOTPROD_KERNELS 0
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>  // __get_cpuid, __get_cpuid_count
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>  // SYS_arch_prctl
#include <unistd.h>       // syscall
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>  // getauxval, AT_HWCAP
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>  // sysctlbyname
#endif

namespace glrnn {

/// The kernel paths: X(enumerator, name), each architecture's narrowest first. The enum, the
/// names, and the kernel tables (kernels/kernels.hpp) are made from this list.
///   Portable    plain C++ (what the compiler's flags make of it), on every CPU
///   Avx2        AVX2 + FMA + F16C (Haswell, Zen 1-3 and later)
///   AvxVnni     the same plus AVX-VNNI's 256-bit int8 dot products (Alder Lake, Sierra Forest
///               and later: Intel CPUs with VNNI but no AVX-512)
///   Avx512      AVX-512 F, BW, DQ, VL (Skylake-SP and later, Zen 4)
///   Avx512Vnni  the same plus VNNI's int8 dot products (Ice Lake, Zen 4 and later)
///   Avx512Bf16  the same plus AVX-512 BF16's dot products of bf16 pairs (Cooper Lake, Sapphire
///               Rapids, Zen 4 and later): the kernels of the bf16-activation mode
///               (LoadOptions::bf16_activations); its other kernels are avx512vnni's
///   Amx         the same plus AMX's tile registers and their bf16 and int8 products (Sapphire
///               Rapids, Granite Rapids), where the OS lets the process use them (Linux:
///               arch_prctl): prompts and batches of bf16 weights (in both activation modes) and
///               of the integer formats; its other kernels are avx512bf16's
///   Neon        AArch64's Advanced SIMD (every 64-bit ARM CPU)
///   DotProd     the same plus the int8 dot products of Armv8.2 (Cortex-A55/A76, Neoverse N1,
///               Apple M1 and later)
///   I8mm        the same plus the int8 matrix multiplies of Armv8.6 (Neoverse V1/N2/V2:
///               Graviton3/4; Cortex-A710/X2; Apple M2 and later)
#define GLRNN_KERNEL_PATHS(X)   \
  X(Portable, "portable")       \
  X(Avx2, "avx2")               \
  X(AvxVnni, "avxvnni")         \
  X(Avx512, "avx512")           \
  X(Avx512Vnni, "avx512vnni")   \
  X(Avx512Bf16, "avx512bf16")   \
  X(Amx, "amx")                 \
  X(Neon, "neon")               \
  X(DotProd, "dotprod")         \
  X(I8mm, "i8mm")

enum class KernelPath {
#define GLRNN_PATH_ENUM(path, name) path,
  GLRNN_KERNEL_PATHS(GLRNN_PATH_ENUM)
#undef GLRNN_PATH_ENUM
};

constexpr KernelPath kKernelPaths[] = {
#define GLRNN_PATH_VALUE(path, name) KernelPath::path,
    GLRNN_KERNEL_PATHS(GLRNN_PATH_VALUE)
#undef GLRNN_PATH_VALUE
};
constexpr std::size_t kKernelPathCount = sizeof kKernelPaths / sizeof kKernelPaths[0];

inline std::string_view kernel_path_name(KernelPath path) {
  switch (path) {
#define GLRNN_PATH_NAME(path, name) \
  case KernelPath::path: return name;
    GLRNN_KERNEL_PATHS(GLRNN_PATH_NAME)
#undef GLRNN_PATH_NAME
  }
  return "?";
}

inline std::optional<KernelPath> parse_kernel_path(std::string_view name) {
  for (KernelPath path : kKernelPaths)
    if (kernel_path_name(path) == name) return path;
  return std::nullopt;
}

/// "portable, avx2, ...": every path's name, for messages.
inline std::string kernel_path_names() {
  std::string names;
  for (KernelPath path : kKernelPaths) names += (names.empty() ? "" : ", ") + std::string(kernel_path_name(path));
  return names;
}

namespace detail {
/// The CPU features the paths need, read once from CPUID and XGETBV (the OS must save the
/// registers a path uses: AVX state for AVX2, and opmask and all 32 zmm registers for AVX-512).
struct CpuFeatures {
  bool avx2 = false, avxvnni = false, avx512 = false, avx512vnni = false, avx512bf16 = false, amx = false;
  bool neon = false, dotprod = false, i8mm = false;
};

/// Asks Linux to let this process use AMX's tile data (8 KiB more per thread's saved state); the
/// answer holds for every thread of the process. False elsewhere: other systems are not tried.
inline bool os_grants_amx_tiles() {
#if defined(__x86_64__) && defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;  // <asm/prctl.h>
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

inline CpuFeatures read_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28), f16c = ecx & (1u << 29);
  if (!(osxsave && avx)) return f;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool os_avx = (xcr0_lo & 0x6u) == 0x6u, os_avx512 = (xcr0_lo & 0xe6u) == 0xe6u;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
  const bool avx2 = ebx & (1u << 5), avx512f = ebx & (1u << 16), avx512dq = ebx & (1u << 17),
             avx512bw = ebx & (1u << 30), avx512vl = ebx & (1u << 31), vnni = ecx & (1u << 11);
  const bool amx_bf16 = edx & (1u << 22), amx_tile = edx & (1u << 24),
             os_amx = (xcr0_lo & 0x60000u) == 0x60000u;  // XTILECFG and XTILEDATA
  f.avx2 = os_avx && avx2 && fma && f16c;
  f.avx512 = f.avx2 && os_avx512 && avx512f && avx512dq && avx512bw && avx512vl;
  f.avx512vnni = f.avx512 && vnni;
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) {
    f.avxvnni = f.avx2 && (eax & (1u << 4));
    f.avx512bf16 = f.avx512vnni && (eax & (1u << 5));
  }
  f.amx = f.avx512bf16 && amx_tile && amx_bf16 && os_amx && os_grants_amx_tiles();
#elif defined(__aarch64__) && defined(__ARM_NEON)
  f.neon = true;  // Advanced SIMD is part of AArch64
#if defined(__linux__)
  f.dotprod = getauxval(AT_HWCAP) & (1ul << 20);  // HWCAP_ASIMDDP
  f.i8mm = getauxval(AT_HWCAP2) & (1ul << 13);    // HWCAP2_I8MM
#elif defined(__APPLE__)
  const auto has = [](const char* name) {
    int value = 0;
    std::size_t size = sizeof value;
    return sysctlbyname(name, &value, &size, nullptr, 0) == 0 && value != 0;
  };
  f.dotprod = has("hw.optional.arm.FEAT_DotProd");
  f.i8mm = has("hw.optional.arm.FEAT_I8MM");
#endif  // elsewhere: NEON only, which every AArch64 CPU has
#endif
  return f;
}

inline const CpuFeatures& cpu_features() {
  static const CpuFeatures features = read_cpu_features();
  return features;
}
}  // namespace detail

/// Whether this CPU, and its operating system, run `path`.
inline bool cpu_supports(KernelPath path) {
  const detail::CpuFeatures& f = detail::cpu_features();
  switch (path) {
    case KernelPath::Portable: return true;
    case KernelPath::Avx2: return f.avx2;
    case KernelPath::AvxVnni: return f.avxvnni;
    case KernelPath::Avx512: return f.avx512;
    case KernelPath::Avx512Vnni: return f.avx512vnni;
    case KernelPath::Avx512Bf16: return f.avx512bf16;
    case KernelPath::Amx: return f.amx;
    case KernelPath::Neon: return f.neon;
    case KernelPath::DotProd: return GLRNN_ARM_DOTPROD_KERNELS && f.neon && f.dotprod;
    case KernelPath::I8mm: return GLRNN_ARM_DOTPROD_KERNELS && f.neon && f.dotprod && f.i8mm;
  }
  return false;
}

/// The widest path this CPU runs.
inline KernelPath best_kernel_path() {
  KernelPath best = KernelPath::Portable;
  for (KernelPath path : kKernelPaths)
    if (cpu_supports(path)) best = path;
  return best;
}

namespace detail {
/// GLRNN_KERNELS if set, else the best path. Throws ConfigError for a name that is not a path or a
/// path this CPU lacks: a forced comparison must not silently run something else.
inline KernelPath initial_kernel_path() {
  const char* forced = std::getenv("GLRNN_KERNELS");
  if (forced == nullptr || *forced == '\0') return best_kernel_path();
  const std::optional<KernelPath> path = parse_kernel_path(forced);
  GLRNN_CHECK(path.has_value(), ConfigError,
              "GLRNN_KERNELS is '" + std::string(forced) + "'; expected one of " + kernel_path_names());
  GLRNN_CHECK(cpu_supports(*path), ConfigError,
              "GLRNN_KERNELS is '" + std::string(forced) + "', which this CPU does not support (best: " +
                  std::string(kernel_path_name(best_kernel_path())) + ")");
  return *path;
}

inline std::atomic<KernelPath>& kernel_path_slot() {
  static std::atomic<KernelPath> slot{initial_kernel_path()};
  return slot;
}
}  // namespace detail

/// The path the kernels run with now. Throws ConfigError on first use if GLRNN_KERNELS is invalid.
inline KernelPath kernel_path() { return detail::kernel_path_slot().load(std::memory_order_relaxed); }

/// Forces a path for every thread (tests, comparisons). Throws InputError if the CPU lacks it.
inline void set_kernel_path(KernelPath path) {
  GLRNN_CHECK(cpu_supports(path), InputError,
              "this CPU does not support the " + std::string(kernel_path_name(path)) + " kernels");
  detail::kernel_path_slot().store(path, std::memory_order_relaxed);
}

}  // namespace glrnn
