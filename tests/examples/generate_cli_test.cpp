// glrnn-generate run as a user runs it: the fixture's greedy ids and logits through --logits-out,
// and a one-line error with exit code 1 for bad input.

#include <sys/wait.h>  // WEXITSTATUS, WIFEXITED

#include <cstdio>   // popen, pclose, fgets
#include <string>   // std::string
#include <vector>   // std::vector

#include <catch2/catch.hpp>

#include "support/reference.hpp"
#include "support/safetensors_builder.hpp"

namespace {

struct CliResult {
  int exit_code;
  std::string out, err;
};

/// Runs glrnn-generate with `args` (already shell-quoted), capturing stdout and stderr.
CliResult run_generate(const std::string& args) {
  const std::string err_file = (glrnn::test::test_temp_dir() / "stderr.txt").string();
  const std::string command = std::string(GLRNN_GENERATE_EXE) + " " + args + " 2>" + err_file;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  CliResult r{-1, "", ""};
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) r.out += buffer;
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;  // 128: killed by a signal
  std::ifstream err(err_file);
  r.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  return r;
}

std::string join(const std::vector<std::int32_t>& ids, const char* separator) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? separator : "") + std::to_string(ids[i]);
  return s;
}

}  // namespace

TEST_CASE("glrnn-generate reproduces the fixtures' greedy ids and logits", "[cli][parity]") {
  const std::string fixture = GENERATE(std::string("recurrentgemma-tiny"), std::string("recurrentgemma-tiny-bf16"));
  const nlohmann::json& ref = glrnn::test::reference(fixture);
  const std::vector<std::int32_t> prompt = glrnn::test::ids(ref["prompt_ids"]);
  const std::vector<std::int32_t> greedy = glrnn::test::ids(ref["greedy_ids"]);
  const std::string logits_file = (glrnn::test::test_temp_dir() / (fixture + "-logits.json")).string();
  const CliResult r = run_generate("--model " + glrnn::test::data_path(fixture) + " --prompt-ids " + join(prompt, ",") +
                                   " --temperature 0 --ignore-eos -n " + std::to_string(greedy.size()) +
                                   " --logits-out " + logits_file);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == join(greedy, " ") + "\n");
  CHECK(r.err.find("decode:") != std::string::npos);
  CHECK(r.err.find("peak RSS") != std::string::npos);

  const nlohmann::json out = glrnn::test::load_json(logits_file);
  CHECK(glrnn::test::ids(out["prompt_ids"]) == prompt);
  CHECK(glrnn::test::ids(out["generated_ids"]) == greedy);
  // Same tolerance as the library's parity tests: ten times the float32 spread the fixtures measured.
  CHECK(glrnn::test::max_abs_diff(glrnn::test::matrix(out["prompt_logits"]), glrnn::test::matrix(ref["prefill_logits"])) < 1e-3);
  CHECK(glrnn::test::max_abs_diff(glrnn::test::matrix(out["generated_logits"]), glrnn::test::matrix(ref["decode_logits"])) < 1e-3);
}

TEST_CASE("glrnn-generate: bad input is one line on stderr and exit code 1", "[cli]") {
  const std::string model = "--model " + glrnn::test::data_path("recurrentgemma-tiny");
  const auto fails = [](const CliResult& r, const std::string& text) {
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(text) != std::string::npos);
  };
  fails(run_generate(model + " --prompt-ids 2,600"), "token id 600");
  fails(run_generate(model + " --prompt-ids 2,x7"), "'x7'");
  fails(run_generate(model + " --prompt-ids ''"), "not a token id");
  fails(run_generate("--model /nonexistent --prompt-ids 2"), "error:");
  fails(run_generate(model + " --prompt-ids 2 --top-p 0"), "top-p");
  fails(run_generate(model + " --prompt-ids 2 --no-such-flag"), "no-such-flag");
  fails(run_generate(model + " --prompt-ids 2 -n -4"), "max-new-tokens");
  fails(run_generate("--prompt-ids 2"), "--model");

  const std::string broken = glrnn::test::make_temp_dir("broken_model");
  glrnn::test::write_temp_file(glrnn::test::length_prefix(1000) + "{", "broken_model/model.safetensors");
  glrnn::test::write_temp_file(glrnn::test::load_json(glrnn::test::data_path("recurrentgemma-tiny/config.json")).dump(),
                               "broken_model/config.json");
  fails(run_generate("--model " + broken + " --prompt-ids 2"), "model.safetensors");

  CHECK(run_generate("--help").exit_code == 0);
}
