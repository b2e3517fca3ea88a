//! The work both fleet programs (`fleet_host_a`, `fleet_host_b`) share, so
//! that one spawn site (in this file) blocks workers on both "hosts" and
//! the fleet test can sum it across them.

use std::time::Duration;

/// How long each blocking poll sleeps: far above the 10 ms long-poll
/// threshold, so the readings around it prove it was off the CPU.
pub const BLOCK: Duration = Duration::from_millis(80);

/// Runs `count` tasks, spawned here, that each block their worker once
/// with `std::thread::sleep` (a blocking call in async code), one after
/// the other, with short tasks around them.
pub async fn shared_blocking(count: usize) {
    for _ in 0..count {
        let task = tokio::spawn(async {
            tokio::task::yield_now().await;
            std::thread::sleep(BLOCK);
        });
        chatter(20).await;
        task.await.expect("the blocking task panicked");
    }
}

/// `tasks` short tasks that yield a few times and sleep on a timer.
pub async fn chatter(tasks: u64) {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            tokio::spawn(async move {
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                tokio::time::sleep(Duration::from_millis(1 + i % 3)).await;
                i
            })
        })
        .collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.expect("a short task panicked");
    }
    assert_eq!(sum, (0..tasks).sum::<u64>());
}
