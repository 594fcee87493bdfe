#!/usr/bin/env bash
# The project's test command (README "Run the tests"; CI runs exactly this).
# Product packages run with the race detector; the compat/ module (tests
# against a real etcd and real etcd clients) runs as its own module.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet (product)"
go vet ./...
echo "== go test -race (product)"
go test -race -count=1 -timeout 20m ./...
if [ -f compat/go.mod ]; then
  echo "== go vet (compat)"
  (cd compat && go vet ./...)
  echo "== go test (compat: differential tests against embedded etcd, etcdctl)"
  (cd compat && go test -count=1 -timeout 20m ./...)
fi
