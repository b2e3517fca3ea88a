//! [`Control`]: requests other threads make of the flusher thread (write
//! the end record before the process dies, dump the flight recorder) and
//! waiting for their completion.
//!
//! Signal handlers never touch it: they only write a byte to a pipe
//! (`signals.rs`), and a plain thread turns that byte into a request here.

use crate::record::shared::Shared;
use pulse_trace::EndReason;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Something only the flusher thread can do, since it owns the writer.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    /// Write everything recorded so far, then the end-of-trace record:
    /// the process is about to end (a signal's default action, an aborting
    /// panic).
    Seal(EndReason),
    /// Write everything recorded so far (a signal the program handles
    /// itself: it may go on, or shut down in its own way).
    Flush,
    /// Write the flight recorder's window to a trace at this path.
    Dump(PathBuf),
}

/// What a completed request produced.
pub(crate) type Outcome = Result<Option<PathBuf>, String>;

#[derive(Debug, Default)]
struct State {
    pending: Vec<(u64, Request)>,
    next_ticket: u64,
    /// Every ticket up to this one is done.
    completed: u64,
    /// Outcomes of dumps, until their requester takes them.
    outcomes: Vec<(u64, Outcome)>,
    /// Dump tickets: done when their outcome arrives (dumps are written
    /// off the flusher thread, so they finish out of order).
    dumps_waiting: Vec<u64>,
    /// The flusher has exited: requests are answered at once.
    closed: bool,
    /// Set by the guard before it stops the flusher.
    threads_still_recording: u32,
}

/// The queue of [`Request`]s for one recording's flusher.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) shared: Arc<Shared>,
    state: Mutex<State>,
    done: Condvar,
    /// Where automatic dumps go (flight recorder only), and their limits.
    dumps: Option<Mutex<AutoDumps>>,
}

/// Names and rate limits of dumps pulse starts by itself (signal, panic,
/// `dump_on` triggers).
#[derive(Debug)]
pub(crate) struct AutoDumps {
    /// Dumps are named `<stem>-<unix seconds>-<n>.<ext>` next to this.
    pub(crate) base: PathBuf,
    pub(crate) count: u64,
    /// Least time between two automatic dumps.
    pub(crate) cooldown: Duration,
    /// Most automatic dumps in any hour.
    pub(crate) max_per_hour: u32,
    /// When recent automatic dumps started, per trigger (`poll`,
    /// `descheduled`, `panic`): each has its own cooldown and hourly cap.
    pub(crate) recent: std::collections::HashMap<String, std::collections::VecDeque<Instant>>,
    /// Whether to print the dump's path on stderr.
    pub(crate) quiet: bool,
}

impl AutoDumps {
    /// The names and limits of automatic dumps `config` asks for (only a
    /// memory writer dumps).
    pub(crate) fn from_config(config: &crate::config::Config) -> Option<AutoDumps> {
        let crate::config::WriterConfig::Memory { path, .. } = &config.writer else {
            return None;
        };
        Some(AutoDumps {
            base: path.clone(),
            count: 0,
            cooldown: Duration::from_millis(config.dump_cooldown_ms),
            max_per_hour: config.dump_max_per_hour,
            recent: Default::default(),
            quiet: config.quiet,
        })
    }
}

impl Control {
    pub(crate) fn new(shared: Arc<Shared>, dumps: Option<AutoDumps>) -> Control {
        Control {
            shared,
            dumps: dumps.map(Mutex::new),
            state: Mutex::new(State {
                next_ticket: 1,
                ..State::default()
            }),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `request` and wakes the flusher; returns its ticket.
    pub(crate) fn request(&self, request: Request) -> u64 {
        let ticket = {
            let mut state = self.lock();
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            if state.closed {
                state.completed = ticket;
                if matches!(request, Request::Dump(_)) {
                    let outcome = Err("the recording has ended".to_owned());
                    state.outcomes.push((ticket, outcome));
                }
            } else {
                if matches!(request, Request::Dump(_)) {
                    state.dumps_waiting.push(ticket);
                }
                state.pending.push((ticket, request));
            }
            ticket
        };
        self.shared.collector.request_flush();
        ticket
    }

    /// Waits until `ticket` is done or `timeout` passes; returns its
    /// outcome (`None` on timeout).
    pub(crate) fn wait(&self, ticket: u64, timeout: Duration) -> Option<Outcome> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        let done = |state: &State| {
            if state.dumps_waiting.contains(&ticket) {
                state.outcomes.iter().any(|(t, _)| *t == ticket)
            } else {
                state.completed >= ticket
            }
        };
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = self
                .done
                .wait_timeout(state, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        state.dumps_waiting.retain(|t| *t != ticket);
        let outcome = match state.outcomes.iter().position(|(t, _)| *t == ticket) {
            Some(index) => state.outcomes.swap_remove(index).1,
            None => Ok(None),
        };
        Some(outcome)
    }

    /// The requests queued so far (flusher side).
    pub(crate) fn take(&self) -> Vec<(u64, Request)> {
        std::mem::take(&mut self.lock().pending)
    }

    /// Marks `ticket` done (flusher side): a dump by its outcome, any
    /// other request and every one before it by the ticket.
    pub(crate) fn complete(&self, ticket: u64, outcome: Option<Outcome>) {
        let mut state = self.lock();
        match outcome {
            Some(outcome) => state.outcomes.push((ticket, outcome)),
            None => state.completed = state.completed.max(ticket),
        }
        drop(state);
        self.done.notify_all();
    }

    /// The flusher has exited: answers what is still queued.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let pending = std::mem::take(&mut state.pending);
        for (ticket, request) in pending {
            state.completed = state.completed.max(ticket);
            if matches!(request, Request::Dump(_)) {
                let outcome = Err("the recording has ended".to_owned());
                state.outcomes.push((ticket, outcome));
            }
        }
        drop(state);
        self.done.notify_all();
    }

    /// Whether this recording keeps a window to dump.
    pub(crate) fn dumps(&self) -> bool {
        self.dumps.is_some()
    }

    /// The path for a dump pulse starts by itself because of `trigger`, or
    /// `None` when this recording keeps no window or the cooldown or the
    /// hourly cap says not now (panics and `dump_on` triggers; a signal is
    /// the user asking, and is not limited).
    pub(crate) fn auto_dump_path(&self, trigger: &str) -> Option<PathBuf> {
        let mut dumps = self
            .dumps
            .as_ref()?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if trigger != "signal" {
            let (cooldown, max_per_hour) = (dumps.cooldown, dumps.max_per_hour as usize);
            let recent = dumps.recent.entry(trigger.to_owned()).or_default();
            while recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3600))
            {
                recent.pop_front();
            }
            if recent.len() >= max_per_hour {
                return None;
            }
            if recent
                .back()
                .is_some_and(|t| now.duration_since(*t) < cooldown)
            {
                return None;
            }
            recent.push_back(now);
        }
        dumps.count += 1;
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let stem = dumps
            .base
            .file_stem()
            .map_or("pulse-dump".into(), |s| s.to_string_lossy().into_owned());
        let ext = dumps
            .base
            .extension()
            .map_or("bin".into(), |s| s.to_string_lossy().into_owned());
        let name = format!("{stem}-{trigger}-{unix}-{}.{ext}", dumps.count);
        let path = dumps.base.with_file_name(name);
        Some(std::path::absolute(&path).unwrap_or(path))
    }

    /// One line on stderr about a dump pulse started by itself.
    pub(crate) fn report_dump(&self, outcome: Option<Outcome>) {
        let quiet = self
            .dumps
            .as_ref()
            .is_some_and(|d| d.lock().unwrap_or_else(|e| e.into_inner()).quiet);
        use std::io::Write;
        let _ = match outcome {
            Some(Ok(Some(path))) if !quiet => writeln!(
                std::io::stderr(),
                "pulse: flight recorder dumped to {}",
                path.display()
            ),
            Some(Err(message)) => writeln!(
                std::io::stderr(),
                "pulse: flight recorder dump failed (recording goes on): {message}"
            ),
            _ => Ok(()),
        };
    }

    /// Whether dump messages on stderr are silenced (`quiet`).
    pub(crate) fn dumps_quietly(&self) -> bool {
        self.dumps
            .as_ref()
            .is_some_and(|d| d.lock().unwrap_or_else(|e| e.into_inner()).quiet)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn set_threads_still_recording(&self, threads: u32) {
        self.lock().threads_still_recording = threads;
    }

    pub(crate) fn threads_still_recording(&self) -> u32 {
        self.lock().threads_still_recording
    }
}
