#pragma once
// Reading the fixtures' reference.json files (logits made with transformers, see
// tests/data/README.md) and comparing logits.

#include <cmath>    // std::abs
#include <cstdint>  // std::int32_t
#include <fstream>  // std::ifstream
#include <string>   // std::string
#include <vector>   // std::vector

#include <nlohmann/json.hpp>

#include "glrnn/core/buffer.hpp"
#include "glrnn/core/error.hpp"
#include "glrnn/generate/session.hpp"

namespace glrnn::test {

inline std::string data_path(const std::string& relative) { return std::string(GLRNN_TEST_DATA_DIR) + "/" + relative; }
/// The bundled models under models/ (the README's demo models).
inline std::string model_path(const std::string& relative) { return std::string(GLRNN_MODELS_DIR) + "/" + relative; }

inline nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path);
  GLRNN_CHECK(in.good(), IoError, "cannot open " + path);
  return nlohmann::json::parse(in);
}

/// The reference of one fixture model folder under tests/data, parsed once per process.
inline const nlohmann::json& reference(const std::string& fixture) {
  static std::vector<std::pair<std::string, nlohmann::json>> cache;
  for (const auto& [name, json] : cache)
    if (name == fixture) return json;
  cache.emplace_back(fixture, load_json(data_path(fixture + "/reference.json")));
  return cache.back().second;
}

inline std::vector<std::int32_t> ids(const nlohmann::json& array) { return array.get<std::vector<std::int32_t>>(); }

/// [[...], ...] -> [rows, cols]
inline RowMatrixXf matrix(const nlohmann::json& rows) {
  RowMatrixXf m(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(rows.at(0).size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) m(r, c) = rows[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)].get<float>();
  return m;
}

/// The logits of every position of `tokens`, run from the session's state (which advances).
inline RowMatrixXf all_logits(Session& session, const std::vector<std::int32_t>& tokens) {
  RowMatrixXf out;
  session.prefill_all(tokens, out);
  return out;
}

inline double max_abs_diff(const MatIn& a, const MatIn& b) {
  GLRNN_CHECK(a.rows() == b.rows() && a.cols() == b.cols(), ShapeError, "compared matrices differ in shape");
  return static_cast<double>((a - b).cwiseAbs().maxCoeff());
}

}  // namespace glrnn::test
