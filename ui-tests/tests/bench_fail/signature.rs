// Functions a benchmark cannot call, and parameters that do not match
// `setup` and `per_thread`.

#[pulse::bench]
async fn asynchronous() {}

#[pulse::bench]
fn generic<T: Default>() -> T {
    T::default()
}

#[pulse::bench]
unsafe fn not_safe() {}

#[pulse::bench]
fn takes_an_argument(x: u64) -> u64 {
    x
}

#[pulse::bench(setup = || 5u64)]
fn missing_parameter() {}

#[pulse::bench(setup = || 5u64)]
fn shared_mutably(x: &mut u64) {
    *x += 1;
}

#[pulse::bench(per_thread = |_| 0u64)]
fn state_by_value(x: u64) -> u64 {
    x
}

#[pulse::bench(setup = || 1u8, teardown = drop)]
fn fine(_: &u8) {}

#[pulse::bench(teardown = drop)]
fn teardown_without_setup() {}

fn main() {}
