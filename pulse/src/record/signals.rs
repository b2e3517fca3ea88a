//! Termination signals and panics: write the last events before the
//! process ends, then let the program's own behaviour happen.
//!
//! The signal handler is async-signal-safe: it reads its own atomics,
//! calls `sigaction` to look at the current disposition, writes two bytes
//! to a pipe, and (only when the signal's default action is about to end
//! the process) waits on a second pipe with `poll`, bounded by
//! [`SEAL_TIMEOUT`]. A plain thread (`pulse-signals`) reads the pipe and
//! asks each recording's flusher to write (see [`Control`]).
//!
//! What happens after the flush is what would have happened without
//! pulse:
//!
//! - The program handles the signal itself with a handler installed after
//!   pulse's (`tokio::signal`, signal-hook: they chain to the handler they
//!   replace): pulse asks for a flush and returns; the program's handler
//!   decides. pulse's handler is no longer the process's, which is how it
//!   knows.
//! - A handler installed before pulse's: pulse flushes, waits for it, and
//!   calls that handler.
//! - No handler (the default action): pulse writes everything and the end
//!   record, restores the default action and raises the signal again, so
//!   the process ends by that signal with the same exit status.
//!
//! Signals the process ignores (`SIG_IGN`, e.g. SIGHUP under `nohup`) are
//! left alone. Handlers are installed once per process and stay; with no
//! recording running they pass the signal on unchanged.
//!
//! Signals are handled on Linux only (the pipe and `errno` calls are
//! Linux's); elsewhere only panics flush and dump.

#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use crate::record::control::{Control, Request};
use pulse_trace::EndReason;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// The signals handled by default under `#[pulse::main]`: those whose
/// default action ends the process and that service managers send.
#[cfg(target_os = "linux")]
pub(crate) const TERMINATION_SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Longest a terminating signal waits for the trace to be written.
pub(crate) const SEAL_TIMEOUT: Duration = Duration::from_secs(3);

/// What a recording asked for when it registered.
#[derive(Debug)]
struct Entry {
    control: Weak<Control>,
    /// This recording dumps its flight recorder on this signal.
    dump_signal: Option<i32>,
    /// This recording flushes on termination signals and panics.
    termination: bool,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// Recordings registered (read by the handler).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

const MAX_SIGNAL: usize = 65;
/// Role of each signal: bit 0 termination, bit 1 dump.
static ROLE: [AtomicU8; MAX_SIGNAL] = [const { AtomicU8::new(0) }; MAX_SIGNAL];
const ROLE_TERMINATE: u8 = 1;
const ROLE_DUMP: u8 = 2;
/// The disposition pulse's handler replaced, per signal.
static PREVIOUS_HANDLER: [AtomicUsize; MAX_SIGNAL] = [const { AtomicUsize::new(0) }; MAX_SIGNAL];
static PREVIOUS_FLAGS: [AtomicI32; MAX_SIGNAL] = [const { AtomicI32::new(0) }; MAX_SIGNAL];
static INSTALLED: [AtomicBool; MAX_SIGNAL] = [const { AtomicBool::new(false) }; MAX_SIGNAL];
/// Write end of the wake pipe, read end of the done pipe (-1: none).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
static DONE_FD: AtomicI32 = AtomicI32::new(-1);

/// Message kinds on the wake pipe (second byte; the first is the signal).
const KIND_FLUSH: u8 = 0;
const KIND_FLUSH_ACK: u8 = 1;
const KIND_SEAL_ACK: u8 = 2;
const KIND_DUMP: u8 = 3;

/// Registers a recording: its flusher is asked to write on termination
/// signals (when `termination` is set) and to dump on `dump_signal`.
/// Installs the handlers (once per process and signal) and the
/// `pulse-signals` thread. Returns why a signal could not be handled, if
/// one could not.
pub(crate) fn register(
    control: &Arc<Control>,
    termination: bool,
    dump_signal: Option<i32>,
) -> Vec<String> {
    let mut problems = Vec::new();
    #[cfg(target_os = "linux")]
    {
        if let Err(err) = start_thread() {
            problems.push(format!("cannot start the pulse-signals thread: {err}"));
            return problems;
        }
        let mut dump_signal = dump_signal;
        if termination {
            for signal in TERMINATION_SIGNALS {
                if let Err(problem) = install(signal, ROLE_TERMINATE) {
                    problems.push(problem);
                }
            }
        }
        if let Some(signal) = dump_signal {
            if let Err(problem) = install(signal, ROLE_DUMP) {
                problems.push(problem);
                dump_signal = None;
            }
        }
        let mut registry = lock_registry();
        registry.retain(|entry| entry.control.strong_count() > 0);
        registry.push(Entry {
            control: Arc::downgrade(control),
            dump_signal,
            termination,
        });
        ACTIVE.store(registry.len(), Ordering::SeqCst);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (control, termination, dump_signal);
    problems
}

/// Forgets a recording (its guard is ending it).
pub(crate) fn unregister(control: &Arc<Control>) {
    let mut registry = lock_registry();
    registry.retain(|entry| {
        entry.control.strong_count() > 0 && !Weak::ptr_eq(&entry.control, &Arc::downgrade(control))
    });
    ACTIVE.store(registry.len(), Ordering::SeqCst);
}

fn lock_registry() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registered recordings, for the signal thread and the panic hook:
/// each one's dump signal, and whether it flushes on termination.
fn recordings() -> Vec<(Arc<Control>, Option<i32>, bool)> {
    lock_registry()
        .iter()
        .filter_map(|entry| {
            Some((
                entry.control.upgrade()?,
                entry.dump_signal,
                entry.termination,
            ))
        })
        .collect()
}

/// Blocks the signals pulse handles on the calling thread (the flusher
/// and the signal thread), so that a handler waiting for the flusher never
/// runs on the flusher.
pub(crate) fn block_on_this_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain libc calls on a local, initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in 1..MAX_SIGNAL as i32 {
            if INSTALLED[signal as usize].load(Ordering::Relaxed)
                || TERMINATION_SIGNALS.contains(&signal)
                || signal == libc::SIGUSR2
            {
                libc::sigaddset(&mut set, signal);
            }
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

#[cfg(target_os = "linux")]
fn start_thread() -> std::io::Result<()> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let mut wake = [0i32; 2];
            let mut done = [0i32; 2];
            // SAFETY: pipe2 fills the arrays it is given.
            unsafe {
                if libc::pipe2(wake.as_mut_ptr(), libc::O_CLOEXEC) != 0
                    || libc::pipe2(done.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) != 0
                {
                    return Err(std::io::Error::last_os_error().to_string());
                }
                // The handler must never block on a full pipe.
                let flags = libc::fcntl(wake[1], libc::F_GETFL);
                libc::fcntl(wake[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
            let (wake_read, done_write) = (wake[0], done[1]);
            std::thread::Builder::new()
                .name("pulse-signals".to_owned())
                .spawn(move || {
                    block_on_this_thread();
                    serve(wake_read, done_write)
                })
                .map_err(|err| err.to_string())?;
            WAKE_FD.store(wake[1], Ordering::SeqCst);
            DONE_FD.store(done[0], Ordering::SeqCst);
            Ok(())
        })
        .clone()
        .map_err(std::io::Error::other)
}

/// The `pulse-signals` thread: turns bytes from the handler into requests.
#[cfg(target_os = "linux")]
fn serve(wake_read: i32, done_write: i32) {
    let mut message = [0u8; 2];
    loop {
        // SAFETY: reads into a local buffer of the given length.
        let read = unsafe { libc::read(wake_read, message.as_mut_ptr().cast(), 2) };
        if read != 2 {
            if read < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            }
            if read == 0 {
                return;
            }
            continue;
        }
        let [signal, kind] = message;
        let signal = i32::from(signal);
        let mut tickets = Vec::new();
        for (control, dump_signal, termination) in recordings() {
            if !termination && kind != KIND_DUMP {
                continue;
            }
            let request = match kind {
                KIND_SEAL_ACK => Request::Seal(EndReason::Signal(signal as u32)),
                KIND_DUMP if dump_signal == Some(signal) => {
                    match control.auto_dump_path("signal") {
                        Some(path) => Request::Dump(path),
                        None => continue,
                    }
                }
                KIND_DUMP => continue,
                _ => Request::Flush,
            };
            tickets.push((control.request(request), control));
        }
        if kind == KIND_DUMP {
            for (ticket, control) in tickets {
                control.report_dump(control.wait(ticket, Duration::from_secs(60)));
            }
            continue;
        }
        if kind == KIND_SEAL_ACK || kind == KIND_FLUSH_ACK {
            for (ticket, control) in &tickets {
                control.wait(*ticket, SEAL_TIMEOUT);
            }
            // SAFETY: writes one byte from a local.
            unsafe { libc::write(done_write, [1u8].as_ptr().cast(), 1) };
        }
    }
}

/// Installs pulse's handler for `signal` (once), remembering the
/// disposition it replaces.
#[cfg(target_os = "linux")]
fn install(signal: i32, role: u8) -> Result<(), String> {
    let index = usize::try_from(signal)
        .ok()
        .filter(|&i| i > 0 && i < MAX_SIGNAL)
        .ok_or_else(|| format!("signal {signal} is out of range (1..=64)"))?;
    static LOCK: Mutex<()> = Mutex::new(());
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if INSTALLED[index].load(Ordering::SeqCst) {
        ROLE[index].fetch_or(role, Ordering::SeqCst);
        return Ok(());
    }
    // SAFETY: sigaction with a null new action only reads the current one.
    let current = unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
            return Err(format!(
                "cannot read signal {signal}'s handler: {}",
                std::io::Error::last_os_error()
            ));
        }
        current
    };
    if current.sa_sigaction == libc::SIG_IGN {
        return Err(format!(
            "signal {signal} is ignored by this process; left alone"
        ));
    }
    if role == ROLE_DUMP && current.sa_sigaction != libc::SIG_DFL {
        return Err(format!(
            "signal {signal} already has a handler in this program; no dumps on it \
             (choose another with dump_signal)"
        ));
    }
    PREVIOUS_HANDLER[index].store(current.sa_sigaction, Ordering::SeqCst);
    PREVIOUS_FLAGS[index].store(current.sa_flags, Ordering::SeqCst);
    ROLE[index].store(role, Ordering::SeqCst);
    // SAFETY: installs a handler that only does async-signal-safe work.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(format!(
                "cannot handle signal {signal}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    INSTALLED[index].store(true, Ordering::SeqCst);
    Ok(())
}

/// Tells the signal thread what to do. Async-signal-safe.
#[cfg(target_os = "linux")]
fn wake(signal: i32, kind: u8) -> bool {
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd < 0 {
        return false;
    }
    let message = [signal as u8, kind];
    // SAFETY: write(2) of a local buffer; async-signal-safe.
    unsafe { libc::write(fd, message.as_ptr().cast(), 2) == 2 }
}

/// Waits (bounded) for the signal thread's acknowledgement.
/// Async-signal-safe: `poll` and `read` only.
#[cfg(target_os = "linux")]
fn wait_done() {
    let fd = DONE_FD.load(Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout = SEAL_TIMEOUT.as_millis() as i32;
    // SAFETY: poll and read on our own descriptor with local buffers.
    unsafe {
        loop {
            let ready = libc::poll(&mut pollfd, 1, timeout);
            if ready < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            break;
        }
        let mut byte = 0u8;
        libc::read(fd, (&mut byte as *mut u8).cast(), 1);
    }
}

#[cfg(target_os = "linux")]
extern "C" fn handler(signal: i32, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: errno is thread-local; restoring it keeps the interrupted
    // code's view unchanged.
    let saved_errno = unsafe { *libc::__errno_location() };
    let index = signal as usize;
    let role = ROLE.get(index).map_or(0, |r| r.load(Ordering::SeqCst));
    let active = ACTIVE.load(Ordering::SeqCst) > 0;
    // Is pulse's handler still the process's? If not, a handler installed
    // later (tokio::signal, signal-hook) ran first and chained to us: the
    // program handles this signal itself.
    // SAFETY: sigaction reading the current action; async-signal-safe.
    let ours = unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == handler as *const () as usize
    };
    let previous = PREVIOUS_HANDLER
        .get(index)
        .map_or(libc::SIG_DFL, |p| p.load(Ordering::SeqCst));
    if role & ROLE_DUMP != 0 {
        if ours && active {
            wake(signal, KIND_DUMP);
        }
        // SAFETY: restoring errno, see above.
        unsafe { *libc::__errno_location() = saved_errno };
        return;
    }
    if !ours {
        if active {
            wake(signal, KIND_FLUSH);
        }
    } else if previous == libc::SIG_DFL {
        if active && wake(signal, KIND_SEAL_ACK) {
            wait_done();
        }
        // The default action, as without pulse: the signal stays blocked
        // until this handler returns, then ends the process.
        // SAFETY: async-signal-safe calls on a zeroed action.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
            libc::raise(signal);
        }
    } else if previous != libc::SIG_IGN {
        if active && wake(signal, KIND_FLUSH_ACK) {
            wait_done();
        }
        let flags = PREVIOUS_FLAGS
            .get(index)
            .map_or(0, |f| f.load(Ordering::SeqCst));
        // SAFETY: `previous` is the handler the process had installed,
        // called the way its flags say.
        unsafe {
            *libc::__errno_location() = saved_errno;
            if flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(previous);
                f(signal, info, context);
            } else {
                let f: extern "C" fn(i32) = std::mem::transmute(previous);
                f(signal);
            }
        }
    }
    // SAFETY: restoring errno, see above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Installs (once) a panic hook that writes the last events before a
/// `panic = "abort"` panic ends the process, asks for a flush on other
/// panics, dumps flight recorders, then calls the previous hook.
pub(crate) fn install_panic_hook() {
    static INSTALLED_HOOK: OnceLock<()> = OnceLock::new();
    INSTALLED_HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            on_panic();
        }));
    });
}

fn on_panic() {
    // A panic on pulse's own threads (a panicking writer is caught and
    // reported by the flusher) must not wait for those threads.
    let current = std::thread::current();
    if current
        .name()
        .is_some_and(|name| name.starts_with("pulse-"))
    {
        return;
    }
    let aborting = cfg!(panic = "abort");
    let mut tickets = Vec::new();
    for (control, _, termination) in recordings() {
        if let Some(path) = control.auto_dump_path("panic") {
            tickets.push((control.request(Request::Dump(path)), control.clone(), true));
        }
        if !termination {
            continue;
        }
        let request = if aborting {
            Request::Seal(EndReason::Panic)
        } else {
            Request::Flush
        };
        tickets.push((control.request(request), control, false));
    }
    if aborting {
        for (ticket, control, dump) in tickets {
            let outcome = control.wait(ticket, SEAL_TIMEOUT);
            if dump {
                control.report_dump(outcome);
            }
        }
    } else {
        // Unwinding: the program may go on, or end through the guard's
        // drop; the dump's outcome is reported from another thread.
        for (ticket, control, dump) in tickets {
            if dump {
                std::thread::Builder::new()
                    .name("pulse-dump".to_owned())
                    .spawn(move || {
                        control.report_dump(control.wait(ticket, Duration::from_secs(60)))
                    })
                    .ok();
            }
        }
    }
}
