#!/usr/bin/env bash
# The local stack: a private redis-server and a moto server (DynamoDB + SQS) on free loopback ports.
#
#   stack.sh up       start what is not already running and answering; write the env file
#   stack.sh down     stop what `up` started (by recorded pid, nothing else); remove the env file
#   stack.sh status   say what runs where (exit 0 when both answer, 3 otherwise)
#   stack.sh env      print the env file (REDIS_URL, AWS_ENDPOINT_URL, credentials, region, ...)
#   stack.sh set K V  add or replace K=V in the env file (for values known only after set-up, such
#                     as DLQ_URL once the queue exists); cleared when moto is restarted
#   stack.sh reset    empty both (FLUSHALL on Redis, POST /moto-api/reset on moto)
#
# State lives in $PREMATCH_LOCAL_DIR (default <repo>/.local, gitignored): redis.pid/.port/.log,
# moto.pid/.port/.log and `env`, which make sources with `set -a; source .local/env; set +a`.
# Overrides: PREMATCH_VENV (default <repo>/.venv), PREMATCH_REDIS_SERVER (redis-server binary),
# PREMATCH_REDIS_PORT / PREMATCH_MOTO_PORT (fixed ports instead of free ones).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="${PREMATCH_LOCAL_DIR:-$ROOT/.local}"
VENV="${PREMATCH_VENV:-$ROOT/.venv}"
ENV_FILE="$LOCAL_DIR/env"
HOST=127.0.0.1

say() { printf 'local stack: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- processes we recorded ------------------------------------------------------------------

# alive NAME PATTERN: the recorded pid of NAME is running and is still the program we started
# (a pid can be reused after a reboot or a crash, and we must never signal someone else's process).
alive() {
  local pid_file="$LOCAL_DIR/$1.pid" pid
  [[ -s "$pid_file" ]] || return 1
  pid="$(<"$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

recorded_port() { [[ -s "$LOCAL_DIR/$1.port" ]] && cat "$LOCAL_DIR/$1.port"; }

redis_answers() {
  local port="$1" reply=""
  # Plain RESP over bash's /dev/tcp, so this does not need redis-cli.
  { exec 3<>"/dev/tcp/$HOST/$port"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || true
  exec 3<&- 3>&-
  [[ "$reply" == "+PONG"* ]]
}

moto_answers() {
  curl -fsS -o /dev/null --max-time 2 "http://$HOST:$1/moto-api/data.json" 2>/dev/null
}

free_port() {
  python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# still_running PID: the process exists and is not a zombie. Unlike `alive` this does not match
# the command line: right after `&` the child may still be a copy of this shell that has not yet
# exec'd nohup, and taking that for "exited" failed a CI run.
still_running() {
  [[ -r "/proc/$1/status" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# wait_for NAME CHECK PORT: up to 20 s for the service to answer, and fail early if it died.
wait_for() {
  local name="$1" check="$2" port="$3" pid
  pid="$(<"$LOCAL_DIR/$name.pid")"
  for _ in $(seq 1 100); do
    if "$check" "$port"; then return 0; fi
    if ! still_running "$pid"; then
      say "$name exited during start-up; last lines of $LOCAL_DIR/$name.log:"
      tail -n 20 "$LOCAL_DIR/$name.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  say "$name did not answer on $HOST:$port within 20 s (see $LOCAL_DIR/$name.log)"
  return 1
}

stop() {
  local name="$1" pattern="$2" pid
  if alive "$name" "$pattern"; then
    pid="$(<"$LOCAL_DIR/$name.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      [[ -d "/proc/$pid" ]] || break
      sleep 0.1
    done
    if [[ -d "/proc/$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    say "stopped $name (pid $pid)"
  elif [[ -e "$LOCAL_DIR/$name.pid" ]]; then
    say "$name was not running (stale pid file removed)"
  fi
  rm -f "$LOCAL_DIR/$name.pid" "$LOCAL_DIR/$name.port"
}

# --- what is missing -------------------------------------------------------------------------

redis_binary() {
  if [[ -n "${PREMATCH_REDIS_SERVER:-}" ]]; then echo "$PREMATCH_REDIS_SERVER"; return; fi
  if command -v redis-server >/dev/null; then command -v redis-server; return; fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    say "redis-server is missing; installing Debian's package (apt-get)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
    command -v redis-server && return
  fi
  die "redis-server is not installed. Install it with: sudo apt-get install redis-server (Debian/Ubuntu), \
brew install redis (macOS), or point PREMATCH_REDIS_SERVER at a redis-server binary."
}

ensure_moto() {
  if [[ ! -x "$VENV/bin/moto_server" ]]; then
    say "moto is missing from $VENV; creating the virtualenv"
    PREMATCH_VENV="$VENV" bash "$ROOT/infra/local/venv.sh"
  fi
  [[ -x "$VENV/bin/moto_server" ]] || die "$VENV/bin/moto_server still missing after infra/local/venv.sh"
}

# --- the services ----------------------------------------------------------------------------

start_redis() {
  local port
  if alive redis redis-server && port="$(recorded_port redis)" && redis_answers "$port"; then
    say "redis already running (pid $(<"$LOCAL_DIR/redis.pid"), port $port)"
    return 0
  fi
  stop redis redis-server
  local bin; bin="$(redis_binary)"
  # A free port can be taken by someone else before redis binds it: try another, twice.
  for attempt in 1 2 3; do
    port="${PREMATCH_REDIS_PORT:-$(free_port)}"
    # No persistence: a private, throw-away Redis. noeviction is the default, as BullMQ requires.
    # 9>&- : the children must not inherit (and so hold) the lock.
    nohup "$bin" --port "$port" --bind "$HOST" --save '' --appendonly no --daemonize no \
      --dir "$LOCAL_DIR" --logfile "$LOCAL_DIR/redis.log" </dev/null >>"$LOCAL_DIR/redis.log" 2>&1 9>&- &
    echo $! >"$LOCAL_DIR/redis.pid"
    echo "$port" >"$LOCAL_DIR/redis.port"
    if wait_for redis redis_answers "$port"; then
      say "redis started (pid $(<"$LOCAL_DIR/redis.pid"), port $port)"
      return 0
    fi
    stop redis redis-server
    [[ -z "${PREMATCH_REDIS_PORT:-}" && "$attempt" != 3 ]] && say "retrying redis on another port"
  done
  return 1
}

start_moto() {
  local port
  if alive moto moto_server && port="$(recorded_port moto)" && moto_answers "$port"; then
    say "moto already running (pid $(<"$LOCAL_DIR/moto.pid"), port $port)"
    return 0
  fi
  stop moto moto_server
  ensure_moto
  for attempt in 1 2 3; do
    port="${PREMATCH_MOTO_PORT:-$(free_port)}"
    nohup "$VENV/bin/moto_server" -H "$HOST" -p "$port" </dev/null >"$LOCAL_DIR/moto.log" 2>&1 9>&- &
    echo $! >"$LOCAL_DIR/moto.pid"
    echo "$port" >"$LOCAL_DIR/moto.port"
    wait_for moto moto_answers "$port" && break
    stop moto moto_server
    [[ "$attempt" == 3 || -n "${PREMATCH_MOTO_PORT:-}" ]] && return 1
    say "retrying moto on another port"
  done
  # A new moto has no tables or queues: values recorded for the old one no longer hold.
  rm -f "$LOCAL_DIR/env.extra"
  say "moto started (pid $(<"$LOCAL_DIR/moto.pid"), port $port)"
}

write_env() {
  local redis_port moto_port tmp
  redis_port="$(recorded_port redis)"
  moto_port="$(recorded_port moto)"
  tmp="$ENV_FILE.tmp"
  {
    echo "# Written by infra/local/stack.sh up; make sources it (set -a; source .local/env; set +a)."
    echo "REDIS_URL=redis://$HOST:$redis_port"
    echo "AWS_ENDPOINT_URL=http://$HOST:$moto_port"
    echo "AWS_ACCESS_KEY_ID=test"
    echo "AWS_SECRET_ACCESS_KEY=test"
    echo "AWS_REGION=us-east-1"
    echo "AWS_DEFAULT_REGION=us-east-1"
    echo "# Values known only after set-up (DLQ_URL once the queue exists) are added by"
    echo "#   bash infra/local/stack.sh set DLQ_URL <queue url>"
    echo "# and dropped when moto restarts (its queues are gone then)."
    if [[ -s "$LOCAL_DIR/env.extra" ]]; then cat "$LOCAL_DIR/env.extra"; fi
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

cmd_up() {
  start_redis
  start_moto
  write_env
  say "env file: $ENV_FILE"
}

cmd_down() {
  stop moto moto_server
  stop redis redis-server
  rm -f "$ENV_FILE" "$LOCAL_DIR/env.extra"
}

cmd_status() {
  local ok=0 port
  for svc in "redis redis-server redis_answers" "moto moto_server moto_answers"; do
    read -r name pattern check <<<"$svc"
    if alive "$name" "$pattern"; then
      port="$(recorded_port "$name" || echo '?')"
      if "$check" "$port"; then
        echo "$name: running, pid $(<"$LOCAL_DIR/$name.pid"), $HOST:$port"
      else
        echo "$name: pid $(<"$LOCAL_DIR/$name.pid") alive but not answering on $HOST:$port"; ok=3
      fi
    else
      echo "$name: stopped"; ok=3
    fi
  done
  [[ -f "$ENV_FILE" ]] && echo "env: $ENV_FILE"
  return "$ok"
}

cmd_env() {
  [[ -f "$ENV_FILE" ]] || die "no env file at $ENV_FILE; run: bash infra/local/stack.sh up"
  cat "$ENV_FILE"
}

cmd_set() {
  local key="${1:-}" value="${2-}"
  [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "set: expected an upper-case variable name, got '${key}'"
  [[ "$value" != *$'\n'* ]] || die "set: the value of $key must be one line"
  [[ -f "$ENV_FILE" ]] || die "no env file at $ENV_FILE; run: bash infra/local/stack.sh up"
  local extra="$LOCAL_DIR/env.extra"
  touch "$extra"
  grep -v "^$key=" "$extra" >"$extra.tmp" || true
  printf '%s=%s\n' "$key" "$value" >>"$extra.tmp"
  mv "$extra.tmp" "$extra"
  write_env
}

cmd_reset() {
  local port
  port="$(recorded_port redis)" && redis_answers "$port" || die "redis is not running"
  { exec 3<>"/dev/tcp/$HOST/$port"; printf 'FLUSHALL\r\n' >&3; IFS= read -r -t 2 _ <&3 || true; exec 3<&- 3>&-; }
  port="$(recorded_port moto)" && moto_answers "$port" || die "moto is not running"
  curl -fsS -X POST --max-time 5 "http://$HOST:$port/moto-api/reset" >/dev/null
  rm -f "$LOCAL_DIR/env.extra"
  write_env
  say "emptied redis and moto"
}

main() {
  mkdir -p "$LOCAL_DIR"
  # One stack.sh at a time per state directory, so two `make` targets cannot start two of anything.
  exec 9>"$LOCAL_DIR/.lock"
  flock -w 60 9 || die "another stack.sh holds $LOCAL_DIR/.lock"
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    set) shift; cmd_set "$@" ;;
    reset) cmd_reset ;;
    # Install what the tests need (they start their own servers): redis-server.
    deps) say "redis-server: $(redis_binary)" ;;
    *) echo "usage: $0 up|down|status|env|set KEY VALUE|reset|deps" >&2; exit 2 ;;
  esac
}

main "$@"
