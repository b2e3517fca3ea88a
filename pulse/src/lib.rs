#![doc = "pulse: a flight recorder for the Tokio runtime (crate docs are written in lib.rs once the API settles)."]

#[cfg(not(tokio_unstable))]
compile_error!(
    "pulse needs Tokio's unstable hooks: build with `--cfg tokio_unstable`. \
     Add these two lines to `.cargo/config.toml` in your workspace root:\n\
     [build]\n\
     rustflags = [\"--cfg\", \"tokio_unstable\"]"
);

pub mod event;
pub mod format;

pub use event::{EventType, SpawnLocation, TelemetryEvent};
