#!/usr/bin/env bash
# Starts a 3-member Cairn cluster on 127.0.0.1 (clients on 2379, 22379,
# 32379; peers on 2380, 22380, 32380), data in ./cluster-data/<name>.cairn.
# Ctrl-C stops all three. Usage: scripts/cluster.sh [path-to-cairn-binary]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-}"
if [ -z "$bin" ]; then
  bin="$(mktemp -d)/cairn"
  go build -o "$bin" ./cmd/cairn
fi
cluster="n1=http://127.0.0.1:2380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380"
mkdir -p cluster-data
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
for i in 1 2 3; do
  port=$(( i == 1 ? 2379 : i * 10000 + 2379 ))
  peer=$(( port + 1 ))
  "$bin" --name "n$i" --data-dir "cluster-data/n$i.cairn" \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$cluster" --initial-cluster-token cairn-cluster --initial-cluster-state new \
    2> "cluster-data/n$i.log" &
  pids+=($!)
done
echo "cluster starting: endpoints 127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 (logs in cluster-data/)"
wait
