#pragma once
// The state of an fla token mixer (HGRN, HGRN2, GLA, RetNet): one float32 matrix that its recurrence
// updates and the histories of the short convolutions in front of it (docs/architecture.md §3),
// and the projection that feeds such a convolution.

#include <array>    // std::array
#include <cstddef>  // std::size_t
#include <vector>   // std::vector

#include "glrnn/layers/conv1d.hpp"
#include "glrnn/layers/linear.hpp"
#include "glrnn/layers/rmsnorm.hpp"

namespace glrnn {

/// What a RecurrentState holds, from a mixer's configuration: its matrix's size and the short
/// convolutions in front of the recurrence (at most three).
struct RecurrentStateShape {
  Eigen::Index rows = 0, cols = 0;
  std::array<Conv1dConfig, 3> convs{};
  std::size_t conv_count = 0;  // convs[0 .. conv_count), in the mixer's order
};

struct RecurrentState {
  RowMatrixXf state;               // the recurrence's matrix; its layout is the mixer's
  std::vector<Conv1dState> convs;  // one history per short convolution, in the mixer's order

  /// name: the state matrix's buffer name in state files.
  RecurrentState(const char* name, const RecurrentStateShape& shape)
      : state(RowMatrixXf::Zero(shape.rows, shape.cols)), name_(name) {
    for (std::size_t i = 0; i < shape.conv_count; ++i) convs.emplace_back(shape.convs[i]);
  }
  /// Bytes of such a state, without making one.
  static std::size_t bytes(const RecurrentStateShape& shape) {
    std::size_t n = static_cast<std::size_t>(shape.rows * shape.cols) * sizeof(float);
    for (std::size_t i = 0; i < shape.conv_count; ++i) n += Conv1dState::bytes(shape.convs[i]);
    return n;
  }
  std::size_t bytes() const {
    std::size_t n = static_cast<std::size_t>(state.size()) * sizeof(float);
    for (const Conv1dState& c : convs) n += c.bytes();
    return n;
  }
  void reset() {
    state.setZero();
    for (Conv1dState& c : convs) c.reset();
  }
  template <class F> void visit(F&& f) {
    f(name_, state.data(), state.size());
    for (Conv1dState& c : convs) c.visit(f);
  }

 private:
  const char* name_;
};

/// out = proj(u), or with a short convolution (convolved) conv(raw, out) on the raw projection,
/// which lives in scratch meanwhile; conv is not called by a dry run.
template <class Conv>
void project_then_convolve(const Linear& proj, const MatIn& u, MatOut out, Scratch& scratch, bool convolved, Conv&& conv) {
  if (!convolved) {
    proj.forward(u, out, scratch);
    return;
  }
  Scratch::Frame frame(scratch);
  MatMap raw = scratch.matrix(u.rows(), out.cols());
  proj.forward(u, raw, scratch);
  if (!scratch.measuring()) conv(raw, out);
}

namespace detail {
/// Where norm_then_project normalises o: in place, or for o laid out by heads, rows of scratch.
inline MatMap normalised_rows(MatMap& o, Scratch&) { return o; }
inline MatMap normalised_rows(const HeadRows& o, Scratch& scratch) { return scratch.matrix(o.rows, o.heads * o.width); }
}  // namespace detail

/// y = out_proj(norm(o)): fla's output of a mixer, o normalised per head of gain.size() channels
/// and, with an output gate, gated by gate_proj(u) (gated_rms_norm). o [T, cols] (MatMap) is
/// overwritten; o laid out head by head (HeadRows) is read into rows of scratch.
template <class Output>
void norm_then_project(Output& o, const MatIn& u, const Linear* gate_proj, const Eigen::RowVectorXf& gain, float eps,
                       const Linear& out_proj, MatOut y, Scratch& scratch) {
  Scratch::Frame frame(scratch);
  MatMap normed = detail::normalised_rows(o, scratch);
  MatMap gate = gate_proj ? scratch.matrix(u.rows(), normed.cols()) : MatMap(nullptr, 0, 0);
  if (gate_proj) gate_proj->forward(u, gate, scratch);
  if (!scratch.measuring()) gated_rms_norm(o, gate_proj ? &gate : nullptr, gain, eps, normed);
  out_proj.forward(normed, y, scratch);
}

}  // namespace glrnn
