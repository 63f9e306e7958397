#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (AddressSanitizer and UBSan on) and runs
# each for a bounded time. Usage: scripts/fuzz.sh [seconds per target, default 60] [target ...]
# Seed corpora come from the fixtures; crashes are written to build-fuzz/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_config fuzz_tokenizer_json fuzz_tokenizer_encode)

if ! command -v clang++-14 >/dev/null || [ ! -d /usr/lib/llvm-14/lib/clang ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q clang-14 libclang-rt-14-dev
fi
bash scripts/install-deps.sh

out=build-fuzz
mkdir -p "$out"
for target in "${targets[@]}"; do
  dir="$out/$target"
  mkdir -p "$dir/corpus"
  case "$target" in
    fuzz_safetensors) cp tests/data/*/model.safetensors "$dir/corpus/" 2>/dev/null || true
                      for f in tests/data/*/model.safetensors; do head -c 4096 "$f" > "$dir/corpus/head-$(basename "$(dirname "$f")")"; done ;;
    fuzz_config) for f in tests/data/*/config.json tests/data/configs/*/config.json models/*/config.json; do
                   cp "$f" "$dir/corpus/$(echo "$f" | tr '/' '_')"; done ;;
    fuzz_tokenizer_json) cp models/griffin-demo/tokenizer.json "$dir/corpus/demo.json" ;;
    fuzz_tokenizer_encode) head -c 2000 tests/data/eval-public.txt > "$dir/corpus/english.txt"
                           printf 'Hello \xff\xfe \xe4\xbd\xa0 <bos>' > "$dir/corpus/mixed.txt" ;;
  esac
  clang++-14 -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Iinclude -I/usr/include/eigen3 -DGLRNN_FUZZ_TOKENIZER="\"$PWD/models/griffin-demo/tokenizer.json\"" \
    "tests/fuzz/$target.cpp" -o "$dir/$target"
  echo "== $target: ${seconds}s"
  (cd "$dir" && "./$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 corpus \
     2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" || true)
  if ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* >/dev/null 2>&1; then
    echo "$target: found a failing input in $dir" >&2
    exit 1
  fi
done
