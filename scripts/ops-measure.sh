#!/usr/bin/env bash
# Issue 18's operations numbers, Cairn against a real etcd 3.7.4
# (compat/cmd/refetcd), alternately, each on a fresh data dir:
#   - load KEYS keys (16 B, 256 B values; cairn bench put c100x1000);
#   - backup: `cairn ctl snapshot save` (etcdctl 3.7) against the server,
#     time, file size, the server's peak RSS during the save (VmHWM reset
#     through /proc/PID/clear_refs just before);
#   - writer latency: a writer (c10, 500 puts/s over the loaded keys) for
#     WINDOW seconds alone, then the same writer while `cairn ctl defrag`
#     runs (from 1 s before it starts until it returns): p99, max, puts done;
#   - restore of both backup files with `cairn snapshot restore` and
#     `etcdutl snapshot restore` (3.7.4), alternately, time and peak RSS.
# Prints one line per measurement (grep '^RESULT').
#
# Usage: scripts/ops-measure.sh   (not CI; about 15 min at 1M keys, 2 rounds)
# Environment: KEYS (default 1000000), ROUNDS (2), WINDOW (10), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}; ROUNDS=${ROUNDS:-2}; WINDOW=${WINDOW:-10}
W=$(mktemp -d /var/tmp/ops-measure.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$W"; fi
}
trap cleanup EXIT
go build -o "$W/cairn" ./cmd/cairn
(cd compat && go build -o "$W/refetcd" ./cmd/refetcd && go build -o "$W/etcdutl" go.etcd.io/etcd/etcdutl/v3)
EP=127.0.0.1:24891; PEER=http://127.0.0.1:24892
B="$W/cairn"

start() { # kind dir
  local kind=$1 dir=$2
  if [ "$kind" = cairn ]; then
    "$B" --data-dir "$dir" --listen-client-urls "http://$EP" --advertise-client-urls "http://$EP" \
      --listen-peer-urls "$PEER" --initial-advertise-peer-urls "$PEER" --initial-cluster "default=$PEER" 2>"$dir.log" &
  else
    "$W/refetcd" --data-dir "$dir" --listen-client-urls "http://$EP" --listen-peer-urls "$PEER" 2>"$dir.log" &
  fi
  PID=$!
  for _ in $(seq 600); do
    grep -q "ready to serve client requests" "$dir.log" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$kind did not start"; cat "$dir.log"; exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=""; }
now() { date +%s.%N; }
hwm() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$PID/status"; }
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$PID/status"; }
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }
writer() { # out.json: runs until SIGTERM (timeout passes it on) or 10 min
  exec timeout 600 "$B" bench --endpoints "$EP" --conns 1 --clients 10 --rate 500 --progress 0 --json \
    put --key-size 16 --val-size 256 --total 100000000 --key-space-size "$KEYS" >"$1"
}

server_round() { # kind round
  local kind=$1 r=$2 dir="$W/$1-$2"
  start "$kind" "$dir"
  local t0 t1
  t0=$(now)
  timeout 600 "$B" bench --endpoints "$EP" --conns 100 --clients 1000 --progress 0 --json \
    put --key-size 16 --val-size 256 --total "$KEYS" --sequential-keys --key-space-size "$KEYS" >"$dir.load.json"
  t1=$(now)
  echo "RESULT $kind round $r load: $(echo "$t1 - $t0" | bc) s, $(field "$dir.load.json" "round(d['requests_per_sec'])") puts/s, RSS $(rss) MB"

  local before; before=$(rss); echo 5 >"/proc/$PID/clear_refs"
  t0=$(now)
  timeout 600 "$B" ctl --endpoints "$EP" --command-timeout=600s snapshot save "$W/snap-$kind-$r.db" >/dev/null 2>"$dir.save.err"
  t1=$(now)
  local size; size=$(stat -c %s "$W/snap-$kind-$r.db")
  echo "RESULT $kind round $r save: $(echo "$t1 - $t0" | bc) s, $size bytes, $(echo "scale=1; $size / 1048576 / ($t1 - $t0)" | bc) MB/s, server RSS $before MB before, peak $(hwm) MB during"

  writer "$dir.base.json" & local wp=$!
  sleep "$WINDOW"; kill -TERM "$wp"; wait "$wp" || true
  echo "RESULT $kind round $r writer alone: p99 $(field "$dir.base.json" "d['latency_ms']['p99']") ms, max $(field "$dir.base.json" "d['latency_ms']['max']") ms, $(field "$dir.base.json" "d['ok']") puts in $(field "$dir.base.json" "round(d['seconds'],1)") s"

  writer "$dir.defrag.json" & wp=$!
  sleep 1
  t0=$(now)
  timeout 600 "$B" ctl --endpoints "$EP" --command-timeout=600s defrag >/dev/null 2>"$dir.defrag.err"
  t1=$(now)
  kill -TERM "$wp"; wait "$wp" || true
  echo "RESULT $kind round $r writer during defrag ($(echo "$t1 - $t0" | bc) s): p99 $(field "$dir.defrag.json" "d['latency_ms']['p99']") ms, max $(field "$dir.defrag.json" "d['latency_ms']['max']") ms, $(field "$dir.defrag.json" "d['ok']") puts in $(field "$dir.defrag.json" "round(d['seconds'],1)") s, errors $(field "$dir.defrag.json" "d['errors']")"
  stop
  rm -rf "$dir"
}

restore() { # tool file round
  local tool=$1 file=$2 r=$3 out="$W/restored-$1-$3"
  local cmd=("$B" snapshot restore)
  [ "$tool" = etcdutl ] && cmd=("$W/etcdutl" snapshot restore)
  /usr/bin/time -f "%e %M" -o "$W/time" "${cmd[@]}" "$file" --data-dir "$out" --name r \
    --initial-cluster r=http://127.0.0.1:24893 --initial-advertise-peer-urls http://127.0.0.1:24893 >/dev/null 2>"$W/restore.err"
  read -r secs kb <"$W/time"
  echo "RESULT restore $(basename "$file") with $tool round $r: $secs s, peak RSS $((kb / 1024)) MB, data dir $(du -sm "$out" | cut -f1) MB"
  rm -rf "$out"
}

echo "RESULT uptime before: $(uptime)"
for r in $(seq "$ROUNDS"); do
  server_round cairn "$r"
  server_round etcd "$r"
done
for r in $(seq "$ROUNDS"); do
  for f in "$W/snap-cairn-1.db" "$W/snap-etcd-1.db"; do
    restore cairn "$f" "$r"
    restore etcdutl "$f" "$r"
  done
done
echo "RESULT uptime after: $(uptime)"
