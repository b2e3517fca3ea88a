//! What the CLI tests share: running the binary and a small trace.

// Each test binary uses only some of these.
#![allow(dead_code)]

use pulse::{RecordedEvent, SpawnLocation};
use std::process::{Command, Output};

pub const MS: u64 = 1_000_000;

/// Runs the `pulse` binary with `args`.
pub fn pulse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .output()
        .expect("runs the pulse binary")
}

/// Worker 0 blocks in one 200 ms poll (50..250 ms) of task 42 while the
/// sampler, every 10 ms up to 300 ms, sees its CPU clock stand still.
pub fn blocked_poll_events() -> Vec<RecordedEvent> {
    let spawned_at = SpawnLocation(std::panic::Location::caller());
    let mut events = vec![
        RecordedEvent::WorkerUnpark {
            timestamp_nanos: 0,
            worker: 0,
            local_queue: 0,
            cpu_nanos: Some(0),
            run_delay_nanos: Some(0),
        },
        RecordedEvent::PollStart {
            timestamp_nanos: 50 * MS,
            worker: 0,
            local_queue: 0,
            task_id: Some(42),
            spawned_at,
        },
        RecordedEvent::PollEnd {
            timestamp_nanos: 250 * MS,
            worker: 0,
            local_queue: 0,
        },
    ];
    for ms in (0..=300).step_by(10) {
        events.push(RecordedEvent::QueueSample {
            timestamp_nanos: ms * MS,
            global_queue: 0,
        });
        events.push(RecordedEvent::WorkerSample {
            timestamp_nanos: ms * MS,
            worker: 0,
            cpu_nanos: MS,
            run_delay_nanos: Some(0),
        });
    }
    events.sort_by_key(RecordedEvent::timestamp_nanos);
    events
}
