//! `#[pulse::main]` and `#[pulse::bench]` through the compiler: every
//! accepted form compiles and runs (`pass/`), every mistake fails with the reviewed message in its
//! `.stderr` golden (`fail/`). Regenerate goldens with
//! `TRYBUILD=overwrite cargo test -p ui-tests` and review the diff.

#[test]
fn main_attribute() {
    // trybuild replaces the workspace's `rustflags` with its own, dropping
    // the `--cfg tokio_unstable` pulse needs. `CARGO_ENCODED_RUSTFLAGS`
    // outranks every other source of flags, so it carries both: ours, and
    // trybuild's own (`--cfg trybuild --verbose -A dead_code`, plus the
    // diagnostic width its goldens are written at).
    let flags = [
        "--cfg",
        "tokio_unstable",
        "--cfg",
        "trybuild",
        "--verbose",
        "-A",
        "dead_code",
        "--diagnostic-width=140",
    ];
    std::env::set_var("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));

    let cases = trybuild::TestCases::new();
    // Globs, so a new case file cannot be forgotten here.
    cases.pass("tests/pass/*.rs");
    cases.compile_fail("tests/fail/*.rs");
    // `#[pulse::bench]` and `pulse::bench_main!` (pulse's `bench` feature).
    cases.pass("tests/bench_pass/*.rs");
    cases.compile_fail("tests/bench_fail/*.rs");
}
