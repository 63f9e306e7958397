#pragma once
// Weight recipes: which format each kind of matrix is stored in. `--type` names a recipe; every
// format is one (all matrices in it), and a mixed recipe keeps the matrices that cost quality most
// in a wider format (docs/kernels.md §5). The matrices used densely rather than as linear maps
// (RG-LRU's block-diagonal gates) stay float.

#include <array>        // std::array
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include "glrnn/formats/registry.hpp"

namespace glrnn {

/// What a matrix is to the model, for choosing its format.
enum class MatrixRole {
  Embedding,   // the token embedding (untied)
  Head,        // the output head, and a tied embedding
  Projection,  // a temporal mixer's input and output projections
  MlpIn,       // an MLP's gate and up projections
  MlpOut,      // an MLP's down projection
  Dense,       // small matrices used densely (kept in a float format)
};
constexpr std::size_t kMatrixRoles = 6;

struct WeightRecipe {
  std::string name;
  std::string description;
  std::array<WeightType, kMatrixRoles> formats;  // by MatrixRole

  WeightType format_for(MatrixRole role) const { return formats[static_cast<std::size_t>(role)]; }
};

/// Every recipe: one per format, in the order of the registration list, then the mixed ones.
inline const std::vector<WeightRecipe>& weight_recipes() {
  static const std::vector<WeightRecipe> recipes = [] {
    std::vector<WeightRecipe> list;
    for (WeightType t : kWeightTypes) {
      const bool float_format = format_info(t).activations == Activations::Float32;
      WeightRecipe r{std::string(weight_type_name(t)), "every matrix " + std::string(weight_type_name(t)), {}};
      r.formats.fill(t);
      r.formats[static_cast<std::size_t>(MatrixRole::Dense)] = float_format ? t : WeightType::BF16;
      list.push_back(r);
    }
    return list;
  }();
  return recipes;
}

inline std::optional<WeightRecipe> find_weight_recipe(std::string_view name) {
  for (const WeightRecipe& r : weight_recipes())
    if (r.name == name) return r;
  return std::nullopt;
}

/// "f32, bf16, int8, q4, ...", for messages and --help.
inline std::string weight_recipe_names() {
  std::string names;
  for (const WeightRecipe& r : weight_recipes()) names += (names.empty() ? "" : ", ") + r.name;
  return names;
}

}  // namespace glrnn
