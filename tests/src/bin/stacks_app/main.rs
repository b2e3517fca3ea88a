//! A program for `tests/stacks.rs`: one spawn line runs three kinds of
//! requests. `get` blocks its worker for 100 ms in `std::thread::sleep` three calls
//! below the spawned future (`handler::get` → `storage::lookup` →
//! `storage::read_disk`); `sum` burns the CPU in `compute::checksum`;
//! `ping` returns at once (a short poll). With `signals` as its argument it
//! runs `signals.rs` instead. The trace goes to `stacks-trace.bin`.

mod compute;
mod handler;
mod signals;
mod storage;

use std::time::Duration;

#[pulse::main(worker_threads = 2, path = "stacks-trace.bin", sample_ms = 5)]
async fn main() {
    // Let the recorder's sampler start (it loads the unwind tables of the
    // executable first) before the first request.
    tokio::time::sleep(Duration::from_millis(200)).await;
    if std::env::args().nth(1).as_deref() == Some("signals") {
        signals::run().await;
        return;
    }
    let requests = ["ping", "get", "ping", "sum", "ping", "get", "sum"];
    for request in requests {
        let task = tokio::spawn(handler::serve(request));
        task.await.expect("request task");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
