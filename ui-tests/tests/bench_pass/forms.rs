//! Every form `#[pulse::bench]` accepts, in one bench binary whose `main`
//! comes from `pulse::bench_main!`. Run without `--bench` (as trybuild does,
//! and `cargo test --benches`), criterion runs each benchmark once.
#![deny(warnings)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// No state, one call per iteration.
#[pulse::bench]
fn nothing() {}

/// A result (black-boxed), batched.
#[pulse::bench(batch = 100)]
fn add() -> u64 {
    std::hint::black_box(20u64) + 22
}

/// Shared state; on the calling thread it need not be `Sync`.
#[pulse::bench(setup = || Rc::new(Cell::new(0u64)), batch = 10)]
fn local_counter(count: &Rc<Cell<u64>>) {
    count.set(count.get() + 1);
}

/// Per-thread state only.
#[pulse::bench(per_thread = |thread| thread as u64 * 1_000, threads = [1, 3])]
fn own_counter(count: &mut u64) -> u64 {
    *count += 1;
    *count
}

/// Per-thread state borrowed immutably.
#[pulse::bench(per_thread = |thread| thread, elements = 2)]
fn read_only(index: &usize) -> usize {
    *index
}

fn counter() -> AtomicU64 {
    AtomicU64::new(0)
}

fn report(counter: AtomicU64) {
    assert!(counter.load(Ordering::Relaxed) > 0, "the benchmark ran");
}

/// Everything at once: shared and per-thread state, teardown, contention,
/// every statistical setting, a group, and `crate`.
#[pulse::bench(
    setup = counter,
    per_thread = |_| 0u64,
    teardown = report,
    threads = [1, 2, 4, 8, 16],
    batch = 50,
    elements = 1,
    group = "everything",
    warm_up_ms = 10,
    measurement_ms = 20,
    sample_size = 10,
    significance = 0.01,
    crate = "::pulse",
)]
pub fn shared_and_own(shared: &AtomicU64, own: &mut u64) -> u64 {
    *own += 1;
    shared.fetch_add(1, Ordering::Relaxed)
}

mod renamed {
    pub use pulse as telemetry;
}

/// pulse under another path; attributes other than docs stay on the
/// function.
#[renamed::telemetry::bench(crate = "crate::renamed::telemetry", batch = 2)]
#[inline(never)]
#[allow(clippy::needless_return)]
fn through_a_reexport() -> u8 {
    return 7;
}

/// A plain criterion function can be listed beside them.
fn by_hand(c: &mut pulse::__private::bench::criterion::Criterion) {
    c.bench_function("by_hand", |b| b.iter(|| 1 + 1));
}

pulse::bench_main!(
    nothing,
    add,
    local_counter,
    own_counter,
    read_only,
    shared_and_own,
    through_a_reexport,
    by_hand,
);
