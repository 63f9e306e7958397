#pragma once
// Fitting a block of weights to a grid of int8 levels with one f16 scale, for the formats whose
// weights are scale * level[index] (q4, q5): the scales that map the element of largest magnitude
// to either end of the grid (or a little inside it) are tried, each is refitted once with the
// least-squares scale sum(x l) / sum(l^2) for its levels, and the fit with the least squared error
// wins.

#include <cmath>    // std::fabs
#include <cstddef>  // std::size_t
#include <cstdint>  // std::int8_t, std::uint8_t, std::int64_t

#include "glrnn/core/dtype.hpp"
#include "glrnn/formats/format.hpp"

namespace glrnn {

/// A block's fit: its scale and the index of each weight's level.
struct GridFit {
  f16 scale;
  std::uint8_t index[kQuantBlock];
};

/// Levels ascending; `ends` the levels the block's extreme is tried at (the grid's ends and points
/// a little inside them, which clip that one weight to give the others finer steps).
template <std::size_t N, std::size_t E>
GridFit fit_block_to_grid(const float* x, const std::int8_t (&levels)[N], const float (&ends)[E]) {
  // The index of the level nearest v (in level units), by binary search over the midpoints.
  const auto nearest = [&](float v) {
    std::size_t lo = 0, hi = N - 1;
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (v > 0.5f * static_cast<float>(levels[mid] + levels[mid + 1])) lo = mid + 1;
      else hi = mid;
    }
    return static_cast<std::uint8_t>(lo);
  };
  struct Candidate {
    GridFit fit;
    float error, xl, ll;  // squared error, sum(x l), sum(l^2)
  };
  const auto encode = [&](float s) {
    Candidate c{{to_f16(s), {}}, 0.0f, 0.0f, 0.0f};
    const float d = to_float(c.fit.scale), inv = d != 0.0f ? 1.0f / d : 0.0f;
    for (std::int64_t i = 0; i < kQuantBlock; ++i) {
      c.fit.index[i] = nearest(x[i] * inv);
      const float level = levels[c.fit.index[i]], e = x[i] - d * level;
      c.error += e * e;
      c.xl += x[i] * level;
      c.ll += level * level;
    }
    return c;
  };
  float extreme = 0.0f;
  for (std::int64_t i = 0; i < kQuantBlock; ++i)
    if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
  Candidate best = encode(extreme / static_cast<float>(levels[0]));
  for (float end : ends) {
    const Candidate first = encode(extreme / end);
    const Candidate refined = first.ll > 0.0f ? encode(first.xl / first.ll) : first;
    for (const Candidate& c : {first, refined})
      if (c.error < best.error) best = c;
  }
  return best.fit;
}

}  // namespace glrnn
