#!/usr/bin/env bash
# Starts a local glrnn-server cluster on the loopback interface: Redis (the shared state tier,
# examples/deploy/redis.conf), N glrnn-server replicas and HAProxy in front of them, with a
# configuration made from examples/deploy/haproxy.cfg (its marked bind, server and balance lines
# replaced), so that what runs here is the example itself. For tests and for trying scale-out.
#
# Usage: scripts/cluster.sh [OPTIONS] [-- SERVER_ARGS...]
#   --replicas N        glrnn-server replicas (default 3)
#   --port P            HAProxy's port (default 0: a free one)
#   --balance B         conversation (default: hash of X-Conversation-Id, else of the body's first
#                       256 bytes) or roundrobin
#   --model DIR         model folder (default models/griffin-demo)
#   --server PATH       glrnn-server binary (default build/examples/glrnn-server)
#   --work-dir DIR      where ports, pids, logs and the generated haproxy.cfg go (default: a new
#                       temporary directory, removed on exit; a given one is kept)
#   --no-redis          replicas without --cache-redis (each with its own cache only)
#   --timeout S         seconds to wait for each program to be ready (default 30)
#   -- SERVER_ARGS...   passed to every replica after the script's own flags (they override them:
#                       the replicas get -t 1 unless these say otherwise)
#
# Files in the work dir: redis.port, redis.pid, redis.log, replica-I.port, replica-I.pid,
# replica-I.log (I = 1..N), haproxy.cfg, haproxy.port, haproxy.pid, haproxy.log, and last `ready`
# (once every replica is up and /health answers 200 through HAProxy). Then it prints
#   cluster: http://127.0.0.1:PORT (N replicas, redis 127.0.0.1:RPORT, work dir DIR)
# and waits. SIGINT, SIGTERM or an error stop everything it started (HAProxy, the replicas with
# SIGTERM so they write their caches, then Redis). A replica that dies is not restarted and does
# not stop the cluster (tests kill one on purpose); HAProxy dying does.
# Exit status 77 (skip) when redis-server or haproxy is missing.
#
# Example (one terminal):
#   scripts/cluster.sh --replicas 2 --work-dir /tmp/c
# and in another:
#   curl -s "http://127.0.0.1:$(cat /tmp/c/haproxy.port)/v1/chat/completions" \
#     -H 'Content-Type: application/json' -H 'X-Conversation-Id: demo-1' \
#     -d '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}'
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Debian installs haproxy in /usr/sbin, which a user's PATH often lacks.
PATH=$PATH:/usr/sbin:/sbin

replicas=3
port=0
balance=conversation
model=$repo/models/griffin-demo
server=$repo/build/examples/glrnn-server
work_dir=
use_redis=1
timeout_s=30
server_args=()

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "cluster: $*" >&2; exit 1; }

while (($#)); do
  case $1 in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --replicas) replicas=${2?--replicas needs a value}; shift 2 ;;
    --port) port=${2?--port needs a value}; shift 2 ;;
    --balance) balance=${2?--balance needs a value}; shift 2 ;;
    --model) model=${2?--model needs a value}; shift 2 ;;
    --server) server=${2?--server needs a value}; shift 2 ;;
    --work-dir) work_dir=${2?--work-dir needs a value}; shift 2 ;;
    --timeout) timeout_s=${2?--timeout needs a value}; shift 2 ;;
    --no-redis) use_redis=0; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; server_args=("$@"); break ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done

if ! [[ $replicas =~ ^[0-9]{1,4}$ ]] || ((replicas < 1)); then die "--replicas wants a positive integer, not '$replicas'"; fi
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || ((port > 65535)); then die "--port wants 0-65535, not '$port'"; fi
if ! [[ $timeout_s =~ ^[0-9]{1,6}$ ]] || ((timeout_s < 1)); then die "--timeout wants a positive integer, not '$timeout_s'"; fi
case $balance in
  conversation|roundrobin) ;;
  *) die "--balance wants conversation or roundrobin, not '$balance'" ;;
esac

missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
((use_redis)) && ! command -v redis-server >/dev/null 2>&1 && missing+=(redis-server)
if ((${#missing[@]})); then
  echo "cluster: ${missing[*]} not found: install redis-server haproxy (Debian: apt-get install redis-server haproxy)" >&2
  exit 77
fi
[[ -x $server ]] || die "no glrnn-server at '$server' (build it: cmake --build build --target glrnn-server, or pass --server)"
[[ -e $model ]] || die "no model at '$model' (pass --model)"
haproxy_template=$repo/examples/deploy/haproxy.cfg
redis_conf=$repo/examples/deploy/redis.conf
[[ -f $haproxy_template ]] || die "missing $haproxy_template"
((use_redis)) && { [[ -f $redis_conf ]] || die "missing $redis_conf"; }

made_work_dir=0
if [[ -z $work_dir ]]; then
  work_dir=$(mktemp -d "${TMPDIR:-/tmp}/glrnn-cluster.XXXXXX")
  made_work_dir=1
else
  mkdir -p "$work_dir"
  work_dir=$(cd "$work_dir" && pwd)
  rm -f "$work_dir/ready"  # a previous run's
fi

# Processes started, in start order; stopped in reverse order.
pids=()
names=()

stop_process() {  # PID NAME: SIGTERM, then SIGKILL after 20 s
  local pid=$1 name=$2 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "cluster: $name (pid $pid) did not stop after SIGTERM, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleaned=0
cleanup() {
  local status=$? i
  set +e  # stop everything even if a step fails
  ((cleaned)) && return "$status"
  cleaned=1
  trap '' INT TERM
  if [[ -n ${sleep_pid:-} ]]; then kill "$sleep_pid" 2>/dev/null; fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop_process "${pids[i]}" "${names[i]}"
  done
  if ((made_work_dir)); then
    rm -rf -- "$work_dir"
  fi
  return "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() {  # PORT: true when something accepts connections on 127.0.0.1:PORT
  (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {  # a port that was free a moment ago (a start that loses the race is retried)
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    local p
    while :; do
      p=$((20000 + RANDOM % 40000))
      port_in_use "$p" || { echo "$p"; return 0; }
    done
  fi
}

http_status() {  # PORT PATH: the HTTP status of GET PATH on 127.0.0.1:PORT, 000 when none
  local code=000 fd
  if command -v curl >/dev/null 2>&1; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1$2" 2>/dev/null) || code=000
  elif { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
    { printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" 1>&"$fd"; } 2>/dev/null || true
    IFS=' ' read -r -t 2 _ code _ <&"$fd" || code=000
    exec {fd}>&-
  fi
  echo "${code:-000}"
}

redis_ping() {  # PORT: true when Redis answers PING
  local fd line=
  { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  { printf 'PING\r\n' 1>&"$fd"; } 2>/dev/null || true
  read -r -t 2 line <&"$fd" || true
  exec {fd}>&-
  [[ $line == +PONG* ]]
}

show_log() {  # FILE
  echo "----- $1 (last 40 lines) -----" >&2
  tail -n 40 "$1" >&2 2>/dev/null || true
  echo "-----" >&2
}

# wait_ready PID NAME COMMAND...: runs COMMAND until it succeeds. Returns 0 when it did, 1 when
# process PID exited first, 2 after the timeout.
wait_ready() {
  local pid=$1 name=$2 deadline=$((SECONDS + timeout_s))
  shift 2
  while :; do
    "$@" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "cluster: $name not ready after ${timeout_s} s" >&2
      return 2
    fi
    sleep 0.1
  done
}

# --- Redis -----------------------------------------------------------------------------------
redis_port=
if ((use_redis)); then
  for attempt in 1 2 3; do
    redis_port=$(free_port)
    # The example configuration, with the port, directory and supervision of this run; DEBUG is
    # allowed from loopback so that tests can use DEBUG SLEEP.
    redis-server "$redis_conf" --port "$redis_port" --dir "$work_dir" --daemonize no --supervised no \
      --logfile "" --enable-debug-command local >"$work_dir/redis.log" 2>&1 &
    pid=$!
    pids+=("$pid"); names+=(redis-server)
    status=0
    wait_ready "$pid" redis-server redis_ping "$redis_port" || status=$?
    if ((status == 0)); then break; fi
    if ((status == 1 && attempt < 3)); then
      wait "$pid" 2>/dev/null || true
      echo "cluster: redis-server exited at start (port $redis_port taken?), retrying" >&2
      continue
    fi
    show_log "$work_dir/redis.log"
    die "redis-server did not start"
  done
  echo "$redis_port" >"$work_dir/redis.port"
  echo "$pid" >"$work_dir/redis.pid"
fi

# --- Replicas --------------------------------------------------------------------------------
# All are started at once (they load the model in parallel), then each one's ready line is awaited.
replica_args=(-m "$model" --host 127.0.0.1 --port 0 -t 1)
((use_redis)) && replica_args+=(--cache-redis "redis://127.0.0.1:$redis_port")
replica_pids=()
for ((i = 1; i <= replicas; i++)); do
  # The local Redis has no password: a GLRNN_REDIS_PASSWORD of the caller's must not reach it.
  env -u GLRNN_REDIS_PASSWORD "$server" "${replica_args[@]}" "${server_args[@]}" >"$work_dir/replica-$i.log" 2>&1 &
  pid=$!
  pids+=("$pid"); names+=("replica $i")
  replica_pids+=("$pid")
  echo "$pid" >"$work_dir/replica-$i.pid"
done

replica_ports=()
ready_port() {  # LOG: the port of glrnn-server's ready line, when the log has it
  local line
  line=$(grep -m1 -o 'glrnn-server: listening on http://[^ ]*' "$1" 2>/dev/null) || return 1
  [[ $line =~ :([0-9]+)$ ]] || return 1
  echo "${BASH_REMATCH[1]}"
}
has_ready_line() { ready_port "$1" >/dev/null; }
for ((i = 1; i <= replicas; i++)); do
  log=$work_dir/replica-$i.log
  if ! wait_ready "${replica_pids[i - 1]}" "replica $i" has_ready_line "$log"; then
    show_log "$log"
    die "replica $i did not start"
  fi
  rport=$(ready_port "$log")
  replica_ports+=("$rport")
  echo "$rport" >"$work_dir/replica-$i.port"
done
for ((i = 1; i <= replicas; i++)); do
  code=$(http_status "${replica_ports[i - 1]}" /health)
  [[ $code == 200 ]] || { show_log "$work_dir/replica-$i.log"; die "replica $i: GET /health gave $code"; }
done

# --- HAProxy ---------------------------------------------------------------------------------
servers=
for ((i = 1; i <= replicas; i++)); do
  servers+="    server r$i 127.0.0.1:${replica_ports[i - 1]}"$'\n'
done

make_haproxy_cfg() {  # PORT: writes $work_dir/haproxy.cfg from the example
  GLRNN_BIND="    bind 127.0.0.1:$1" GLRNN_SERVERS="$servers" GLRNN_RR=$([[ $balance == roundrobin ]] && echo 1 || echo 0) \
    awk '
      /^[ \t]*# glrnn-bind begin[ \t]*$/     { print; printf "%s\n", ENVIRON["GLRNN_BIND"]; skip = 1; binds++; next }
      /^[ \t]*# glrnn-bind end[ \t]*$/       { skip = 0; print; next }
      /^[ \t]*# glrnn-replicas begin[ \t]*$/ { print; printf "%s", ENVIRON["GLRNN_SERVERS"]; skip = 1; blocks++; next }
      /^[ \t]*# glrnn-replicas end[ \t]*$/   { skip = 0; print; next }
      skip { next }
      $0 == "    balance hash var(txn.route)" { balances++; if (ENVIRON["GLRNN_RR"] == 1) { print "    balance roundrobin"; next } }
      { print }
      END {
        if (binds != 1 || blocks != 1 || balances != 1 || skip) {
          print "cluster: " FILENAME ": expected one glrnn-bind block, one glrnn-replicas block and one line \"    balance hash var(txn.route)\"" > "/dev/stderr"
          exit 3
        }
      }' "$haproxy_template" >"$work_dir/haproxy.cfg"
}

haproxy_ok() { [[ $(http_status "$haproxy_port" /health) == 200 ]] && kill -0 "$pid" 2>/dev/null; }

attempts=3
((port != 0)) && attempts=1
haproxy_pid=
for ((attempt = 1; attempt <= attempts; attempt++)); do
  if ((port != 0)); then haproxy_port=$port; else haproxy_port=$(free_port); fi
  # Something else answering on the port would pass the readiness check below.
  if port_in_use "$haproxy_port"; then
    if ((port != 0)); then die "port $port is in use"; fi
    continue
  fi
  make_haproxy_cfg "$haproxy_port" || die "cannot make haproxy.cfg from $haproxy_template"
  if ! check=$(haproxy -c -q -f "$work_dir/haproxy.cfg" 2>&1); then
    echo "$check" >&2
    die "haproxy -c rejects $work_dir/haproxy.cfg"
  fi
  # -db: foreground; its log lines go to stdout (the example's "log stdout").
  haproxy -db -f "$work_dir/haproxy.cfg" >"$work_dir/haproxy.log" 2>&1 &
  pid=$!
  pids+=("$pid"); names+=(haproxy)
  status=0
  wait_ready "$pid" haproxy haproxy_ok || status=$?
  if ((status == 0)); then haproxy_pid=$pid; break; fi
  if ((status == 1 && attempt < attempts)); then
    wait "$pid" 2>/dev/null || true
    echo "cluster: haproxy exited at start (port $haproxy_port taken?), retrying" >&2
    continue
  fi
  show_log "$work_dir/haproxy.log"
  die "haproxy did not start"
done
[[ -n $haproxy_pid ]] || die "found no free port for haproxy"
echo "$haproxy_port" >"$work_dir/haproxy.port"
echo "$haproxy_pid" >"$work_dir/haproxy.pid"

: >"$work_dir/ready"
if ((use_redis)); then
  echo "cluster: http://127.0.0.1:$haproxy_port ($replicas replicas, redis 127.0.0.1:$redis_port, work dir $work_dir)"
else
  echo "cluster: http://127.0.0.1:$haproxy_port ($replicas replicas, no redis, work dir $work_dir)"
fi

# Wait for a signal. Sleeping in the background and waiting for it lets a trap run at once.
while :; do
  sleep 1 &
  sleep_pid=$!
  wait "$sleep_pid" || true
  if ! kill -0 "$haproxy_pid" 2>/dev/null; then
    show_log "$work_dir/haproxy.log"
    die "haproxy exited"
  fi
done
