// One path's turn in core/each_simd_path.hpp, which defines the path's macros before each include
// of this file (see there); this file compiles the text in the path's region and undefines them.
// No include guard.

#ifndef GLRNN_SIMD_VNNI
#define GLRNN_SIMD_VNNI 0
#endif
#ifndef GLRNN_SIMD_BF16
#define GLRNN_SIMD_BF16 0
#endif
#ifndef GLRNN_SIMD_AMX
#define GLRNN_SIMD_AMX 0
#endif
#ifndef GLRNN_SIMD_DOTPROD
#define GLRNN_SIMD_DOTPROD 0
#endif
#ifndef GLRNN_SIMD_I8MM
#define GLRNN_SIMD_I8MM 0
#endif

#ifdef GLRNN_PATH_ISA
GLRNN_BEGIN_TARGET(GLRNN_PATH_ISA)
#endif
namespace glrnn::GLRNN_EACH_PATH_SCOPE::GLRNN_PATH_NAMESPACE {
using namespace glrnn::simd::GLRNN_PATH_NAMESPACE;  // in the simd scope itself: the namespace being opened
#include GLRNN_EACH_PATH_TEXT
}  // namespace glrnn::GLRNN_EACH_PATH_SCOPE::GLRNN_PATH_NAMESPACE
#ifdef GLRNN_PATH_ISA
GLRNN_END_TARGET
#endif
#ifdef GLRNN_EACH_PATH_AFTER
#include GLRNN_EACH_PATH_AFTER
#endif

#undef GLRNN_PATH
#undef GLRNN_PATH_NAMESPACE
#undef GLRNN_PATH_ISA
#undef GLRNN_SIMD_PRIMITIVES
#undef GLRNN_SIMD_VNNI
#undef GLRNN_SIMD_BF16
#undef GLRNN_SIMD_AMX
#undef GLRNN_SIMD_DOTPROD
#undef GLRNN_SIMD_I8MM
