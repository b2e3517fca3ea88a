//! Linux x86_64 stack capture: `/proc/<tid>/syscall` + `process_vm_readv`
//! for sleeping threads, a `perf_event_open` task-clock ring for running
//! ones; `framehop` unwinding and `addr2line` symbolization. See the parent
//! module for the design.

use super::ThreadView;
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection};
use pulse_trace::{RecordedEvent, Stack, StackFrame, StackKind, StackModule, StackRegistry};
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{fence, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

/// Bytes of user stack copied per capture (from the stack pointer up).
const STACK_COPY: usize = 32 * 1024;
/// Data pages of each thread's perf ring (a power of two).
const RING_PAGES: usize = 32;
/// Frames kept per stack.
const MAX_FRAMES: usize = 128;
/// At most one stack per worker per this many milliseconds, whatever
/// `sample_ms` (measured: at `sample_ms = 2` captures took a loaded 2-core
/// machine's CPU from the traced program).
const MIN_INTERVAL_MS: u64 = 5;

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
const PERF_SAMPLE_TIME: u64 = 1 << 2;
const PERF_SAMPLE_REGS_USER: u64 = 1 << 12;
const PERF_SAMPLE_STACK_USER: u64 = 1 << 13;
const PERF_RECORD_SAMPLE: u32 = 9;
/// `perf_event_attr` flag bits.
const ATTR_DISABLED: u64 = 1 << 0;
const ATTR_EXCLUDE_KERNEL: u64 = 1 << 5;
const ATTR_EXCLUDE_HV: u64 = 1 << 6;
const ATTR_USE_CLOCKID: u64 = 1 << 25;
/// x86_64 `perf_regs` indices: the sample holds them in index order.
const PERF_REG_X86_BP: u64 = 6;
const PERF_REG_X86_SP: u64 = 7;
const PERF_REG_X86_IP: u64 = 8;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5` (112 bytes).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved: u16,
}

/// A task-clock sampling counter on one thread and its mmap ring, open
/// only while that thread is in a long poll.
struct PerfRing {
    fd: libc::c_int,
    base: *mut u8,
    len: usize,
    data_offset: usize,
    data_size: usize,
    enabled: bool,
}

// SAFETY: the ring is only touched by the sampler thread that owns the
// `StackCapture`; the pointer is to a private mapping.
unsafe impl Send for PerfRing {}

impl std::fmt::Debug for PerfRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfRing").field("fd", &self.fd).finish()
    }
}

impl PerfRing {
    /// Opens a disabled user-space task-clock counter on `tid`, sampling
    /// every `period_nanos` of its CPU time.
    fn open(tid: i32, period_nanos: u64) -> Result<PerfRing, String> {
        let attr = PerfEventAttr {
            type_: PERF_TYPE_SOFTWARE,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: PERF_COUNT_SW_TASK_CLOCK,
            sample_period: period_nanos.max(100_000),
            sample_type: PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER,
            flags: ATTR_DISABLED | ATTR_EXCLUDE_KERNEL | ATTR_EXCLUDE_HV | ATTR_USE_CLOCKID,
            sample_regs_user: (1 << PERF_REG_X86_BP)
                | (1 << PERF_REG_X86_SP)
                | (1 << PERF_REG_X86_IP),
            sample_stack_user: STACK_COPY as u32,
            clockid: libc::CLOCK_MONOTONIC,
            ..Default::default()
        };
        // SAFETY: `attr` is a valid, fully initialised perf_event_attr of the
        // size it states; the other arguments are plain integers.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                tid,
                -1,
                -1,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "?".to_owned());
            return Err(format!(
                "perf_event_open refused ({err}; kernel.perf_event_paranoid = {paranoid}, stacks of running polls need <= 2)"
            ));
        }
        let fd = fd as libc::c_int;
        let page = page_size();
        let len = page * (1 + RING_PAGES);
        // SAFETY: mapping a perf fd as the kernel documents; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let err = std::io::Error::last_os_error();
            // SAFETY: `fd` is ours and open.
            unsafe { libc::close(fd) };
            return Err(format!("mmap of the perf ring failed ({err})"));
        }
        let base = base.cast::<u8>();
        // SAFETY: the first page is the perf_event_mmap_page header; these
        // offsets are its `data_offset` and `data_size` fields.
        let (data_offset, data_size) = unsafe {
            (
                std::ptr::read_volatile(base.add(1040).cast::<u64>()) as usize,
                std::ptr::read_volatile(base.add(1048).cast::<u64>()) as usize,
            )
        };
        Ok(PerfRing {
            fd,
            base,
            len,
            data_offset: if data_offset == 0 { page } else { data_offset },
            data_size: if data_size == 0 {
                page * RING_PAGES
            } else {
                data_size
            },
            enabled: false,
        })
    }

    fn set_enabled(&mut self, enabled: bool) {
        if self.enabled != enabled {
            let request = if enabled {
                PERF_EVENT_IOC_ENABLE
            } else {
                PERF_EVENT_IOC_DISABLE
            };
            // SAFETY: `fd` is an open perf event.
            unsafe { libc::ioctl(self.fd, request, 0) };
            self.enabled = enabled;
        }
    }

    /// Calls `f` with each sample record's body (after the 8-byte header)
    /// written since the last drain, then frees the ring space.
    fn drain(&mut self, scratch: &mut Vec<u8>, mut f: impl FnMut(&[u8])) {
        // SAFETY: offsets 1024/1032 are `data_head`/`data_tail` of the header
        // page; the kernel writes head, we write tail (as documented in
        // perf_event_open(2)): read head, acquire fence, read data, release
        // fence, write tail.
        unsafe {
            let head_ptr = self.base.add(1024).cast::<u64>();
            let tail_ptr = self.base.add(1032).cast::<u64>();
            let head = std::ptr::read_volatile(head_ptr);
            fence(Ordering::Acquire);
            let mut tail = std::ptr::read_volatile(tail_ptr);
            let data = self.base.add(self.data_offset);
            let ring = std::slice::from_raw_parts(data, self.data_size);
            while tail + 8 <= head {
                scratch.clear();
                // A record may wrap around the end of the ring.
                let copy = |from: u64, len: usize, out: &mut Vec<u8>| {
                    let start = (from % ring.len() as u64) as usize;
                    let first = len.min(ring.len() - start);
                    out.extend_from_slice(&ring[start..start + first]);
                    out.extend_from_slice(&ring[..len - first]);
                };
                let mut header = Vec::with_capacity(8);
                copy(tail, 8, &mut header);
                let kind = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
                let size = u16::from_ne_bytes([header[6], header[7]]) as u64;
                if size < 8 || tail + size > head {
                    break;
                }
                if kind == PERF_RECORD_SAMPLE {
                    copy(tail + 8, (size - 8) as usize, scratch);
                    f(scratch);
                }
                tail += size;
            }
            fence(Ordering::Release);
            std::ptr::write_volatile(tail_ptr, head.max(tail).min(head));
        }
    }
}

impl Drop for PerfRing {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `open`, `fd` is ours.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
            libc::close(self.fd);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// One loaded module: unwind data is in the unwinder, this is for
/// symbolization.
struct LoadedModule {
    path: String,
    range: std::ops::Range<u64>,
    base_avma: u64,
    registry_id: u32,
    loader: Option<addr2line::Loader>,
}

/// State per worker thread.
#[derive(Debug, Default)]
struct ThreadState {
    perf: Option<PerfRing>,
    perf_error: bool,
    /// The thread's schedstat, opened at its first long poll.
    schedstat: Option<crate::record::clock::SchedStatFile>,
    /// Its CPU time at the previous tick of the current long poll.
    cpu: Option<u64>,
    /// When the current long poll's last stack was taken from `/proc`.
    last_capture: Option<u64>,
    /// That stack, if the thread was asleep.
    last_sleeping: Option<SleepingStack>,
}

/// A sleeping thread's stack as last captured and unwound.
#[derive(Debug)]
struct SleepingStack {
    sp: u64,
    pc: u64,
    copy: Vec<u8>,
    addrs: Vec<u64>,
    truncated: bool,
}

impl ThreadState {
    /// CPU time the thread used since the previous tick of this long poll
    /// (0 at the poll's first tick or if schedstat is unreadable).
    fn ran_since_last_tick(&mut self, tid: i32) -> u64 {
        if self.schedstat.is_none() {
            self.schedstat = crate::record::clock::SchedStatFile::open_thread(tid).ok();
        }
        let now = self
            .schedstat
            .as_ref()
            .and_then(|file| file.read().ok())
            .map(|stat| stat.cpu_nanos);
        let ran = match (self.cpu, now) {
            (Some(before), Some(now)) => now.saturating_sub(before),
            _ => 0,
        };
        self.cpu = now;
        ran
    }
}

/// A stack as captured: lookup addresses, innermost first.
struct RawStack {
    timestamp_nanos: u64,
    worker: u32,
    kind: StackKind,
    addrs: Vec<u64>,
    truncated: bool,
}

/// Raw stacks waiting for the symbolizer thread; beyond this many, new
/// ones are dropped (the sampler never waits).
const SYMBOLIZE_QUEUE: usize = 256;
/// After this many seconds without a stack the symbolizer releases the
/// debug information it parsed.
const IDLE_SECS: u64 = 10;

/// Captures and unwinds stacks of worker threads in long polls, on the
/// sampler thread; a `pulse-stacks` thread symbolizes them.
pub(crate) struct StackCapture {
    period_nanos: u64,
    threads: HashMap<i32, ThreadState>,
    unwinder: UnwinderX86_64<Vec<u8>>,
    cache: CacheX86_64,
    /// Path, address range and base of the modules the unwinder knows.
    modules: Vec<(String, std::ops::Range<u64>, u64)>,
    /// When the module list was last refreshed for an unknown address.
    modules_refreshed: Option<std::time::Instant>,
    scratch: Vec<u8>,
    stack_copy: Vec<u8>,
    /// Why running threads give no stacks (the first refusal).
    perf_problem: Option<String>,
    pid: libc::pid_t,
    to_symbolizer: Option<std::sync::mpsc::SyncSender<RawStack>>,
    symbolizer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for StackCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackCapture")
            .field("threads", &self.threads.len())
            .field("modules", &self.modules.len())
            .finish()
    }
}

impl StackCapture {
    /// Checks that this process may read its threads' stacks and loads the
    /// module list; `Err` says why stacks are not available.
    pub(crate) fn new(
        sample_ms: u64,
        shared: std::sync::Arc<crate::record::shared::Shared>,
    ) -> Result<Self, String> {
        probe()?;
        let (to_symbolizer, from_capture) = std::sync::mpsc::sync_channel(SYMBOLIZE_QUEUE);
        let symbolizer = std::thread::Builder::new()
            .name("pulse-stacks".to_owned())
            .spawn(move || Symbolizer::new().run(&from_capture, &shared))
            .map_err(|err| format!("could not start the symbolizer thread ({err})"))?;
        let capture = StackCapture {
            period_nanos: sample_ms.max(MIN_INTERVAL_MS).saturating_mul(1_000_000),
            threads: HashMap::new(),
            unwinder: UnwinderX86_64::new(),
            cache: CacheX86_64::new(),
            modules: Vec::new(),
            modules_refreshed: None,
            scratch: Vec::new(),
            stack_copy: vec![0; STACK_COPY],
            perf_problem: None,
            // SAFETY: getpid has no preconditions.
            pid: unsafe { libc::getpid() },
            to_symbolizer: Some(to_symbolizer),
            symbolizer: Some(symbolizer),
        };
        // Unwind tables are loaded at the first long poll (`unwind`), so a
        // recording whose polls stay short pays nothing for them.
        Ok(capture)
    }

    /// One sampler tick: for each thread in a long poll, the stack where
    /// it sleeps (now) or where it ran (perf samples since the last tick).
    /// `to_trace` converts CLOCK_MONOTONIC nanoseconds to trace time.
    pub(crate) fn tick(&mut self, now: u64, to_trace: i128, threads: &[ThreadView]) {
        self.threads
            .retain(|tid, _| threads.iter().any(|t| t.tid == *tid));
        for view in threads {
            let state = self.threads.entry(view.tid).or_default();
            let long = view.long_poll_since.is_some();
            // Open the counter only for a thread that has run for at least
            // half a sampling period since the previous tick: on a loaded
            // machine many polls outlast the threshold while waiting for a
            // CPU, and perf would sample nothing there (measured: opening
            // for those cost the sampler ~1.5 % of a CPU in the echo bench).
            let ran = if long {
                state.ran_since_last_tick(view.tid)
            } else {
                0
            };
            if !long {
                state.cpu = None;
            }
            if long && ran >= self.period_nanos / 2 && state.perf.is_none() && !state.perf_error {
                match PerfRing::open(view.tid, self.period_nanos) {
                    Ok(ring) => state.perf = Some(ring),
                    Err(err) => {
                        state.perf_error = true;
                        self.perf_problem.get_or_insert(err);
                    }
                }
            }
            let mut samples = Vec::new();
            if let Some(ring) = state.perf.as_mut() {
                ring.set_enabled(long);
                ring.drain(&mut self.scratch, |body| {
                    if let Some(sample) = parse_sample(body) {
                        samples.push(sample);
                    }
                });
            }
            if !long {
                // Close the counter when the poll ends: an event attached
                // to a thread, even disabled, adds work to each of its
                // context switches (BENCHMARKS.md, "Stacks of long polls").
                state.perf = None;
            }
            let had_perf_sample = !samples.is_empty();
            for (time, regs, stack) in samples {
                let timestamp = i128::from(time) + to_trace;
                let Ok(timestamp_nanos) = u64::try_from(timestamp) else {
                    continue;
                };
                // Only samples inside the poll open now: the counter stays
                // enabled until the tick after a poll ends, so samples
                // drained then (or before a newer poll's start) were taken
                // outside any poll (parking, the scheduler).
                if view
                    .long_poll_since
                    .is_none_or(|since| timestamp_nanos < since)
                {
                    continue;
                }
                let base = regs.1;
                let frames = self.unwind(regs.2, regs.1, regs.0, |addr| {
                    let offset = addr.checked_sub(base)? as usize;
                    let bytes = stack.get(offset..offset + 8)?;
                    Some(u64::from_ne_bytes(bytes.try_into().ok()?))
                });
                self.emit(timestamp_nanos, view.worker, StackKind::OnCpu, frames);
            }
            let period = self.period_nanos;
            let state = self.threads.entry(view.tid).or_default();
            let due = state
                .last_capture
                .is_none_or(|at| now.saturating_sub(at) >= period / 4 * 3); // tick jitter
            if !long {
                state.last_sleeping = None;
                state.last_capture = None;
            }
            if long && due {
                if let Some((sp, pc, in_syscall)) = self.copy_sleeping_stack(view.tid) {
                    // The poll may have ended since the peek (the sampler
                    // can be descheduled between the two): then the copy
                    // is of whatever the thread does next, not of the poll.
                    if view.slot.open_poll_start() != view.long_poll_since {
                        continue;
                    }
                    // Not in a system call: preempted (or faulting) while
                    // computing. perf covers a running thread; take this
                    // one only if perf gave nothing this tick.
                    if !in_syscall && had_perf_sample {
                        continue;
                    }
                    let kind = if in_syscall {
                        StackKind::OffCpu
                    } else {
                        StackKind::OnCpu
                    };
                    let state = self.threads.entry(view.tid).or_default();
                    state.last_capture = Some(now);
                    // Still asleep where it was at the previous capture, with
                    // the same stack: the same frames, without unwinding.
                    if let Some(previous) = state.last_sleeping.as_ref().filter(|previous| {
                        previous.sp == sp && previous.pc == pc && previous.copy == self.stack_copy
                    }) {
                        let frames = (previous.addrs.clone(), previous.truncated);
                        self.emit(now, view.worker, kind, frames);
                        continue;
                    }
                    let copy = std::mem::take(&mut self.stack_copy);
                    let read = |addr: u64| {
                        let offset = addr.checked_sub(sp)? as usize;
                        let bytes = copy.get(offset..offset + 8)?;
                        Some(u64::from_ne_bytes(bytes.try_into().ok()?))
                    };
                    // `/proc/<tid>/syscall` has no frame pointer, and the
                    // libc wrapper keeps its caller's: std and code built
                    // with frame pointers need it. Try bp = 0, then the
                    // slots that look like a frame record (saved bp further
                    // up the stack, then a return address into a module).
                    // Candidates go from the innermost up: the first that
                    // unwinds deeper than bp = 0 is the frame record.
                    let mut best = self.unwind(pc, sp, 0, read);
                    for bp in self.frame_record_candidates(sp, &copy) {
                        let frames = self.unwind(pc, sp, bp, read);
                        if frames.0.len() > best.0.len() {
                            best = frames;
                            break;
                        }
                    }
                    let frames = best;
                    self.threads.entry(view.tid).or_default().last_sleeping = Some(SleepingStack {
                        sp,
                        pc,
                        copy: copy.clone(),
                        addrs: frames.0.clone(),
                        truncated: frames.1,
                    });
                    self.stack_copy = copy;
                    self.emit(now, view.worker, kind, frames);
                }
            }
        }
    }

    /// If `tid` is off its CPU, copies its user stack into `stack_copy` and
    /// returns its stack pointer, program counter and whether it sleeps in
    /// a system call (rather than being preempted).
    fn copy_sleeping_stack(&mut self, tid: i32) -> Option<(u64, u64, bool)> {
        let path = format!("/proc/self/task/{tid}/syscall");
        let before = std::fs::read_to_string(&path).ok()?;
        let (sp, pc) = parse_syscall(&before)?;
        let in_syscall = !before.starts_with("-1 ");
        self.stack_copy.resize(STACK_COPY, 0);
        let page = page_size() as u64;
        let mut remote = Vec::new();
        let mut at = sp;
        let end = sp.saturating_add(STACK_COPY as u64);
        while at < end {
            let next = ((at / page) + 1) * page;
            let next = next.min(end);
            remote.push(libc::iovec {
                iov_base: at as *mut libc::c_void,
                iov_len: (next - at) as usize,
            });
            at = next;
        }
        let local = libc::iovec {
            iov_base: self.stack_copy.as_mut_ptr().cast(),
            iov_len: self.stack_copy.len(),
        };
        // SAFETY: `local` is our own buffer of the stated length; the remote
        // ranges are only read by the kernel, which fails cleanly (partial
        // count) on unmapped pages.
        let copied = unsafe {
            libc::process_vm_readv(self.pid, &local, 1, remote.as_ptr(), remote.len() as _, 0)
        };
        if copied <= 0 {
            return None;
        }
        self.stack_copy.truncate(copied as usize);
        // The thread still sleeps in the same place: the copy is consistent.
        let after = std::fs::read_to_string(&path).ok()?;
        (after == before).then_some((sp, pc, in_syscall))
    }

    /// Addresses in `copy` (the stack from `sp`) that look like a frame
    /// record: the saved frame pointer (0, or further up the copied stack)
    /// followed by a return address into a loaded module. At most 8.
    fn frame_record_candidates(&self, sp: u64, copy: &[u8]) -> Vec<u64> {
        let word = |offset: usize| -> Option<u64> {
            Some(u64::from_ne_bytes(
                copy.get(offset..offset + 8)?.try_into().ok()?,
            ))
        };
        let end = sp + copy.len() as u64;
        let mut found = Vec::new();
        let mut offset = 0;
        while offset + 16 <= copy.len() && found.len() < 8 {
            let at = sp + offset as u64;
            if let (Some(saved), Some(ret)) = (word(offset), word(offset + 8)) {
                let saved_ok = saved == 0 || (saved > at && saved < end && saved % 8 == 0);
                if saved_ok
                    && self
                        .modules
                        .iter()
                        .any(|(_, range, _)| range.contains(&ret))
                {
                    found.push(at);
                }
            }
            offset += 8;
        }
        found
    }

    /// Unwinds from `pc`/`sp`/`bp` reading the stack through `read`; the
    /// lookup addresses, innermost first, and whether it stopped early.
    fn unwind(
        &mut self,
        pc: u64,
        sp: u64,
        bp: u64,
        read: impl Fn(u64) -> Option<u64>,
    ) -> (Vec<u64>, bool) {
        if self.modules.is_empty() {
            self.refresh_modules();
        } else if !self.modules.iter().any(|(_, range, _)| range.contains(&pc)) {
            self.maybe_refresh_modules();
        }
        let mut read_stack = |addr: u64| read(addr).ok_or(());
        let mut iter = self.unwinder.iter_frames(
            pc,
            UnwindRegsX86_64::new(pc, sp, bp),
            &mut self.cache,
            &mut read_stack,
        );
        let mut addrs = Vec::new();
        let truncated = loop {
            if addrs.len() >= MAX_FRAMES {
                break true;
            }
            match iter.next() {
                Ok(Some(frame)) => addrs.push(frame.address_for_lookup()),
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        (addrs, truncated)
    }

    /// Hands a captured stack to the symbolizer thread (dropped if its
    /// queue is full: the sampler never waits).
    fn emit(
        &mut self,
        timestamp_nanos: u64,
        worker: u32,
        kind: StackKind,
        (addrs, truncated): (Vec<u64>, bool),
    ) {
        if addrs.is_empty() {
            return;
        }
        if let Some(sender) = &self.to_symbolizer {
            let _ = sender.try_send(RawStack {
                timestamp_nanos,
                worker,
                kind,
                addrs,
                truncated,
            });
        }
    }

    /// Re-reads the module list at most once a second (a `dlopen`ed
    /// library).
    fn maybe_refresh_modules(&mut self) {
        let now = std::time::Instant::now();
        if self
            .modules_refreshed
            .is_some_and(|at| now.duration_since(at).as_secs() < 1)
        {
            return;
        }
        self.refresh_modules();
    }

    fn refresh_modules(&mut self) {
        self.modules_refreshed = Some(std::time::Instant::now());
        for found in loaded_modules() {
            if self
                .modules
                .iter()
                .any(|(path, _, base)| *base == found.base_avma && *path == found.path)
            {
                continue;
            }
            let Some((info, _)) = unwind_info(&found.path) else {
                continue;
            };
            self.unwinder.add_module(Module::new(
                found.path.clone(),
                found.range.clone(),
                found.base_avma,
                info,
            ));
            self.modules
                .push((found.path, found.range, found.base_avma));
        }
    }

    /// Why running polls get no stacks, if they do not.
    #[allow(dead_code)]
    pub(crate) fn perf_problem(&self) -> Option<&str> {
        self.perf_problem.as_deref()
    }
}

impl Drop for StackCapture {
    /// Lets the symbolizer finish the stacks already captured (they reach
    /// the collector before the final flush) and stops it.
    fn drop(&mut self) {
        self.to_symbolizer = None;
        if let Some(thread) = self.symbolizer.take() {
            let _ = thread.join();
        }
    }
}

/// The `pulse-stacks` thread's state: symbolizes raw stacks, interns them
/// in the [`StackRegistry`] and hands their samples to the collector.
struct Symbolizer {
    modules: Vec<LoadedModule>,
    modules_refreshed: Option<std::time::Instant>,
    /// Symbolized frames by lookup address.
    symbols: HashMap<u64, Vec<StackFrame>>,
    /// Interned stacks by their addresses (a blocked poll repeats one).
    stacks: HashMap<(Vec<u64>, bool), pulse_trace::StackId>,
}

impl Symbolizer {
    fn new() -> Self {
        let mut symbolizer = Symbolizer {
            modules: Vec::new(),
            modules_refreshed: None,
            symbols: HashMap::new(),
            stacks: HashMap::new(),
        };
        symbolizer.refresh_modules();
        symbolizer
    }

    fn run(
        mut self,
        from_capture: &std::sync::mpsc::Receiver<RawStack>,
        shared: &crate::record::shared::Shared,
    ) {
        loop {
            let raw = match from_capture.recv_timeout(Duration::from_secs(IDLE_SECS)) {
                Ok(raw) => raw,
                Err(RecvTimeoutError::Timeout) => {
                    // No stack for a while: release the parsed debug
                    // information (addr2line keeps every unit it parsed).
                    self.release();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let key = (raw.addrs, raw.truncated);
            let id = match self.stacks.get(&key) {
                Some(&id) => Some(id),
                None => {
                    let mut frames = Vec::new();
                    for &addr in &key.0 {
                        frames.extend(self.symbolize(addr));
                    }
                    let stack = Stack {
                        frames,
                        truncated: key.1,
                    };
                    let id = StackRegistry::global()
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .intern(&stack);
                    if let Some(id) = id {
                        if self.stacks.len() >= 10_000 {
                            self.stacks.clear();
                        }
                        self.stacks.insert(key, id);
                    }
                    id
                }
            };
            if let Some(stack) = id {
                shared.collector.accept_event(RecordedEvent::StackSample {
                    timestamp_nanos: raw.timestamp_nanos,
                    worker: raw.worker,
                    kind: raw.kind,
                    stack,
                });
            }
        }
    }

    /// The frames of one address: inlined ones first.
    fn symbolize(&mut self, addr: u64) -> Vec<StackFrame> {
        if let Some(frames) = self.symbols.get(&addr) {
            return frames.clone();
        }
        let frames = self.symbolize_uncached(addr);
        if self.symbols.len() > 100_000 {
            self.symbols.clear();
        }
        self.symbols.insert(addr, frames.clone());
        frames
    }

    fn symbolize_uncached(&mut self, addr: u64) -> Vec<StackFrame> {
        let unknown = |module: Option<u32>| StackFrame {
            function: format!("{addr:#x}"),
            file: None,
            line: None,
            inlined: false,
            module,
        };
        if !self.modules.iter().any(|m| m.range.contains(&addr)) {
            self.refresh_modules();
        }
        let Some(module) = self.modules.iter_mut().find(|m| m.range.contains(&addr)) else {
            return vec![unknown(None)];
        };
        let module_id = Some(module.registry_id);
        if module.loader.is_none() {
            module.loader = addr2line::Loader::new(&module.path).ok();
        }
        let Some(loader) = module.loader.as_ref() else {
            return vec![unknown(module_id)];
        };
        let probe = addr - module.base_avma;
        let mut frames = Vec::new();
        if let Ok(mut iter) = loader.find_frames(probe) {
            while let Ok(Some(frame)) = iter.next() {
                let Some(function) = frame.function.as_ref() else {
                    continue;
                };
                let Ok(raw) = function.raw_name() else {
                    continue;
                };
                let location = frame.location.as_ref();
                frames.push(StackFrame {
                    function: demangle(&raw),
                    file: location.and_then(|l| l.file).map(str::to_owned),
                    line: location.and_then(|l| l.line),
                    inlined: true,
                    module: module_id,
                });
            }
        }
        if let Some(last) = frames.last_mut() {
            last.inlined = false;
        } else {
            let function = loader
                .find_symbol(probe)
                .map(demangle)
                .unwrap_or_else(|| format!("{addr:#x}"));
            frames.push(StackFrame {
                function,
                ..unknown(module_id)
            });
        }
        frames
    }

    /// Drops the parsed debug information and the symbol cache.
    fn release(&mut self) {
        for module in &mut self.modules {
            module.loader = None;
        }
        self.symbols = HashMap::new();
        self.stacks = HashMap::new();
    }

    /// Re-reads the module list, at most once a second (a `dlopen`ed
    /// library).
    fn refresh_modules(&mut self) {
        let now = std::time::Instant::now();
        if self
            .modules_refreshed
            .is_some_and(|at| now.duration_since(at).as_secs() < 1)
        {
            return;
        }
        self.modules_refreshed = Some(now);
        for found in loaded_modules() {
            if self
                .modules
                .iter()
                .any(|m| m.base_avma == found.base_avma && m.path == found.path)
            {
                continue;
            }
            let build_id = build_id(&found.path).unwrap_or_default();
            let registry_id = StackRegistry::global()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .module(StackModule {
                    path: found.path.clone(),
                    build_id,
                });
            self.modules.push(LoadedModule {
                path: found.path,
                range: found.range,
                base_avma: found.base_avma,
                registry_id,
                loader: None,
            });
        }
    }
}

/// Whether this process may read its threads' stacks: `/proc/<tid>/syscall`
/// readable and a user-space task-clock `perf_event_open` allowed.
///
/// Probed once per process, on a short-lived thread of its own: a thread
/// that opened a perf event on itself keeps a perf context after closing
/// it, and probing on the flusher thread and the thread that starts the
/// recording (as before) measurably slowed a server whose workers switch
/// often (RESP bench: 1.042x against 0.984x CPU per request without the
/// probe; 1.2-1.5x against 1.02-1.06x under `perf record`; BENCHMARKS.md,
/// "Fourth pass"). The answer does not change while the process runs.
pub(crate) fn probe() -> Result<(), String> {
    static PROBED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBED
        .get_or_init(|| {
            std::thread::Builder::new()
                .name("pulse-probe".to_owned())
                .spawn(probe_this_thread)
                .map_err(|err| format!("could not start a thread to probe perf events ({err})"))?
                .join()
                .unwrap_or_else(|_| Err("the perf event probe panicked".to_owned()))
        })
        .clone()
}

fn probe_this_thread() -> Result<(), String> {
    let tid = crate::record::clock::current_tid().ok_or("no thread id")?;
    std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .map_err(|err| format!("/proc/self/task/<tid>/syscall is not readable ({err})"))?;
    PerfRing::open(tid, 1_000_000).map(drop)
}

/// A demangled Rust (or C) name without the trailing hash.
fn demangle(raw: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(raw))
}

/// A perf sample: time (CLOCK_MONOTONIC), `(bp, sp, ip)`, stack bytes
/// from `sp`.
type PerfSample = (u64, (u64, u64, u64), Vec<u8>);

/// The sample of a body laid out as TIME | REGS_USER (bp, sp, ip) |
/// STACK_USER.
fn parse_sample(body: &[u8]) -> Option<PerfSample> {
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_ne_bytes(body.get(at..at + 8)?.try_into().ok()?))
    };
    let time = word(0)?;
    let abi = word(8)?;
    if abi == 0 {
        return None;
    }
    let regs = (word(16)?, word(24)?, word(32)?);
    let size = word(40)? as usize;
    let data = body.get(48..48 + size)?;
    let dyn_size = word(48 + size).map_or(size, |d| (d as usize).min(size));
    Some((time, regs, data[..dyn_size].to_vec()))
}

/// The user stack pointer and program counter of a thread asleep in the
/// kernel, from its `/proc/.../syscall` line (`None` while it runs).
fn parse_syscall(line: &str) -> Option<(u64, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.first().is_none_or(|f| *f == "running") || fields.len() < 3 {
        return None;
    }
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let sp = hex(fields[fields.len() - 2])?;
    let pc = hex(fields[fields.len() - 1])?;
    Some((sp, pc))
}

struct FoundModule {
    path: String,
    range: std::ops::Range<u64>,
    base_avma: u64,
}

/// The loaded ELF objects (`dl_iterate_phdr`), without the vDSO.
fn loaded_modules() -> Vec<FoundModule> {
    unsafe extern "C" fn callback(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid `info` for the duration of the
        // call, and `data` is the `Vec` passed below.
        let (info, found) = unsafe { (&*info, &mut *data.cast::<Vec<FoundModule>>()) };
        let name = if info.dlpi_name.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null `dlpi_name` is a NUL-terminated string.
            unsafe { CStr::from_ptr(info.dlpi_name) }
                .to_string_lossy()
                .into_owned()
        };
        let path = if name.is_empty() {
            if !found.is_empty() {
                return 0; // the vDSO
            }
            match std::fs::read_link("/proc/self/exe") {
                Ok(p) => p.to_string_lossy().into_owned(),
                Err(_) => return 0,
            }
        } else {
            name
        };
        let mut low = u64::MAX;
        let mut high = 0;
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: `dlpi_phdr` points to `dlpi_phnum` headers.
            let phdr = unsafe { &*info.dlpi_phdr.add(i) };
            if phdr.p_type == libc::PT_LOAD {
                let start = info.dlpi_addr + phdr.p_vaddr;
                low = low.min(start);
                high = high.max(start + phdr.p_memsz);
            }
        }
        if low < high && std::path::Path::new(&path).is_file() {
            found.push(FoundModule {
                path,
                range: low..high,
                base_avma: info.dlpi_addr,
            });
        }
        0
    }
    let mut found: Vec<FoundModule> = Vec::new();
    // SAFETY: the callback only reads what the loader hands it and writes
    // to `found`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(callback), (&mut found as *mut Vec<FoundModule>).cast()) };
    found
}

/// The GNU build-id of the ELF file at `path`.
fn build_id(path: &str) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: as in `unwind_info`.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let object = object::File::parse(&*map).ok()?;
    object.build_id().ok().flatten().map(<[u8]>::to_vec)
}

/// framehop's unwind sections of the ELF file at `path`, and its build-id.
fn unwind_info(path: &str) -> Option<(ExplicitModuleSectionInfo<Vec<u8>>, Vec<u8>)> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: the mapping is read-only and dropped before returning; a
    // module file replaced on disk meanwhile could fault, as for any
    // debugger reading loaded binaries.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let object = object::File::parse(&*map).ok()?;
    let range = |name: &str| {
        object
            .section_by_name(name)
            .map(|s| s.address()..s.address() + s.size())
    };
    let data = |name: &str| {
        object
            .section_by_name(name)
            .and_then(|s| s.data().ok())
            .map(<[u8]>::to_vec)
    };
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: range(".text"),
        got_svma: range(".got"),
        eh_frame_svma: range(".eh_frame"),
        eh_frame: data(".eh_frame"),
        eh_frame_hdr_svma: range(".eh_frame_hdr"),
        eh_frame_hdr: data(".eh_frame_hdr"),
        ..Default::default()
    };
    let build_id = object
        .build_id()
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_vec();
    Some((info, build_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_lines_parse() {
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(
            parse_syscall("230 0x1 0x0 0x7ffc 0x0 0x0 0x0 0x7ffd0010 0x7f00aa\n"),
            Some((0x7ffd0010, 0x7f00aa))
        );
        assert_eq!(
            parse_syscall("-1 0x7ffd0010 0x7f00aa\n"),
            Some((0x7ffd0010, 0x7f00aa))
        );
    }
}
