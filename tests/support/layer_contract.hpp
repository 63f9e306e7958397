#pragma once
// The sequence-mixer contract for layer tests (docs/architecture.md §3): one forward over T
// positions equals T single steps and every chunking, and batched decode equals each sequence
// alone. For mixers whose input and output widths are equal (the residual stream's).

#include <algorithm>  // std::max, std::min
#include <cstdint>    // std::int64_t
#include <vector>     // std::vector

#include <catch2/catch.hpp>

#include "glrnn/core/buffer.hpp"
#include "support/random_weights.hpp"

namespace glrnn::test {

/// Largest difference relative to b's largest magnitude (at least 1).
inline double max_rel_diff(const RowMatrixXf& a, const RowMatrixXf& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return static_cast<double>((a - b).cwiseAbs().maxCoeff()) / std::max(1.0f, b.cwiseAbs().maxCoeff());
}

/// A scratch measured by a dry run of both forward and forward_batch over `rows` rows.
template <class Layer>
Scratch mixer_scratch(const Layer& layer, std::int64_t rows, std::int64_t width) {
  return measured_scratch(rows, [&](Scratch& meter) {
    typename Layer::State state = layer.make_state();
    const RowMatrixXf x = RowMatrixXf::Zero(rows, width);
    RowMatrixXf y(rows, width);
    layer.forward(x, 0, state, y, meter);
    const std::vector<std::int64_t> positions(static_cast<std::size_t>(rows), 0);
    layer.forward_batch(x, positions.data(), [&](Eigen::Index) -> typename Layer::State& { return state; }, y, meter);
  });
}

/// Runs a mixer over X in chunks of `chunk` positions, from a fresh state.
template <class Layer>
RowMatrixXf run_mixer_in_chunks(const Layer& layer, const RowMatrixXf& x, std::int64_t chunk) {
  typename Layer::State state = layer.make_state();
  Scratch scratch = mixer_scratch(layer, chunk, x.cols());
  RowMatrixXf y(x.rows(), x.cols());
  for (Eigen::Index begin = 0; begin < x.rows(); begin += chunk) {
    const Eigen::Index n = std::min<Eigen::Index>(chunk, x.rows() - begin);
    layer.forward(x.middleRows(begin, n), begin, state, y.middleRows(begin, n), scratch);
  }
  return y;
}

/// Steps, chunkings and three sequences decoded together (each starting at another row of x)
/// against one pass, within `tolerance` (max_rel_diff).
template <class Layer>
void check_mixer_contract(const Layer& layer, const RowMatrixXf& x, double tolerance) {
  const RowMatrixXf whole = run_mixer_in_chunks(layer, x, x.rows());
  for (std::int64_t chunk : {1, 2, 3, 7}) {
    CAPTURE(chunk);
    CHECK(max_rel_diff(run_mixer_in_chunks(layer, x, chunk), whole) < tolerance);
  }
  constexpr std::int64_t kBatch = 3;
  std::vector<typename Layer::State> states;
  std::vector<RowMatrixXf> single;
  for (std::int64_t b = 0; b < kBatch; ++b) {
    states.push_back(layer.make_state());
    single.push_back(run_mixer_in_chunks(layer, x.bottomRows(x.rows() - b), 1));
  }
  Scratch scratch = mixer_scratch(layer, kBatch, x.cols());
  RowMatrixXf rows(kBatch, x.cols()), out(kBatch, x.cols());
  double worst = 0.0;
  for (std::int64_t t = 0; t + kBatch <= x.rows(); ++t) {
    const std::vector<std::int64_t> positions(kBatch, t);
    for (std::int64_t b = 0; b < kBatch; ++b) rows.row(b) = x.row(t + b);
    layer.forward_batch(rows, positions.data(), [&](Eigen::Index b) -> typename Layer::State& { return states[b]; }, out,
                        scratch);
    for (std::int64_t b = 0; b < kBatch; ++b)
      worst = std::max(worst, max_rel_diff(out.row(b), single[static_cast<std::size_t>(b)].row(t)));
  }
  CHECK(worst < tolerance);
}

}  // namespace glrnn::test
