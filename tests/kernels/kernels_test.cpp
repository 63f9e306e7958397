// Every kernel path this CPU runs, forced one after the other, against the scalar references of the
// formats (formats/*.hpp): products of every format with one row (decode), a few rows (batches,
// the register tiles' edges) and many (prompts), the quantization of activations, and the float32
// products between activations; and the element-wise functions against their exact values.
// Integer sums must be bit-exact on every path; float sums may differ only by their order of
// summation.

#include <algorithm>  // std::min
#include <cfloat>   // FLT_EPSILON, FLT_MAX, FLT_MIN
#include <cmath>    // std::fabs, std::nearbyint, std::exp, std::log1p, std::ldexp, std::nextafter
#include <cstdint>  // std::int64_t
#include <iterator>  // std::size
#include <limits>   // std::numeric_limits
#include <random>   // std::mt19937
#include <string>   // std::string
#include <tuple>    // std::tuple, std::tuple_cat
#include <type_traits>  // std::conditional_t, std::false_type, std::void_t
#include <utility>      // std::declval
#include <vector>   // std::vector

#include <catch2/catch.hpp>

#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/kernels/kernels.hpp"
#include "glrnn/sampling/sampler.hpp"
#include "support/random_weights.hpp"

namespace {

using glrnn::KernelPath;
using glrnn::RowMatrixXf;

/// The paths to test: every one this CPU supports. Restores the active path when it ends.
struct EveryPath {
  KernelPath saved = glrnn::kernel_path();
  ~EveryPath() { glrnn::set_kernel_path(saved); }
  std::vector<KernelPath> paths() const {
    std::vector<KernelPath> out;
    for (KernelPath p : glrnn::kKernelPaths)
      if (glrnn::cpu_supports(p)) out.push_back(p);
    return out;
  }
};

/// Y = X · W^T through matmul, with a scratch measured for it.
RowMatrixXf multiply(const glrnn::WeightMatrix& w, const RowMatrixXf& x) {
  RowMatrixXf y(x.rows(), w.rows);
  glrnn::Scratch scratch = glrnn::test::measured_scratch(x.rows(), [&](glrnn::Scratch& meter) { glrnn::kernels::matmul(w, x, y, meter); });
  glrnn::kernels::matmul(w, x, y, scratch);
  return y;
}

/// The activations as the integer formats' kernels see them, by the portable (reference) path.
struct Quantized {
  std::vector<std::int8_t> q;
  std::vector<float> scale;
};
Quantized quantize_portable(const float* x, std::int64_t n) {
  Quantized out{std::vector<std::int8_t>(static_cast<std::size_t>(n)), std::vector<float>(static_cast<std::size_t>(n / 32))};
  std::vector<std::int32_t> sum(out.scale.size());
  glrnn::kernels::portable::quantize_row(x, n, out.q.data(), nullptr, out.scale.data(), sum.data());
  return out;
}

/// reference[m][r] in double, and the bound on a float32 evaluation's error: a sum of n terms in
/// any order is within n·eps·Σ|term| of the exact sum (Higham's bound). The float formats' kernels
/// add at most 3K terms: K rounded products (2K roundings), or on the amx path the exact products
/// of the weights with three bf16 planes of each activation (3K additions, gemm_amx-inl.hpp). The
/// integer formats' kernels convert exact int32 partial sums of at most 4 products to float and
/// scale each, so their terms number K/4 and are bounded by Σ|w x| too.
template <class Format>
void reference(const glrnn::WeightMatrix& w, const RowMatrixXf& x, RowMatrixXf& expected, RowMatrixXf& bound) {
  using Unit = typename Format::Unit;
  const std::int64_t K = w.cols;
  expected.resize(x.rows(), w.rows);
  bound.resize(x.rows(), w.rows);
  for (Eigen::Index m = 0; m < x.rows(); ++m) {
    const Quantized xq = quantize_portable(x.row(m).data(), Format::kActivations == glrnn::Activations::Int8Blocks ? K : 0);
    for (std::int64_t r = 0; r < w.rows; ++r) {
      const Unit* row = reinterpret_cast<const Unit*>(w.row(r));
      double exact = 0.0, magnitude = 0.0;
      if constexpr (Format::kActivations == glrnn::Activations::Float32) {
        exact = Format::reference_dot(row, x.row(m).data(), K);
        std::vector<float> wr(static_cast<std::size_t>(K));
        w.dequantize_row(r, wr.data());
        for (std::int64_t k = 0; k < K; ++k) magnitude += std::fabs(static_cast<double>(wr[k]) * x(m, k));
        bound(m, r) = static_cast<float>(3.0 * K * FLT_EPSILON * magnitude + 1e-30);
      } else {
        exact = Format::reference_dot(row, xq.q.data(), xq.scale.data(), K);
        std::int8_t q[32];
        for (std::int64_t b = 0; b < K / 32; ++b) {
          Format::unpack(row[b], q);
          double block = 0.0;
          for (int i = 0; i < 32; ++i) block += std::fabs(static_cast<double>(q[i]) * xq.q[static_cast<std::size_t>(32 * b + i)]);
          magnitude += block * std::fabs(Format::scale(row[b]) * xq.scale[static_cast<std::size_t>(b)]);  // q4 scales may be negative
        }
        bound(m, r) = static_cast<float>(2.0 * (K / 4 + 4) * FLT_EPSILON * magnitude + 1e-30);
      }
      expected(m, r) = static_cast<float>(exact);
    }
  }
}

// Every registered format's traits (formats/registry.hpp), so a new format is tested here unasked.
template <class First, class... Formats>
using AfterFirst = std::tuple<Formats...>;
#define GLRNN_FORMAT_TRAITS(value, Format) , glrnn::Format
using EveryFormat = AfterFirst<void GLRNN_WEIGHT_FORMATS(GLRNN_FORMAT_TRAITS)>;
#undef GLRNN_FORMAT_TRAITS

/// w, and where its format has row groups the same matrix in them (formats/row_groups.hpp), whose
/// bytes `grouped` holds: every kernel must give the same results for both.
std::vector<glrnn::WeightMatrix> both_orders(const glrnn::WeightMatrix& w, std::vector<std::byte>& grouped) {
  const glrnn::FormatInfo& format = glrnn::format_info(w.type);
  if (!format.groups_rows()) return {w};
  grouped.assign(w.bytes(), std::byte{0});
  format.group_rows(w.data, w.rows, w.cols, grouped.data());
  return {w, {grouped.data(), w.type, w.rows, w.cols, glrnn::RowOrder::Groups}};
}

/// The formats of EveryFormat that multiply float32 activations.
template <class Tuple>
struct FloatActivationFormats;
template <class... Formats>
struct FloatActivationFormats<std::tuple<Formats...>> {
  using type = decltype(std::tuple_cat(
      std::declval<std::conditional_t<Formats::kActivations == glrnn::Activations::Float32, std::tuple<Formats>, std::tuple<>>>()...));
};
using EveryFloatFormat = FloatActivationFormats<EveryFormat>::type;

template <class Format, class = void>
struct HasLevels : std::false_type {};
template <class Format>
struct HasLevels<Format, std::void_t<decltype(Format::kLevels)>> : std::true_type {};

}  // namespace

TEMPLATE_LIST_TEST_CASE("Every kernel path multiplies like the format's scalar reference", "[kernels]", EveryFormat) {
  EveryPath every;
  glrnn::test::RandomWeights rw(21);
  const glrnn::WeightType type = *glrnn::parse_weight_type(TestType::kName);
  const bool blocks = TestType::kBlockElements > 1;
  for (std::int64_t cols : {32, 96, 288, 544, 37}) {  // 288: an odd count of blocks; 37: no whole vector
    if (blocks && cols % 32) continue;
    // Past one and two register panels and not a multiple of either; in row groups 80 ends in a
    // short panel of whole groups, 33 and 70 in rows after the groups.
    for (std::int64_t rows : {1, 5, 33, 70, 80}) {
      const glrnn::WeightMatrix w = rw.weight({rows, cols}, 0.1f, type);
      std::vector<std::byte> grouped;
      const std::vector<glrnn::WeightMatrix> orders = both_orders(w, grouped);
      for (std::int64_t tokens : {1, 2, 5, 16, 17, 40}) {  // matrix-vector; tile edges of the matrix kernel
        const RowMatrixXf x = rw.matrix(tokens, cols);
        RowMatrixXf expected, bound;
        reference<TestType>(w, x, expected, bound);
        for (KernelPath path : every.paths()) {
          glrnn::set_kernel_path(path);
          for (const glrnn::WeightMatrix& stored : orders) {
            const RowMatrixXf y = multiply(stored, x);
            CAPTURE(std::string(glrnn::kernel_path_name(path)), rows, cols, tokens, stored.order == glrnn::RowOrder::Groups);
            CHECK(((y - expected).cwiseAbs().array() <= bound.array()).all());
          }
        }
      }
    }
  }
}

TEST_CASE("bf16 activations: the paths with bf16 dot products multiply the activations rounded to bf16", "[kernels]") {
  // The bf16-activation mode rounds each activation to bf16 (as PyTorch's cast) and multiplies it
  // with the bf16 weights: each product of two bf16 is exact in float32, so the reference is the
  // float32 format's own, on the rounded activations, with the same bound on the order of the sums.
  EveryPath every;
  glrnn::test::RandomWeights rw(23);
  bool ran = false;
  for (std::int64_t cols : {32, 96, 544, 37, 1030}) {  // 37: no whole vector; 1030: past a panel's depth, odd pairs
    for (std::int64_t rows : {1, 5, 33, 70}) {
      glrnn::WeightMatrix w = rw.weight({rows, cols}, 0.1f, glrnn::WeightType::BF16);
      w.bf16_activations = true;
      for (std::int64_t tokens : {1, 2, 13, 40}) {
        const RowMatrixXf x = rw.matrix(tokens, cols);
        RowMatrixXf rounded = x;
        for (Eigen::Index i = 0; i < rounded.size(); ++i) rounded.data()[i] = glrnn::to_float(glrnn::to_bf16(x.data()[i]));
        RowMatrixXf expected, bound;
        reference<glrnn::Bf16Format>(w, rounded, expected, bound);
        for (KernelPath path : every.paths()) {
          glrnn::set_kernel_path(path);
          CAPTURE(std::string(glrnn::kernel_path_name(path)), rows, cols, tokens);
          if (!glrnn::kernels::has_bf16_activation_products(path)) {
            CHECK_THROWS_AS(multiply(w, x), glrnn::ConfigError);
            continue;
          }
          ran = true;
          const RowMatrixXf y = multiply(w, x);
          CHECK(((y - expected).cwiseAbs().array() <= bound.array()).all());
        }
      }
    }
  }
  if (!ran) WARN("no kernel path of this CPU has bf16 dot products: only the refusals were tested");
  // Only bf16 weights have the mode: any other format marked for it is refused, on every path.
  glrnn::WeightMatrix w = rw.weight({16, 64}, 0.1f, glrnn::WeightType::Int8);
  w.bf16_activations = true;
  for (KernelPath path : every.paths()) {
    glrnn::set_kernel_path(path);
    CHECK_THROWS_AS(multiply(w, rw.matrix(3, 64)), glrnn::ConfigError);
  }
}

TEMPLATE_LIST_TEST_CASE("Every kernel path sums exactly where the sums are exact", "[kernels]", EveryFormat) {
  // Weights of scale 1 and integer activations whose blocks reach 127 (so they quantize with scale
  // 1 and their own values): every product is an integer and every sum stays below 2^24, so float32
  // holds it exactly and every path must give the same bits as the reference.
  EveryPath every;
  glrnn::Rng rng(5);
  const glrnn::WeightType type = *glrnn::parse_weight_type(TestType::kName);
  const std::int64_t rows = 45, cols = 544;
  std::vector<float> values(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if constexpr (HasLevels<TestType>::value) {
      // The lowest level in each block (q4's -127, q5's -16) makes its scale 1.
      values[i] = TestType::kLevels[i % 32 == 0 ? 0 : rng.next() % std::size(TestType::kLevels)];
    } else {
      values[i] = static_cast<float>(i % 32 == 0 ? -127 : static_cast<int>(rng.next() % 255) - 127);
    }
  }
  const glrnn::FormatInfo& format = glrnn::format_info(type);
  std::vector<std::byte> stored(static_cast<std::size_t>(rows) * format.row_bytes(cols));
  for (std::int64_t r = 0; r < rows; ++r) format.quantize(values.data() + r * cols, cols, stored.data() + r * format.row_bytes(cols));
  const glrnn::WeightMatrix w{stored.data(), type, rows, cols};
  std::vector<std::byte> grouped;
  const std::vector<glrnn::WeightMatrix> orders = both_orders(w, grouped);
  RowMatrixXf x(17, cols), exact(17, rows);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(i % 32 == 5 ? 127 : static_cast<int>(rng.next() % 255) - 127);
  for (Eigen::Index m = 0; m < x.rows(); ++m)
    for (std::int64_t r = 0; r < rows; ++r) {
      double sum = 0.0;
      for (std::int64_t k = 0; k < cols; ++k) sum += static_cast<double>(values[static_cast<std::size_t>(r * cols + k)]) * x(m, k);
      exact(m, r) = static_cast<float>(sum);
    }
  for (KernelPath path : every.paths()) {
    glrnn::set_kernel_path(path);
    for (const glrnn::WeightMatrix& m : orders) {
      CAPTURE(std::string(glrnn::kernel_path_name(path)), m.order == glrnn::RowOrder::Groups);
      CHECK(multiply(m, x) == exact);
      CHECK(multiply(m, x.topRows(1)) == exact.topRows(1));
    }
  }
}

TEMPLATE_LIST_TEST_CASE("Every kernel path multiplies float32 activations exactly", "[kernels]", EveryFloatFormat) {
  // Weights with one power of two per row make each result one product, exact in float32 (adding
  // zeros is exact too): every path must give back the activations' 24 bits scaled, whatever way
  // it splits them (the amx path's three bf16 planes), at panel, slab and tile edges. In the
  // bf16-activation mode the activations are rounded to bf16 first, and nothing else changes.
  EveryPath every;
  glrnn::test::RandomWeights rw(31);
  const glrnn::WeightType type = *glrnn::parse_weight_type(TestType::kName);
  const std::int64_t rows = 70, cols = 1030;
  std::vector<float> values(static_cast<std::size_t>(rows * cols), 0.0f);
  std::vector<std::int64_t> column(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    column[static_cast<std::size_t>(r)] = (r * 97 + 13) % cols;
    values[static_cast<std::size_t>(r * cols + column[static_cast<std::size_t>(r)])] = std::ldexp(r % 2 ? -1.0f : 1.0f, static_cast<int>(r % 5) - 2);
  }
  const glrnn::FormatInfo& format = glrnn::format_info(type);
  std::vector<std::byte> stored(static_cast<std::size_t>(rows) * format.row_bytes(cols));
  for (std::int64_t r = 0; r < rows; ++r) format.quantize(values.data() + r * cols, cols, stored.data() + r * format.row_bytes(cols));
  glrnn::WeightMatrix w{stored.data(), type, rows, cols};
  for (const bool bf16_activations : {false, true}) {
    if (bf16_activations && type != glrnn::WeightType::BF16) continue;
    w.bf16_activations = bf16_activations;
    for (std::int64_t tokens : {1, 2, 17, 40}) {
      const RowMatrixXf x = rw.matrix(tokens, cols);
      RowMatrixXf exact(tokens, rows);
      for (Eigen::Index m = 0; m < tokens; ++m)
        for (std::int64_t r = 0; r < rows; ++r) {
          const float a = x(m, column[static_cast<std::size_t>(r)]);
          exact(m, r) = (bf16_activations ? glrnn::to_float(glrnn::to_bf16(a)) : a) * values[static_cast<std::size_t>(r * cols + column[static_cast<std::size_t>(r)])];
        }
      for (KernelPath path : every.paths()) {
        if (bf16_activations && !glrnn::kernels::has_bf16_activation_products(path)) continue;
        glrnn::set_kernel_path(path);
        CAPTURE(std::string(glrnn::kernel_path_name(path)), tokens, bf16_activations);
        CHECK(multiply(w, x) == exact);
      }
    }
  }
}

TEST_CASE("Every kernel path quantizes activations to the same bits", "[kernels]") {
  EveryPath every;
  glrnn::test::RandomWeights rw(9);
  RowMatrixXf x = rw.matrix(3, 256, 2.0f);
  for (int i = 0; i < 32; ++i) x(2, i) = i == 0 ? 127.0f : static_cast<float>(i % 7) - 2.5f;  // scale 1: ties at .5
  x.row(1).segment(64, 32).setZero();                                                         // a block of zeros
  const auto quantized = [&] {
    std::vector<std::int8_t> q(static_cast<std::size_t>(x.size()));
    std::vector<std::int16_t> q16(q.size());
    std::vector<float> scale(q.size() / 32);
    std::vector<std::int32_t> sum(scale.size());
    const auto quantize = glrnn::kernels::path_kernels(glrnn::kernel_path()).quantize_row;
    for (Eigen::Index r = 0; r < x.rows(); ++r)
      quantize(x.row(r).data(), x.cols(), q.data() + r * x.cols(), q16.data() + r * x.cols(), scale.data() + r * x.cols() / 32,
               sum.data() + r * x.cols() / 32);
    return std::make_tuple(q, q16, scale, sum);
  };
  glrnn::set_kernel_path(KernelPath::Portable);
  const auto reference = quantized();
  CHECK(std::get<0>(reference)[2 * 256 + 1] == -2);  // -1.5 rounds to even
  CHECK(std::get<0>(reference)[2 * 256 + 5] == 2);   // 2.5 rounds to even
  for (KernelPath path : every.paths()) {
    glrnn::set_kernel_path(path);
    CAPTURE(std::string(glrnn::kernel_path_name(path)));
    CHECK(quantized() == reference);
  }
}

TEST_CASE("Every kernel path computes float32 products between activations", "[kernels]") {
  EveryPath every;
  glrnn::test::RandomWeights rw(4);
  using glrnn::kernels::Precision;
  // The three forms: A · B^T, A · B and A^T · B (transposed_product, which scales C by `keep`
  // in the same pass: 0 overwrites it, 0.5 as a decaying state), each from A [M, K]. M = 32 and
  // N = 64 give the amx path's whole blocks, which keep 0 and 1 take in the tile registers.
  enum class Form { BTransposed, Plain, ATransposed };
  const auto rounded = [](const RowMatrixXf& m) {
    return m.unaryExpr([](float v) { return glrnn::to_float(glrnn::to_bf16(v)); }).eval();
  };
  for (std::int64_t M : {1, 5, 17, 32})
    for (std::int64_t N : {3, 33, 64})
      for (std::int64_t K : {0, 7, 64, 300})  // 0: an empty sum, which still sets or scales C
        for (Form form : {Form::BTransposed, Form::Plain, Form::ATransposed}) {
          const RowMatrixXf a = rw.matrix(M, K), b = form == Form::BTransposed ? rw.matrix(N, K) : rw.matrix(K, N);
          const RowMatrixXf at = a.transpose();  // what transposed_product reads
          const RowMatrixXf bt = form == Form::BTransposed ? RowMatrixXf(b) : RowMatrixXf(b.transpose());
          for (KernelPath path : every.paths())
            for (Precision precision : {Precision::Float32, Precision::Bf16}) {
              glrnn::set_kernel_path(path);
              // Precision::Bf16 multiplies the values rounded to bf16 where the path does so, and
              // float32 ones elsewhere: either way exact products summed in float32.
              const bool rounds = precision == Precision::Bf16 && glrnn::kernels::rounds_bf16_products(path);
              const RowMatrixXf x = rounds ? rounded(a) : a, y = rounds ? rounded(bt) : bt;
              const RowMatrixXf expected = (x.cast<double>() * y.cast<double>().transpose()).cast<float>();
              // As above: a sum of K products, with |a|, |b| ~ N(0, 1).
              const float bound = 2.0f * K * FLT_EPSILON * static_cast<float>((x.cwiseAbs() * y.cwiseAbs().transpose()).maxCoeff());
              CAPTURE(std::string(glrnn::kernel_path_name(path)), M, N, K, static_cast<int>(form), rounds);
              const std::size_t work_bytes =
                  glrnn::kernels::product_work_bytes(M, K, precision);
              glrnn::Scratch scratch = glrnn::test::measured_scratch(1, [&](glrnn::Scratch& meter) { meter.array<std::byte>(work_bytes); });
              std::byte* work = scratch.array<std::byte>(work_bytes);
              RowMatrixXf c = RowMatrixXf::Constant(M, N, 1.0f);
              float kept = 1.0f;  // what is left of C's 1s
              if (form == Form::ATransposed) {
                kept = M == 5 || M == 32 ? 0.0f : 0.5f;
                glrnn::kernels::transposed_product(at, b, c, kept, work, precision);
              } else {
                glrnn::kernels::product(a, b, form == Form::BTransposed, c, /*accumulate=*/true, work, precision);
              }
              CHECK((c.array() - kept - expected.array()).abs().maxCoeff() <= bound + 2 * FLT_EPSILON);
            }
        }
}

namespace elementwise {

using glrnn::Elementwise;
constexpr Elementwise kFunctions[] = {Elementwise::Exp,      Elementwise::Tanh,       Elementwise::Sigmoid, Elementwise::Silu,
                                      Elementwise::GeluTanh, Elementwise::LogSigmoid, Elementwise::Softplus};

/// The function in double precision, from the float input: the exact value to within far less than
/// a float ulp (GeLU and SiLU as x·sigmoid, which equals PyTorch's tanh form mathematically).
double exact(Elementwise f, double x) {
  const double kBeta = 0.7978845608028654;
  switch (f) {
    case Elementwise::Exp: return std::exp(x);
    case Elementwise::Tanh: return std::tanh(x);
    case Elementwise::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Elementwise::Silu: return x / (1.0 + std::exp(-x));
    case Elementwise::GeluTanh: return x / (1.0 + std::exp(-2.0 * kBeta * (x + 0.044715 * x * x * x)));
    case Elementwise::LogSigmoid: return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x)));
    case Elementwise::Softplus: return x > 20.0 ? x : std::log1p(std::exp(x));
  }
  return 0.0;
}

/// The error allowed, in ulps of the exact value. exp and log1p are the Cephes methods (about 1
/// ulp each, measured 1.2 and 2.0 here); a function built from them adds a rounding or two per
/// operation. GeLU also rounds its argument 2y = 2·sqrt(2/pi)·(x + 0.044715x³) in float, which
/// sigmoid(2y) amplifies by up to |2y| where it is small (measured: 21 ulp at x = -4.56, 2y = -14;
/// the standard library's 0.5x(1 + tanh(y)) loses every digit there to cancellation).
double allowed_ulps(Elementwise f, double x) {
  switch (f) {
    case Elementwise::Exp: return 2.0;
    case Elementwise::GeluTanh: return 4.0 + 2.0 * std::fabs(2.0 * 0.7978845608028654 * (x + 0.044715 * x * x * x));
    default: return 3.0;
  }
}

constexpr double kNegligible = 7.888609052210118e-31;  // 2^-100

double ulp_of(double v) {
  const float f = std::fabs(static_cast<float>(v));
  return static_cast<double>(std::nextafter(f, FLT_MAX) - f);
}

}  // namespace elementwise

TEST_CASE("Every kernel path computes the element-wise functions within their stated error", "[kernels]") {
  using namespace elementwise;
  EveryPath every;
  std::vector<float> x;
  for (float v = -110.0f; v < 110.0f; v += 0.0137f) x.push_back(v);  // every function's whole range
  std::mt19937 rng(7);  // and tiny to moderate magnitudes of both signs
  for (int i = 0; i < 20000; ++i)
    x.push_back(std::ldexp(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng), std::uniform_int_distribution<int>(-60, 5)(rng)));
  for (KernelPath path : every.paths()) {
    glrnn::set_kernel_path(path);
    for (Elementwise f : kFunctions) {
      CAPTURE(std::string(glrnn::kernel_path_name(path)), static_cast<int>(f));
      std::vector<float> y(x.size());
      glrnn::kernels::apply(f, x.data(), y.data(), static_cast<std::int64_t>(x.size()));
      if (path == KernelPath::Portable) {
        // The portable path is core/math.hpp's formulas on the standard library, PyTorch's own
        // (GeLU's 0.5x(1 + tanh(y)) is 0 where tanh(y) rounds to -1, near x = -5 and below).
        for (std::size_t i = 0; i < x.size(); ++i) CHECK(y[i] == glrnn::apply(f, x[i]));
        continue;
      }
      double worst_excess = 0.0;  // the largest error over its bound, in ulps (<= 0: within)
      float worst_x = 0.0f;
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double t = exact(f, x[i]);
        if (std::fabs(t) > FLT_MAX) {
          CHECK(std::isinf(y[i]));
          continue;
        }
        // Far below any activation's size (2^-100) an absolute error of that size is allowed: the
        // library's own sigmoid flushes to zero where e^-x overflows, and SiLU and GeLU with it.
        const double excess = std::fabs(t) < kNegligible ? (std::fabs(y[i] - t) > kNegligible ? 1e9 : 0.0)
                                                         : std::fabs(y[i] - t) / ulp_of(t) - allowed_ulps(f, x[i]);
        if (excess > worst_excess) worst_excess = excess, worst_x = x[i];
      }
      CAPTURE(worst_x);
      CHECK(worst_excess <= 0.0);
    }
  }
}

TEST_CASE("Element-wise functions: special values, and an element's result wherever it sits in a row", "[kernels]") {
  using namespace elementwise;
  EveryPath every;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (KernelPath path : every.paths()) {
    glrnn::set_kernel_path(path);
    CAPTURE(std::string(glrnn::kernel_path_name(path)));
    auto at = [](Elementwise f, float v) {
      float y = 0.0f;
      glrnn::kernels::apply(f, &v, &y, 1);
      return y;
    };
    for (Elementwise f : kFunctions) CHECK(std::isnan(at(f, nan)));
    CHECK(at(Elementwise::Exp, inf) == inf);
    CHECK(at(Elementwise::Exp, -inf) == 0.0f);
    CHECK(at(Elementwise::Exp, 0.0f) == 1.0f);
    CHECK(at(Elementwise::Tanh, inf) == 1.0f);
    CHECK(at(Elementwise::Tanh, -inf) == -1.0f);
    CHECK(std::signbit(at(Elementwise::Tanh, -0.0f)));
    CHECK(at(Elementwise::Sigmoid, inf) == 1.0f);
    CHECK(at(Elementwise::Sigmoid, -inf) == 0.0f);
    CHECK(at(Elementwise::Silu, inf) == inf);
    CHECK(at(Elementwise::GeluTanh, inf) == inf);
    CHECK(at(Elementwise::LogSigmoid, -inf) == -inf);
    CHECK(at(Elementwise::LogSigmoid, inf) == 0.0f);
    CHECK(at(Elementwise::Softplus, inf) == inf);
    CHECK(at(Elementwise::Softplus, 30.0f) == 30.0f);  // PyTorch's threshold: the identity above 20
    float lae = 0.0f;
    const float minus_inf[] = {-inf}, zero[] = {0.0f};
    glrnn::kernels::log_add_exp(minus_inf, zero, &lae, 1);
    CHECK(lae == 0.0f);

    // A row of every length up to a few vectors: each element as computed alone, bit for bit (a
    // row's tail takes the same vector code), and y may be x.
    glrnn::test::RandomWeights rw(11);
    const RowMatrixXf row = 4.0f * rw.matrix(1, 53), other = rw.matrix(1, 53);
    for (Elementwise f : kFunctions)
      for (std::int64_t n : {1, 7, 8, 16, 17, 53}) {
        RowMatrixXf y = row.leftCols(n);
        glrnn::kernels::apply(f, y.data(), y.data(), n);
        for (std::int64_t i = 0; i < n; ++i) CHECK(y(0, i) == at(f, row(0, i)));
        std::vector<float> sums(static_cast<std::size_t>(n));
        glrnn::kernels::log_add_exp(row.data(), other.data(), sums.data(), n);
        for (std::int64_t i = 0; i < n; ++i) {
          float one = 0.0f;
          glrnn::kernels::log_add_exp(&row(0, i), &other(0, i), &one, 1);
          CHECK(sums[static_cast<std::size_t>(i)] == one);
          // max(a, b) + log1p(e^-|a-b|) rounds at the scale of its larger operand: where the two
          // nearly cancel, both this and the library's formula are off by ulps of that, not of the sum.
          const double scale = std::max(std::fabs(one), std::fabs(std::max(row(0, i), other(0, i))));
          CHECK(std::fabs(one - glrnn::log_add_exp(row(0, i), other(0, i))) <= 4 * ulp_of(scale));
        }
      }
  }
}

TEST_CASE("Every kernel path computes decayed dot products", "[kernels]") {
  EveryPath every;
  glrnn::test::RandomWeights rw(12);
  for (std::int64_t n : {1, 7, 16, 33, 128, 300}) {
    const RowMatrixXf a = rw.matrix(1, n), b = rw.matrix(1, n);
    // Cumulative log decays as a chunk has them: p - q <= 0, down to about -20.
    const RowMatrixXf q = 10.0f * rw.matrix(1, n).cwiseAbs(), p = q - 2.0f * q.cwiseAbs();
    double expected = 0.0, magnitude = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double term = double(a(0, i)) * b(0, i) * std::exp(double(p(0, i)) - q(0, i));
      expected += term;
      magnitude += std::fabs(term);
    }
    // A float sum of n terms in some order, each term within a few roundings (exp: 2 ulp).
    const double bound = (n + 6) * FLT_EPSILON * magnitude;
    for (KernelPath path : every.paths()) {
      glrnn::set_kernel_path(path);
      CAPTURE(std::string(glrnn::kernel_path_name(path)), n);
      CHECK(std::fabs(glrnn::kernels::decayed_dot(a.data(), b.data(), p.data(), q.data(), n) - expected) <= bound);
    }
  }
}

TEST_CASE("Kernel paths: names, CPU support and forcing", "[kernels]") {
  EveryPath every;
  CHECK(glrnn::cpu_supports(KernelPath::Portable));
  CHECK(glrnn::cpu_supports(glrnn::best_kernel_path()));
  for (KernelPath p : glrnn::kKernelPaths) CHECK(glrnn::parse_kernel_path(glrnn::kernel_path_name(p)) == p);
  CHECK_FALSE(glrnn::parse_kernel_path("sse2").has_value());
  for (KernelPath p : glrnn::kKernelPaths) {
    if (glrnn::cpu_supports(p)) {
      glrnn::set_kernel_path(p);
      CHECK(glrnn::kernel_path() == p);
    } else {
      CHECK_THROWS_AS(glrnn::set_kernel_path(p), glrnn::InputError);
    }
  }
}
