#!/usr/bin/env bash
# Instruction count of the poll-event hot path under callgrind: a stable
# number on a noisy machine (instructions, not time).
#
# Runs `callgrind_poll` (benches/src/bin/callgrind_poll.rs) for two numbers
# of PollStart/PollEnd pairs and reports
#   (instructions(N2) - instructions(N1)) / (2 * (N2 - N1))
# per event, for the recording thread alone (set-up and teardown cancel)
# and for the whole process (adds the flusher thread's share: draining the
# collector into a NullWriter).
#
# Usage: benches/callgrind.sh [N1 [N2]]   (defaults 100000 and 300000)
set -euo pipefail
cd "$(dirname "$0")/.."

n1=${1:-100000}
n2=${2:-300000}
cargo build --release --quiet -p benches --bin callgrind_poll
bin=${CARGO_TARGET_DIR:-target}/release/callgrind_poll
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Prints "<main thread Ir> <all threads Ir>" for one run.
count() {
  local n=$1 dir="$out/$1"
  mkdir -p "$dir"
  valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$dir/cg.out" "$bin" "$n" 2>"$dir/log" >/dev/null
  local main total
  # With --separate-threads, one file per thread: cg.out-01 is the main one.
  main=$(awk '/^(summary|totals):/ {print $2; exit}' "$dir/cg.out-01")
  # Each file has both a "summary:" and a "totals:" line: count one per file.
  total=$(for f in "$dir"/cg.out-*; do awk '/^(summary|totals):/ {print $2; exit}' "$f"; done | awk '{s += $1} END {print s}')
  echo "$main $total"
}

read -r main1 total1 < <(count "$n1")
read -r main2 total2 < <(count "$n2")
events=$((2 * (n2 - n1)))
echo "pairs: $n1 -> $n2 ($events events more)"
echo "main thread: $main1 -> $main2 Ir"
echo "all threads: $total1 -> $total2 Ir"
awk -v a="$main1" -v b="$main2" -v e="$events" \
  'BEGIN {printf "hot path (recording thread): %.2f instructions per event\n", (b - a) / e}'
awk -v a="$total1" -v b="$total2" -v e="$events" \
  'BEGIN {printf "whole process (with flusher): %.2f instructions per event\n", (b - a) / e}'
