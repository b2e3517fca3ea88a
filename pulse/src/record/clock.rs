//! Clocks: monotonic timestamps, thread CPU time, and the kernel's per-thread
//! scheduler statistics (`schedstat`: on-CPU time and run-queue wait).
//!
//! Every time source the recorder uses is behind a function here, so the
//! hooks do not know which one is in use.
//!
//! **Timestamps.** Where the CPU's time-stamp counter is invariant (x86-64
//! with `constant_tsc` and `nonstop_tsc` in `/proc/cpuinfo`, and the kernel
//! itself using `tsc` as its clocksource, i.e. it found the counter in sync
//! across CPUs), a timestamp is one `rdtsc` (~12 ns here, against ~28 ns
//! for `clock_gettime` through the vDSO) scaled to nanoseconds with a
//! calibration against `CLOCK_MONOTONIC` taken once per process (two
//! readings 10 ms apart). Elsewhere it is `CLOCK_MONOTONIC`. Either way
//! the values are on `CLOCK_MONOTONIC`'s scale and origin (within the
//! calibration's error: a few parts per million of the time elapsed since
//! calibration), the same for every thread, so timestamps of different
//! workers and of the sampler compare directly. The hooks additionally keep
//! each thread's timestamps from going backwards.

use std::fs::File;
use std::io;
use std::sync::OnceLock;

/// The recorder's timestamp source: a calibrated TSC or `CLOCK_MONOTONIC`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    tsc: Option<TscScale>,
}

/// `nanos = base_nanos + ((ticks - base_ticks) * mult) >> 64`: `mult` is
/// nanoseconds per tick in 64-bit fixed point (the high half of one
/// 64 × 64-bit multiply), so the TSC must tick faster than 1 GHz.
#[derive(Clone, Copy, Debug)]
struct TscScale {
    base_ticks: u64,
    base_nanos: u64,
    mult: u64,
}

impl Clock {
    /// The process's clock, calibrated on first use (10 ms, once).
    pub(crate) fn get() -> Clock {
        static CLOCK: OnceLock<Clock> = OnceLock::new();
        *CLOCK.get_or_init(|| Clock {
            tsc: calibrate_tsc(),
        })
    }

    /// Whether timestamps come from the TSC (for the benches).
    #[cfg_attr(not(feature = "bench"), allow(dead_code))]
    pub(crate) fn is_tsc(&self) -> bool {
        self.tsc.is_some()
    }

    /// Nanoseconds on `CLOCK_MONOTONIC`'s scale.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self.tsc {
            Some(scale) => scale.nanos(read_tsc()),
            None => monotonic_clock_nanos(),
        }
    }

    /// This clock with its origin now: what a recording reads, so that a
    /// trace timestamp is one subtraction and one multiply from the TSC.
    pub(crate) fn starting_now(&self) -> TraceClock {
        match self.tsc {
            Some(scale) => {
                let ticks = read_tsc();
                TraceClock {
                    tsc: Some((ticks, scale.mult)),
                    epoch_nanos: scale.nanos(ticks),
                }
            }
            None => TraceClock {
                tsc: None,
                epoch_nanos: monotonic_clock_nanos(),
            },
        }
    }
}

/// A [`Clock`] counting from the start of one recording.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TraceClock {
    /// `(ticks at the start, mult)` when reading the TSC.
    tsc: Option<(u64, u64)>,
    /// The start, on [`Clock::now`]'s scale.
    epoch_nanos: u64,
}

impl TraceClock {
    /// Nanoseconds since the start.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self.tsc {
            Some((epoch_ticks, mult)) => mul_high(read_tsc().saturating_sub(epoch_ticks), mult),
            None => self.fallback_now(),
        }
    }

    /// [`now`](Self::now) without a TSC: kept out of line, so the TSC
    /// path is the straight one.
    #[cold]
    #[inline(never)]
    fn fallback_now(&self) -> u64 {
        monotonic_clock_nanos().saturating_sub(self.epoch_nanos)
    }
}

/// `(a * b) >> 64`: one `mul` on x86-64.
#[inline]
fn mul_high(a: u64, b: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) >> 64) as u64
}

impl TscScale {
    #[inline]
    fn nanos(&self, ticks: u64) -> u64 {
        // Ticks before the calibration (another CPU's counter a few ticks
        // behind) count as the calibration instant.
        self.base_nanos
            .wrapping_add(mul_high(ticks.saturating_sub(self.base_ticks), self.mult))
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn read_tsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions; `calibrate_tsc` only returns a
    // scale (so this is only reached) where the counter is invariant.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn read_tsc() -> u64 {
    0
}

/// Whether the TSC can serve as a clock: invariant (`constant_tsc`,
/// `nonstop_tsc`) and trusted by the kernel (its clocksource is `tsc`).
fn tsc_is_invariant() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    // Set to anything but the empty string (which counts as unset, as for
    // every `PULSE_*` variable).
    if std::env::var_os("PULSE_NO_TSC").is_some_and(|value| !value.is_empty()) {
        return false;
    }
    let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    let flags = cpuinfo
        .lines()
        .find(|line| line.starts_with("flags"))
        .unwrap_or("");
    let has = |flag: &str| flags.split_ascii_whitespace().any(|f| f == flag);
    if !(has("constant_tsc") && has("nonstop_tsc")) {
        return false;
    }
    match std::fs::read_to_string(
        "/sys/devices/system/clocksource/clocksource0/current_clocksource",
    ) {
        Ok(source) => source.trim() == "tsc",
        // Unreadable sysfs: trust the CPU flags.
        Err(_) => true,
    }
}

/// One `(ticks, nanos)` pair, the TSC read on both sides of the monotonic
/// clock; the narrowest of a few tries, to keep a preemption out of it.
fn tsc_pair() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..16 {
        let before = read_tsc();
        let nanos = monotonic_clock_nanos();
        let after = read_tsc();
        let width = after.wrapping_sub(before);
        if width < best.0 {
            best = (width, before + width / 2, nanos);
        }
    }
    (best.1, best.2)
}

fn calibrate_tsc() -> Option<TscScale> {
    if !tsc_is_invariant() {
        return None;
    }
    let (ticks0, nanos0) = tsc_pair();
    std::thread::sleep(std::time::Duration::from_millis(10));
    let (ticks1, nanos1) = tsc_pair();
    let ticks = ticks1.checked_sub(ticks0).filter(|&t| t > 0)?;
    let nanos = nanos1.checked_sub(nanos0)?;
    // Nanoseconds per tick in 64-bit fixed point; the TSC must run between
    // 1 and 20 GHz (anything else is a broken reading or a slow counter,
    // for which `CLOCK_MONOTONIC` is as good).
    if nanos >= ticks || nanos.saturating_mul(20) < ticks {
        return None;
    }
    let mult = u64::try_from((u128::from(nanos) << 64) / u128::from(ticks)).ok()?;
    Some(TscScale {
        base_ticks: ticks1,
        base_nanos: nanos1,
        mult,
    })
}

/// Nanoseconds on the recorder's timestamp clock (see the module
/// documentation: the calibrated TSC where it is invariant, otherwise
/// `CLOCK_MONOTONIC`, the clock behind `std::time::Instant` on Linux; the
/// values are on `CLOCK_MONOTONIC`'s scale either way). Only differences
/// are meaningful.
///
/// This is the recorder's one timestamp source; the trace stores
/// `monotonic_nanos() - trace_start`.
///
/// # Examples
///
/// ```
/// let a = pulse::clock::monotonic_nanos();
/// let b = pulse::clock::monotonic_nanos();
/// assert!(b >= a);
/// ```
#[inline]
pub fn monotonic_nanos() -> u64 {
    Clock::get().now()
}

/// `CLOCK_MONOTONIC` itself.
#[cfg(unix)]
#[inline]
fn monotonic_clock_nanos() -> u64 {
    read_clock(libc::CLOCK_MONOTONIC).unwrap_or(0)
}

#[cfg(not(unix))]
#[inline]
fn monotonic_clock_nanos() -> u64 {
    use std::time::Instant;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The calling thread's CPU time in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`),
/// or 0 where the platform has no per-thread CPU clock.
///
/// This is a real system call on Linux (not served by the vDSO), so the
/// recorder reads it only on park and unpark, never per poll.
#[inline]
pub fn thread_cpu_nanos() -> u64 {
    #[cfg(unix)]
    {
        read_clock(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0)
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// CPU time of another thread of this process, identified by its kernel
/// thread id, or `None` if the thread has exited (or off Linux).
///
/// Uses the kernel's per-thread CPU clock id (what glibc's
/// `pthread_getcpuclockid` computes from a tid), so it is exact even while
/// the thread is running, unlike `schedstat`, which lags by up to one tick.
pub fn thread_cpu_nanos_of(tid: i32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) from linux/posix-timers.h.
        const CPUCLOCK_PERTHREAD_MASK: libc::clockid_t = 4;
        const CPUCLOCK_SCHED: libc::clockid_t = 2;
        let clock = ((!tid) << 3) | CPUCLOCK_PERTHREAD_MASK | CPUCLOCK_SCHED;
        read_clock(clock)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tid;
        None
    }
}

#[cfg(unix)]
#[inline]
fn read_clock(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes it only.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The calling thread's kernel thread id (Linux), used to find its
/// `/proc/self/task/<tid>` entries from the sampler thread.
pub fn current_tid() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        Some(unsafe { libc::gettid() })
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// One reading of a thread's `schedstat`: cumulative nanoseconds on CPU and
/// nanoseconds spent runnable but waiting in a run queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedStat {
    /// Time spent running on a CPU (`se.sum_exec_runtime`).
    pub cpu_nanos: u64,
    /// Time spent runnable, waiting for a CPU (`sched_info.run_delay`).
    pub run_delay_nanos: u64,
}

/// An open `schedstat` file, read with `pread` so the descriptor is reused:
/// one system call per reading, no path lookup.
///
/// # Examples
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use pulse::clock::SchedStatFile;
///
/// let file = SchedStatFile::open_current_thread().expect("Linux has /proc/thread-self");
/// let first = file.read().unwrap();
/// let second = file.read().unwrap();
/// assert!(second.run_delay_nanos >= first.run_delay_nanos);
/// # }
/// ```
#[derive(Debug)]
pub struct SchedStatFile {
    file: File,
}

impl SchedStatFile {
    /// Opens the calling thread's `/proc/thread-self/schedstat`.
    ///
    /// Fails off Linux or where the kernel was built without schedstats.
    pub fn open_current_thread() -> io::Result<Self> {
        Self::open_path("/proc/thread-self/schedstat")
    }

    /// Opens `/proc/self/task/<tid>/schedstat` for a thread of this process.
    pub fn open_thread(tid: i32) -> io::Result<Self> {
        Self::open_path(&format!("/proc/self/task/{tid}/schedstat"))
    }

    fn open_path(path: &str) -> io::Result<Self> {
        let file = File::open(path)?;
        let this = SchedStatFile { file };
        // Fail at open, not at the first reading, if the format is unexpected.
        this.read()?;
        Ok(this)
    }

    /// Reads the current values.
    pub fn read(&self) -> io::Result<SchedStat> {
        let mut buf = [0u8; 96];
        let n = read_at(&self.file, &mut buf)?;
        parse_schedstat(&buf[..n]).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected schedstat contents (expected three decimal fields)",
            )
        })
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    file.read_at(buf, 0)
}

#[cfg(not(unix))]
fn read_at(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let _ = (file, buf);
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "schedstat needs Linux",
    ))
}

/// Parses `"<cpu ns> <run delay ns> <timeslices>\n"`.
fn parse_schedstat(bytes: &[u8]) -> Option<SchedStat> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut fields = text.split_ascii_whitespace();
    let cpu_nanos = fields.next()?.parse().ok()?;
    let run_delay_nanos = fields.next()?.parse().ok()?;
    fields.next()?.parse::<u64>().ok()?;
    Some(SchedStat {
        cpu_nanos,
        run_delay_nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_schedstat_line() {
        assert_eq!(
            parse_schedstat(b"123456 789 42\n"),
            Some(SchedStat {
                cpu_nanos: 123456,
                run_delay_nanos: 789
            })
        );
        assert_eq!(parse_schedstat(b"12 x 3\n"), None);
        assert_eq!(parse_schedstat(b"12 3\n"), None);
        assert_eq!(parse_schedstat(b""), None);
    }

    /// The TSC clock (where in use) stays on CLOCK_MONOTONIC's scale: over
    /// 50 ms the two agree within 0.5 %, and within 1 ms in absolute terms.
    #[test]
    fn timestamp_clock_agrees_with_clock_monotonic() {
        let clock = Clock::get();
        let (a, ma) = (clock.now(), monotonic_clock_nanos());
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (b, mb) = (clock.now(), monotonic_clock_nanos());
        let (dt, dm) = ((b - a) as f64, (mb - ma) as f64);
        assert!(
            (dt - dm).abs() <= dm * 0.005,
            "clock {dt} ns vs monotonic {dm} ns"
        );
        assert!(
            a.abs_diff(ma) < 1_000_000,
            "clock {a} vs monotonic {ma} (tsc: {})",
            clock.is_tsc()
        );
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_nanos();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = monotonic_nanos();
        assert!(b >= a + 2_000_000, "{a} -> {b}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn thread_cpu_time_counts_work_not_sleep() {
        // Spin until the wall clock says 20 ms passed: the CPU clock advances
        // by at most that much (less if the OS ran something else).
        let started = std::time::Instant::now();
        let before = thread_cpu_nanos();
        while started.elapsed() < std::time::Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let after_spin = thread_cpu_nanos();
        let wall = started.elapsed().as_nanos() as u64;
        assert!(after_spin > before, "spinning used no CPU time");
        assert!(after_spin - before <= wall, "more CPU than wall time");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let after_sleep = thread_cpu_nanos();
        assert!(
            after_sleep - after_spin < 5_000_000,
            "sleeping 20 ms used {}ns of CPU",
            after_sleep - after_spin
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_another_threads_cpu_clock_and_schedstat() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            // Spin until this thread's own CPU clock shows 10 ms of work.
            let before = thread_cpu_nanos();
            while thread_cpu_nanos() - before < 10_000_000 {
                std::hint::spin_loop();
            }
            tx.send(current_tid().unwrap()).unwrap();
            done_rx.recv().unwrap();
        });
        let tid = rx.recv().unwrap();
        let cpu = thread_cpu_nanos_of(tid).expect("thread is alive");
        assert!(cpu >= 10_000_000, "other thread's CPU clock read {cpu}ns");
        let stat = SchedStatFile::open_thread(tid).unwrap().read().unwrap();
        assert!(stat.cpu_nanos > 0);
        done_tx.send(()).unwrap();
        worker.join().unwrap();
        assert_eq!(thread_cpu_nanos_of(tid), None, "exited thread has no clock");
    }
}
