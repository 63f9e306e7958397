// Each layer against an independent, loop-by-loop evaluation of the spec's formulas, plus the
// layer contract: one forward over T positions equals T one-position steps and any chunking.

#include <cmath>    // std::exp, std::cos, std::sin, std::sqrt, std::tanh
#include <cstdint>  // std::int64_t
#include <vector>   // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/random_weights.hpp"

namespace {

using glrnn::RowMatrixXf;
using glrnn::Shape;

// Single-precision evaluation of formulas the test evaluates in double: relative error of a few
// float ulps per operation over sums of at most a few dozen terms.
constexpr double kFloatTolerance = 1e-5;

double max_rel_diff(const RowMatrixXf& a, const RowMatrixXf& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return static_cast<double>((a - b).cwiseAbs().maxCoeff()) / std::max(1.0f, b.cwiseAbs().maxCoeff());
}

/// Runs a stateful layer over X in chunks of `chunk` positions from position pos0.
template <class Layer>
RowMatrixXf run_in_chunks(const Layer& layer, const RowMatrixXf& x, std::int64_t chunk, std::int64_t out_width,
                          std::int64_t pos0 = 0) {
  typename Layer::State state = layer.make_state();
  glrnn::Scratch scratch = glrnn::test::layer_scratch(layer, chunk, x.cols(), out_width);
  RowMatrixXf y(x.rows(), out_width);
  for (Eigen::Index begin = 0; begin < x.rows(); begin += chunk) {
    const Eigen::Index n = std::min<Eigen::Index>(chunk, x.rows() - begin);
    layer.forward(x.middleRows(begin, n), pos0 + begin, state, y.middleRows(begin, n), scratch);
  }
  return y;
}

/// The layer contract: step-by-step and every chunking equal one pass.
template <class Layer>
void check_chunking_invariance(const Layer& layer, const RowMatrixXf& x, std::int64_t out_width) {
  const RowMatrixXf whole = run_in_chunks(layer, x, x.rows(), out_width);
  for (std::int64_t chunk : {1, 2, 3, 5, 8}) {
    CAPTURE(chunk);
    CHECK(max_rel_diff(run_in_chunks(layer, x, chunk, out_width), whole) < kFloatTolerance);
  }
}

// Conv1d has no scratch; give it the same calling shape as the other layers.
struct ConvAdapter {
  using State = glrnn::Conv1d::State;
  const glrnn::Conv1d& conv;
  State make_state() const { return conv.make_state(); }
  void forward(const glrnn::MatIn& x, std::int64_t pos0, State& s, glrnn::MatOut y, glrnn::Scratch&) const {
    conv.forward(x, pos0, s, y);
  }
};

}  // namespace

TEST_CASE("Conv1d: tap K-1 multiplies the current input, zero padding before position 0", "[layers]") {
  glrnn::test::RandomWeights rw(1);
  const std::int64_t C = 3, K = 4;
  const auto w = rw.tensor({C, 1, K});
  const auto b = rw.tensor({C});
  const glrnn::Conv1d conv({C, K}, {w, b});
  RowMatrixXf x = RowMatrixXf::Zero(7, C);
  x.row(0).setOnes();  // docs/recurrent_gemma.md §14.4: a one-hot impulse at t = 0
  const RowMatrixXf y = run_in_chunks(ConvAdapter{conv}, x, 7, C);
  for (std::int64_t t = 0; t < 7; ++t)
    for (std::int64_t c = 0; c < C; ++c) {
      const float tap = t < K ? w.data[c * K + (K - 1 - t)] : 0.0f;
      CHECK(y(t, c) == Approx(b.data[c] + tap).epsilon(1e-6));
    }

  SECTION("a stale history is ignored at position 0") {
    glrnn::Conv1d::State state = conv.make_state();
    state.history.setConstant(100.0f);
    RowMatrixXf y0(1, C);
    conv.forward(x.topRows(1), 0, state, y0);
    CHECK(max_rel_diff(y0, y.topRows(1)) == 0.0);
  }
  SECTION("chunking") { check_chunking_invariance(ConvAdapter{conv}, rw.matrix(11, C), C); }
}

TEST_CASE("RG-LRU: block-diagonal gates read as x · W[h], decay, and the position-0 reset", "[layers]") {
  glrnn::test::RandomWeights rw(2);
  const std::int64_t H = 2, bw = 3, Dr = H * bw, len = 6;
  glrnn::RgLruWeights w;
  w.input_gate_weight = rw.weight({H, bw, bw});  // random, so not symmetric
  w.recurrent_gate_weight = rw.weight({H, bw, bw});
  w.input_gate_bias = rw.tensor({H, bw}, 0.2f);
  w.recurrent_gate_bias = rw.tensor({H, bw}, 0.2f);
  w.recurrent_param = rw.tensor({Dr}, 0.5f);
  const glrnn::RgLru lru({Dr, H}, w);
  const RowMatrixXf x = rw.matrix(len, Dr);
  const float* wx = glrnn::test::f32(w.input_gate_weight);
  const float* wa = glrnn::test::f32(w.recurrent_gate_weight);

  // docs/recurrent_gemma.md §7.2, in double, loop by loop.
  RowMatrixXf expected(len, Dr);
  std::vector<double> h(static_cast<std::size_t>(Dr), 0.0);
  for (std::int64_t t = 0; t < len; ++t)
    for (std::int64_t blk = 0; blk < H; ++blk)
      for (std::int64_t j = 0; j < bw; ++j) {
        const std::int64_t c = blk * bw + j;
        double gx = w.input_gate_bias.data[c], ga = w.recurrent_gate_bias.data[c];
        for (std::int64_t i = 0; i < bw; ++i) {
          gx += x(t, blk * bw + i) * wx[(blk * bw + i) * bw + j];
          ga += x(t, blk * bw + i) * wa[(blk * bw + i) * bw + j];
        }
        gx = 1.0 / (1.0 + std::exp(-gx));
        ga = 1.0 / (1.0 + std::exp(-ga));
        const double log_a = -8.0 * ga * std::log1p(std::exp(static_cast<double>(w.recurrent_param.data[c])));
        const double mult = t == 0 ? 1.0 : std::sqrt(1.0 - std::exp(2.0 * log_a));
        h[c] = (t == 0 ? 0.0 : std::exp(log_a) * h[c]) + x(t, c) * gx * mult;
        expected(t, c) = static_cast<float>(h[c]);
      }
  CHECK(max_rel_diff(run_in_chunks(lru, x, len, Dr), expected) < kFloatTolerance);

  SECTION("the transposed reading of the gates gives other numbers") {
    glrnn::RgLruWeights transposed = w;
    std::vector<float> wt(static_cast<std::size_t>(H * bw * bw)), at(wt.size());
    for (std::int64_t blk = 0; blk < H; ++blk)
      for (std::int64_t i = 0; i < bw; ++i)
        for (std::int64_t j = 0; j < bw; ++j) {
          wt[(blk * bw + i) * bw + j] = wx[(blk * bw + j) * bw + i];
          at[(blk * bw + i) * bw + j] = wa[(blk * bw + j) * bw + i];
        }
    transposed.input_gate_weight.data = wt.data();
    transposed.recurrent_gate_weight.data = at.data();
    const glrnn::RgLru wrong({Dr, H}, transposed);
    CHECK(max_rel_diff(run_in_chunks(wrong, x, len, Dr), expected) > 1e-2);
  }
  SECTION("position 0 drops whatever state came in") {
    glrnn::RgLruState state = lru.make_state();
    state.h.setConstant(1e6f);
    glrnn::Scratch scratch = glrnn::test::layer_scratch(lru, 1, Dr, Dr);
    RowMatrixXf y0(1, Dr);
    lru.forward(x.topRows(1), 0, state, y0, scratch);
    CHECK(max_rel_diff(y0, expected.topRows(1)) < kFloatTolerance);
  }
  SECTION("bf16 gate storage computes the same as float storage of the same values") {
    glrnn::RgLruWeights wb = w;
    wb.input_gate_weight = rw.weight({H, bw, bw}, 0.5f, glrnn::WeightType::BF16);
    wb.recurrent_gate_weight = rw.weight({H, bw, bw}, 0.5f, glrnn::WeightType::BF16);
    std::vector<float> wi(static_cast<std::size_t>(H * bw * bw)), wr(wi.size());
    for (std::int64_t r = 0; r < H * bw; ++r) {
      wb.input_gate_weight.dequantize_row(r, wi.data() + r * bw);
      wb.recurrent_gate_weight.dequantize_row(r, wr.data() + r * bw);
    }
    glrnn::RgLruWeights wf = w;
    wf.input_gate_weight.data = wi.data();
    wf.recurrent_gate_weight.data = wr.data();
    const RowMatrixXf from_bf16 = run_in_chunks(glrnn::RgLru({Dr, H}, wb), x, len, Dr);
    CHECK(max_rel_diff(from_bf16, run_in_chunks(glrnn::RgLru({Dr, H}, wf), x, len, Dr)) < kFloatTolerance);
  }
  SECTION("chunking") { check_chunking_invariance(lru, rw.matrix(13, Dr), Dr); }
}

TEST_CASE("RoPE turns only the first rotated dims, pairing i with i + rotated/2", "[layers]") {
  const std::int64_t dh = 8, rotated = 4, pos = 5;
  const float theta = 10000.0f;
  const glrnn::Rope rope(dh, rotated, theta);
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8}, y = x;
  rope.apply(y.data(), 1, pos);
  for (std::int64_t i = 0; i < rotated / 2; ++i) {
    const double angle = pos / std::pow(10000.0, 2.0 * i / rotated);
    CHECK(y[i] == Approx(x[i] * std::cos(angle) - x[i + 2] * std::sin(angle)).epsilon(1e-5));
    CHECK(y[i + 2] == Approx(x[i + 2] * std::cos(angle) + x[i] * std::sin(angle)).epsilon(1e-5));
  }
  for (std::int64_t j = rotated; j < dh; ++j) CHECK(y[j] == x[j]);
}

TEST_CASE("Local attention sees exactly the last W positions, through the ring buffer", "[layers]") {
  glrnn::test::RandomWeights rw(3);
  // Grouped query heads (4 queries over 2 KV heads) exercise the head-to-group mapping too.
  const std::int64_t D = 12, H = 4, Hkv = 2, dh = 4, W = 5, len = 17, rotated = 2;
  glrnn::AttentionConfig cfg{D, H, Hkv, dh, W, rotated, 10000.0f};
  glrnn::AttentionWeights w{{rw.weight({H * dh, D}), {}},
                                  {rw.weight({Hkv * dh, D}), {}},
                                  {rw.weight({Hkv * dh, D}), {}},
                                  {rw.weight({D, H * dh}), rw.tensor({D}, 0.1f)}};
  const glrnn::Attention attention(cfg, w);
  const RowMatrixXf x = rw.matrix(len, D);

  // Independent evaluation with a window of `window` keys (docs/recurrent_gemma.md §8), in double.
  const auto naive = [&](std::int64_t window) {
    const auto project = [&](const glrnn::WeightMatrix& m, std::int64_t rows, std::int64_t t) {
      std::vector<double> out(static_cast<std::size_t>(rows), 0.0);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < D; ++c) out[r] += glrnn::test::f32(m)[r * D + c] * x(t, c);
      return out;
    };
    const auto rope = [&](std::vector<double>& v, std::int64_t heads, std::int64_t pos) {
      for (std::int64_t h = 0; h < heads; ++h)
        for (std::int64_t i = 0; i < rotated / 2; ++i) {
          const double angle = pos / std::pow(10000.0, 2.0 * i / rotated);
          double& a = v[h * dh + i];
          double& b = v[h * dh + i + rotated / 2];
          const double a0 = a, b0 = b;
          a = a0 * std::cos(angle) - b0 * std::sin(angle);
          b = b0 * std::cos(angle) + a0 * std::sin(angle);
        }
    };
    std::vector<std::vector<double>> keys, values;
    RowMatrixXf out(len, D);
    for (std::int64_t t = 0; t < len; ++t) {
      std::vector<double> q = project(w.q_proj.weight, H * dh, t), k = project(w.k_proj.weight, Hkv * dh, t);
      rope(q, H, t);
      rope(k, Hkv, t);
      keys.push_back(k);
      values.push_back(project(w.v_proj.weight, Hkv * dh, t));
      std::vector<double> heads(static_cast<std::size_t>(H * dh), 0.0);
      for (std::int64_t h = 0; h < H; ++h) {
        const std::int64_t g = h / (H / Hkv);
        std::vector<double> scores;
        double max_score = -1e300, total = 0.0;
        for (std::int64_t j = std::max<std::int64_t>(0, t - window + 1); j <= t; ++j) {
          double s = 0.0;
          for (std::int64_t d = 0; d < dh; ++d) s += q[h * dh + d] * keys[j][g * dh + d];
          scores.push_back(s / std::sqrt(static_cast<double>(dh)));
          max_score = std::max(max_score, scores.back());
        }
        for (double& s : scores) total += (s = std::exp(s - max_score));
        std::size_t n = 0;
        for (std::int64_t j = std::max<std::int64_t>(0, t - window + 1); j <= t; ++j, ++n)
          for (std::int64_t d = 0; d < dh; ++d) heads[h * dh + d] += scores[n] / total * values[j][g * dh + d];
      }
      for (std::int64_t r = 0; r < D; ++r) {
        double acc = w.o_proj.bias.data[r];
        for (std::int64_t c = 0; c < H * dh; ++c) acc += glrnn::test::f32(w.o_proj.weight)[r * H * dh + c] * heads[c];
        out(t, r) = static_cast<float>(acc);
      }
    }
    return out;
  };
  const RowMatrixXf expected = naive(W);
  // The fixture-free check only means something if the window choice changes the numbers.
  REQUIRE(max_rel_diff(naive(W + 1), expected) > 1e-2);
  CHECK(max_rel_diff(run_in_chunks(attention, x, len, D), expected) < kFloatTolerance);
  SECTION("chunking, including one position at a time past 3W (ring wrap)") {
    check_chunking_invariance(attention, x, D);
  }
}

TEST_CASE("A prompt's conv, norms and RG-LRU split between threads equal them row by row", "[layers]") {
  // Each row's arithmetic is the same whichever thread does it, so the results are bit-identical.
  // 300 rows of 512 channels are enough work for the loops to take 2 or 3 threads.
  const int saved = glrnn::num_threads();
  glrnn::set_num_threads(3);
  glrnn::test::RandomWeights rw(7);
  const std::int64_t T = 300, C = 512, K = 4, head = 64;
  const RowMatrixXf x = rw.matrix(T, C), gate = rw.matrix(T, C);
  auto rows_one_by_one = [&](auto&& f) {
    RowMatrixXf y(T, C);
    for (std::int64_t t = 0; t < T; ++t) f(t, y);
    return y;
  };

  const glrnn::Conv1d conv({C, K}, {rw.tensor({C, 1, K}), rw.tensor({C})});
  CHECK(max_rel_diff(run_in_chunks(ConvAdapter{conv}, x, T, C, 2), run_in_chunks(ConvAdapter{conv}, x, 1, C, 2)) == 0.0);

  const auto gain = rw.tensor({C});
  const glrnn::RmsNorm norm({C, 1e-6f, true}, gain);
  RowMatrixXf y(T, C);
  norm.forward(x, y);
  CHECK(max_rel_diff(y, rows_one_by_one([&](std::int64_t t, RowMatrixXf& out) { norm.forward(x.row(t), out.row(t)); })) == 0.0);

  const Eigen::RowVectorXf head_gain = Eigen::Map<const Eigen::RowVectorXf>(rw.tensor({head}).data, head);
  auto gated = [&](std::int64_t first, std::int64_t rows) {
    RowMatrixXf o = x.middleRows(first, rows), g = gate.middleRows(first, rows);
    glrnn::MatMap gm(g.data(), rows, C);
    glrnn::gated_rms_norm(o, &gm, head_gain, 1e-5f, o);
    return o;
  };
  CHECK(max_rel_diff(gated(0, T), rows_one_by_one([&](std::int64_t t, RowMatrixXf& out) { out.row(t) = gated(t, 1); })) == 0.0);

  // The RG-LRU's gates by rows and its update by ranges of channels, against one position at a
  // time (whose gate products take the one-row kernel: float32 reassociation, kFloatTolerance).
  const std::int64_t H = 4, bw = C / H;
  glrnn::RgLruWeights lw;
  lw.input_gate_weight = rw.weight({H, bw, bw}, 0.1f);
  lw.recurrent_gate_weight = rw.weight({H, bw, bw}, 0.1f);
  lw.input_gate_bias = rw.tensor({H, bw}, 0.2f);
  lw.recurrent_gate_bias = rw.tensor({H, bw}, 0.2f);
  lw.recurrent_param = rw.tensor({C}, 0.5f);
  const glrnn::RgLru lru({C, H}, lw);
  CHECK(max_rel_diff(run_in_chunks(lru, x, T, C), run_in_chunks(lru, x, 1, C)) < kFloatTolerance);
  glrnn::set_num_threads(saved);
}

TEST_CASE("RMSNorm: Gemma's 1 + w gain, and a plain w gain", "[layers]") {
  const std::vector<float> zeros(4, 0.0f), twos(4, 2.0f);
  RowMatrixXf x(1, 4);
  x << 1.0f, -2.0f, 3.0f, -4.0f;
  const double rms = std::sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
  RowMatrixXf y(1, 4);
  glrnn::RmsNorm({4, 1e-6f, true}, {zeros.data(), Shape{4}}).forward(x, y);  // w = 0: pure normalisation
  for (int i = 0; i < 4; ++i) CHECK(y(0, i) == Approx(x(0, i) / rms).epsilon(1e-6));
  glrnn::RmsNorm({4, 1e-6f, false}, {twos.data(), Shape{4}}).forward(x, y);
  for (int i = 0; i < 4; ++i) CHECK(y(0, i) == Approx(2.0 * x(0, i) / rms).epsilon(1e-6));
  CHECK_THROWS_AS(glrnn::RmsNorm({5, 1e-6f, true}, {zeros.data(), Shape{4}}), glrnn::ShapeError);
}

TEST_CASE("GeGLU MLP: activation on the gate branch only", "[layers]") {
  glrnn::test::RandomWeights rw(4);
  const std::int64_t D = 6, F = 5;
  glrnn::MlpWeights w{{rw.weight({F, D}), rw.tensor({F}, 0.1f)},
                      {rw.weight({F, D}), rw.tensor({F}, 0.1f)},
                      {rw.weight({D, F}), rw.tensor({D}, 0.1f)}};
  const glrnn::Mlp mlp({D, F, glrnn::Activation::GeluTanh}, w);
  const RowMatrixXf x = rw.matrix(3, D);
  RowMatrixXf y(3, D), expected(3, D);
  glrnn::Scratch scratch = glrnn::test::measured_scratch(3, [&](glrnn::Scratch& meter) { mlp.forward(x, y, meter); });
  mlp.forward(x, y, scratch);
  const float *gate = glrnn::test::f32(w.gate_proj.weight), *up = glrnn::test::f32(w.up_proj.weight),
              *down = glrnn::test::f32(w.down_proj.weight);
  for (std::int64_t t = 0; t < 3; ++t) {
    std::vector<double> hidden(static_cast<std::size_t>(F));
    for (std::int64_t f = 0; f < F; ++f) {
      double g = w.gate_proj.bias.data[f], u = w.up_proj.bias.data[f];
      for (std::int64_t d = 0; d < D; ++d) {
        g += gate[f * D + d] * x(t, d);
        u += up[f * D + d] * x(t, d);
      }
      hidden[f] = 0.5 * g * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g))) * u;
    }
    for (std::int64_t d = 0; d < D; ++d) {
      double acc = w.down_proj.bias.data[d];
      for (std::int64_t f = 0; f < F; ++f) acc += down[d * F + f] * hidden[f];
      expected(t, d) = static_cast<float>(acc);
    }
  }
  CHECK(max_rel_diff(y, expected) < kFloatTolerance);
}

TEST_CASE("Recurrent block: one pass equals steps and chunks", "[layers]") {
  glrnn::test::RandomWeights rw(5);
  const std::int64_t D = 8, Dr = 12, H = 3, K = 4, bw = Dr / H;
  glrnn::RecurrentBlockWeights w;
  w.linear_y = {rw.weight({Dr, D}), rw.tensor({Dr}, 0.1f)};
  w.linear_x = {rw.weight({Dr, D}), rw.tensor({Dr}, 0.1f)};
  w.linear_out = {rw.weight({D, Dr}), rw.tensor({D}, 0.1f)};
  w.conv_1d = {rw.tensor({Dr, 1, K}), rw.tensor({Dr}, 0.1f)};
  w.rg_lru = {rw.weight({H, bw, bw}), rw.weight({H, bw, bw}), rw.tensor({H, bw}), rw.tensor({H, bw}), rw.tensor({Dr})};
  const glrnn::RecurrentBlock block({D, Dr, H, K}, w);
  check_chunking_invariance(block, rw.matrix(15, D), D);
}

