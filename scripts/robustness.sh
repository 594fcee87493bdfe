#!/usr/bin/env bash
# Long runs of the robustness harness (tests/robustness, docs/robustness.md):
# a real cairn cluster under client traffic and random faults, checked at
# the end. Prints a report with the seed, every fault injected (seconds
# since the start), operation counts and the result; the same seed replays
# the same choices of operations and faults.
#
#   scripts/robustness.sh [-minutes N] [-seed S] [-members 3|5] [-faults a,b] [-runs R]
#
# -minutes  traffic per run (default 5)
# -seed     first seed (default: from the clock); run i uses seed+i
# -members  cluster size (default 3)
# -faults   comma-separated fault names (default: all; see faults_test.go)
# -runs     how many runs, one after another (default 1)
# Reports are kept in $ROBUSTNESS_OUT (default /tmp/cairn-robustness).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=5 seed="$(date +%s%N)" members=3 faults="" runs=1
while [ $# -gt 0 ]; do
  case "$1" in
    -minutes) minutes="$2"; shift 2 ;;
    -seed) seed="$2"; shift 2 ;;
    -members) members="$2"; shift 2 ;;
    -faults) faults="$2"; shift 2 ;;
    -runs) runs="$2"; shift 2 ;;
    *) echo "usage: $0 [-minutes N] [-seed S] [-members 3|5] [-faults a,b] [-runs R]" >&2; exit 2 ;;
  esac
done
out="${ROBUSTNESS_OUT:-/tmp/cairn-robustness}"
mkdir -p "$out"
failed=0
for ((i = 0; i < runs; i++)); do
  s=$((seed + i))
  report="$out/report-$s.txt"
  log="$out/log-$s.txt"
  echo "== run $((i + 1))/$runs: seed $s, $minutes min, $members members (log $log)"
  env CAIRN_ROBUSTNESS_DURATION="${minutes}m" CAIRN_ROBUSTNESS_SEED="$s" \
    CAIRN_ROBUSTNESS_MEMBERS="$members" CAIRN_ROBUSTNESS_REPORT="$report" \
    ${faults:+CAIRN_ROBUSTNESS_FAULTS="$faults"} \
    nice -n 10 go test -count=1 -timeout "$((minutes * 2 + 10))m" -run '^TestRobustness$' -v ./tests/robustness/ >"$log" 2>&1 || failed=1
  if [ -f "$report" ]; then cat "$report"; else tail -50 "$log"; failed=1; fi
done
exit "$failed"
