// The attribute belongs on a function.

#[pulse::bench]
struct Server;

#[pulse::bench(batch = 10)]
const N: u32 = 1;

fn main() {}
