// Each argument may be given once; the repeat is pointed at.

#[pulse::main(flush_ms = 100, sample_ms = 5, flush_ms = 200)]
async fn twice() {}

#[pulse::main(flavor = "current_thread", flavor = "current_thread")]
async fn same_value_twice() {}

fn main() {}
