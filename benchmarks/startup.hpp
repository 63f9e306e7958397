#pragma once
// glrnn-bench startup: how long a converted model takes to start. Writes a Hugging Face folder of
// the geometry with random bf16 weights, converts it, then times loading the converted file (from
// the page cache, as on a second start) up to the first token's logits, next to loading the
// folder and converting at load.

#include <cstdio>      // std::printf
#include <filesystem>  // std::filesystem::path, remove_all
#include <string>      // std::string
#include <utility>     // std::make_pair
#include <vector>      // std::vector

#include "common.hpp"

namespace glrnn::bench {

inline void bench_startup(const std::string& config_path, const glrnn::WeightRecipe& type, const std::string& work_dir,
                          int reps, bool json) {
  namespace fs = std::filesystem;
  const fs::path folder = fs::path(work_dir) / "checkpoint";
  const std::string converted = (fs::path(work_dir) / "converted.safetensors").string();
  Clock::time_point t0 = Clock::now();
  {
    auto store = std::make_shared<RandomStore>();
    (void)build_random_model(config_path, recipe_named("bf16"), store);
    store->write_checkpoint(config_path, folder);
  }
  const double write_s = seconds_since(t0);
  t0 = Clock::now();
  const glrnn::ConvertStats stats = glrnn::convert_model(folder.string(), converted, type);
  const double convert_s = seconds_since(t0);

  // Load, then one token: what a program pays before it can generate. Medians of each part.
  const auto start = [&](const std::string& path, const glrnn::LoadOptions& options, int runs) {
    std::vector<double> load_s, token_s;
    for (int i = 0; i < runs; ++i) {
      const Clock::time_point begin = Clock::now();
      const glrnn::Model model = glrnn::load_model(path, options);
      load_s.push_back(seconds_since(begin));
      const Clock::time_point loaded = Clock::now();
      glrnn::Session session(model, 1);
      session.prefill({0});
      token_s.push_back(seconds_since(loaded));
    }
    return std::make_pair(median(load_s), median(token_s));
  };
  start(converted, {}, 1);  // the first run pages the file in
  const auto [converted_load_s, converted_token_s] = start(converted, {}, reps);
  glrnn::LoadOptions at_load;
  at_load.weights = type;
  const auto [folder_load_s, folder_token_s] = start(folder.string(), at_load, 1);
  fs::remove_all(folder);
  fs::remove(converted);

  const std::string type_name = type.name;
  if (json) {
    const nlohmann::json out = {{"config", config_path}, {"type", type_name}, {"threads", glrnn::num_threads()},
                                {"write_checkpoint_s", write_s}, {"convert_s", convert_s},
                                {"converted_file_bytes", stats.file_bytes},
                                {"converted_load_s", converted_load_s}, {"converted_first_token_s", converted_token_s},
                                {"folder_load_s", folder_load_s}, {"folder_first_token_s", folder_token_s}};
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("%s, %s: checkpoint written in %.1f s, converted in %.1f s (%.2f GB)\n", config_path.c_str(),
              type_name.c_str(), write_s, convert_s, static_cast<double>(stats.file_bytes) / 1e9);
  std::printf("| start | load s | first token s |\n|---|---|---|\n");
  std::printf("| converted file, page cache warm (median of %d) | %.3f | %.3f |\n", reps, converted_load_s, converted_token_s);
  std::printf("| Hugging Face folder, converted at load | %.3f | %.3f |\n", folder_load_s, folder_token_s);
}

}  // namespace glrnn::bench
