//! One of the two programs the fleet test (`tests/fleet_duckdb.rs`)
//! records as two hosts: three blocking polls from the shared spawn site,
//! one from a site of its own, and short tasks around them. It writes
//! `fleet-a.bin` in its working directory.

#[path = "../fleet/workload.rs"]
mod workload;

#[pulse::main(
    worker_threads = 2,
    writer = "file",
    path = "fleet-a.bin",
    service = "fleet-test"
)]
async fn main() {
    workload::chatter(100).await;
    workload::shared_blocking(3).await;
    // A site only this program has.
    tokio::spawn(async { std::thread::sleep(workload::BLOCK) })
        .await
        .expect("the blocking task panicked");
    workload::chatter(100).await;
}
