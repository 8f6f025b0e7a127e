#!/usr/bin/env bash
# Tests stack.sh by hand-free use: up, up again, status, set, down, in a private state directory
# (never the developer's .local), and that down leaves alone a process it did not start.
# Usage: bash infra/local/test-stack.sh   (exit 0 when every check passes)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK="$ROOT/infra/local/stack.sh"
export PREMATCH_LOCAL_DIR
PREMATCH_LOCAL_DIR="$(mktemp -d /tmp/prematch-stack-test.XXXXXX)"
failures=0
stranger=""

check() { # check DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; failures=$((failures + 1)); fi
}

cleanup() {
  bash "$STACK" down >/dev/null 2>&1 || true
  [[ -n "$stranger" ]] && kill "$stranger" 2>/dev/null
  rm -rf "$PREMATCH_LOCAL_DIR"
}
trap cleanup EXIT

pid_of() { cat "$PREMATCH_LOCAL_DIR/$1.pid" 2>/dev/null; }
running() { [[ -n "$1" && -d "/proc/$1" ]]; }
env_value() { grep "^$1=" "$PREMATCH_LOCAL_DIR/env" | cut -d= -f2-; }
redis_pong() {
  local url port reply=""
  url="$(env_value REDIS_URL)"; port="${url##*:}"
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'PING\r\n' >&3; IFS= read -r -t 2 reply <&3; exec 3<&- 3>&-
  [[ "$reply" == "+PONG"* ]]
}
moto_lists_tables() {
  # An unsigned-but-well-formed DynamoDB call: moto accepts the test credentials.
  curl -fsS --max-time 5 -X POST "$(env_value AWS_ENDPOINT_URL)" \
    -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{}' | grep -q TableNames
}

# GIVEN nothing running WHEN up THEN both answer at the URLs in the env file
check "up succeeds" bash "$STACK" up
check "env file names REDIS_URL on loopback" grep -q '^REDIS_URL=redis://127.0.0.1:[0-9]\+$' "$PREMATCH_LOCAL_DIR/env"
check "env file names AWS_ENDPOINT_URL on loopback" grep -q '^AWS_ENDPOINT_URL=http://127.0.0.1:[0-9]\+$' "$PREMATCH_LOCAL_DIR/env"
check "env file has test credentials and region" \
  bash -c "grep -q '^AWS_ACCESS_KEY_ID=test$' '$PREMATCH_LOCAL_DIR/env' && grep -q '^AWS_REGION=us-east-1$' '$PREMATCH_LOCAL_DIR/env'"
check "redis answers PING at REDIS_URL" redis_pong
check "moto answers DynamoDB ListTables at AWS_ENDPOINT_URL" moto_lists_tables
check "redis does not use the default port" bash -c "! grep -q ':6379$' <(grep REDIS_URL '$PREMATCH_LOCAL_DIR/env')"
redis_pid="$(pid_of redis)"; moto_pid="$(pid_of moto)"

# WHEN up again THEN nothing new starts
check "second up succeeds" bash "$STACK" up
check "second up keeps the redis pid" test "$(pid_of redis)" = "$redis_pid"
check "second up keeps the moto pid" test "$(pid_of moto)" = "$moto_pid"
check "one redis-server for this directory" \
  test "$(pgrep -fc "redis-server 127.0.0.1:$(cat "$PREMATCH_LOCAL_DIR/redis.port")")" = 1
check "status reports both running" bash "$STACK" status

# WHEN a value is set THEN it is in the env file once, and make can source the file
check "set DLQ_URL" bash "$STACK" set DLQ_URL http://127.0.0.1:1/123456789012/dlq
check "set DLQ_URL again" bash "$STACK" set DLQ_URL http://127.0.0.1:1/123456789012/prematch-dlq
check "DLQ_URL appears once with the last value" \
  test "$(grep -c '^DLQ_URL=' "$PREMATCH_LOCAL_DIR/env"):$(env_value DLQ_URL)" = "1:http://127.0.0.1:1/123456789012/prematch-dlq"
check "env file sources cleanly" bash -c "set -eu; set -a; source '$PREMATCH_LOCAL_DIR/env'; [[ \$AWS_DEFAULT_REGION == us-east-1 ]]"
check "a bad variable name is refused" bash -c "! bash '$STACK' set 'bad name' x 2>/dev/null"

# WHEN moto dies THEN up restarts only moto, and drops the values that belonged to the old one
kill "$moto_pid"; for _ in $(seq 1 50); do running "$moto_pid" || break; sleep 0.1; done
check "status notices moto is down" bash -c "! bash '$STACK' status >/dev/null"
check "up after a crash succeeds" bash "$STACK" up
check "redis kept its pid" test "$(pid_of redis)" = "$redis_pid"
check "moto has a new pid" bash -c "[[ '$(pid_of moto)' != '$moto_pid' ]]"
check "DLQ_URL of the old moto is dropped" bash -c "! grep -q '^DLQ_URL=' '$PREMATCH_LOCAL_DIR/env'"
moto_pid="$(pid_of moto)"

# WHEN down THEN what up started is gone, and so is the env file
check "down succeeds" bash "$STACK" down
sleep 0.3
check "redis stopped" bash -c "! [[ -d /proc/$redis_pid ]]"
check "moto stopped" bash -c "! [[ -d /proc/$moto_pid ]]"
check "env file removed" test ! -e "$PREMATCH_LOCAL_DIR/env"
check "status reports stopped" bash -c "! bash '$STACK' status >/dev/null"

# GIVEN a pid file that names someone else's process WHEN down THEN that process survives
sleep 300 & stranger=$!
echo "$stranger" >"$PREMATCH_LOCAL_DIR/redis.pid"
check "down with a foreign pid succeeds" bash "$STACK" down
check "the foreign process is untouched" running "$stranger"

# GIVEN a redis that takes a while to exec (a loaded CI machine) WHEN up THEN it is waited for,
# not taken for dead because its command line does not say redis-server yet
rm -f "$PREMATCH_LOCAL_DIR/redis.pid"
slow="$PREMATCH_LOCAL_DIR/slow-start"
printf '#!/usr/bin/env bash\nsleep 1\nexec %q "$@"\n' "$(command -v redis-server)" >"$slow"; chmod +x "$slow"
check "up with a slow-starting redis succeeds" env PREMATCH_REDIS_SERVER="$slow" bash "$STACK" up
check "the slow redis answers PING" redis_pong
check "down after the slow start succeeds" bash "$STACK" down

echo "$failures failure(s)"
[[ "$failures" == 0 ]]
