//! `#[pulse::main]` settings at their limits, the default path, and the
//! `null` writer, for `tests/macro_settings.rs`. `argv[1]` picks the
//! function to run.

/// Smallest rotating set pulse accepts: one file of 4 KiB.
#[pulse::main(
    flavor = "current_thread",
    max_file_size = 4096,
    max_total_size = "4KiB",
    path = "smallest.bin"
)]
async fn smallest_rotation() {
    work().await;
}

/// `max_file_size` equal to the default `max_total_size`.
#[pulse::main(
    flavor = "current_thread",
    max_file_size = "512MiB",
    path = "largest-file.bin"
)]
async fn file_size_at_default_total() {
    work().await;
}

/// Largest thread buffer pulse accepts, with a backlog to hold it.
#[pulse::main(
    flavor = "current_thread",
    buffer_events = 1_048_576,
    max_pending_events = 1_048_576,
    writer = "file",
    path = "largest-buffer.bin"
)]
async fn largest_buffer() {
    work().await;
}

/// `buffer_events` equal to the default `max_pending_events`.
#[pulse::main(
    flavor = "current_thread",
    buffer_events = 65_536,
    writer = "file",
    path = "buffer-at-backlog.bin"
)]
async fn buffer_at_default_backlog() {
    work().await;
}

/// Every default: a rotating set at `pulse-trace.bin`.
#[pulse::main]
async fn defaults() {
    work().await;
}

/// Records, writes nothing.
#[pulse::main(writer = "null")]
async fn null_writer() {
    work().await;
}

async fn work() {
    for i in 0..20u32 {
        tokio::spawn(async move { i * 2 }).await.unwrap();
    }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("smallest_rotation") => smallest_rotation(),
        Some("file_size_at_default_total") => file_size_at_default_total(),
        Some("largest_buffer") => largest_buffer(),
        Some("buffer_at_default_backlog") => buffer_at_default_backlog(),
        Some("defaults") => defaults(),
        Some("null_writer") => null_writer(),
        other => panic!("unknown case {other:?}"),
    }
}
