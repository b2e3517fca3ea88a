//! trybuild UI tests for the pulse macros live in `tests/`.
