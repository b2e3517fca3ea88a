// Thread counts: at least one count, none zero, none repeated.

#[pulse::bench(threads = [0, 1, 2])]
fn zero() {}

#[pulse::bench(threads = [])]
fn empty() {}

#[pulse::bench(threads = [1, 2, 2, n])]
fn repeated() {}

fn main() {}
