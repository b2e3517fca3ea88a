//! Golden-byte and error tests for the format module.
