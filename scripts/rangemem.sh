#!/usr/bin/env bash
# Peak-RSS measurements of large reads for docs/perf.md (issues 12 and 13),
# with scripts/rangemem: each run starts a fresh single-member server,
# loads keys, restarts it, runs one warm-up read, then 20 concurrent reads,
# and prints the server's peak RSS (VmHWM) before and after them.
#
# Usage: scripts/rangemem.sh [BEFORE_COMMIT]
#   BEFORE_COMMIT (optional) builds Cairn at that commit too, for the
#   before/after rows of the sorted read.
# Environment:
#   STREAM_KEYS=n   keys of 10 KiB for the streaming list (default 100000: 1 GB)
#   ETCD=0          skip etcd 3.7.4 (compat/cmd/refetcd)
# Not part of CI: it writes a few GB and takes about half an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/cairn" ./cmd/cairn
go build -o "$work/rangemem" ./scripts/rangemem
[ "${ETCD:-1}" = 1 ] && (cd compat && go build -o "$work/refetcd" ./cmd/refetcd)
if [ -n "${1:-}" ]; then
  mkdir "$work/before"
  git archive "$1" | tar -x -C "$work/before"
  (cd "$work/before" && go build -o "$work/cairn-before" ./cmd/cairn)
fi
bins=("$work/cairn")
[ -n "${1:-}" ] && bins+=("$work/cairn-before")
[ "${ETCD:-1}" = 1 ] && bins+=("$work/refetcd")

for bin in "${bins[@]}"; do
  # 20 x Range limit=10 sorted by mod revision, descending, over 100k x 1 KiB:
  # keys written one per revision (no ties), then 128 per revision (ties).
  "$work/rangemem" -bin "$bin" -dir "$work" -read sorted -keys 100000 -val-size 1024 -txn-keys 1
  "$work/rangemem" -bin "$bin" -dir "$work" -read sorted -keys 100000 -val-size 1024 -txn-keys 128
done
for bin in "$work/cairn" $([ "${ETCD:-1}" = 1 ] && echo "$work/refetcd"); do
  # 20 x RangeStream of the whole prefix of STREAM_KEYS x 10 KiB.
  "$work/rangemem" -bin "$bin" -dir "$work" -read stream -keys "${STREAM_KEYS:-100000}" -val-size 10240
done
