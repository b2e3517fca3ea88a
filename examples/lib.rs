//! Runnable example programs for pulse: see the `[[example]]` list in Cargo.toml.
