//! libFuzzer target: arbitrary bytes as a trace file. The checks are in
//! `src/lib.rs` (shared with `replay` and the test suite).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: pulse_fuzz::LargestAllocation = pulse_fuzz::LargestAllocation;

fuzz_target!(|data: &[u8]| {
    pulse_fuzz::check_with_allocation_bound(data);
});
