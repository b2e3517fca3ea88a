// Type errors land in the user's code: a setup whose type does not match
// the parameter, and shared state that is not `Sync` across threads.

use std::cell::Cell;

fn make() -> u32 {
    0
}

#[pulse::bench(setup = make)]
fn wrong_type(x: &u64) -> u64 {
    *x
}

#[pulse::bench(setup = || Cell::new(0u64), threads = [1, 2])]
fn not_sync(count: &Cell<u64>) {
    count.set(count.get() + 1);
}

pulse::bench_main!(wrong_type, not_sync);
