#pragma once
// Gated MLP: down(act(gate(u)) * up(u)). GeGLU (gelu_tanh, with biases) in RecurrentGemma,
// SwiGLU (silu, no biases) in HGRN2. A channel mixer of ResidualBlock (layers/layer_interface.hpp).

#include <cstdint>  // std::int64_t

#include "glrnn/core/math.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/layers/linear.hpp"

namespace glrnn {

enum class Activation { GeluTanh, Silu };

struct MlpConfig {
  std::int64_t hidden = 0;        // D
  std::int64_t intermediate = 0;  // F, the width of each branch
  Activation activation = Activation::GeluTanh;
};

struct MlpWeights {
  LinearWeights gate_proj, up_proj;  // [F, D]
  LinearWeights down_proj;           // [D, F]
};

class Mlp {
 public:
  using Config = MlpConfig;
  using Weights = MlpWeights;

  Mlp(const Config& cfg, const Weights& w)
      : cfg_(cfg),
        gate_proj_(cfg.hidden, cfg.intermediate, w.gate_proj, "gate_proj"),
        up_proj_(cfg.hidden, cfg.intermediate, w.up_proj, "up_proj"),
        down_proj_(cfg.intermediate, cfg.hidden, w.down_proj, "down_proj") {}

  const Config& config() const { return cfg_; }

  /// Y[T, D] = MLP(U[T, D]).
  void forward(const MatIn& u, MatOut y, Scratch& scratch) const {
    Scratch::Frame frame(scratch);
    MatMap gate = scratch.matrix(u.rows(), cfg_.intermediate);
    MatMap up = scratch.matrix(u.rows(), cfg_.intermediate);
    gate_proj_.forward(u, gate, scratch);
    up_proj_.forward(u, up, scratch);
    if (!scratch.measuring()) {
      const Elementwise act = cfg_.activation == Activation::GeluTanh ? Elementwise::GeluTanh : Elementwise::Silu;
      // A long prompt's rows are split between threads.
      parallel_for(0, u.rows(), 6 * cfg_.intermediate, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t t = lo; t < hi; ++t) {
          kernels::apply(act, gate.row(t).data(), gate.row(t).data(), cfg_.intermediate);
          gate.row(t).array() *= up.row(t).array();
        }
      });
    }
    down_proj_.forward(gate, y, scratch);
  }

 private:
  Config cfg_;
  Linear gate_proj_, up_proj_, down_proj_;
};

}  // namespace glrnn
