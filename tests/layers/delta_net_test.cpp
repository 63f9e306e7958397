// The delta-rule mixers (DeltaNet, Gated DeltaNet) against a loop-by-loop evaluation of fla's
// formulas in double; the chunk-parallel prefill against the recurrence at every chunk size and
// over several thousand positions; steps, chunkings and batched decode against one pass.

#include <algorithm>  // std::max, std::min
#include <cmath>      // std::exp, std::log1p, std::sqrt
#include <cstdint>    // std::int64_t
#include <vector>     // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/layer_contract.hpp"
#include "support/random_weights.hpp"

namespace {

using glrnn::RowMatrixXf;
using Vec = std::vector<double>;

// float32 against double: a few ulps per operation; the delta rule's state stays bounded (its
// transition I − β k k^T has eigenvalues in [−1, 1] for normalised keys).
constexpr double kDeltaTolerance = 2e-5;

using glrnn::test::check_mixer_contract;
using glrnn::test::max_rel_diff;
using glrnn::test::run_mixer_in_chunks;

Vec matvec(const float* m, std::int64_t rows, std::int64_t cols, const RowMatrixXf& x, std::int64_t t) {
  Vec out(static_cast<std::size_t>(rows), 0.0);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) out[r] += m[r * cols + c] * x(t, c);
  return out;
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }

/// fla's DeltaNet / GatedDeltaNet layer (docs/delta_net.md §3), position by position in double.
RowMatrixXf naive_delta(const glrnn::DeltaNetMixerConfig& c, const glrnn::DeltaNetMixerWeights& w, const RowMatrixXf& x) {
  const std::int64_t H = c.heads, HV = c.value_heads, dk = c.key_dim, dv = c.value_dim, D = c.hidden;
  const std::int64_t K = c.conv_size;
  std::vector<Vec> raw[3];
  std::vector<Vec> S(static_cast<std::size_t>(HV), Vec(static_cast<std::size_t>(dk * dv), 0.0));
  RowMatrixXf out(x.rows(), D);
  const glrnn::WeightMatrix* proj[3] = {&w.q_proj.weight, &w.k_proj.weight, &w.v_proj.weight};
  const glrnn::TensorView<const float>* conv[3] = {&w.q_conv.weight, &w.k_conv.weight, &w.v_conv.weight};
  for (std::int64_t t = 0; t < x.rows(); ++t) {
    Vec qkv[3];
    for (int p = 0; p < 3; ++p) {
      raw[p].push_back(matvec(glrnn::test::f32(*proj[p]), proj[p]->rows, D, x, t));
      Vec y = raw[p].back();
      if (c.short_conv) {
        for (std::size_t ch = 0; ch < y.size(); ++ch) {
          double acc = 0.0;
          for (std::int64_t tap = 0; tap < K; ++tap) {
            const std::int64_t j = t - (K - 1) + tap;
            if (j >= 0) acc += conv[p]->data[static_cast<std::int64_t>(ch) * K + tap] * raw[p][static_cast<std::size_t>(j)][ch];
          }
          y[ch] = acc;
        }
      }
      const bool silu_here = p == 2 || c.qk_activation == glrnn::QkActivation::Silu;
      if (silu_here)
        for (double& e : y) e = silu(e);
      qkv[p] = y;
    }
    for (int p = 0; p < 2; ++p) {
      for (double& e : qkv[p]) {
        if (c.qk_activation == glrnn::QkActivation::Relu) e = std::max(e, 0.0);
        if (c.qk_activation == glrnn::QkActivation::EluPlusOne) e = e > 0 ? e + 1.0 : std::exp(e);
      }
      for (std::int64_t h = 0; h < H; ++h) {
        double norm = 0.0;
        for (std::int64_t d = 0; d < dk; ++d)
          norm += c.qk_norm == glrnn::QkNorm::L2 ? qkv[p][h * dk + d] * qkv[p][h * dk + d] : qkv[p][h * dk + d];
        if (c.qk_norm == glrnn::QkNorm::L2) norm = std::sqrt(norm + 1e-6);
        for (std::int64_t d = 0; d < dk; ++d) qkv[p][h * dk + d] /= norm;
      }
    }
    const Vec beta_raw = c.use_beta ? matvec(w.b_proj.data, HV, D, x, t) : Vec(static_cast<std::size_t>(HV), 0.0);
    const Vec a_raw = c.gated ? matvec(w.a_proj.data, HV, D, x, t) : Vec();
    Vec o(static_cast<std::size_t>(HV * dv), 0.0);
    for (std::int64_t j = 0; j < HV; ++j) {
      const std::int64_t h = j / (HV / H);
      double beta = c.use_beta ? 1.0 / (1.0 + std::exp(-beta_raw[j])) : 1.0;
      if (c.allow_neg_eigval) beta *= 2.0;
      Vec& s = S[static_cast<std::size_t>(j)];
      if (c.gated) {
        const double z = a_raw[j] + w.dt_bias.data[j];
        const double g = -std::exp(double(w.a_log.data[j])) * (z > 20 ? z : std::log1p(std::exp(z)));
        for (double& e : s) e *= std::exp(g);
      }
      for (std::int64_t b = 0; b < dv; ++b) {
        double recalled = 0.0;
        for (std::int64_t a = 0; a < dk; ++a) recalled += s[a * dv + b] * qkv[1][h * dk + a];
        const double u = beta * (qkv[2][j * dv + b] - recalled);
        for (std::int64_t a = 0; a < dk; ++a) s[a * dv + b] += qkv[1][h * dk + a] * u;
      }
      for (std::int64_t b = 0; b < dv; ++b)
        for (std::int64_t a = 0; a < dk; ++a) o[j * dv + b] += qkv[0][h * dk + a] / std::sqrt(double(dk)) * s[a * dv + b];
    }
    const Vec gate = c.output_gate ? matvec(glrnn::test::f32(w.g_proj.weight), HV * dv, D, x, t) : Vec();
    for (std::int64_t j = 0; j < HV; ++j) {
      double ms = 0.0;
      for (std::int64_t b = 0; b < dv; ++b) ms += o[j * dv + b] * o[j * dv + b];
      const double inv = 1.0 / std::sqrt(ms / dv + c.norm_eps);
      for (std::int64_t b = 0; b < dv; ++b) {
        o[j * dv + b] *= inv * w.o_norm.data[b];
        if (c.output_gate) o[j * dv + b] *= silu(gate[j * dv + b]);
      }
    }
    const Vec y = [&] {
      Vec r(static_cast<std::size_t>(D), 0.0);
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t e = 0; e < HV * dv; ++e) r[d] += glrnn::test::f32(w.o_proj.weight)[d * HV * dv + e] * o[e];
      return r;
    }();
    for (std::int64_t d = 0; d < D; ++d) out(t, d) = static_cast<float>(y[d]);
  }
  return out;
}

struct DeltaLayer {
  glrnn::DeltaNetMixerConfig cfg;
  glrnn::DeltaNetMixerWeights w;
};

DeltaLayer random_delta(glrnn::test::RandomWeights& rw, bool gated) {
  DeltaLayer l;
  glrnn::DeltaNetMixerConfig& c = l.cfg;
  c.hidden = 16;
  c.heads = 2;
  c.value_heads = gated ? 4 : 2;  // Gated DeltaNet: two value heads per key head
  c.key_dim = 6;
  c.value_dim = gated ? 5 : 8;
  c.gated = gated;
  c.output_gate = gated;
  c.conv_size = 3;
  c.norm_eps = 1e-6f;
  c.chunk_size = 5;
  glrnn::DeltaNetMixerWeights& w = l.w;
  w.q_proj = {rw.weight({c.k_width(), c.hidden}), {}};
  w.k_proj = {rw.weight({c.k_width(), c.hidden}), {}};
  w.v_proj = {rw.weight({c.v_width(), c.hidden}), {}};
  w.g_proj = {rw.weight({c.v_width(), c.hidden}), {}};
  w.o_proj = {rw.weight({c.hidden, c.v_width()}), {}};
  w.b_proj = rw.tensor({c.value_heads, c.hidden});
  w.a_proj = rw.tensor({c.value_heads, c.hidden});
  w.a_log = rw.tensor({c.value_heads}, 0.5f, -1.0f);
  w.dt_bias = rw.tensor({c.value_heads}, 0.5f, -2.0f);
  w.o_norm = rw.tensor({c.value_dim}, 0.2f, 1.0f);
  w.q_conv = {rw.tensor({c.k_width(), 1, c.conv_size}), {}};
  w.k_conv = {rw.tensor({c.k_width(), 1, c.conv_size}), {}};
  w.v_conv = {rw.tensor({c.v_width(), 1, c.conv_size}), {}};
  return l;
}

}  // namespace

TEST_CASE("DeltaNet mixer: fla's delta rule, short convolutions, L2 or sum norms", "[layers]") {
  glrnn::test::RandomWeights rw(31);
  DeltaLayer l = random_delta(rw, false);
  const RowMatrixXf x = rw.matrix(23, l.cfg.hidden);
  SECTION("fla's defaults") {
    const glrnn::DeltaNetMixer mixer(l.cfg, l.w);
    CHECK(max_rel_diff(run_mixer_in_chunks(mixer, x, x.rows()), naive_delta(l.cfg, l.w, x)) < kDeltaTolerance);
    check_mixer_contract(mixer, x, kDeltaTolerance);
  }
  SECTION("elu + 1 and sum norm, no convolution, negative eigenvalues, no beta projection") {
    l.cfg.qk_activation = glrnn::QkActivation::EluPlusOne;
    l.cfg.qk_norm = glrnn::QkNorm::Sum;
    l.cfg.short_conv = false;
    l.cfg.allow_neg_eigval = true;
    l.cfg.use_beta = false;
    const glrnn::DeltaNetMixer mixer(l.cfg, l.w);
    CHECK(max_rel_diff(run_mixer_in_chunks(mixer, x, x.rows()), naive_delta(l.cfg, l.w, x)) < kDeltaTolerance);
    check_mixer_contract(mixer, x, kDeltaTolerance);
  }
}

TEST_CASE("Gated DeltaNet mixer: decay from A_log and dt_bias, grouped value heads, output gate", "[layers]") {
  glrnn::test::RandomWeights rw(32);
  const DeltaLayer l = random_delta(rw, true);
  const glrnn::DeltaNetMixer mixer(l.cfg, l.w);
  const RowMatrixXf x = rw.matrix(23, l.cfg.hidden);
  CHECK(max_rel_diff(run_mixer_in_chunks(mixer, x, x.rows()), naive_delta(l.cfg, l.w, x)) < kDeltaTolerance);
  check_mixer_contract(mixer, x, kDeltaTolerance);
}

TEST_CASE("Delta rule: the chunked prefill equals the recurrence at every chunk size", "[layers]") {
  glrnn::test::RandomWeights rw(33);
  for (const bool gated : {false, true}) {
    DeltaLayer l = random_delta(rw, gated);
    const RowMatrixXf x = rw.matrix(4000, l.cfg.hidden);
    l.cfg.chunk_size = 0;
    const RowMatrixXf expected = run_mixer_in_chunks(glrnn::DeltaNetMixer(l.cfg, l.w), x, x.rows());
    for (const std::int64_t chunk : std::vector<std::int64_t>{1, 2, 7, 64, glrnn::DeltaNetMixerConfig{}.chunk_size}) {
      CAPTURE(chunk, gated);
      l.cfg.chunk_size = chunk;
      // Float32 reassociation within a chunk of up to 64 positions; no growth with the length.
      CHECK(max_rel_diff(run_mixer_in_chunks(glrnn::DeltaNetMixer(l.cfg, l.w), x, x.rows()), expected) < 1e-4);
    }
  }
}

TEST_CASE("Delta rule: with bf16 products the chunked prefill stays near the recurrence", "[layers]") {
  // The bf16-activation mode's chunk (DeltaRuleConfig::precision): q, k, the corrections and the
  // state rounded to bf16 where they are multiplied, on paths that multiply bf16 (amx; float32
  // elsewhere, where this holds all the more). bf16 keeps 8 significant bits, 2^-9 relative per
  // rounding; after the per-head norm the outputs carry about 0.5% (RMS, measured on amx: 0.40-0.57%
  // from the first chunk to 4,000 positions), so 1% bounds it. The state's transition does not
  // amplify errors: the last 1,000 positions are held to the same bound as the whole.
  glrnn::test::RandomWeights rw(35);
  const auto rms_rel = [](const RowMatrixXf& a, const RowMatrixXf& b) { return (a - b).norm() / b.norm(); };
  for (const bool gated : {false, true}) {
    CAPTURE(gated);
    DeltaLayer l = random_delta(rw, gated);
    const RowMatrixXf x = rw.matrix(4000, l.cfg.hidden);
    l.cfg.chunk_size = 0;
    const RowMatrixXf expected = run_mixer_in_chunks(glrnn::DeltaNetMixer(l.cfg, l.w), x, x.rows());
    l.cfg.chunk_size = glrnn::DeltaNetMixerConfig{}.chunk_size;
    l.cfg.precision = glrnn::kernels::Precision::Bf16;
    const RowMatrixXf got = run_mixer_in_chunks(glrnn::DeltaNetMixer(l.cfg, l.w), x, x.rows());
    CHECK(rms_rel(got, expected) < 1e-2);
    CHECK(rms_rel(got.bottomRows(1000), expected.bottomRows(1000)) < 1e-2);
  }
}
