// PathProbes for the path core/each_simd_path.hpp has just compiled probes-inl.hpp for (see
// probes.hpp). No include guard: included once per path.

namespace glrnn::bench::probe {
template <>
struct PathProbes<KernelPath::GLRNN_PATH> {
  static constexpr bool kCompiled = true;
  static Probes get() {
    namespace path = ::glrnn::bench::GLRNN_PATH_NAMESPACE;
    return {path::probe_read_sum, path::probe_fma, path::probe_int8<>, path::kFmaFlopsPerRound, path::kInt8OpsPerRound};
  }
};
}  // namespace glrnn::bench::probe
