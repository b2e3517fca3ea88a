//! The per-thread event buffer.
//!
//! One thread (the owner) appends events with a plain store and a release
//! store of the length: no lock, no atomic read-modify-write, no allocation.
//! When the buffer is full the owner hands it to the [`CentralCollector`]
//! whole, by pointer, and continues in a recycled empty buffer (no copy of
//! the events). Other threads can also copy out what the owner has
//! published: the flusher does so on every tick (so a worker that parks or
//! stays in a long poll does not hold its events back) and at shutdown (so
//! events of threads that are still alive are not lost).
//!
//! Synchronisation: the owner writes slot `len` and then publishes `len + 1`
//! (release). Copying out happens under `drain`, a mutex that also guards
//! `consumed`, the index up to which events were already copied. Only the
//! owner resets `len` to 0 or swaps the buffer, and only while holding
//! `drain`; between resets it writes only at indices `>= len`, which no
//! reader touches, since readers copy `consumed..len` as published
//! (acquire) while holding the mutex.

use crate::record::collector::CentralCollector;
use pulse_trace::RecordedEvent;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Worker index stored in [`ThreadSlot::worker`] before the thread has
/// recorded a worker event.
pub(crate) const NO_WORKER: u32 = u32::MAX;

/// A fixed-capacity event buffer owned by one thread.
pub(crate) struct ThreadSlot {
    /// The buffer the owner writes into: a `Vec` whose own length stays 0
    /// (the events live in its spare capacity, published by `len`).
    /// Replaced only by the owner, holding `drain`.
    buffer: UnsafeCell<Vec<RecordedEvent>>,
    capacity: usize,
    /// Published length; written only by the owner.
    len: AtomicUsize,
    /// Index up to which events were copied out by a non-owner.
    drain: Mutex<usize>,
    /// The owner's kernel thread id, for the sampler's per-thread readings.
    pub(crate) tid: Option<i32>,
    /// The worker index the owner last recorded for (`NO_WORKER` if none).
    pub(crate) worker: AtomicU32,
}

// SAFETY: the buffer's cells are written only by the owning thread at
// indices no other thread reads, and the `Vec` itself is replaced only by
// the owner under `drain` (see the module documentation); every
// cross-thread read is of a published, initialised, `Copy` event under the
// `drain` mutex.
unsafe impl Sync for ThreadSlot {}
// SAFETY: `RecordedEvent` is `Send`; the raw buffer is owned by the slot.
unsafe impl Send for ThreadSlot {}

impl std::fmt::Debug for ThreadSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadSlot")
            .field("capacity", &self.capacity)
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("tid", &self.tid)
            .finish()
    }
}

/// An empty buffer of `capacity` events whose pages are already written,
/// so the first pushes into it take no page faults inside a measured poll.
pub(crate) fn new_buffer(capacity: usize) -> Vec<RecordedEvent> {
    let mut buffer: Vec<RecordedEvent> = Vec::with_capacity(capacity);
    // SAFETY: writing zero bytes into the spare capacity; the length stays 0.
    unsafe { buffer.as_mut_ptr().write_bytes(0, capacity) };
    buffer
}

impl ThreadSlot {
    pub(crate) fn new(capacity: usize, tid: Option<i32>) -> Self {
        let capacity = capacity.max(1);
        ThreadSlot {
            buffer: UnsafeCell::new(new_buffer(capacity)),
            capacity,
            len: AtomicUsize::new(0),
            drain: Mutex::new(0),
            tid,
            worker: AtomicU32::new(NO_WORKER),
        }
    }

    /// Appends an event and returns the room left. Must only be called by
    /// the owning thread.
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it, and only with room
    /// left (it must call `hand_over` once a push leaves none).
    #[inline]
    pub(crate) unsafe fn push(&self, event: RecordedEvent) -> usize {
        let len = self.len.load(Ordering::Relaxed);
        debug_assert!(len < self.capacity);
        // SAFETY: `len < capacity` (the caller handed over when full); the
        // owner is the only writer of the buffer and of the `Vec` (which it
        // replaces only under `drain`, not now), and no reader reads at or
        // beyond the published length (module documentation). The pointer
        // comes from the `Vec` through the `UnsafeCell` without creating a
        // mutable reference to it.
        unsafe {
            let buffer = &*self.buffer.get();
            buffer.as_ptr().cast_mut().add(len).write(event);
        }
        self.len.store(len + 1, Ordering::Release);
        self.capacity - (len + 1)
    }

    /// Events published and not yet copied out.
    pub(crate) fn pending(&self) -> usize {
        let consumed = *self.drain.lock().unwrap_or_else(|e| e.into_inner());
        self.len.load(Ordering::Acquire).saturating_sub(consumed)
    }

    /// The timestamp of the last published event if it is a PollStart: the
    /// owner is inside that poll. Read-only; any thread may call it (the
    /// stack sampler, `record/stacks.rs`).
    pub(crate) fn open_poll_start(&self) -> Option<u64> {
        let _consumed = self.drain.lock().unwrap_or_else(|e| e.into_inner());
        let len = self.len.load(Ordering::Acquire);
        match self.published(len.checked_sub(1)?, len).first()? {
            RecordedEvent::PollStart {
                timestamp_nanos, ..
            } => Some(*timestamp_nanos),
            _ => None,
        }
    }

    /// Hands the buffer to the collector by pointer and continues in an
    /// empty recycled one (a full buffer's normal path). Must only be
    /// called by the owning thread.
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it.
    pub(crate) unsafe fn hand_over(&self, collector: &CentralCollector) {
        let mut consumed = self.drain.lock().unwrap_or_else(|e| e.into_inner());
        let len = self.len.load(Ordering::Relaxed);
        // SAFETY: the owner holds `drain`, so no reader looks at the `Vec`.
        let buffer = unsafe { &mut *self.buffer.get() };
        let mut full = std::mem::take(buffer);
        // SAFETY: cells `..len` are initialised (published by the owner).
        unsafe { full.set_len(len) };
        *buffer = collector.hand_over(full, *consumed, self.capacity);
        *consumed = 0;
        self.len.store(0, Ordering::Release);
    }

    /// Hands over a copy of everything not yet copied out and empties the
    /// buffer in place (thread exit). Must only be called by the owner.
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it.
    pub(crate) unsafe fn flush_owned(&self, collector: &CentralCollector) {
        let mut consumed = self.drain.lock().unwrap_or_else(|e| e.into_inner());
        let len = self.len.load(Ordering::Relaxed);
        collector.accept(self.published(*consumed, len));
        *consumed = 0;
        self.len.store(0, Ordering::Release);
    }

    /// Copies what the owner has published since the last copy to the
    /// collector, leaving the owner's buffer in place. Any thread may call it.
    pub(crate) fn copy_out(&self, collector: &CentralCollector) {
        let mut consumed = self.drain.lock().unwrap_or_else(|e| e.into_inner());
        let len = self.len.load(Ordering::Acquire);
        if len > *consumed {
            collector.accept(self.published(*consumed, len));
            *consumed = len;
        }
    }

    /// The published events `from..to`. The caller holds `drain`.
    fn published(&self, from: usize, to: usize) -> &[RecordedEvent] {
        debug_assert!(from <= to && to <= self.capacity);
        // SAFETY: the `Vec` is only replaced under `drain`, which the caller
        // holds; slots below the published length are initialised and the
        // owner does not write them until it resets the length, which also
        // needs `drain`.
        unsafe {
            let buffer = &*self.buffer.get();
            std::slice::from_raw_parts(buffer.as_ptr().add(from), to - from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ev(i: u64) -> RecordedEvent {
        RecordedEvent::PollEnd {
            timestamp_nanos: i,
            worker: 0,
            local_queue: 0,
        }
    }

    fn drained(c: &CentralCollector) -> Vec<u64> {
        let mut out = Vec::new();
        c.drain(&mut out);
        out.iter()
            .flat_map(crate::record::collector::Batch::events)
            .map(|e| e.timestamp_nanos())
            .collect()
    }

    #[test]
    fn push_reports_full_and_flush_empties() {
        let slot = ThreadSlot::new(3, None);
        let c = CentralCollector::new(100, 3);
        // SAFETY: this test thread is the only user of `slot`.
        unsafe {
            assert_eq!(slot.push(ev(1)), 2);
            assert_eq!(slot.push(ev(2)), 1);
            assert_eq!(slot.push(ev(3)), 0);
            slot.hand_over(&c);
            assert_eq!(slot.push(ev(4)), 2);
        }
        assert_eq!(drained(&c), vec![1, 2, 3]);
        assert_eq!(slot.pending(), 1);
    }

    #[test]
    fn copy_out_takes_each_event_once() {
        let slot = ThreadSlot::new(8, None);
        let c = CentralCollector::new(100, 8);
        // SAFETY: this test thread is the only user of `slot`.
        unsafe {
            slot.push(ev(1));
            slot.push(ev(2));
        }
        slot.copy_out(&c);
        slot.copy_out(&c);
        // SAFETY: as above.
        unsafe {
            slot.push(ev(3));
            slot.flush_owned(&c);
        }
        assert_eq!(drained(&c), vec![1, 2, 3]);
    }

    /// An owner pushing at full speed while another thread copies out loses
    /// and duplicates nothing, and keeps per-thread order.
    #[test]
    fn concurrent_copy_out_is_exact() {
        const N: u64 = 200_000;
        let slot = Arc::new(ThreadSlot::new(64, None));
        let c = Arc::new(CentralCollector::new(usize::MAX / 2, 64));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let owner = {
            let (slot, c) = (slot.clone(), c.clone());
            std::thread::spawn(move || {
                for i in 0..N {
                    // SAFETY: this spawned thread is the slot's only owner.
                    unsafe {
                        if slot.push(ev(i)) == 0 {
                            slot.hand_over(&c);
                        }
                    }
                }
                // SAFETY: as above.
                unsafe { slot.flush_owned(&c) };
            })
        };
        let reader = {
            let (slot, c, done) = (slot.clone(), c.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    slot.copy_out(&c);
                }
            })
        };
        owner.join().unwrap();
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        let got = drained(&c);
        assert_eq!(got.len() as u64, N);
        assert!(
            got.iter().copied().eq(0..N),
            "events out of order or duplicated"
        );
    }
}
