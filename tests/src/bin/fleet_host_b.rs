//! The other program the fleet test (`tests/fleet_duckdb.rs`) records as a
//! second host: two blocking polls from the shared spawn site, two
//! longer ones from a site of its own, and more short tasks than
//! `fleet_host_a`. It writes `fleet-b.bin` in its working directory.

#[path = "../fleet/workload.rs"]
mod workload;

use std::time::Duration;

#[pulse::main(
    worker_threads = 3,
    writer = "file",
    path = "fleet-b.bin",
    service = "fleet-test"
)]
async fn main() {
    workload::chatter(300).await;
    workload::shared_blocking(2).await;
    for _ in 0..2 {
        // A site only this program has, blocking longer than the shared one.
        tokio::spawn(async { std::thread::sleep(Duration::from_millis(150)) })
            .await
            .expect("the blocking task panicked");
    }
    workload::chatter(300).await;
}
