#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang-14 (AddressSanitizer and UBSan on) and runs
# each for a bounded time or a fixed number of executions.
#   scripts/fuzz.sh [--seconds S | --runs N] [target ...]      (default: --seconds 60, all targets)
# Seed corpora come from the fixtures; the corpus grows in build-fuzz/<target>/corpus across runs.
# A crash, leak or timeout input is left in build-fuzz/<target>/ and the script exits 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

limit=(-max_total_time=60)
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    -h|--help) sed -n 2,6p "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 1 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_config fuzz_tokenizer_json fuzz_tokenizer_encode fuzz_http_request fuzz_grammar)

bash scripts/install-deps.sh --clang

out=build-fuzz
mkdir -p "$out"
for target in "${targets[@]}"; do
  dir="$out/$target"
  mkdir -p "$dir/corpus"
  # max_len keeps executions fast: headers, configs and tokenizers that matter are small.
  case "$target" in
    fuzz_safetensors) max_len=16384
                      for f in tests/data/*/model.safetensors; do head -c 4096 "$f" > "$dir/corpus/head-$(basename "$(dirname "$f")")"; done ;;
    fuzz_config) max_len=4096
                 for f in tests/data/*/config.json tests/data/configs/*/config.json models/*/config.json; do
                   cp "$f" "$dir/corpus/$(echo "$f" | tr '/' '_')"; done ;;
    fuzz_tokenizer_json) max_len=16384; cp tests/fuzz/seeds/small-tokenizer.json "$dir/corpus/small.json" ;;
    fuzz_tokenizer_encode) max_len=512
                           head -c 2000 tests/data/eval-public.txt > "$dir/corpus/english.txt"
                           printf 'Hello \xff\xfe \xe4\xbd\xa0 <bos>' > "$dir/corpus/mixed.txt" ;;
    fuzz_http_request) max_len=8192; cp tests/fuzz/seeds/http/* "$dir/corpus/" ;;
    fuzz_grammar) max_len=2048; cp tests/fuzz/seeds/grammar/* "$dir/corpus/" ;;
    *) echo "fuzz.sh: unknown target $target" >&2; exit 1 ;;
  esac
  if [ ! -x "$dir/$target" ] || [ -n "$(find include examples/server tests/fuzz -newer "$dir/$target" -type f | head -1)" ]; then
    clang++-14 -std=c++17 -O2 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -pthread -Iinclude -Iexamples -I/usr/include/eigen3 -DGLRNN_FUZZ_TOKENIZER="\"$PWD/models/griffin-demo/tokenizer.json\"" \
      "tests/fuzz/$target.cpp" -o "$dir/$target"
  fi
  echo "== $target: ${limit[*]}"
  status=0
  (cd "$dir" && "./$target" "${limit[@]}" -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 \
     -print_final_stats=1 corpus > log.txt 2>&1) || status=$?
  grep -E "stat::number_of_executed_units|ERROR|SUMMARY" "$dir/log.txt" || true
  if [ $status -ne 0 ] || ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* >/dev/null 2>&1; then
    tail -40 "$dir/log.txt" >&2
    echo "$target: found a failing input (see $dir)" >&2
    exit 1
  fi
done
