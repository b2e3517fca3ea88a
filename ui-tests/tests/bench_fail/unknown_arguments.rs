// Misspelled and unknown arguments: the closest name, and every name.

#[pulse::bench(thread = [1, 2])]
fn a() {}

#[pulse::bench(bach = 100)]
fn b() {}

#[pulse::bench(samples = 50, warmup_ms = 10)]
fn c() {}

#[pulse::bench(colour = 1)]
fn d() {}

#[pulse::bench(batch)]
fn e() {}

#[pulse::bench(threads(1, 2))]
fn f() {}

#[pulse::bench(batch = 1, batch = 2)]
fn g() {}

fn main() {}
