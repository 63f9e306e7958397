#pragma once
// RG-LRU, the Real-Gated Linear Recurrent Unit of Griffin (docs/recurrent_gemma.md §7.2):
//   gate_x = sigmoid(x_blk · Wx[h] + bx),  gate_a = sigmoid(x_blk · Wa[h] + ba)   (block-diagonal)
//   log_a  = -8 · gate_a · softplus(Λ),    a = exp(log_a)
//   h_t    = a · h_{t-1} + sqrt(1 - exp(2 log_a)) · (x · gate_x)
// At position 0 the state is dropped and the sqrt multiplier is 1.

#include <cstddef>  // std::size_t, std::byte
#include <cstdint>  // std::int64_t
#include <cstring>  // std::memcpy
#include <utility>  // std::pair
#include <vector>   // std::vector

#include "glrnn/core/math.hpp"
#include "glrnn/core/threading.hpp"
#include "glrnn/kernels/elementwise.hpp"
#include "glrnn/kernels/kernels.hpp"

namespace glrnn {

struct RgLruConfig {
  std::int64_t width = 0;  // Dr
  std::int64_t heads = 1;  // gate blocks; block width bw = width / heads
  std::int64_t block_width() const { return width / heads; }
};

struct RgLruWeights {
  // Stored [H, bw, bw] with the input index first (used as x_blk · W[h]), seen as [H·bw, bw]: each
  // row is one input of one block. In any weight format whose blocks fit a row of bw.
  WeightMatrix input_gate_weight;
  WeightMatrix recurrent_gate_weight;
  TensorView<const float> input_gate_bias;      // [H, bw]
  TensorView<const float> recurrent_gate_bias;  // [H, bw]
  TensorView<const float> recurrent_param;      // [Dr], Λ
};

/// The recurrence's hidden state, float32 whatever the weights (docs/recurrent_gemma.md §7.2).
struct RgLruState {
  Eigen::VectorXf h;  // [Dr]

  explicit RgLruState(const RgLruConfig& cfg) : h(Eigen::VectorXf::Zero(cfg.width)) {}
  static std::size_t bytes(const RgLruConfig& cfg) { return static_cast<std::size_t>(cfg.width) * sizeof(float); }
  std::size_t bytes() const { return static_cast<std::size_t>(h.size()) * sizeof(float); }
  void reset() { h.setZero(); }
  template <class F> void visit(F&& f) { f("rglru_h", h.data(), h.size()); }
};

class RgLru {
 public:
  using State = RgLruState;

  RgLru(const RgLruConfig& cfg, const RgLruWeights& w) : cfg_(cfg) {
    const std::int64_t H = cfg.heads, bw = cfg.block_width();
    const Shape gate{H * bw, bw}, bias{H, bw}, vec{cfg.width};
    check_shape(w.input_gate_weight.shape(), gate, "rg_lru.input_gate_weight");
    check_shape(w.recurrent_gate_weight.shape(), gate, "rg_lru.recurrent_gate_weight");
    check_shape(w.input_gate_bias.shape, bias, "rg_lru.input_gate_bias");
    check_shape(w.recurrent_gate_bias.shape, bias, "rg_lru.recurrent_gate_bias");
    check_shape(w.recurrent_param.shape, vec, "rg_lru.recurrent_param");
    // The kernels take [out, in] rows; the checkpoint stores each block [in, out].
    input_gate_ = Gates(w.input_gate_weight, H, bw);
    recurrent_gate_ = Gates(w.recurrent_gate_weight, H, bw);
    input_bias_ = Eigen::Map<const Eigen::RowVectorXf>(w.input_gate_bias.data, cfg.width);
    recurrent_bias_ = Eigen::Map<const Eigen::RowVectorXf>(w.recurrent_gate_bias.data, cfg.width);
    softplus_lambda_.resize(cfg.width);
    for (std::int64_t i = 0; i < cfg.width; ++i) softplus_lambda_[i] = softplus(w.recurrent_param.data[i]);
  }

  const RgLruConfig& config() const { return cfg_; }
  State make_state() const { return State(cfg_); }

  /// Y[T, Dr] = RG-LRU(X[T, Dr]) for positions pos0 .. pos0+T-1, continuing from `state`.
  void forward(const MatIn& x, std::int64_t pos0, State& state, MatOut y, Scratch& scratch) const {
    run(x, y, scratch, [&](Eigen::Index t) -> std::pair<State&, std::int64_t> { return {state, pos0 + t}; });
  }

  /// One position for each of B sequences: row b at positions[b] with state get(b).
  template <class GetState>
  void forward_batch(const MatIn& x, const std::int64_t* positions, GetState&& get, MatOut y, Scratch& scratch) const {
    run(x, y, scratch, [&](Eigen::Index b) -> std::pair<State&, std::int64_t> { return {get(b), positions[b]}; });
  }

 private:
  /// Gates for all rows at once, then row by row the update; row_state(t) gives (state, position).
  template <class RowState>
  void run(const MatIn& x, MatOut y, Scratch& scratch, RowState&& row_state) const {
    const std::int64_t len = x.rows(), bw = cfg_.block_width();
    Scratch::Frame frame(scratch);
    MatMap gate_x = scratch.matrix(len, cfg_.width);
    MatMap gate_a = scratch.matrix(len, cfg_.width);
    for (std::int64_t h = 0; h < cfg_.heads; ++h) {
      kernels::matmul(input_gate_.block(h), x.middleCols(h * bw, bw), gate_x.middleCols(h * bw, bw), scratch);
      kernels::matmul(recurrent_gate_.block(h), x.middleCols(h * bw, bw), gate_a.middleCols(h * bw, bw), scratch);
    }
    MatMap multiplier = scratch.matrix(len, cfg_.width);
    if (scratch.measuring()) return;
    // Everything but the state's update, row by row with a prompt's rows split between threads:
    // gate_x becomes x · gate_x, gate_a becomes a, multiplier sqrt(1 - a²) with a² as exp(2 log_a),
    // like the reference, not a·a.
    const std::int64_t width = cfg_.width;
    parallel_for(0, len, 40 * width, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t t = lo; t < hi; ++t) {
        auto gx = gate_x.row(t), ga = gate_a.row(t), m = multiplier.row(t);
        gx += input_bias_;
        ga += recurrent_bias_;
        kernels::apply(Elementwise::Sigmoid, gx.data(), gx.data(), width);
        kernels::apply(Elementwise::Sigmoid, ga.data(), ga.data(), width);
        gx.array() *= x.row(t).array();
        ga.array() = (-8.0f * ga.array()) * softplus_lambda_.array();
        m = 2.0f * ga;
        kernels::apply(Elementwise::Exp, m.data(), m.data(), width);
        m.array() = (1.0f - m.array()).sqrt();
        kernels::apply(Elementwise::Exp, ga.data(), ga.data(), width);
      }
    });
    // The update runs down the positions; the channels are independent, so threads take ranges of them.
    parallel_for(0, width, 4 * len, [&](std::int64_t c0, std::int64_t c1) {
      const std::int64_t n = c1 - c0;
      for (std::int64_t t = 0; t < len; ++t) {
        auto [state, pos] = row_state(t);
        auto h = y.row(t).segment(c0, n);
        if (pos == 0) {
          h = gate_x.row(t).segment(c0, n);  // reset: a = 0 and multiplier 1, so no stale state leaks
        } else {
          h.array() = gate_a.row(t).segment(c0, n).array() * state.h.segment(c0, n).transpose().array() +
                      gate_x.row(t).segment(c0, n).array() * multiplier.row(t).segment(c0, n).array();
        }
        state.h.segment(c0, n) = h.transpose();
      }
    });
  }

  /// The H gate blocks, each transposed to [out, in] and kept in the format it was given in.
  class Gates {
   public:
    Gates() = default;
    Gates(const WeightMatrix& stored, std::int64_t heads, std::int64_t bw)
        : type_(stored.type),
          order_(format_info(stored.type).groups_rows() ? RowOrder::Groups : RowOrder::Rows),
          bw_(bw),
          bytes_(stored.bytes()) {
      const FormatInfo& format = format_info(type_);
      GLRNN_CHECK(format.holds_rows_of(bw), ShapeError,
                  "rg_lru gates of width " + std::to_string(bw) + " do not split into " + std::string(format.name) + " blocks");
      std::vector<float> in(static_cast<std::size_t>(bw * bw)), out(in.size());
      std::vector<std::byte> rows(static_cast<std::size_t>(bw) * format.row_bytes(bw));  // one block, row by row
      for (std::int64_t h = 0; h < heads; ++h) {
        for (std::int64_t i = 0; i < bw; ++i) stored.dequantize_row(h * bw + i, in.data() + i * bw);
        for (std::int64_t i = 0; i < bw; ++i)
          for (std::int64_t j = 0; j < bw; ++j) out[static_cast<std::size_t>(j * bw + i)] = in[static_cast<std::size_t>(i * bw + j)];
        std::byte* block = bytes_.data() + h * bw * static_cast<std::int64_t>(format.row_bytes(bw));
        for (std::int64_t j = 0; j < bw; ++j) format.quantize(out.data() + j * bw, bw, rows.data() + j * format.row_bytes(bw));
        if (order_ == RowOrder::Groups) format.group_rows(rows.data(), bw, bw, block);
        else std::memcpy(block, rows.data(), rows.size());
      }
    }
    WeightMatrix block(std::int64_t h) const {
      return {bytes_.data() + h * bw_ * format_info(type_).row_bytes(bw_), type_, bw_, bw_, order_};
    }

   private:
    WeightType type_ = WeightType::F32;
    RowOrder order_ = RowOrder::Rows;  // of each block: row groups where the format has them
    std::int64_t bw_ = 0;
    std::vector<std::byte> bytes_;  // [H, bw(out), bw(in)]
  };

  RgLruConfig cfg_;
  Gates input_gate_, recurrent_gate_;
  Eigen::RowVectorXf input_bias_, recurrent_bias_;  // [Dr]
  Eigen::RowVectorXf softplus_lambda_;              // [Dr], softplus(Λ), fixed per model
};

}  // namespace glrnn
