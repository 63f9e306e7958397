// HGRN2's chunk-parallel prefill against the sequential recurrence, and the layer against the
// spec's formulas (its parity with fla's HGRN2ForCausalLM is in fla_families_test.cpp).

#include <cmath>   // std::exp, std::log, std::sqrt
#include <cstdio>  // std::printf
#include <vector>  // std::vector

#include <catch2/catch.hpp>

#include "glrnn/glrnn.hpp"
#include "support/random_weights.hpp"
#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {

/// The tiny fixture built with the given prefill chunk (0: sequential).
glrnn::Model tiny_hgrn2(std::int64_t chunk) {
  const std::string dir = glrnn::test::data_path("hgrn2-tiny");
  glrnn::Hgrn2Config c = glrnn::Hgrn2Config::load(dir + "/config.json");
  c.recurrence_chunk = chunk;
  auto store = std::make_shared<glrnn::WeightStore>(dir);
  glrnn::TensorReader reader(*store, std::nullopt);
  glrnn::ModelInfo info;
  info.family = "hgrn2";
  info.vocab_size = c.vocab_size;
  return glrnn::Model(info, store, glrnn::Hgrn2Family::build(c, reader));
}

}  // namespace

TEST_CASE("HGRN2 chunk-parallel prefill equals the sequential recurrence on long prompts", "[models]") {
  const glrnn::Model chunked = tiny_hgrn2(64), sequential = tiny_hgrn2(0);
  std::vector<std::int32_t> tokens{1};
  for (int i = 0; i < 300; ++i) tokens.push_back(3 + (i * 131 + i * i * 7) % 509);
  glrnn::Session a(chunked), b(sequential);
  const glrnn::RowMatrixXf x = glrnn::test::all_logits(a, tokens), y = glrnn::test::all_logits(b, tokens);
  const double rel = (x - y).cwiseAbs().maxCoeff() / y.cwiseAbs().maxCoeff();
  std::printf("[parity] hgrn2-tiny 301-token prefill, chunked vs sequential: max relative difference %.3g\n", rel);
  CHECK(rel < 1e-4);  // float32 rounding of two evaluation orders over 301 positions, with margin
  // The states they leave behind continue identically.
  CHECK((a.step(7) - b.step(7)).cwiseAbs().maxCoeff() / y.cwiseAbs().maxCoeff() < 1e-4);
}

TEST_CASE("HGRN2 mixer: the spec's recurrence, lower bound, g_norm over all heads, short conv", "[layers]") {
  glrnn::test::RandomWeights rw(21);
  const std::int64_t D = 8, H = 2, dk = 4, dv = D / H, K = 3, len = 150;
  glrnn::Hgrn2MixerConfig cfg;
  cfg.hidden = D;
  cfg.heads = H;
  cfg.key_dim = dk;
  cfg.value_dim = dv;
  cfg.short_conv = GENERATE(false, true);
  cfg.conv_size = K;
  cfg.chunk_size = 32;
  glrnn::Hgrn2MixerWeights w;
  w.q_proj.weight = rw.weight({H * dk, D});
  // Gates from strongly negative to strongly positive pre-activations: decays down to e^-60.
  w.f_proj.weight = rw.weight({H * dk, D}, 6.0f);
  w.i_proj.weight = rw.weight({D, D});
  w.o_proj.weight = rw.weight({D, D});
  w.g_norm = rw.tensor({D}, 0.3f, 1.0f);
  if (cfg.short_conv) {
    w.q_conv = {rw.tensor({H * dk, 1, K}), {}};
    w.f_conv = {rw.tensor({H * dk, 1, K}), {}};
    w.i_conv = {rw.tensor({D, 1, K}), {}};
  }
  Eigen::VectorXf bound(H * dk);
  bound << 0.0f, 0.1f, 0.3f, 0.5f, 0.7f, 0.9f, 0.95f, 0.99f;
  const glrnn::Hgrn2Mixer mixer(cfg, w, bound);
  const glrnn::RowMatrixXf x = rw.matrix(len, D);

  // docs/hgrn2.md §3 in double, position by position.
  const auto linear = [&](const glrnn::WeightMatrix& m, std::int64_t rows, std::int64_t t,
                          const glrnn::TensorView<const float>& conv) {
    std::vector<double> out(static_cast<std::size_t>(rows), 0.0);
    for (std::int64_t tap = 0; tap < (conv.empty() ? 1 : K); ++tap) {
      const std::int64_t src = conv.empty() ? t : t - (K - 1) + tap;
      if (src < 0) continue;
      for (std::int64_t r = 0; r < rows; ++r) {
        double acc = 0.0;
        for (std::int64_t c = 0; c < D; ++c) acc += glrnn::test::f32(m)[r * D + c] * x(src, c);
        out[r] += conv.empty() ? acc : conv.data[r * K + tap] * acc;
      }
    }
    return out;
  };
  std::vector<double> state(static_cast<std::size_t>(H * dk * dv), 0.0);
  glrnn::RowMatrixXf expected(len, D);
  for (std::int64_t t = 0; t < len; ++t) {
    const auto q = linear(w.q_proj.weight, H * dk, t, w.q_conv.weight);
    const auto f = linear(w.f_proj.weight, H * dk, t, w.f_conv.weight);
    const auto v = linear(w.i_proj.weight, D, t, w.i_conv.weight);
    std::vector<double> o(static_cast<std::size_t>(D), 0.0);
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t a = 0; a < dk; ++a) {
        const std::int64_t c = h * dk + a;
        const double sig = 1.0 / (1.0 + std::exp(-f[c]));
        const double forget = bound[c] + (1.0 - bound[c]) * sig, key = 1.0 - forget;
        const double query = q[c] / (1.0 + std::exp(-q[c])) / std::sqrt(static_cast<double>(dk));
        for (std::int64_t b = 0; b < dv; ++b) {
          double& s = state[static_cast<std::size_t>(c * dv + b)];
          s = forget * s + key * v[h * dv + b];
          o[h * dv + b] += query * s;
        }
      }
    double ms = 0.0;
    for (double value : o) ms += value * value / D;
    std::vector<double> normed(static_cast<std::size_t>(D));
    for (std::int64_t i = 0; i < D; ++i) normed[i] = o[i] / std::sqrt(ms + 1e-5) * w.g_norm.data[i];
    for (std::int64_t r = 0; r < D; ++r) {
      double acc = 0.0;
      for (std::int64_t c = 0; c < D; ++c) acc += glrnn::test::f32(w.o_proj.weight)[r * D + c] * normed[c];
      expected(t, r) = static_cast<float>(acc);
    }
  }
  glrnn::Hgrn2MixerState s1 = mixer.make_state(), s2 = mixer.make_state();
  glrnn::Scratch scratch = glrnn::test::layer_scratch(mixer, len, D, D);
  glrnn::RowMatrixXf chunked(len, D), sequential(len, D);
  mixer.forward(x, 0, s1, chunked, scratch);
  mixer.forward_sequential(x, 0, s2, sequential, scratch);
  const float scale = expected.cwiseAbs().maxCoeff();
  // float32 against double over 150 steps of a recurrence: a few ulps per step.
  CHECK((sequential - expected).cwiseAbs().maxCoeff() / scale < 1e-5);
  CHECK((chunked - expected).cwiseAbs().maxCoeff() / scale < 1e-5);
  CHECK((s1.state - s2.state).cwiseAbs().maxCoeff() < 1e-5f * std::max(1.0f, s2.state.cwiseAbs().maxCoeff()));
  CHECK(chunked.allFinite());
}

TEST_CASE("HGRN2 lower bounds: 0 for layer 0, non-decreasing with depth, below 1", "[models]") {
  const glrnn::Checkpoint checkpoint(glrnn::test::data_path("hgrn2-tiny"));
  const glrnn::TensorInfo& raw = checkpoint.get("model.lower_bounds");
  std::vector<float> values(static_cast<std::size_t>(raw.numel()));
  std::memcpy(values.data(), raw.data, raw.nbytes);
  const glrnn::RowMatrixXf lb = glrnn::fla_lower_bounds({values.data(), glrnn::Shape{raw.shape[0], raw.shape[1]}});
  CHECK(lb.row(0).cwiseAbs().maxCoeff() == 0.0f);
  for (Eigen::Index l = 1; l < lb.rows(); ++l) CHECK((lb.row(l) - lb.row(l - 1)).minCoeff() >= 0.0f);
  CHECK(lb.maxCoeff() < 1.0f);
}

TEST_CASE("HGRN2 config: head geometry, key spellings, refusals", "[io]") {
  const auto parse = [](const nlohmann::json& j) { return glrnn::Hgrn2Config::from_json(glrnn::JsonConfig(j, "config.json")); };
  const nlohmann::json base = {{"model_type", "hgrn2"}, {"hidden_size", 2048}, {"num_hidden_layers", 24}, {"vocab_size", 32000}};
  nlohmann::json j = base;
  j["expand_ratio"] = 128;
  j["num_heads"] = 4;  // expand_ratio wins (docs/hgrn2.md §1)
  CHECK(parse(j).num_heads == 16);
  CHECK(parse(j).key_dim == 128);
  CHECK(parse(j).intermediate_size == 5632);
  j = base;
  j["num_heads"] = 8;
  j["use_lower_bound"] = true;
  CHECK(parse(j).key_dim == 256);
  j = base;
  j["expand_ratio"] = 128;
  j["rms_norm_eps"] = 1e-5;
  CHECK(parse(j).norm_eps == 1e-5f);
  j["attn"] = {{"layers", {1}}};
  CHECK_THROWS_WITH(parse(j), Catch::Contains("num_heads"));
  j["attn"] = {{"layers", {1, 5}}, {"num_heads", 16}, {"window_size", 512}, {"unknown_key", 1}};
  CHECK(parse(j).is_attention(1));
  CHECK(parse(j).attention_config(5).window == 512);
  CHECK(!parse(j).is_attention(0));
  j = base;
  j["expand_ratio"] = 100;
  CHECK_THROWS_WITH(parse(j), Catch::Contains("does not divide"));
  j = base;
  j["expand_ratio"] = 128;
  j["hidden_act"] = "gelu";
  CHECK_THROWS_AS(parse(j), glrnn::ConfigError);
}

TEST_CASE("HGRN2 state size is fixed by the configuration", "[models]") {
  const auto c = glrnn::Hgrn2Config::load(glrnn::test::data_path("configs/hgrn2-1.3b/config.json"));
  CHECK(c.state_bytes() == 24u * 16 * 128 * 128 * 4);  // docs/hgrn2.md §5; nothing else is kept
  const glrnn::Model model = glrnn::load_model(glrnn::test::data_path("hgrn2-tiny"));
  glrnn::Session session(model);
  const std::size_t before = session.state().bytes();
  CHECK(before == 3u * 4 * 16 * 16 * 4);
  for (int i = 0; i < 100; ++i) session.step(static_cast<std::int32_t>(3 + i));
  CHECK(session.state().bytes() == before);
}

TEST_CASE("HGRN2: the legacy fused MLP layout gives the same logits", "[io]") {
  const std::string dir = glrnn::test::data_path("hgrn2-tiny");
  const glrnn::Checkpoint checkpoint(dir);
  glrnn::test::SafetensorsBuilder builder;
  for (const glrnn::TensorInfo* t : checkpoint.all()) {
    const std::string bytes(reinterpret_cast<const char*>(t->data), t->nbytes);
    if (t->name.find("mlp.up_proj") != std::string::npos) continue;
    if (t->name.find("mlp.gate_proj") != std::string::npos) {
      // rows [0, I) the gate, [I, 2I) the up projection (docs/formats.md §3.2)
      const glrnn::TensorInfo& up = checkpoint.get(t->name.substr(0, t->name.find("gate_proj")) + "up_proj.weight");
      builder.add(t->name, "F32", {2 * t->shape[0], t->shape[1]},
                  bytes + std::string(reinterpret_cast<const char*>(up.data), up.nbytes));
      continue;
    }
    builder.add(t->name, std::string(glrnn::dtype_name(t->dtype)), t->shape, bytes);
  }
  const std::string fused = glrnn::test::make_temp_dir("hgrn2-fused");
  glrnn::test::write_temp_file(builder.build(), "hgrn2-fused/model.safetensors");
  glrnn::test::write_temp_file(glrnn::test::load_json(dir + "/config.json").dump(), "hgrn2-fused/config.json");
  const std::vector<std::int32_t> prompt = glrnn::test::ids(glrnn::test::reference("hgrn2-tiny")["prompt_ids"]);
  glrnn::Session a(glrnn::load_model(dir)), b(glrnn::load_model(fused));
  CHECK(glrnn::test::max_abs_diff(glrnn::test::all_logits(a, prompt), glrnn::test::all_logits(b, prompt)) == 0.0);
}
