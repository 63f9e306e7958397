#pragma once
// glrnn-bench context: decode cost per token and memory against the context length, for gated
// linear RNNs (fixed state; a hybrid's full-attention layers grow theirs) next to a transformer
// baseline whose KV cache grows with the context.
//
// Our models: random weights of the real geometry; the state is filled with random values and
// placed at position L (the cost of a step does not depend on how the state got there, and
// running a million tokens of prefill per point would take hours).
// Baseline: a plain multi-head-attention transformer of the same width and depth, written here.
// Its per-token cost is the weight reads (taken as equal to the RNN's measured decode step, same
// kernels and a similar parameter count) plus attention over L cached keys and values in every
// layer; one layer's attention is measured on a real bf16 cache of L tokens and multiplied by the
// layer count (the benchmark prints the GB/s this attention reads its cache at: the baseline must
// not be handicapped by a slow kernel). Its memory is computed (weights + full KV cache), not
// allocated: at 1M tokens it would be far beyond this machine.

#include <cmath>    // std::exp
#include <cstdio>   // std::printf
#include <fstream>  // std::ofstream
#include <string>   // std::string
#include <vector>   // std::vector

#include "common.hpp"
#include "svg_plot.hpp"

namespace glrnn::bench {

struct ContextPoint {
  std::string model;
  std::int64_t context = 0;
  double ms_per_token = 0;
  double memory_bytes = 0;
  bool memory_measured = true;  // false: computed (the baseline's KV cache)
};

/// Median ms of a decode step with the state at position `context` (buffers random), and the
/// process's resident bytes while that state exists (a hybrid's cache grows with the context).
inline std::pair<double, std::size_t> rnn_step_ms(const glrnn::Model& model, std::int64_t context, int steps) {
  glrnn::Session session(model);
  glrnn::Rng rng(static_cast<std::uint64_t>(context));
  session.state().set_position(context);  // first: a growing cache makes room for `context` positions
  session.state().visit([&](const std::string&, float* data, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) data[i] = 0.1f * static_cast<float>(rng.uniform() - 0.5);
  });
  const std::vector<std::int32_t> tokens = random_tokens(steps + 1, model.vocab_size(), 9);
  session.step(tokens[0]);  // warm-up
  const double ms = 1e3 * median_seconds(steps, [&, i = 1]() mutable { session.step(tokens[static_cast<std::size_t>(i++)]); });
  return {ms, current_rss_bytes()};
}

/// One layer of full multi-head attention for one new token over `context` cached positions
/// (bf16 keys and values, float32 scores): what a transformer adds per layer and token.
class AttentionLayer {
 public:
  AttentionLayer(std::int64_t width, std::int64_t heads, std::int64_t max_context)
      : width_(width), heads_(heads), head_dim_(width / heads),
        keys_(static_cast<std::size_t>(max_context * width)), values_(keys_.size()),
        query_(static_cast<std::size_t>(width), 0.05f), out_(static_cast<std::size_t>(width)),
        scores_(static_cast<std::size_t>(heads * max_context)) {
    glrnn::parallel_for(0, static_cast<std::int64_t>(keys_.size()), 4, [&](std::int64_t lo, std::int64_t hi) {
      glrnn::Rng rng(static_cast<std::uint64_t>(lo));
      for (std::int64_t i = lo; i < hi; ++i) {
        keys_[static_cast<std::size_t>(i)] = glrnn::to_bf16(static_cast<float>(rng.uniform() - 0.5));
        values_[static_cast<std::size_t>(i)] = glrnn::to_bf16(static_cast<float>(rng.uniform() - 0.5));
      }
    });
  }

  /// softmax(K q / sqrt(d)) V per head, over the first `context` positions. Positions are split
  /// over the threads so that each reads its rows of K and V once, contiguously, widening a row
  /// at a time and letting Eigen vectorize the per-head products.
  void step(std::int64_t context) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
    const std::int64_t chunks = glrnn::num_threads();
    const auto rows = [&](std::int64_t c) { return std::pair(context * c / chunks, context * (c + 1) / chunks); };
    const Eigen::Map<const Eigen::MatrixXf> q(query_.data(), head_dim_, heads_);  // column h: head h
    glrnn::parallel_for(0, chunks, context * width_ / chunks, [&](std::int64_t lo, std::int64_t hi) {
      Eigen::MatrixXf key(head_dim_, heads_);
      for (std::int64_t c = lo; c < hi; ++c)
        for (auto [t, end] = rows(c); t < end; ++t) {
          glrnn::Bf16Format::dequantize(keys_.data() + t * width_, width_, key.data());
          Eigen::Map<Eigen::RowVectorXf>(scores_.data() + t * heads_, heads_) = scale * (key.cwiseProduct(q)).colwise().sum();
        }
    });
    Eigen::Map<Eigen::MatrixXf> p(scores_.data(), heads_, context);  // column t: the heads' scores at t
    const Eigen::VectorXf max = p.rowwise().maxCoeff();
    p = (p.colwise() - max).array().exp().matrix();
    const Eigen::VectorXf inverse_sum = p.rowwise().sum().cwiseInverse();
    // Weighted sum of V rows: a partial output per chunk, added at the end.
    std::vector<float> partial(static_cast<std::size_t>(chunks * width_), 0.0f);
    glrnn::parallel_for(0, chunks, context * width_ / chunks, [&](std::int64_t lo, std::int64_t hi) {
      Eigen::MatrixXf value(head_dim_, heads_);
      for (std::int64_t c = lo; c < hi; ++c) {
        Eigen::Map<Eigen::MatrixXf> out(partial.data() + c * width_, head_dim_, heads_);
        for (auto [t, end] = rows(c); t < end; ++t) {
          glrnn::Bf16Format::dequantize(values_.data() + t * width_, width_, value.data());
          out += value * p.col(t).cwiseProduct(inverse_sum).asDiagonal();
        }
      }
    });
    Eigen::Map<Eigen::VectorXf> out(out_.data(), width_);
    out.setZero();
    for (std::int64_t c = 0; c < chunks; ++c) out += Eigen::Map<const Eigen::VectorXf>(partial.data() + c * width_, width_);
  }

 private:
  std::int64_t width_, heads_, head_dim_;
  std::vector<glrnn::bf16> keys_, values_;  // [context, width]
  std::vector<float> query_, out_, scores_;
};

inline void bench_context(const std::vector<std::string>& configs, const std::vector<std::int64_t>& contexts, int steps,
                          const std::string& csv_path, const std::string& svg_path) {
  std::vector<ContextPoint> points;
  double weights_step_ms = 0, weights_bytes = 0;
  std::int64_t width = 0, layers = 0, heads = 0;
  std::vector<std::string> names;
  for (const std::string& config_path : configs) {
    const glrnn::JsonConfig json = glrnn::JsonConfig::load(config_path);
    const std::string name = family_label(json) + " ";
    // A hybrid's full-attention cache must reach the longest context.
    glrnn::LoadOptions options;
    options.max_context = contexts.back() + steps + 2;
    auto [model, bytes] = random_model(config_path, recipe_named("bf16"), options);
    char size[32];
    std::snprintf(size, sizeof size, "%.1fB", static_cast<double>(bytes) / 2e9);  // bf16: 2 bytes per parameter
    names.push_back(name + size + " (bf16)");
    for (std::int64_t context : contexts) {
      const auto [ms, rss] = rnn_step_ms(model, context, steps);
      points.push_back({names.back(), context, ms, static_cast<double>(rss), true});
      std::fprintf(stderr, "%s at %lld: %.1f ms/token\n", names.back().c_str(), static_cast<long long>(context), ms);
    }
    if (layers == 0) {  // the first config sets the baseline's size
      weights_step_ms = points.back().ms_per_token;
      weights_bytes = static_cast<double>(bytes);
      width = json.integer("hidden_size");
      layers = json.integer("num_hidden_layers");
      heads = json.integer_or("num_attention_heads", json.integer_or("num_heads", 8));
    }
  }
  {
    const std::string name = "transformer baseline, full KV cache (" + std::to_string(layers) + " layers, MHA)";
    AttentionLayer layer(width, heads, contexts.back());
    for (std::int64_t context : contexts) {
      const double attention_ms = 1e3 * median_seconds(steps, [&] { layer.step(context); });
      std::fprintf(stderr, "baseline attention at %lld: one layer reads its KV cache at %.1f GB/s\n",
                   static_cast<long long>(context), 2.0 * 2.0 * static_cast<double>(width * context) / attention_ms / 1e6);
      const double kv_bytes = 2.0 * 2.0 * static_cast<double>(width * layers * context);  // K and V, bf16
      points.push_back({name, context, weights_step_ms + static_cast<double>(layers) * attention_ms, weights_bytes + kv_bytes, false});
      std::fprintf(stderr, "%s at %lld: %.1f ms/token\n", name.c_str(), static_cast<long long>(context), points.back().ms_per_token);
    }
    names.push_back(name);
  }

  std::ofstream csv(csv_path);
  GLRNN_CHECK(csv.good(), glrnn::IoError, "cannot write '" + csv_path + "'");
  csv << "model,context_tokens,ms_per_token,memory_bytes,memory\n";
  for (const ContextPoint& p : points)
    csv << '"' << p.model << "\"," << p.context << ',' << p.ms_per_token << ',' << static_cast<std::uint64_t>(p.memory_bytes)
        << ',' << (p.memory_measured ? "measured RSS" : "computed") << '\n';

  const char* colors[] = {"#1b7837", "#2166ac", "#e08214", "#762a83", "#35978f", "#c51b7d", "#b2182b", "#4d4d4d"};
  constexpr std::size_t kColors = sizeof colors / sizeof colors[0];
  Panel time{"Decode cost per token", "context length (tokens)", "ms per token (2 threads)", {}};
  Panel memory{"Memory", "context length (tokens)", "bytes (weights + state or KV cache)", {}};
  for (std::size_t m = 0; m < names.size(); ++m) {
    Series t{names[m], colors[m % kColors], {}, {}, m + 1 == names.size()}, b = t;
    for (const ContextPoint& p : points)
      if (p.model == names[m]) {
        t.x.push_back(static_cast<double>(p.context)), t.y.push_back(p.ms_per_token);
        b.x.push_back(static_cast<double>(p.context)), b.y.push_back(p.memory_bytes);
      }
    time.series.push_back(t);
    memory.series.push_back(b);
  }
  std::ofstream svg(svg_path);
  GLRNN_CHECK(svg.good(), glrnn::IoError, "cannot write '" + svg_path + "'");
  svg << svg_line_chart({time, memory});

  std::printf("| model | context | ms/token | memory (GB) |\n|---|---|---|---|\n");
  for (const ContextPoint& p : points)
    std::printf("| %s | %lld | %.1f | %.2f%s |\n", p.model.c_str(), static_cast<long long>(p.context), p.ms_per_token,
                p.memory_bytes / 1e9, p.memory_measured ? "" : " (computed)");
  std::printf("\nwrote %s and %s\n", csv_path.c_str(), svg_path.c_str());
}

}  // namespace glrnn::bench
