#!/usr/bin/env bash
# Runs a real third-party etcd client's own auth tests against Cairn and,
# for reference, against a real etcd 3.7.4 (compat/cmd/refetcd): the Node
# client etcd3 (github.com/microsoft/etcd3), its test file
# src/test/roles.test.ts (roles, users, permissions, password auth, token
# refresh), unchanged. Results: docs/compat.md.
#
# Each server runs alone on a fresh temp data dir on free 127.0.0.1 ports,
# with https client URLs and the certificate the suite trusts
# (src/test/certs), as the suite's own CI starts etcd. The test client
# reaches it through ETCD_ADDR, the variable of the suite's src/test/util.ts.
#
# Not run by CI: it needs the npm registry (npm ci of the pinned
# package-lock.json) and the client's source.
#
# Usage: scripts/thirdparty-auth.sh
# Environment:
#   ETCD3_SRC=dir    use this etcd3 source tree, or a git dir holding the
#                    pinned commit (e.g. a bare clone); default: fetch the
#                    pinned commit from ETCD3_GIT
#   ETCD3_GIT=url    default https://github.com/microsoft/etcd3.git
#   SUITE=all        run the whole suite (every *.test.js: KV, leases,
#                    locks, elections, STM, watch, ...) instead of the auth file
#   AUTH_TOKEN=jwt   run both servers with JWT tokens (RS256, a fresh RSA key;
#                    default: simple tokens)
#   ETCD=0           skip the etcd reference run
#   KEEP=1           keep the work dir (source, node_modules, logs)
# Exit status: 0 when every test passed on Cairn (and on etcd, if run).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# microsoft/etcd3 v1.1.2 + "docs: fix version numbers" (the npm tarball of
# 1.1.2 has no tests, so the source comes from git).
ETCD3_COMMIT=e74db2a81c68006feb770c1c21dbed5af46fdf40
ETCD3_GIT=${ETCD3_GIT:-https://github.com/microsoft/etcd3.git}
SUITE=${SUITE:-auth}
AUTH_TOKEN=${AUTH_TOKEN:-simple}
ETCD=${ETCD:-1}
KEEP=${KEEP:-0}
TEST_TIMEOUT=${TEST_TIMEOUT:-600} # seconds per mocha run
READY_TIMEOUT=${READY_TIMEOUT:-120}

work=$(mktemp -d /tmp/cairn-thirdparty.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

for tool in go git node npm python3 openssl; do
  command -v "$tool" >/dev/null || { echo "thirdparty-auth: $tool not found" >&2; exit 2; }
done

echo "== building cairn and refetcd (etcd 3.7.4)"
go build -o "$work/cairn" ./cmd/cairn
(cd compat && go build -o "$work/refetcd" ./cmd/refetcd)

echo "== etcd3 source at $ETCD3_COMMIT"
src=$work/etcd3
mkdir -p "$src"
if [ -n "${ETCD3_SRC:-}" ] && [ -f "$ETCD3_SRC/package.json" ]; then
  cp -a "$ETCD3_SRC/." "$src/"
  rm -rf "$src/node_modules" "$src/lib"
else
  gitdir=${ETCD3_SRC:-}
  if [ -z "$gitdir" ]; then
    gitdir=$work/etcd3.git
    git init -q --bare "$gitdir"
    git --git-dir="$gitdir" fetch -q --depth 1 "$ETCD3_GIT" "$ETCD3_COMMIT"
  fi
  git --git-dir="$gitdir" archive "$ETCD3_COMMIT" | tar -x -C "$src"
fi

echo "== npm ci && tsc"
(cd "$src" && npm ci --no-audit --no-fund >"$work/npm.log" 2>&1 && npm run -s build:ts >>"$work/npm.log" 2>&1) || {
  tail -20 "$work/npm.log" >&2; echo "thirdparty-auth: npm install/build failed" >&2; exit 2; }

if [ "$SUITE" = all ]; then
  specs=(lib/test/*.test.js)
else
  specs=(lib/test/roles.test.js)
fi

token_flag=simple
if [ "$AUTH_TOKEN" = jwt ]; then
  openssl genrsa -out "$work/jwt.key" 2048 2>/dev/null
  openssl rsa -in "$work/jwt.key" -pubout -out "$work/jwt.pub" 2>/dev/null
  token_flag="jwt,sign-method=RS256,priv-key=$work/jwt.key,pub-key=$work/jwt.pub,ttl=5m"
elif [ "$AUTH_TOKEN" != simple ]; then
  echo "thirdparty-auth: AUTH_TOKEN must be simple or jwt" >&2; exit 2
fi

freeport() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start NAME: starts the server NAME (cairn or etcd) on fresh ports and a
# fresh data dir, waits until it serves, sets $addr and $server_pid.
start() {
  local name=$1 cport pport log dir
  cport=$(freeport); pport=$(freeport)
  log=$work/$name.log; dir=$work/$name.data
  local cert=$src/src/test/certs/certs/etcd0.localhost.crt
  local key=$src/src/test/certs/private/etcd0.localhost.key
  local args=(--data-dir "$dir"
    --listen-client-urls "https://127.0.0.1:$cport" --advertise-client-urls "https://127.0.0.1:$cport"
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport"
    --initial-cluster "default=http://127.0.0.1:$pport"
    --cert-file "$cert" --key-file "$key" --auth-token "$token_flag")
  if [ "$name" = cairn ]; then
    "$work/cairn" "${args[@]}" >"$log" 2>&1 &
  else
    "$work/refetcd" "${args[@]}" >"$log" 2>&1 &
  fi
  server_pid=$!
  pids+=("$server_pid")
  addr=127.0.0.1:$cport
  local i
  for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
    if grep -qs "ready to serve client requests" "$log"; then return 0; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  tail -20 "$log" >&2
  echo "thirdparty-auth: $name did not become ready" >&2
  exit 2
}

# run NAME: runs the specs against server NAME; prints mocha's report and
# leaves mocha's exit status (the number of failed tests) in $rc.
run() {
  local name=$1
  start "$name"
  echo "== $name on $addr: ${specs[*]}"
  set +e
  (cd "$src" && ETCD_ADDR=$addr ETCD_VERSION=3.7.4 timeout "$TEST_TIMEOUT" \
    npx mocha --no-config --require source-map-support/register --require ./lib/test/_setup.js \
    --timeout 10000 --exit "${specs[@]}" 2>&1 | grep -v -e DEP0123 -e trace-deprecation | tee "$work/$name.mocha.txt")
  rc=${PIPESTATUS[0]}
  set -e
  kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
}

status=0
if [ "$ETCD" = 1 ]; then
  run etcd
  etcd_rc=$rc
  [ "$etcd_rc" = 0 ] || { echo "thirdparty-auth: the suite failed on etcd 3.7.4 (rc $etcd_rc)" >&2; status=1; }
fi
run cairn
cairn_rc=$rc
[ "$cairn_rc" = 0 ] || { echo "thirdparty-auth: the suite failed on Cairn (rc $cairn_rc)" >&2; status=1; }

echo "== summary (etcd3 $ETCD3_COMMIT, suite $SUITE, --auth-token $AUTH_TOKEN)"
for name in etcd cairn; do
  f=$work/$name.mocha.txt
  [ -f "$f" ] || continue
  printf '%-6s %s\n' "$name:" "$(grep -E '^ +[0-9]+ (passing|failing|pending)' "$f" | tr -s ' ' | tr '\n' ' ')"
done
exit $status
