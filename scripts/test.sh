#!/usr/bin/env bash
# The project's test command (README "Run the tests"; CI runs exactly this).
# Product packages run with the race detector; the compat/ module (tests
# against a real etcd and real etcd clients) runs as its own module.
set -euo pipefail
cd "$(dirname "$0")/.."

# staticcheck at a pinned version, fetched through the module proxy.
staticcheck="honnef.co/go/tools/cmd/staticcheck@v0.8.2"
echo "== go vet, staticcheck (product)"
go vet ./...
go run "$staticcheck" ./...
echo "== go test -race (product)"
go test -race -count=1 -timeout 20m ./...
if [ -f compat/go.mod ]; then
  echo "== go vet, staticcheck (compat)"
  (cd compat && go vet ./... && go run "$staticcheck" ./...)
  # The etcd 3.6.16 oracle is a module of its own (one module cannot require
  # two releases of etcd's server); the compat tests build and run it.
  (cd compat/oracle36 && go vet ./... && go run "$staticcheck" ./...)
  # So is the etcd 3.5.21 oracle of the v2 keys API (--enable-v2).
  (cd compat/oracle35 && go vet ./... && go run "$staticcheck" ./...)
  echo "== go test (compat: differential tests against embedded etcd, etcdctl)"
  # -v so the differential tester's summary ("compat: ... compared N
  # requests ...") shows; the full log is printed only if something fails.
  log="$(mktemp)"
  if (cd compat && go test -v -count=1 -timeout 20m ./... >"$log" 2>&1); then
    grep -E '^(ok|compat:)' "$log" || true
  else
    cat "$log"
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi
