#!/usr/bin/env bash
# The README's main command: installs the build packages, builds glrnn-generate in Release into
# build/, then writes a continuation of an English prompt with the bundled demo model
# (models/griffin-demo, a small trained RecurrentGemma).
# Extra arguments go to glrnn-generate (e.g. --temperature 0.8 --seed 1 --logits-out out.json) and
# override the demo's own.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target glrnn-generate

# glrnn-generate lets the last occurrence of a flag win, so the caller's arguments override these.
args=(--model models/griffin-demo --prompt "The president of the company said that" -n 80 --ignore-eos
      --temperature 0.8 --top-k 40 --seed 1)
echo "+ build/examples/glrnn-generate ${args[*]} $*" >&2
exec build/examples/glrnn-generate "${args[@]}" "$@"
