#!/usr/bin/env bash
# Backup/restore measurement at 100k keys (16 B keys, 256 B values).
# Usage: go build -o cairn ./cmd/cairn && CAIRN=./cairn scripts/backup-measure.sh (not CI).
set -euo pipefail
B=${CAIRN:-./cairn}; D=$(mktemp -d); EP=127.0.0.1:24791; PEER=http://127.0.0.1:24801
$B --data-dir $D/src --listen-client-urls http://$EP --advertise-client-urls http://$EP \
  --listen-peer-urls $PEER --initial-advertise-peer-urls $PEER --initial-cluster default=$PEER 2>$D/src.log &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf $D' EXIT
sleep 2
$B bench --endpoints $EP --conns 10 --clients 100 --progress 0 put --key-size 16 --val-size 256 --total 100000 --sequential-keys --key-space-size 100000 | grep -E 'Requests/sec|Total'
hwm0=$(grep VmHWM /proc/$PID/status | awk '{print $2}'); rss0=$(grep VmRSS /proc/$PID/status | awk '{print $2}')
t0=$(date +%s.%N)
$B ctl --endpoints $EP snapshot save $D/snap.db >/dev/null
t1=$(date +%s.%N)
hwm1=$(grep VmHWM /proc/$PID/status | awk '{print $2}')
echo "save: $(echo "$t1 - $t0" | bc) s, file $(stat -c %s $D/snap.db) bytes; server RSS before $rss0 KiB, peak before $hwm0 KiB, peak after $hwm1 KiB"
$B snapshot status $D/snap.db -w table
t0=$(date +%s.%N)
$B snapshot restore $D/snap.db --data-dir $D/restored --name r --initial-cluster r=http://127.0.0.1:24802 --initial-advertise-peer-urls http://127.0.0.1:24802 >/dev/null 2>&1
t1=$(date +%s.%N)
echo "restore: $(echo "$t1 - $t0" | bc) s, data dir $(du -sm $D/restored | cut -f1) MB"
