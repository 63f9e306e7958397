// PathCode for the path core/each_simd_path.hpp has just compiled kernels-inl.hpp for (see
// kernels/kernels.hpp): its table entries. No include guard: included once per path.

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
