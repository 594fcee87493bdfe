#!/bin/bash
# perf-ab.sh BIN WORKLOAD [PPROF_SECONDS]: one run of WORKLOAD (put, put1,
# load1m, rangel, ranges) against a fresh single member started from BIN
# (a cairn binary, or compat/cmd/refetcd for etcd 3.7.4), driven by
# $B bench (default /tmp/perf/cairn-base: any cairn binary). Prints req/s,
# p99 ms, the server's CPU per request (user+system from /proc/PID/stat
# over the measured command), its peak RSS and the load average. With
# PPROF_SECONDS, saves a CPU profile to /tmp/perf/BIN.WORKLOAD.pprof
# (PROF_DELAY seconds after the start, default 2). TOTAL overrides the
# request count; PORT the client port (24790). Run binaries alternately
# (A B A B) on a shared machine and compare ratios (docs/perf.md).
set -u
bin=$1; wl=$2; prof=${3:-0}
port=${PORT:-24790}
mkdir -p /tmp/perf
d=$(mktemp -d /tmp/perf/run.XXXX)
B=${B:-/tmp/perf/cairn-base}
extra=()
case "$bin" in *refetcd*) ;; *) extra+=(--enable-pprof);; esac
"$bin" --name m1 --data-dir $d/m1 --listen-client-urls http://127.0.0.1:$port --advertise-client-urls http://127.0.0.1:$port \
  --listen-peer-urls http://127.0.0.1:$((port+1)) --initial-advertise-peer-urls http://127.0.0.1:$((port+1)) \
  --initial-cluster m1=http://127.0.0.1:$((port+1)) --initial-cluster-state new "${extra[@]}" >$d/log 2>&1 &
pid=$!
for i in $(seq 500); do grep -q "ready to serve client requests" $d/log 2>/dev/null && break; sleep 0.02; done
ep=127.0.0.1:$port
bench() { timeout 300 $B bench --progress 0 --json --endpoints $ep "$@"; }
case $wl in
  put) T=${TOTAL:-100000}; args=(--conns 100 --clients 1000 put --key-size 8 --val-size 256 --sequential-keys --key-space-size 100000);;
  put1) T=${TOTAL:-5000}; args=(--conns 1 --clients 1 put --key-size 8 --val-size 256 --sequential-keys --key-space-size 100000);;
  load1m) T=${TOTAL:-1000000}; args=(--conns 100 --clients 1000 put --key-size 16 --val-size 256 --sequential-keys --key-space-size 1000000);;
  rangel) bench --total 1000 --conns 10 --clients 100 put --key-size 8 --val-size 256 --sequential-keys --key-space-size 1000 >/dev/null
          T=${TOTAL:-100000}; args=(--conns 100 --clients 1000 range 00000042 --consistency l);;
  ranges) bench --total 1000 --conns 10 --clients 100 put --key-size 8 --val-size 256 --sequential-keys --key-space-size 1000 >/dev/null
          T=${TOTAL:-100000}; args=(--conns 100 --clients 1000 range 00000042 --consistency s);;
esac
c0=$(awk '{print $14+$15}' /proc/$pid/stat)
if [ "$prof" != 0 ]; then
  (sleep ${PROF_DELAY:-2}; curl -s -o $d/cpu.pprof "http://$ep/debug/pprof/profile?seconds=$prof") &
  pp=$!
fi
bench --total $T "${args[@]}" > $d/out.json
c1=$(awk '{print $14+$15}' /proc/$pid/stat)
[ "$prof" != 0 ] && wait $pp && cp $d/cpu.pprof /tmp/perf/$(basename $bin).$wl.pprof
hwm=$(awk '$1=="VmHWM:"{print $2}' /proc/$pid/status)
kill -TERM $pid; wait $pid 2>/dev/null
rps=$(grep -o '"requests_per_sec":[-0-9.e+]*' $d/out.json | head -1 | cut -d: -f2)
p99=$(grep -o '"p99":[-0-9.e+]*' $d/out.json | head -1 | cut -d: -f2)
n=$(grep -o '"ok":[0-9]*' $d/out.json | head -1 | cut -d: -f2)
hz=$(getconf CLK_TCK)
cpu=$(awk -v a=$c0 -v b=$c1 -v n=${n:-1} -v hz=$hz 'BEGIN{printf "%.1f", (b-a)*1e6/hz/n}')
echo "$(basename $bin) $wl rps=$rps p99=$p99 cpu_us=$cpu hwm_kb=$hwm load=$(cut -d' ' -f1 /proc/loadavg)"
[ -z "${KEEP:-}" ] && rm -rf $d
