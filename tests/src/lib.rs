//! Integration tests for pulse live in `tests/`: real runtimes, real threads, real files.

// README snippets are held to the lints code is: an unused import fails.
#![doc(test(attr(deny(warnings))))]

/// Every Rust block of the repository's README.md, compiled (and, unless
/// marked `no_run`, run) as a doctest of this crate, which depends on all
/// the README uses: a snippet that stops compiling fails the build.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
