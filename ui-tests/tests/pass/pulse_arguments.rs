//! Every pulse argument, each spelling of the sizes, and each writer.

#[pulse::main(
    flush_ms = 100,
    sample_ms = 5,
    writer = "rotating",
    path = "ui-pass-rotating.bin",
    max_file_size = "1MiB",
    max_total_size = 8_388_608,
    buffer_events = 512,
    max_pending_events = 4096,
    format = "v5",
    enabled = true,
    schedule_latency = true
)]
async fn everything() -> u32 {
    tokio::spawn(async { 7 }).await.unwrap()
}

#[pulse::main(writer = "file", path = "ui-pass-file.bin", format = "v6")]
async fn file() {}

#[pulse::main(writer = "null")]
async fn null() {}

#[pulse::main(max_file_size = 65536)]
async fn sizes_only() {}

#[pulse::main(enabled = false)]
async fn disabled() {}

#[pulse::main(max_file_size = "4 KiB", max_total_size = "1 MB", path = "ui-pass-sizes.bin")]
async fn size_spellings() {}

fn main() {
    assert_eq!(everything(), 7);
    assert!(std::path::Path::new("ui-pass-rotating.0.bin").exists());
    file();
    assert!(std::path::Path::new("ui-pass-file.bin").exists());
    null();
    sizes_only();
    disabled();
    size_spellings();
}
