//! Integration tests for pulse live in `tests/`: real runtimes, real threads, real files.
