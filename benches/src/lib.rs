//! Shared helpers for the pulse benchmarks.
