// The fla layers (GLA and retention mixers, HGRN, full attention, the gated-linear-attention
// recurrence) against independent loop-by-loop evaluations of fla's formulas in double, plus the
// layer contract: one pass equals steps and any chunking, batched decode equals single.

#include <algorithm>  // std::max, std::min
#include <cmath>      // std::exp, std::log, std::log1p, std::pow, std::sqrt, std::cos, std::sin
#include <cstdint>    // std::int64_t
#include <vector>     // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/layer_contract.hpp"
#include "support/random_weights.hpp"

namespace {

using glrnn::RowMatrixXf;
using glrnn::Shape;
using Vec = std::vector<double>;

// float32 evaluation against double: a few ulps per operation over sums of a few dozen terms, and
// recurrences whose decays keep the state bounded.
constexpr double kFloatTolerance = 2e-5;

using glrnn::test::check_mixer_contract;
using glrnn::test::max_rel_diff;
using glrnn::test::run_mixer_in_chunks;

Vec project(const glrnn::WeightMatrix& m, const RowMatrixXf& x, std::int64_t t) {
  Vec out(static_cast<std::size_t>(m.rows), 0.0);
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = 0; c < m.cols; ++c) out[r] += glrnn::test::f32(m)[r * m.cols + c] * x(t, c);
  return out;
}

/// fla's ShortConvolution over rows of raw inputs (tap K-1 is the current one), then act.
Vec causal_conv(const std::vector<Vec>& raw, std::int64_t t, const glrnn::TensorView<const float>& w, bool silu_after) {
  const std::int64_t C = w.shape[0], K = w.shape[2];
  Vec out(static_cast<std::size_t>(C), 0.0);
  for (std::int64_t c = 0; c < C; ++c) {
    for (std::int64_t k = 0; k < K; ++k) {
      const std::int64_t j = t - (K - 1) + k;
      if (j >= 0) out[c] += w.data[c * K + k] * raw[static_cast<std::size_t>(j)][c];
    }
    if (silu_after) out[c] = out[c] / (1.0 + std::exp(-out[c]));
  }
  return out;
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }
double log_sigmoid(double v) { return -std::log1p(std::exp(-v)); }

void rope(Vec& v, std::int64_t heads, std::int64_t dim, std::int64_t pos, double theta) {
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t i = 0; i < dim / 2; ++i) {
      const double angle = pos / std::pow(theta, 2.0 * i / dim);
      double& a = v[h * dim + i];
      double& b = v[h * dim + i + dim / 2];
      const double a0 = a, b0 = b;
      a = a0 * std::cos(angle) - b0 * std::sin(angle);
      b = b0 * std::cos(angle) + a0 * std::sin(angle);
    }
}

/// RMSNorm over `width`-wide groups times a gain, then times swish(gate) (fla's FusedRMSNormGated).
void gated_norm(Vec& o, const Vec* gate, const float* gain, std::int64_t width, double eps) {
  for (std::size_t h0 = 0; h0 < o.size(); h0 += static_cast<std::size_t>(width)) {
    double ms = 0.0;
    for (std::int64_t d = 0; d < width; ++d) ms += o[h0 + d] * o[h0 + d];
    const double inv = 1.0 / std::sqrt(ms / width + eps);
    for (std::int64_t d = 0; d < width; ++d) {
      o[h0 + d] *= inv * (gain ? gain[d] : 1.0);
      if (gate) o[h0 + d] *= silu((*gate)[h0 + d]);
    }
  }
}

RowMatrixXf output(const glrnn::WeightMatrix& o_proj, const std::vector<Vec>& heads) {
  RowMatrixXf out(static_cast<Eigen::Index>(heads.size()), o_proj.rows);
  for (std::size_t t = 0; t < heads.size(); ++t)
    for (std::int64_t r = 0; r < o_proj.rows; ++r) {
      double acc = 0.0;
      for (std::int64_t c = 0; c < o_proj.cols; ++c) acc += glrnn::test::f32(o_proj)[r * o_proj.cols + c] * heads[t][c];
      out(static_cast<Eigen::Index>(t), r) = static_cast<float>(acc);
    }
  return out;
}

/// GlaMixer's formulas (docs/gla.md §2, docs/retnet.md §2), position by position in double.
RowMatrixXf naive_gla(const glrnn::GlaMixerConfig& c, const glrnn::GlaMixerWeights& w, const RowMatrixXf& x) {
  const std::int64_t H = c.heads, Hkv = c.kv_heads, dk = c.key_dim, dv = c.value_dim, group = H / Hkv;
  const bool retention = c.decay == glrnn::GlaDecay::Retention;
  const std::int64_t Hs = retention ? H : Hkv;
  std::vector<Vec> raw_q, raw_k, raw_v, heads;
  std::vector<Vec> S(static_cast<std::size_t>(Hs), Vec(static_cast<std::size_t>(dk * dv), 0.0));
  for (std::int64_t t = 0; t < x.rows(); ++t) {
    raw_q.push_back(project(w.q_proj.weight, x, t));
    raw_k.push_back(project(w.k_proj.weight, x, t));
    raw_v.push_back(project(w.v_proj.weight, x, t));
    Vec q = raw_q.back(), k = raw_k.back(), v = raw_v.back();
    if (c.short_conv) {
      q = causal_conv(raw_q, t, w.q_conv.weight, true);
      k = causal_conv(raw_k, t, w.k_conv.weight, true);
      v = causal_conv(raw_v, t, w.v_conv.weight, true);
    }
    Vec g(static_cast<std::size_t>(Hs * dk));
    if (retention) {
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t d = 0; d < dk; ++d) g[h * dk + d] = std::log(1.0 - std::pow(2.0, -5.0 - h));
      rope(q, H, dk, t, c.rope_theta);
      rope(k, Hkv, dk, t, c.rope_theta);
    } else {
      Vec low(static_cast<std::size_t>(c.gate_rank), 0.0);
      for (std::int64_t r = 0; r < c.gate_rank; ++r)
        for (std::int64_t d = 0; d < c.hidden; ++d) low[r] += w.gate_down.data[r * c.hidden + d] * x(t, d);
      for (std::int64_t a = 0; a < Hkv * dk; ++a) {
        double z = w.gate_up_bias.data[a];
        for (std::int64_t r = 0; r < c.gate_rank; ++r) z += w.gate_up.data[a * c.gate_rank + r] * low[r];
        g[a] = log_sigmoid(z) / c.gate_logit_normalizer;
        if (c.clamp) g[a] = std::max(g[a], static_cast<double>(c.clamp_min));
      }
    }
    Vec o(static_cast<std::size_t>(H * dv), 0.0);
    for (std::int64_t s = 0; s < Hs; ++s) {
      const std::int64_t kv = retention ? s / group : s;
      for (std::int64_t i = 0; i < dk; ++i)
        for (std::int64_t j = 0; j < dv; ++j)
          S[s][i * dv + j] = std::exp(g[s * dk + i]) * S[s][i * dv + j] + k[kv * dk + i] * v[kv * dv + j];
    }
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t s = retention ? h : h / group;
      for (std::int64_t j = 0; j < dv; ++j)
        for (std::int64_t i = 0; i < dk; ++i) o[h * dv + j] += q[h * dk + i] / std::sqrt(double(dk)) * S[s][i * dv + j];
    }
    const Vec gate = c.output_gate ? project(w.g_proj.weight, x, t) : Vec();
    gated_norm(o, c.output_gate ? &gate : nullptr, w.g_norm.empty() ? nullptr : w.g_norm.data, dv, c.norm_eps);
    heads.push_back(o);
  }
  return output(w.o_proj.weight, heads);
}

struct GlaLayer {
  glrnn::GlaMixerConfig cfg;
  glrnn::GlaMixerWeights w;
};

GlaLayer random_gla(glrnn::test::RandomWeights& rw, glrnn::GlaDecay decay, bool conv) {
  GlaLayer l;
  glrnn::GlaMixerConfig& c = l.cfg;
  c.hidden = 16;
  c.heads = 4;
  c.kv_heads = 2;
  c.key_dim = 4;
  c.value_dim = 6;
  c.decay = decay;
  c.gate_rank = 3;
  c.short_conv = conv;
  c.conv_size = 3;
  c.chunk_size = 5;  // several chunks, and sub-blocks of the chunk form, in a short test
  glrnn::GlaMixerWeights& w = l.w;
  w.q_proj = {rw.weight({c.q_width(), c.hidden}), {}};
  w.k_proj = {rw.weight({c.k_width(), c.hidden}), {}};
  w.v_proj = {rw.weight({c.v_width(), c.hidden}), {}};
  w.g_proj = {rw.weight({c.o_width(), c.hidden}), {}};
  w.o_proj = {rw.weight({c.hidden, c.o_width()}), {}};
  w.gate_down = rw.tensor({c.gate_rank, c.hidden});
  w.gate_up = rw.tensor({c.k_width(), c.gate_rank});
  w.gate_up_bias = rw.tensor({c.k_width()}, 1.0f, 2.0f);  // decays near 1, as trained models have
  w.g_norm = rw.tensor({c.value_dim}, 0.2f, 1.0f);
  w.q_conv = {rw.tensor({c.q_width(), 1, c.conv_size}), {}};
  w.k_conv = {rw.tensor({c.k_width(), 1, c.conv_size}), {}};
  w.v_conv = {rw.tensor({c.v_width(), 1, c.conv_size}), {}};
  return l;
}

}  // namespace

TEST_CASE("GLA mixer: fla's formulas, grouped heads, short convolutions, clamp", "[layers]") {
  glrnn::test::RandomWeights rw(21);
  GlaLayer l = random_gla(rw, glrnn::GlaDecay::LowRankGate, true);
  const RowMatrixXf x = rw.matrix(23, l.cfg.hidden);
  SECTION("as given") {
    const glrnn::GlaMixer mixer(l.cfg, l.w);
    CHECK(max_rel_diff(run_mixer_in_chunks(mixer, x, x.rows()), naive_gla(l.cfg, l.w, x)) < kFloatTolerance);
    check_mixer_contract(mixer, x, kFloatTolerance);
  }
  SECTION("clamped decay, no output gate, no convolution") {
    l.cfg.clamp = true;
    l.cfg.clamp_min = -0.05f;
    l.cfg.output_gate = false;
    l.cfg.short_conv = false;
    const glrnn::GlaMixer mixer(l.cfg, l.w);
    const RowMatrixXf expected = naive_gla(l.cfg, l.w, x);
    CHECK(max_rel_diff(run_mixer_in_chunks(mixer, x, x.rows()), expected) < kFloatTolerance);
    // The clamp must matter for this check to mean anything.
    l.cfg.clamp = false;
    REQUIRE(max_rel_diff(naive_gla(l.cfg, l.w, x), expected) > 1e-3);
  }
}

TEST_CASE("Retention mixer: fixed per-head decays, rotary queries and keys, grouped heads", "[layers]") {
  glrnn::test::RandomWeights rw(22);
  const GlaLayer l = random_gla(rw, glrnn::GlaDecay::Retention, false);
  const glrnn::GlaMixer mixer(l.cfg, l.w);
  const RowMatrixXf x = rw.matrix(23, l.cfg.hidden);
  CHECK(max_rel_diff(run_mixer_in_chunks(mixer, x, x.rows()), naive_gla(l.cfg, l.w, x)) < kFloatTolerance);
  check_mixer_contract(mixer, x, kFloatTolerance);
}

TEST_CASE("GLA recurrence: the chunked prefill equals the recurrence at every chunk size", "[layers]") {
  // A long prompt with decays near 1 (where a naive chunk form overflows), both decay kinds.
  glrnn::test::RandomWeights rw(23);
  for (const glrnn::GlaDecay decay : {glrnn::GlaDecay::LowRankGate, glrnn::GlaDecay::Retention}) {
    GlaLayer l = random_gla(rw, decay, false);
    const RowMatrixXf x = rw.matrix(3000, l.cfg.hidden);
    l.cfg.chunk_size = 0;
    glrnn::GlaMixer sequential(l.cfg, l.w);
    const RowMatrixXf expected = run_mixer_in_chunks(sequential, x, x.rows());
    for (const std::int64_t chunk : std::vector<std::int64_t>{1, 2, 7, 64, glrnn::GlaMixerConfig{}.chunk_size}) {
      CAPTURE(chunk, static_cast<int>(decay));
      l.cfg.chunk_size = chunk;
      const glrnn::GlaMixer chunked(l.cfg, l.w);
      // Float32 reassociation across a chunk of up to 64 positions, no growth with the length.
      CHECK(max_rel_diff(run_mixer_in_chunks(chunked, x, x.rows()), expected) < 1e-4);
    }
  }
}

TEST_CASE("HGRN mixer: fla's element-wise recurrence, lower bound, gated norm", "[layers]") {
  glrnn::test::RandomWeights rw(24);
  const std::int64_t D = 10, E = 10, K = 4, len = 19;
  glrnn::HgrnMixerConfig c{D, E, true, K, 1e-6f};
  glrnn::HgrnMixerWeights w;
  w.i_proj = {rw.weight({E, D}), {}};
  w.f_proj = {rw.weight({E, D}), {}};
  w.g_proj = {rw.weight({E, D}), {}};
  w.o_proj = {rw.weight({D, E}), {}};
  w.g_norm = rw.tensor({E}, 0.2f, 1.0f);
  w.i_conv = {rw.tensor({E, 1, K}), {}};
  w.f_conv = {rw.tensor({E, 1, K}), {}};
  Eigen::VectorXf bound = (rw.matrix(E, 1, 0.3f).array().abs() + 0.1f).min(0.9f);
  const glrnn::HgrnMixer mixer(c, w, bound);
  const RowMatrixXf x = rw.matrix(len, D);
  std::vector<Vec> raw_i, raw_f, heads;
  Vec h(static_cast<std::size_t>(E), 0.0);
  for (std::int64_t t = 0; t < len; ++t) {
    raw_i.push_back(project(w.i_proj.weight, x, t));
    raw_f.push_back(project(w.f_proj.weight, x, t));
    const Vec i = causal_conv(raw_i, t, w.i_conv.weight, false), f = causal_conv(raw_f, t, w.f_conv.weight, false);
    for (std::int64_t e = 0; e < E; ++e) {
      const double forget = bound[e] + (1.0 - bound[e]) / (1.0 + std::exp(-f[e]));
      h[e] = forget * h[e] + silu(i[e]) * (1.0 - forget);
    }
    Vec o = h;
    const Vec gate = project(w.g_proj.weight, x, t);
    gated_norm(o, &gate, w.g_norm.data, E, c.norm_eps);
    heads.push_back(o);
  }
  CHECK(max_rel_diff(run_mixer_in_chunks(mixer, x, len), output(w.o_proj.weight, heads)) < kFloatTolerance);
  check_mixer_contract(mixer, x, kFloatTolerance);
}

TEST_CASE("Full attention: every earlier position, a cache that grows to the maximum context", "[layers]") {
  glrnn::test::RandomWeights rw(25);
  const std::int64_t D = 8, H = 4, Hkv = 2, dh = 4;
  const auto naive = [&](const glrnn::Attention& a, const glrnn::AttentionWeights& w, const RowMatrixXf& x) {
    std::vector<Vec> keys, values, heads;
    for (std::int64_t t = 0; t < x.rows(); ++t) {
      Vec q = project(w.q_proj.weight, x, t), k = project(w.k_proj.weight, x, t), v = project(w.v_proj.weight, x, t);
      for (std::int64_t i = 0; i < H * dh; ++i) q[i] += w.q_proj.bias.data[i];
      for (std::int64_t i = 0; i < Hkv * dh; ++i) {
        k[i] += w.k_proj.bias.data[i];
        v[i] += w.v_proj.bias.data[i];
      }
      rope(q, H, dh, t, a.config().rope_theta);
      rope(k, Hkv, dh, t, a.config().rope_theta);
      keys.push_back(k);
      values.push_back(v);
      Vec o(static_cast<std::size_t>(H * dh), 0.0);
      for (std::int64_t h = 0; h < H; ++h) {
        const std::int64_t g = h / (H / Hkv);
        Vec s;
        double top = -1e300, total = 0.0;
        for (std::int64_t j = 0; j <= t; ++j) {
          double dot = 0.0;
          for (std::int64_t d = 0; d < dh; ++d) dot += q[h * dh + d] * keys[j][g * dh + d];
          s.push_back(dot / std::sqrt(double(dh)));
          top = std::max(top, s.back());
        }
        for (double& e : s) total += (e = std::exp(e - top));
        for (std::int64_t j = 0; j <= t; ++j)
          for (std::int64_t d = 0; d < dh; ++d) o[h * dh + d] += s[j] / total * values[j][g * dh + d];
      }
      heads.push_back(o);
    }
    return output(w.o_proj.weight, heads);
  };
  // Full attention (no window) with q/k/v biases, up to max_context positions.
  const auto full_attention = [&](std::int64_t max_context) {
    glrnn::AttentionConfig cfg{D, H, Hkv, dh, 0, dh, 500000.0f};
    cfg.max_context = max_context;
    glrnn::AttentionWeights w{{rw.weight({H * dh, D}), rw.tensor({H * dh}, 0.1f)},
                              {rw.weight({Hkv * dh, D}), rw.tensor({Hkv * dh}, 0.1f)},
                              {rw.weight({Hkv * dh, D}), rw.tensor({Hkv * dh}, 0.1f)},
                              {rw.weight({D, H * dh}), {}}};
    return std::make_pair(cfg, w);
  };
  SECTION("against the formulas, and the layer contract") {
    const auto [cfg, w] = full_attention(64);
    const glrnn::Attention attention(cfg, w);
    const RowMatrixXf x = rw.matrix(29, D);
    CHECK(max_rel_diff(run_mixer_in_chunks(attention, x, x.rows()), naive(attention, w, x)) < kFloatTolerance);
    check_mixer_contract(attention, x, kFloatTolerance);
  }
  SECTION("past one softmax tile of keys (a running softmax)") {
    const auto [cfg, w] = full_attention(5000);
    const glrnn::Attention attention(cfg, w);
    const RowMatrixXf x = rw.matrix(2100, D);
    const RowMatrixXf got = run_mixer_in_chunks(attention, x, 700);
    // Only the last rows read more than one tile (2048 keys); the whole run is compared anyway.
    CHECK(max_rel_diff(got, naive(attention, w, x)) < kFloatTolerance);
  }
  SECTION("the state grows with the position and stops at the maximum context") {
    glrnn::AttentionConfig cfg{D, H, Hkv, dh, 0, dh, 10000.0f};
    cfg.max_context = 300;
    glrnn::AttentionWeights w{{rw.weight({H * dh, D}), {}}, {rw.weight({Hkv * dh, D}), {}},
                              {rw.weight({Hkv * dh, D}), {}}, {rw.weight({D, H * dh}), {}}};
    const glrnn::Attention attention(cfg, w);
    glrnn::AttentionState state = attention.make_state();
    CHECK(state.bytes() == 0);
    CHECK(glrnn::AttentionState::bytes_at(cfg, 10) == 2u * 10 * Hkv * dh * sizeof(float));
    glrnn::Scratch scratch = glrnn::test::mixer_scratch(attention, 300, D);
    const RowMatrixXf x = rw.matrix(300, D);
    RowMatrixXf y(300, D);
    attention.forward(x.topRows(10), 0, state, y.topRows(10), scratch);
    CHECK(state.bytes() >= glrnn::AttentionState::bytes_at(cfg, 10));
    CHECK(state.bytes() <= glrnn::AttentionState::bytes_at(cfg, 300));
    std::size_t visited = 0;
    state.visit([&](const char*, float*, Eigen::Index n) { visited += static_cast<std::size_t>(n) * sizeof(float); });
    CHECK(visited == glrnn::AttentionState::bytes_at(cfg, 10));
    attention.forward(x.middleRows(10, 290), 10, state, y.middleRows(10, 290), scratch);
    CHECK(state.bytes() == glrnn::AttentionState::bytes_at(cfg, 300));
    CHECK_THROWS_AS(state.reserve(301), glrnn::InputError);
    state.reset();
    CHECK(state.bytes() == 0);
  }
}
