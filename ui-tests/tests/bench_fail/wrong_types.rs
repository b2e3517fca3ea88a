// Values of the wrong type or out of range, all reported at once.

#[pulse::bench(
    batch = "100",
    threads = 4,
    significance = 1.5,
    sample_size = 5,
    setup = 5,
    group = 1,
    measurement_ms = 0,
    elements = -2,
)]
fn all_at_once() {}

fn main() {}
