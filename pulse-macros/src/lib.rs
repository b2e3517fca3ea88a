//! Procedural macros for [pulse](https://docs.rs/pulse).
//!
//! `#[pulse::main]` and `#[pulse::bench]` live here and are re-exported by the
//! `pulse` crate; depend on `pulse`, not on this crate directly.
