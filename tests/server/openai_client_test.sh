#!/usr/bin/env bash
# The official `openai` package for Node.js against glrnn-server: installs it into WORK_DIR with
# npm (once), starts the server on a free port and runs openai_client_test.mjs (a streamed chat
# completion, the model list, a text completion, an error). Exits 77, which CTest reports as
# skipped, when node or npm are missing or npm cannot reach its registry.
#   openai_client_test.sh SERVER MODEL_DIR WORK_DIR CLIENT_SCRIPT
set -euo pipefail

server=$1 model=$2 work=$3 client=$4
readonly skip=77

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "openai client test: SKIPPED: node and npm are not installed (apt-get install nodejs npm)"
  exit $skip
fi
mkdir -p "$work"
if [[ ! -f "$work/node_modules/openai/package.json" ]]; then
  # Major 4: the latest (7.x) wants Node.js 22, 4.x runs on Node.js 18 (Debian bookworm's).
  if ! (cd "$work" && timeout 300 npm install --no-audit --no-fund --no-save --loglevel=error openai@4 >npm.log 2>&1); then
    if grep -qE "ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|proxy" "$work/npm.log" ||
       ! timeout 30 npm ping >/dev/null 2>&1; then
      echo "openai client test: SKIPPED: npm cannot reach its registry to install the openai package:"
      tail -n 5 "$work/npm.log"
      exit $skip
    fi
    echo "openai client test: npm install openai@4 failed:"
    cat "$work/npm.log"
    exit 1
  fi
fi

out="$work/server.out" log="$work/server.log"
# Created here, not only by the redirections below: those happen in the forked child, which the
# first poll of $out can overtake.
: >"$out"
: >"$log"
"$server" -m "$model" --port 0 -t 1 >"$out" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's|^glrnn-server: listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$out")
  [[ -n "$port" ]] && break
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "openai client test: glrnn-server did not start:"
  cat "$log"
  exit 1
fi
cp "$client" "$work/openai_client_test.mjs"  # so that `import 'openai'` resolves in $work/node_modules
node "$work/openai_client_test.mjs" "http://127.0.0.1:$port/v1"
