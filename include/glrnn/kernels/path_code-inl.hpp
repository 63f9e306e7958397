// PathCode for the path GLRNN_PATH, whose kernels are in namespace glrnn::kernels::<
// GLRNN_PATH_NAMESPACE>: the portable path's, and each SIMD path's after core/each_simd_path.hpp
// has compiled kernels-inl.hpp for it (see kernels/kernels.hpp). No include guard: included once
// per path.

namespace glrnn::kernels::detail {
template <>
struct PathCode<KernelPath::GLRNN_PATH> {
  static constexpr bool kCompiled = true;
  template <class Format>
  static FormatKernels format() {
    return ::glrnn::kernels::GLRNN_PATH_NAMESPACE::path_format_kernels<Format>();
  }
  static PathKernels path_wide() { return ::glrnn::kernels::GLRNN_PATH_NAMESPACE::path_kernels(); }
};
}  // namespace glrnn::kernels::detail
