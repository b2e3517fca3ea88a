#!/usr/bin/env bash
# Soak test (issue 8, "Long runs"): trace a busy program for a long time with
# rotation, then check that
#   - the set's size on disk never exceeded max_total_size (sampled),
#   - the program's memory stayed flat (RSS sampled; the later half of the
#     run may not exceed the earlier half's peak by more than a margin),
#   - every file left on disk reads back on its own, and
#   - the program finished and reported its summary.
# Not part of `cargo test`: it takes SOAK_SECONDS (default 600).
#
#   scripts/soak.sh                      # 10 minutes
#   SOAK_SECONDS=60 scripts/soak.sh      # a quick run
#
# Environment: SOAK_SECONDS, SOAK_MAX_FILE (bytes, default 4 MiB),
# SOAK_MAX_TOTAL (bytes, default 24 MiB), SOAK_INTERVAL (seconds between
# samples, default 2), SOAK_DIR (default: a new temporary directory, removed
# afterwards unless SOAK_KEEP=1), SOAK_RSS_MARGIN_KIB (default 4096).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SOAK_SECONDS:-600}
max_file=${SOAK_MAX_FILE:-$((4 * 1024 * 1024))}
max_total=${SOAK_MAX_TOTAL:-$((24 * 1024 * 1024))}
interval=${SOAK_INTERVAL:-2}
margin_kib=${SOAK_RSS_MARGIN_KIB:-4096}

cargo build --release -q -p tests --bin reliability_soak
bin=target/release/reliability_soak

dir=${SOAK_DIR:-$(mktemp -d -t pulse-soak.XXXXXX)}
mkdir -p "$dir"
if [[ -z "${SOAK_DIR:-}" && "${SOAK_KEEP:-0}" != 1 ]]; then
  trap 'rm -rf "$dir"' EXIT
fi
base="$dir/trace.bin"
samples="$dir/samples.tsv"

echo "soak: ${seconds}s, max_file_size=${max_file}, max_total_size=${max_total}, in $dir"
"$bin" run "$base" "$seconds" "$max_file" "$max_total" >"$dir/run.out" 2>"$dir/run.err" &
pid=$!

# Sum of the sizes of the set's files right now (files may vanish mid-scan).
set_bytes() {
  local total=0 size f
  for f in "$dir"/trace.*.bin; do
    [[ -e "$f" ]] || continue
    size=$(stat -c %s "$f" 2>/dev/null || echo 0)
    total=$((total + size))
  done
  echo "$total"
}

printf 'elapsed_s\trss_kib\tset_bytes\tfiles\n' >"$samples"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [[ -n "$rss" ]] || break
  files=$(find "$dir" -maxdepth 1 -name 'trace.*.bin' | wc -l)
  printf '%s\t%s\t%s\t%s\n' "$(($(date +%s) - start))" "$rss" "$(set_bytes)" "$files" >>"$samples"
  sleep "$interval"
done
status=0
wait "$pid" || status=$?

fail=0
if [[ $status -ne 0 ]]; then
  echo "soak: FAIL: the traced program exited with status $status"
  cat "$dir/run.err"
  fail=1
fi
if [[ -s "$dir/run.err" ]]; then
  echo "soak: note: the program wrote to stderr:"
  cat "$dir/run.err"
fi
cat "$dir/run.out"

# Disk: the largest sampled size of the set, and the final size.
max_seen=$(awk 'NR > 1 && $3 > m {m = $3} END {print m + 0}' "$samples")
echo "soak: largest set size sampled: $max_seen bytes (limit $max_total)"
if ((max_seen > max_total)); then
  echo "soak: FAIL: the set exceeded max_total_size"
  fail=1
fi

# Memory: ignore the first 10% of samples (start-up), compare the peak of the
# first and second halves of the rest.
awk -v margin="$margin_kib" '
  NR > 1 { rss[n++] = $2 }
  END {
    skip = int(n / 10); mid = skip + int((n - skip) / 2)
    for (i = skip; i < n; i++) {
      if (i < mid && rss[i] > early) early = rss[i]
      if (i >= mid && rss[i] > late) late = rss[i]
      if (min == "" || rss[i] < min) min = rss[i]
      if (rss[i] > max) max = rss[i]
    }
    printf "soak: RSS over %d samples after start-up: min %d KiB, max %d KiB; peak early half %d KiB, late half %d KiB\n", n - skip, min, max, early, late
    if (late > early + margin) { print "soak: FAIL: memory grew"; exit 1 }
  }' "$samples" || fail=1

# Every file left on disk reads back on its own.
if ! "$bin" verify "$base" >"$dir/verify.out"; then
  echo "soak: FAIL: a file did not read back"
  fail=1
fi
tail -n 3 "$dir/verify.out"
total_line=$(tail -n 1 "$dir/verify.out")
final_bytes=$(sed -n 's/.* bytes=\([0-9]*\) .*/\1/p' <<<"$total_line")
if ((final_bytes > max_total)); then
  echo "soak: FAIL: the final set ($final_bytes bytes) exceeds max_total_size"
  fail=1
fi

if ((fail)); then
  echo "soak: FAILED (samples in $samples)"
  trap - EXIT
  exit 1
fi
echo "soak: OK"
