#!/usr/bin/env bash
# Runs the same `cairn bench` workloads against Cairn and against a real
# etcd 3.7.4 (compat/cmd/refetcd), alternately (Cairn, etcd, Cairn, etcd,
# ...), each run on a fresh data dir on 127.0.0.1, and prints a Markdown
# table of medians over the rounds: req/s, p99, server peak RSS (VmHWM)
# and data-dir size. The table also replaces the text between
# <!-- bench-vs-etcd:begin --> and <!-- bench-vs-etcd:end --> in
# docs/perf.md.
#
# Usage: scripts/bench-vs-etcd.sh
# Environment:
#   QUICK=1          small totals and one round, to check the script (~2 min)
#   ROUNDS=n         runs of each server per workload (default 2; QUICK: 1)
#   WORKLOADS="..."  names of the workloads to run (default: all; see below)
#   CLUSTER=0        skip the 3-member cluster workloads
#   IDLE_WAIT=s      before each run, wait up to s seconds for the CPUs to be
#                    at least 80% idle over one second (default 20; QUICK: 0)
#   MAX_SECONDS=s    skip the runs that would start after s seconds (default 3600)
#   FSYNC=0          run both servers with --unsafe-no-fsync (default: fsync on)
#   DOC=0            do not touch docs/perf.md
#   BASE_PORT=p      first of the loopback ports used (default 24379)
#   KEEP=1           keep the work dir (binaries, logs, JSON results)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  ROUNDS=${ROUNDS:-1}; IDLE_WAIT=${IDLE_WAIT:-0}
else
  ROUNDS=${ROUNDS:-2}; IDLE_WAIT=${IDLE_WAIT:-20}
fi
CLUSTER=${CLUSTER:-1}
MAX_SECONDS=${MAX_SECONDS:-3600}
FSYNC=${FSYNC:-1}
DOC=${DOC:-1}
BASE_PORT=${BASE_PORT:-24379}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-300} # seconds per bench command
READY_TIMEOUT=${READY_TIMEOUT:-120} # seconds for a server to be ready

# total N: N, or N/20 (at least 1000) in QUICK mode.
total() { if [ "$QUICK" = 1 ]; then echo $(( $1 / 20 > 1000 ? $1 / 20 : 1000 )); else echo "$1"; fi; }

# Each workload: name|members|preload bench args (or -)|measured bench args.
# The measured command's JSON gives req/s and p99; keys are 8 bytes and
# values 256 bytes unless noted, as in the etcd baseline.
kv="--key-size 8 --val-size 256"
workloads=(
  "put-c1x1|1|-|--conns 1 --clients 1 put $kv --total $(total 20000) --sequential-keys --key-space-size 100000"
  "put-c100x1000|1|-|--conns 100 --clients 1000 put $kv --total $(total 100000) --sequential-keys --key-space-size 100000"
  "range-l-c100x1000|1|--conns 10 --clients 100 put $kv --total 1000 --sequential-keys --key-space-size 1000|--conns 100 --clients 1000 range 00000042 --consistency l --total $(total 100000)"
  "range-s-c100x1000|1|--conns 10 --clients 100 put $kv --total 1000 --sequential-keys --key-space-size 1000|--conns 100 --clients 1000 range 00000042 --consistency s --total $(total 100000)"
  "txn-put-c100x1000|1|-|--conns 100 --clients 1000 txn-put $kv --total $(total 100000) --key-space-size 100000"
  "txn-mixed-90r10w-c100x1000|1|--conns 10 --clients 100 put $kv --total 10000 --sequential-keys --key-space-size 10000|--conns 100 --clients 1000 txn-mixed $kv --rw-ratio 9 --key-space-size 10000 --total $(total 100000)"
  "lease-keepalive-c100x1000|1|-|--conns 100 --clients 1000 lease-keepalive --total $(total 100000)"
  "watch-100w-500puts/s|1|-|--conns 1 --clients 10 --rate 500 watch --watchers 100 --streams 10 --val-size 256 --puts $(total 5000)"
  "load-1M-c100x1000|1|-|--conns 100 --clients 1000 put --key-size 16 --val-size 256 --total $(total 1000000) --sequential-keys --key-space-size 1000000"
)
if [ "$CLUSTER" = 1 ]; then
  workloads+=(
    "3m-put-c100x1000|3|-|--conns 100 --clients 1000 put $kv --total $(total 100000) --sequential-keys --key-space-size 100000"
    "3m-range-l-c100x1000|3|--conns 10 --clients 100 put $kv --total 1000 --sequential-keys --key-space-size 1000|--conns 100 --clients 1000 range 00000042 --consistency l --total $(total 100000)"
  )
fi
if [ -n "${WORKLOADS:-}" ]; then
  selected=()
  for w in "${workloads[@]}"; do
    for name in $WORKLOADS; do [ "${w%%|*}" = "$name" ] && selected+=("$w"); done
  done
  workloads=("${selected[@]}")
fi

work=$(mktemp -d /tmp/bench-vs-etcd.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "building into $work"
go build -o "$work/cairn" ./cmd/cairn
(cd compat && go build -o "$work/refetcd" ./cmd/refetcd)
started=$(date +%s)

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_idle: up to IDLE_WAIT seconds, until one second with >= 80% idle CPU.
wait_idle() {
  local deadline=$(( $(date +%s) + IDLE_WAIT )) a b
  while [ "$(date +%s)" -lt "$deadline" ]; do
    a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
    local idle=$(( b[4] + b[5] - a[4] - a[5] )) all=0 i
    for i in 1 2 3 4 5 6 7 8; do all=$(( all + b[i] - a[i] )); done
    [ "$all" -gt 0 ] && [ $(( 100 * idle / all )) -ge 80 ] && return 0
  done
  return 0
}

# start_members KIND N DIR: starts N members of KIND (cairn or etcd) with
# data in DIR/m<i>, and sets members_pids, endpoints and ready_ms (the
# milliseconds from exec to the last member's ready line).
members_pids=()
endpoints=""
ready_ms=""
start_members() {
  local kind=$1 n=$2 dir=$3 i cluster="" t0 seen=()
  members_pids=(); endpoints=""
  for i in $(seq 1 "$n"); do # a restart appends to the same log
    seen+=("$(grep -c "ready to serve client requests" "$dir/m$i.log" 2>/dev/null || true)")
  done
  for i in $(seq 1 "$n"); do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$(( BASE_PORT + 10 * i + 1 ))"
  done
  t0=$(now_ms)
  for i in $(seq 1 "$n"); do
    local cp=$(( BASE_PORT + 10 * i )) pp=$(( BASE_PORT + 10 * i + 1 ))
    local bin="$work/cairn"; [ "$kind" = etcd ] && bin="$work/refetcd"
    local extra=(); [ "$FSYNC" = 0 ] && extra+=(--unsafe-no-fsync)
    [ -n "${PPROF:-}" ] && [ "$kind" = cairn ] && extra+=(--enable-pprof)
    "$bin" --name "m$i" --data-dir "$dir/m$i" \
      --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
      --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token bench \
      "${extra[@]}" >>"$dir/m$i.log" 2>&1 &
    members_pids+=($!); pids+=($!)
    endpoints+="${endpoints:+,}127.0.0.1:$cp"
  done
  local deadline=$(( $(date +%s) + READY_TIMEOUT ))
  for i in $(seq 1 "$n"); do
    until [ "$(grep -c "ready to serve client requests" "$dir/m$i.log" 2>/dev/null || true)" -gt "${seen[$((i-1))]:-0}" ]; do
      if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 "${members_pids[$((i-1))]}" 2>/dev/null; then
        log "$kind member m$i did not become ready; log tail:"; tail -5 "$dir/m$i.log" >&2; return 1
      fi
      sleep 0.01
    done
  done
  ready_ms=$(( $(now_ms) - t0 ))
}

# stop_members: SIGTERM, then SIGKILL after 30 s.
stop_members() {
  local p i
  for p in "${members_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${members_pids[@]}"; do
    for i in $(seq 300); do # until it exits (a zombie counts as exited)
      [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null || echo Z)" = Z ] && break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  members_pids=()
}

# proc_kb FIELD: the largest FIELD (VmHWM, VmRSS) over the members, in KiB.
proc_kb() {
  local p v max=0
  for p in "${members_pids[@]}"; do
    v=$(awk -v f="$1:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$max" ] && max=$v
  done
  echo "$max"
}

# cpu_ticks: user + system CPU of all members so far, in clock ticks.
cpu_ticks() {
  local p sum=0
  for p in "${members_pids[@]}"; do
    sum=$(( sum + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0) ))
  done
  echo "$sum"
}
hz=$(getconf CLK_TCK)

# du_kb DIR N: the largest member data dir, in KiB.
du_kb() {
  local i v max=0
  for i in $(seq 1 "$2"); do
    v=$(du -sk "$1/m$i" | cut -f1); [ "$v" -gt "$max" ] && max=$v
  done
  echo "$max"
}

# json NAME FILE: the first number named NAME in FILE.
json() { { grep -o "\"$1\":[-0-9.e+]*" "$2" || true; } | head -1 | cut -d: -f2; }

bench() {
  timeout -k 10 $(( BENCH_TIMEOUT + 30 )) "$work/cairn" bench --endpoints "$endpoints" --timeout "${BENCH_TIMEOUT}s" "$@"
}

# One TSV line per run: workload kind round rps p99 hwm_kb data_kb errors cpu_us_per_req extra...
results="$work/results.tsv"
: >"$results"
load_min=""; load_max=""
note_load() {
  local l; l=$(cut -d' ' -f1 /proc/loadavg)
  load_min=$(awk -v a="${load_min:-$l}" -v b="$l" 'BEGIN { print (b < a ? b : a) }')
  load_max=$(awk -v a="${load_max:-$l}" -v b="$l" 'BEGIN { print (b > a ? b : a) }')
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
skipped=0

for w in "${workloads[@]}"; do
  IFS='|' read -r name n preload args <<<"$w"
  for round in $(seq 1 "$ROUNDS"); do
    for kind in cairn etcd; do
      if [ $(( $(date +%s) - started )) -ge "$MAX_SECONDS" ]; then
        skipped=$(( skipped + 1 )); continue
      fi
      dir="$work/$kind-$(echo "$name" | tr '/' '_')-$round"; mkdir -p "$dir"
      wait_idle; note_load
      log "$name round $round: $kind (load $(cut -d' ' -f1 /proc/loadavg))"
      if ! start_members "$kind" "$n" "$dir"; then stop_members; continue; fi
      if [ "$preload" != - ]; then
        # shellcheck disable=SC2086
        bench --progress 0 --json $preload >"$dir/preload.json" || log "preload failed"
      fi
      cpu0=$(cpu_ticks)
      # shellcheck disable=SC2086
      if ! bench --json $args >"$dir/result.json" 2>"$dir/bench.err"; then
        log "bench failed: $(tail -3 "$dir/bench.err")"
      fi
      cpu1=$(cpu_ticks)
      if [ ! -s "$dir/result.json" ]; then stop_members; continue; fi
      ok=$(json ok "$dir/result.json")
      cpu_us=$(awk -v t=$(( cpu1 - cpu0 )) -v hz="$hz" -v ok="${ok:-0}" 'BEGIN { if (ok > 0) printf "%.1f", t * 1e6 / hz / ok }')
      hwm=$(proc_kb VmHWM); rss=$(proc_kb VmRSS); data=$(du_kb "$dir" "$n")
      errs=$(json errors "$dir/result.json")
      [ "${errs:-0}" != 0 ] && log "$name $kind: $errs errors: $(grep -o '"error_messages":{[^}]*}' "$dir/result.json")"
      extra=""
      case "$name" in
        watch*)
          extra="$(json events_per_sec "$dir/result.json") $({ grep -o '"event_latency_ms":{[^}]*}' "$dir/result.json" || true; } | { grep -o '"p99":[-0-9.e+]*' || true; } | cut -d: -f2)"
          ;;
        load-1M*)
          stop_members
          if start_members "$kind" "$n" "$dir"; then ready=$ready_ms; else ready=-1; fi
          sleep 2 # let a rebuilt index settle before reading RSS
          extra="$rss $ready $(proc_kb VmRSS)"
          ;;
      esac
      stop_members
      echo -e "$name\t$kind\t$round\t$(json requests_per_sec "$dir/result.json")\t$(json p99 "$dir/result.json")\t$hwm\t$data\t$errs\t$cpu_us\t$extra" >>"$results"
      log "$name $kind: $(cut -f4- <(tail -1 "$results"))"
      rm -rf "$dir"/m? # keep logs and JSON, not the data
    done
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))

# Medians over rounds, one table row per workload.
table=$(awk -F'\t' -v order="$(printf '%s\n' "${workloads[@]}" | cut -d'|' -f1 | tr '\n' ' ')" '
function median(key,   n, i, j, t, v) {
  n = cnt[key]; if (n == 0) return "";
  for (i = 1; i <= n; i++) v[i] = val[key, i];
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
  return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function add(key, x) { if (x != "") { cnt[key]++; val[key, cnt[key]] = x + 0 } }
function fmt(x, d) { return x == "" ? "–" : sprintf("%." d "f", x) }
function all(key,   i, s) { for (i = 1; i <= cnt[key]; i++) s = s (i > 1 ? ", " : "") sprintf("%.0f", val[key, i]); return s }
{
  w = $1; k = $2; split($10, ex, " "); add(w SUBSEP k SUBSEP "cpu", $9);
  add(w SUBSEP k SUBSEP "rps", $4); add(w SUBSEP k SUBSEP "p99", $5);
  add(w SUBSEP k SUBSEP "hwm", $6 / 1024); add(w SUBSEP k SUBSEP "data", $7 / 1024);
  add(w SUBSEP k SUBSEP "err", $8);
  add(w SUBSEP k SUBSEP "x1", ex[1]); add(w SUBSEP k SUBSEP "x2", ex[2]); add(w SUBSEP k SUBSEP "x3", ex[3]);
}
END {
  print "| workload | Cairn req/s | etcd req/s | Cairn / etcd | Cairn p99 ms | etcd p99 ms | Cairn CPU µs/req | etcd CPU µs/req | Cairn peak RSS MB | etcd peak RSS MB | Cairn data MB | etcd data MB |";
  print "|---|---|---|---|---|---|---|---|---|---|---|---|";
  n = split(order, names, " ");
  for (i = 1; i <= n; i++) {
    w = names[i]; c = w SUBSEP "cairn" SUBSEP; e = w SUBSEP "etcd" SUBSEP;
    cr = median(c "rps"); er = median(e "rps");
    ratio = (cr != "" && er != "" && er > 0) ? sprintf("%.2f", cr / er) : "–";
    errs = median(c "err") + median(e "err");
    printf "| %s | %s [%s] | %s [%s] | **%s** | %s | %s | %s | %s | %s | %s | %s | %s |%s\n", w,
      fmt(cr, 0), all(c "rps"), fmt(er, 0), all(e "rps"), ratio,
      fmt(median(c "p99"), 2), fmt(median(e "p99"), 2), fmt(median(c "cpu"), 1), fmt(median(e "cpu"), 1),
      fmt(median(c "hwm"), 0), fmt(median(e "hwm"), 0),
      fmt(median(c "data"), 0), fmt(median(e "data"), 0), (errs > 0 ? " errors!" : "");
    if (w ~ /^watch/) {
      printf "| ↳ watch events delivered/s; p99 ms of delay from put response to event | %s | %s | %s | %s | %s | | | | | | |\n",
        fmt(median(c "x1"), 0), fmt(median(e "x1"), 0),
        (median(e "x1") > 0) ? sprintf("%.2f", median(c "x1") / median(e "x1")) : "–",
        fmt(median(c "x2"), 3), fmt(median(e "x2"), 3);
    }
    if (w ~ /^load-1M/) {
      extra = extra sprintf("| %s: RSS after load MB | %s | %s |\n", w, fmt(median(c "x1") / 1024, 0), fmt(median(e "x1") / 1024, 0));
      extra = extra sprintf("| %s: restart, exec to ready line, ms | %s [%s] | %s [%s] |\n", w, fmt(median(c "x2"), 0), all(c "x2"), fmt(median(e "x2"), 0), all(e "x2"));
      extra = extra sprintf("| %s: RSS 2 s after restart MB | %s | %s |\n", w, fmt(median(c "x3") / 1024, 0), fmt(median(e "x3") / 1024, 0));
    }
  }
  if (extra != "") { print ""; print "| after the 1M-key load | Cairn | etcd |"; print "|---|---|---|"; printf "%s", extra }
}' "$results")

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
fsync_note="fsync on"; [ "$FSYNC" = 0 ] && fsync_note="--unsafe-no-fsync"
mode="full"; [ "$QUICK" = 1 ] && mode="QUICK=1 (small totals)"
report=$(cat <<EOF
Run of $(date -u +"%Y-%m-%d %H:%M UTC"), commit $commit$dirty, $mode, $ROUNDS round(s) per server, $fsync_note, $(nproc) CPUs, $(go version | cut -d' ' -f3).
Load average at start $load_start, at end $load_end; 1-minute load before each run $load_min–$load_max. Took ${elapsed}s$([ "$skipped" -gt 0 ] && echo "; $skipped runs skipped by MAX_SECONDS").
Medians over rounds, each round's req/s in brackets. CPU µs/req is the server's user + system CPU time during the measured command (all members for 3-member rows) over its successful requests: unlike req/s, it hardly depends on what else runs on the machine. Peak RSS is the server's VmHWM (the largest member for 3-member rows), data the data dir (\`du\`, largest member) after the run.

$table
EOF
)
echo "$report"

if [ "$DOC" = 1 ] && grep -q '<!-- bench-vs-etcd:begin -->' docs/perf.md; then
  printf '%s\n' "$report" >"$work/report.md"
  awk -v f="$work/report.md" '
    /<!-- bench-vs-etcd:begin -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
    /<!-- bench-vs-etcd:end -->/ { skip = 0 }
    !skip' docs/perf.md >"$work/perf.md" && cp "$work/perf.md" "$repo/docs/perf.md"
  log "docs/perf.md updated"
fi
