#pragma once
// Gated MLP: down(act(gate(u)) * up(u)). GeGLU (gelu_tanh, with biases) in RecurrentGemma,
// SwiGLU (silu, no biases) in HGRN2.

#include <algorithm>  // std::max
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int64_t

#include "glrnn/core/math.hpp"
#include "glrnn/layers/linear.hpp"

namespace glrnn {

enum class Activation { GeluTanh, Silu };

struct MlpConfig {
  std::int64_t hidden = 0;        // D
  std::int64_t intermediate = 0;  // F, the width of each branch
  Activation activation = Activation::GeluTanh;
};

template <class T>
struct MlpWeights {
  LinearWeights<T> gate_proj, up_proj;  // [F, D]
  LinearWeights<T> down_proj;           // [D, F]
};

template <class T>
class Mlp {
 public:
  using Config = MlpConfig;
  using Weights = MlpWeights<T>;

  Mlp(const Config& cfg, const Weights& w)
      : cfg_(cfg),
        gate_proj_(cfg.hidden, cfg.intermediate, w.gate_proj, "gate_proj"),
        up_proj_(cfg.hidden, cfg.intermediate, w.up_proj, "up_proj"),
        down_proj_(cfg.intermediate, cfg.hidden, w.down_proj, "down_proj") {}

  const Config& config() const { return cfg_; }

  std::size_t scratch_floats(std::int64_t max_tokens) const {
    return 2 * Scratch::floats_for(max_tokens, cfg_.intermediate) +
           std::max({gate_proj_.scratch_floats(), up_proj_.scratch_floats(), down_proj_.scratch_floats()});
  }

  /// Y[T, D] = MLP(U[T, D]).
  void forward(const MatIn& u, MatOut y, Scratch& scratch) const {
    Scratch::Frame frame(scratch);
    MatMap gate = scratch.matrix(u.rows(), cfg_.intermediate);
    MatMap up = scratch.matrix(u.rows(), cfg_.intermediate);
    gate_proj_.forward(u, gate, scratch);
    up_proj_.forward(u, up, scratch);
    if (cfg_.activation == Activation::GeluTanh) {
      gate = gate.unaryExpr([](float v) { return gelu_tanh(v); });
    } else {
      gate = gate.unaryExpr([](float v) { return silu(v); });
    }
    gate.array() *= up.array();
    down_proj_.forward(gate, y, scratch);
  }

 private:
  Config cfg_;
  Linear<T> gate_proj_, up_proj_, down_proj_;
};

}  // namespace glrnn
