#pragma once
// Compiling glrnn's heavy parts once in a program of many translation units. glrnn is
// header-only, and a translation unit that loads a model compiles both built-in families, every
// layer and every kernel of every path (about 15 s of a 30 s compile). A program with several
// such units may instead define GLRNN_EXTERN_INSTANTIATIONS in all of them and include this
// header in exactly one (a .cpp of its own, or any one of them): the others then only call what
// that one holds (docs/architecture.md §9). glrnn's own programs and tests do this; a program of
// one translation unit needs nothing.

#include "glrnn/kernels/kernels.hpp"
#include "glrnn/models/registry.hpp"

namespace glrnn {
template std::vector<ModelFamily> detail::builtin_families<void>();
namespace kernels::detail {
template const std::array<std::array<FormatKernels, kPaths>, kWeightTypeCount>& format_kernel_table<void>();
template const std::array<PathKernels, kPaths>& path_kernel_table<void>();
}  // namespace kernels::detail
}  // namespace glrnn
