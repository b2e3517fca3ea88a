//! Says at build time what a build without `--cfg tokio_unstable` records.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(tokio_unstable)");
    if std::env::var_os("CARGO_CFG_TOKIO_UNSTABLE").is_none() {
        println!(
            "cargo:warning=pulse: built without `--cfg tokio_unstable`: it records worker \
             park/unpark with CPU time and run-queue wait, per-worker samples and the global \
             queue, but not task polls, task ids, spawn sites or local queue depths. To get \
             them, add `rustflags = [\"--cfg\", \"tokio_unstable\"]` under `[build]` in \
             .cargo/config.toml (a RUSTFLAGS variable in the environment replaces that \
             setting: add the flag there too)."
        );
    }
}
