#pragma once
// Weight recipes: which format each kind of matrix is stored in. `--type` names a recipe; every
// format is one (all matrices in it), and a spec overrides the format of some kinds of matrix
// (docs/kernels.md §5).

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
  Dense,       // block-diagonal matrices used a block at a time (RG-LRU's gates)
};
constexpr std::size_t kMatrixRoles = 6;

struct WeightRecipe {
  std::string name;
  std::string description;
  std::array<WeightType, kMatrixRoles> formats;  // by MatrixRole

  WeightType format_for(MatrixRole role) const { return formats[static_cast<std::size_t>(role)]; }
};

/// Every recipe: one per format, in the order of the registration list.
inline const std::vector<WeightRecipe>& weight_recipes() {
  static const std::vector<WeightRecipe> recipes = [] {
    std::vector<WeightRecipe> list;
    for (WeightType t : kWeightTypes) {
      WeightRecipe r{std::string(weight_type_name(t)), "every matrix " + std::string(weight_type_name(t)), {}};
      r.formats.fill(t);
      list.push_back(r);
    }
    return list;
  }();
  return recipes;
}

inline std::string_view matrix_role_name(MatrixRole role) {
  switch (role) {
    case MatrixRole::Embedding: return "embedding";
    case MatrixRole::Head: return "head";
    case MatrixRole::Projection: return "projection";
    case MatrixRole::MlpIn: return "mlp_in";
    case MatrixRole::MlpOut: return "mlp_out";
    case MatrixRole::Dense: return "dense";
  }
  return "?";
}

/// A recipe by name ("q4"), or a spec: a recipe's name followed by overrides of roles,
/// "q4,head=int8,mlp_out=int8" (roles: embedding, head, projection, mlp_in, mlp_out, dense).
/// Empty for anything else.
inline std::optional<WeightRecipe> find_weight_recipe(std::string_view spec) {
  const std::size_t comma = spec.find(',');
  const std::string_view base = spec.substr(0, comma);
  std::optional<WeightRecipe> recipe;
  for (const WeightRecipe& r : weight_recipes())
    if (r.name == base) recipe = r;
  if (!recipe || comma == std::string_view::npos) return recipe;
  std::string_view rest = spec.substr(comma + 1);
  while (true) {
    const std::size_t next = rest.find(','), equals = rest.find('=');
    const std::string_view item = rest.substr(0, next);
    if (equals == std::string_view::npos || equals >= item.size()) return std::nullopt;
    const std::optional<WeightType> format = parse_weight_type(item.substr(equals + 1));
    bool known_role = false;
    for (std::size_t r = 0; r < kMatrixRoles; ++r)
      if (matrix_role_name(static_cast<MatrixRole>(r)) == item.substr(0, equals)) {
        if (!format) return std::nullopt;
        recipe->formats[r] = *format;
        known_role = true;
      }
    if (!known_role) return std::nullopt;
    if (next == std::string_view::npos) break;
    rest = rest.substr(next + 1);
  }
  recipe->name = std::string(spec);
  recipe->description = "as given";
  return recipe;
}

/// "f32, bf16, int8, q4, q5", for messages and --help.
inline std::string weight_recipe_names() {
  std::string names;
  for (const WeightRecipe& r : weight_recipes()) names += (names.empty() ? "" : ", ") + r.name;
  return names;
}

}  // namespace glrnn
