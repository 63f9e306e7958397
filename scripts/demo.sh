#!/usr/bin/env bash
# The README's main command: installs the build packages, builds glrnn-generate in Release into
# build/, then continues the prompt of the bundled tiny RecurrentGemma fixture greedily.
# Extra arguments go to glrnn-generate (e.g. --temperature 0.8 --top-k 40 --seed 1 --logits-out out.json);
# one you give replaces the demo's own --model, --prompt-ids, -n or --temperature.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
  -DGLRNN_BUILD_TESTS=OFF -DGLRNN_BUILD_BENCHMARKS=OFF
cmake --build build -j"$(nproc)" --target glrnn-generate

# The 40 prompt ids of tests/data/recurrentgemma-tiny/reference.json ("prompt_ids").
prompt_ids=2,66,452,168,304,7,34,446,70,46,457,497,133,208,449,312,469,138,93,67,282,49,472,449,488,224,189,259,326,332,330,275,38,10,388,260,201,401,426,485

# True when the caller passed one of the given options (as "--opt value", "--opt=value" or "-nVALUE").
given() {
  local arg opt
  for arg in "${user_args[@]+"${user_args[@]}"}"; do
    for opt in "$@"; do
      case "$arg" in
        "$opt" | "$opt"=*) return 0 ;;
      esac
      if [[ "$opt" != --* && "$arg" == "$opt"?* ]]; then return 0; fi  # short option with attached value
    done
  done
  return 1
}

user_args=("$@")
args=()
given -m --model || args+=(--model tests/data/recurrentgemma-tiny)
given --prompt-ids || args+=(--prompt-ids "$prompt_ids")
given -n --max-new-tokens --n-predict || args+=(-n 32)
given --temperature --temp || args+=(--temperature 0)
args+=(--ignore-eos)

echo "+ build/examples/glrnn-generate ${args[*]} $*" >&2
exec build/examples/glrnn-generate "${args[@]}" "$@"
