// One attribute, many mistakes: all are reported in one compile, each at
// its own tokens, and a signature error comes with them.

#[pulse::main(
    flavor = "current_thread",
    worker_threads = 2,
    flush_msec = 100,
    sample_ms = 0,
    writer = "roating",
    max_file_size = "64M",
    enabled = "yes",
    sample_ms = 10,
)]
fn main() {}
