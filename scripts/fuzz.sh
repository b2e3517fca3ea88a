#!/usr/bin/env bash
# Fuzz pulse's trace reader (issue 8, "Hostile trace files"; results in
# RELIABILITY.md).
#
#   scripts/fuzz.sh [SECONDS] [-- LIBFUZZER_FLAGS...]   # default 600 s
#
# With `cargo fuzz` and a nightly toolchain it runs libFuzzer (with
# AddressSanitizer) on fuzz_targets/trace_reader.rs, starting from the seed
# corpus (written by the `replay` harness) plus fuzz/corpus/trace_reader,
# which keeps what earlier runs found. Crashes land in
# fuzz/artifacts/trace_reader/; copy them to fuzz/regressions/trace_reader/
# so the test suite replays them (tests/tests/reliability_fuzz.rs).
#
# Without nightly or cargo-fuzz it says so and replays the corpus, the
# regressions and the seeds through the same checks with the plain `replay`
# harness (no coverage guidance: that is not fuzzing).
#
# Set FUZZ_TOOLCHAIN to use another toolchain than `nightly`, or
# FUZZ_TOOLCHAIN=stable-bootstrap to run cargo fuzz on stable with
# RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
if [[ $# -gt 0 && $1 != -- ]]; then
  seconds=$1
  shift
fi
[[ ${1:-} == -- ]] && shift

corpus=fuzz/corpus/trace_reader
seeds=fuzz/target/seeds/trace_reader
regressions=fuzz/regressions/trace_reader
mkdir -p "$corpus" "$regressions"
# The fuzz crate is outside the workspace; it shares its target directory
# under fuzz/ either way.
export CARGO_TARGET_DIR="$PWD/fuzz/target"

cargo run -q --release --manifest-path fuzz/Cargo.toml --bin replay -- --write-seeds "$seeds"

toolchain=${FUZZ_TOOLCHAIN:-nightly}
cargo_cmd=(cargo "+$toolchain")
if [[ $toolchain == stable-bootstrap ]]; then
  cargo_cmd=(env RUSTC_BOOTSTRAP=1 cargo)
fi
if ! cargo fuzz --version >/dev/null 2>&1 || ! "${cargo_cmd[@]}" --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz or the $toolchain toolchain is missing (cargo install cargo-fuzz;"
  echo "fuzz: rustup toolchain install nightly); replaying the corpus without libFuzzer instead"
  exec cargo run -q --release --manifest-path fuzz/Cargo.toml --bin replay -- \
    "$seeds" "$corpus" "$regressions"
fi

# cargo-fuzz sets RUSTFLAGS itself and appends the caller's, which replace
# the workspace's .cargo/config.toml flags: pass Tokio's cfg here.
export RUSTFLAGS="--cfg tokio_unstable ${RUSTFLAGS:-}"
# `-rss_limit_mb` catches memory growth across inputs; the target asserts
# the per-allocation bound itself. `-max_len` lets inputs grow past the
# reader's small lookahead into several buffer refills of the piecewise read.
"${cargo_cmd[@]}" fuzz run --fuzz-dir fuzz trace_reader "$corpus" "$seeds" "$regressions" -- \
  -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 -print_final_stats=1 "$@"
