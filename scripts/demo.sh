#!/usr/bin/env bash
# The README's main command: installs the build packages, builds glrnn-generate in Release into
# build/, then continues the prompt of the bundled tiny RecurrentGemma fixture greedily.
# Extra arguments go to glrnn-generate (e.g. --temperature 0.8 --seed 1 --logits-out out.json) and
# override the demo's own.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target glrnn-generate

# The 40 prompt ids of tests/data/recurrentgemma-tiny/reference.json ("prompt_ids").
prompt_ids=2,66,452,168,304,7,34,446,70,46,457,497,133,208,449,312,469,138,93,67,282,49,472,449,488,224,189,259,326,332,330,275,38,10,388,260,201,401,426,485

# glrnn-generate lets the last occurrence of a flag win, so the caller's arguments override these.
args=(--model tests/data/recurrentgemma-tiny --prompt-ids "$prompt_ids" -n 32 --temperature 0 --ignore-eos)
echo "+ build/examples/glrnn-generate ${args[*]} $*" >&2
exec build/examples/glrnn-generate "${args[@]}" "$@"
