// Zero, too small, too large, and sizes that do not fit together.

#[pulse::main(flush_ms = 0, sample_ms = 0, buffer_events = 0, max_pending_events = 0)]
async fn zeros() {}

#[pulse::main(worker_threads = 0)]
async fn no_workers() {}

#[pulse::main(flush_ms = 99999999999999999999999)]
async fn overflow() {}

#[pulse::main(max_file_size = 4095)]
async fn file_too_small() {}

#[pulse::main(max_file_size = "64MiB", max_total_size = "32MiB")]
async fn total_below_file() {}

#[pulse::main(max_file_size = "1GiB")]
async fn file_above_default_total() {}

#[pulse::main(max_total_size = "1MiB")]
async fn total_below_default_file() {}

#[pulse::main(max_file_size = "64M")]
async fn unknown_unit() {}

#[pulse::main(max_total_size = "1.5GiB")]
async fn fraction() {}

#[pulse::main(max_file_size = "99999999TiB")]
async fn size_overflow() {}

#[pulse::main(buffer_events = 2000000, max_pending_events = 4000000)]
async fn buffer_too_large() {}

#[pulse::main(buffer_events = 100000)]
async fn buffer_above_default_pending() {}

#[pulse::main(buffer_events = 4096, max_pending_events = 1024)]
async fn pending_below_buffer() {}

fn main() {}
