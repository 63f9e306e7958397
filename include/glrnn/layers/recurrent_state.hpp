#pragma once
// The state of an fla token mixer (HGRN, HGRN2, GLA, RetNet): one float32 matrix that its recurrence
// updates and the histories of the short convolutions in front of it (docs/architecture.md §3),
// and the projection that feeds such a convolution.

#include <cstddef>           // std::size_t
#include <initializer_list>  // std::initializer_list
#include <vector>            // std::vector

#include "glrnn/layers/conv1d.hpp"
#include "glrnn/layers/linear.hpp"

namespace glrnn {

struct RecurrentState {
  RowMatrixXf state;               // the recurrence's matrix; its layout is the mixer's
  std::vector<Conv1dState> convs;  // one history per short convolution, in the mixer's order

  /// name: the state matrix's buffer name in state files; convs: the mixer's convolutions, if any.
  RecurrentState(const char* name, Eigen::Index rows, Eigen::Index cols, std::initializer_list<Conv1dConfig> convs)
      : state(RowMatrixXf::Zero(rows, cols)), name_(name) {
    for (const Conv1dConfig& c : convs) this->convs.emplace_back(c);
  }
  /// Bytes of such a state, without making one.
  static std::size_t bytes(Eigen::Index rows, Eigen::Index cols, std::initializer_list<Conv1dConfig> convs) {
    std::size_t n = static_cast<std::size_t>(rows * cols) * sizeof(float);
    for (const Conv1dConfig& c : convs) n += Conv1dState::bytes(c);
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

}  // namespace glrnn
