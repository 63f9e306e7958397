#pragma once
// Where a model's tensors come from: a checkpoint (io/weight_store.hpp), random weights of a real
// geometry (benchmarks), a test's own. A family's tensor table reads them through a TensorReader,
// which applies the weight recipe, so the tables never name a format.

#include <optional>  // std::optional
#include <string>    // std::string
#include <utility>   // std::move

#include "glrnn/core/tensor.hpp"
#include "glrnn/formats/recipe.hpp"

namespace glrnn {

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  /// The matrix `name` of `shape` (rank 2 or more: its rows are all dimensions but the last), in
  /// format `type`, or as stored when `type` is empty; in row groups when `order` asks for them and
  /// the format has them (formats/row_groups.hpp). Throws if absent or of another shape.
  virtual WeightMatrix matrix(const std::string& name, const Shape& shape, std::optional<WeightType> type,
                              RowOrder order) = 0;
  /// A small tensor (norm gains, biases, conv taps, ...) as float32. Throws if absent or of another shape.
  virtual TensorView<const float> vector(const std::string& name, const Shape& shape) = 0;
  virtual bool has(const std::string& name) const = 0;
};

/// A source read under a recipe (none: every matrix as stored).
class TensorReader {
 public:
  /// bf16_activations: mark the bf16 matrices to be multiplied with activations rounded to bf16
  /// (LoadOptions::bf16_activations).
  TensorReader(TensorSource& source, std::optional<WeightRecipe> recipe, bool bf16_activations = false)
      : source_(source), recipe_(std::move(recipe)), bf16_activations_(bf16_activations) {}

  /// In row groups unless `order` says rows: a caller that splits the rows at other places.
  WeightMatrix matrix(const std::string& name, const Shape& shape, MatrixRole role, RowOrder order = RowOrder::Groups) {
    WeightMatrix m = source_.matrix(
        name, shape, recipe_ ? std::optional<WeightType>(recipe_->format_for(role)) : std::nullopt, order);
    m.bf16_activations = bf16_activations_ && m.type == WeightType::BF16;
    return m;
  }
  TensorView<const float> vector(const std::string& name, const Shape& shape) { return source_.vector(name, shape); }
  bool has(const std::string& name) const { return source_.has(name); }

 private:
  TensorSource& source_;
  std::optional<WeightRecipe> recipe_;
  bool bf16_activations_;
};

}  // namespace glrnn
