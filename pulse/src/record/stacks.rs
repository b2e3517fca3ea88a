//! Stacks of long polls, captured by the sampler thread.
//!
//! # Design (measured in BENCHMARKS.md, "Stacks of long polls")
//!
//! Nothing runs on the hot path. Every `sample_ms` the sampler peeks at the
//! last event each worker thread has published: a PollStart older than the
//! threshold (default 5 ms, half the long-poll threshold) means the worker
//! is inside a long poll. Only then does this module look at the thread:
//!
//! - **Asleep** (blocking I/O, `sleep`, a std lock): `/proc/self/task/<tid>/syscall`
//!   gives the user stack pointer and program counter where the thread
//!   entered the kernel. The thread cannot run user code while it sleeps,
//!   so its stack is copied with `process_vm_readv` on our own pid (a read
//!   that fails cleanly instead of faulting) and unwound here. The file is
//!   read again afterwards: a thread that woke meanwhile gives no stack.
//!   `perf_event_open` cannot do this at `perf_event_paranoid = 2`: a
//!   context-switch sample happens in the kernel, which `exclude_kernel`
//!   (required at level 2) filters out — `perf record -e cs:u` records
//!   nothing.
//! - **Running**: a `perf_event_open` task-clock counter on the thread,
//!   opened once per worker thread (disabled), enabled by the sampler while
//!   the poll is long and disabled when it ends, samples every `sample_ms`
//!   of CPU time with `PERF_SAMPLE_REGS_USER` + `PERF_SAMPLE_STACK_USER`
//!   (a copy of the top 32 KiB of the user stack) into a ring this thread
//!   drains. No signal is delivered to the worker, so no `EINTR`.
//!
//! Nothing is loaded until the first long poll: then the sampler reads the
//! modules' `.eh_frame`, and the symbolizer parses debug information,
//! which it drops again after 10 s without a stack.
//!
//! Both copies are unwound with `framehop` (DWARF CFI from `.eh_frame`, so
//! release builds without frame pointers unwind) and symbolized with
//! `addr2line` (function, file:line, inlined frames; file:line needs line
//! tables, e.g. `debug = "line-tables-only"`; without them functions come
//! from the symbol table). Frames and stacks are interned in the
//! [`StackRegistry`], which the trace encoder turns into self-contained
//! definitions.
//!
//! Where the kernel refuses (`perf_event_paranoid` 3, seccomp, no
//! `/proc`), or on other platforms, [`StackCapture::new`] or the first use
//! says why, and the trace's metadata (`stacks`) records it.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "stacks_linux.rs"]
mod imp;

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod imp {
    #[derive(Debug)]
    pub(crate) struct StackCapture;

    pub(crate) fn probe() -> Result<(), String> {
        Err("stacks are captured on Linux x86_64 only".to_owned())
    }

    impl StackCapture {
        pub(crate) fn new(
            _sample_ms: u64,
            _shared: std::sync::Arc<crate::record::shared::Shared>,
        ) -> Result<Self, String> {
            Err(probe().unwrap_err())
        }

        pub(crate) fn tick(&mut self, _now: u64, _to_trace: i128, _threads: &[super::ThreadView]) {}
    }
}

pub(crate) use imp::StackCapture;

/// What the sampler knows about one worker thread at a tick.
#[derive(Debug, Clone)]
pub(crate) struct ThreadView {
    pub(crate) tid: i32,
    pub(crate) worker: u32,
    /// Start of the poll the thread is in and has been for longer than the
    /// threshold, if any.
    pub(crate) long_poll_since: Option<u64>,
    /// The thread's buffer, to check after a capture that the poll is
    /// still open.
    pub(crate) slot: std::sync::Arc<crate::record::buffer::ThreadSlot>,
}

/// One sampler tick of stack capture: finds the worker threads inside a
/// poll older than `threshold_nanos` (by peeking at the last event each has
/// published) and lets `capture` take their stacks.
pub(crate) fn sample(
    shared: &crate::record::shared::Shared,
    capture: &mut StackCapture,
    threshold_nanos: u64,
) {
    use crate::record::buffer::NO_WORKER;
    use std::sync::atomic::Ordering;
    let now = shared.now();
    let threads: Vec<ThreadView> = shared
        .slots()
        .iter()
        .filter_map(|slot| {
            let worker = slot.worker.load(Ordering::Relaxed);
            let tid = slot.tid?;
            (worker != NO_WORKER).then(|| ThreadView {
                tid,
                worker,
                long_poll_since: slot
                    .open_poll_start()
                    .filter(|&start| now.saturating_sub(start) >= threshold_nanos),
                slot: slot.clone(),
            })
        })
        .collect();
    let to_trace = i128::from(shared.now()) - i128::from(monotonic_raw_nanos());
    capture.tick(now, to_trace, &threads);
}

/// `CLOCK_MONOTONIC` itself (perf sample times use it).
fn monotonic_raw_nanos() -> u64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// Opens the stack capture for a recording: `Ok(None)` when disabled,
/// `Err(why)` when the platform or kernel refuses.
pub(crate) fn start(
    config: &crate::Config,
    shared: &std::sync::Arc<crate::record::shared::Shared>,
) -> Result<Option<(StackCapture, u64)>, String> {
    if !config.stacks {
        return Ok(None);
    }
    let capture = StackCapture::new(config.sample_ms, shared.clone())?;
    Ok(Some((
        capture,
        config.stack_threshold_ms.saturating_mul(1_000_000),
    )))
}

/// What the trace's metadata says about stacks (`stacks` pair): `on`,
/// `off` (disabled by configuration) or `unavailable: <why>`.
pub(crate) fn status(config: &crate::Config) -> String {
    if !config.stacks {
        return "off".to_owned();
    }
    match imp::probe() {
        Ok(()) => "on".to_owned(),
        Err(why) => format!("unavailable: {why}"),
    }
}
