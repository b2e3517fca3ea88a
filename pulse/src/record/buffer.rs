//! The per-thread event buffer.
//!
//! One thread (the owner) appends events with a plain store and a release
//! store of the length: no lock, no atomic read-modify-write, no allocation.
//! The buffer is handed to the [`CentralCollector`] when it is full and when
//! its worker parks. Unlike a plain `thread_local!` `Vec`, other threads can
//! also copy out what the owner has published: the flusher does so on every
//! tick (so a worker stuck in a long poll does not hold its events back) and
//! at shutdown (so events of threads that are still alive are not lost).
//!
//! Synchronisation: the owner writes slot `len` and then publishes `len + 1`
//! (release). Copying out happens under `drain`, a mutex that also guards
//! `consumed`, the index up to which events were already copied. Only the
//! owner resets `len` to 0, and only while holding `drain`; between resets it
//! writes only at indices `>= len`, which no reader touches, since readers
//! copy `consumed..len` as published (acquire) while holding the mutex.

use crate::record::collector::CentralCollector;
use pulse_trace::RecordedEvent;
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Worker index stored in [`ThreadSlot::worker`] before the thread has
/// recorded a worker event.
pub(crate) const NO_WORKER: u32 = u32::MAX;

/// A fixed-capacity event buffer owned by one thread.
pub(crate) struct ThreadSlot {
    events: Box<[UnsafeCell<MaybeUninit<RecordedEvent>>]>,
    /// Published length; written only by the owner.
    len: AtomicUsize,
    /// Index up to which events were copied out by a non-owner.
    drain: Mutex<usize>,
    /// The owner's kernel thread id, for the sampler's per-thread readings.
    pub(crate) tid: Option<i32>,
    /// The worker index the owner last recorded for (`NO_WORKER` if none).
    pub(crate) worker: AtomicU32,
}

// SAFETY: the cells are written only by the owning thread at indices no other
// thread reads (see the module documentation); every cross-thread read is of
// a published, initialised, `Copy` event under the `drain` mutex.
unsafe impl Sync for ThreadSlot {}

impl std::fmt::Debug for ThreadSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadSlot")
            .field("capacity", &self.events.len())
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("tid", &self.tid)
            .finish()
    }
}

impl ThreadSlot {
    pub(crate) fn new(capacity: usize, tid: Option<i32>) -> Self {
        let capacity = capacity.max(1);
        ThreadSlot {
            // Zeroing writes every page now, so the first pushes into a
            // fresh buffer do not take page faults inside a measured poll.
            events: (0..capacity)
                .map(|_| UnsafeCell::new(MaybeUninit::zeroed()))
                .collect(),
            len: AtomicUsize::new(0),
            drain: Mutex::new(0),
            tid,
            worker: AtomicU32::new(NO_WORKER),
        }
    }

    /// Appends an event. Must only be called by the owning thread.
    ///
    /// Returns `true` when the buffer became full and must be flushed with
    /// [`ThreadSlot::flush_owned`] before the next push.
    ///
    /// # Safety
    ///
    /// Only the thread that owns this slot may call it, and it must call
    /// `flush_owned` after a push that returned `true`.
    #[inline]
    pub(crate) unsafe fn push(&self, event: RecordedEvent) -> bool {
        let len = self.len.load(Ordering::Relaxed);
        debug_assert!(len < self.events.len());
        // SAFETY: `len < capacity` (the caller flushed when full); the owner
        // is the only writer and no reader reads at or beyond the published
        // length (module documentation).
        unsafe { (*self.events.get_unchecked(len).get()).write(event) };
        self.len.store(len + 1, Ordering::Release);
        len + 1 == self.events.len()
    }

    /// Events published and not yet copied out.
    pub(crate) fn pending(&self) -> usize {
        let consumed = *self.drain.lock().unwrap_or_else(|e| e.into_inner());
        self.len.load(Ordering::Acquire).saturating_sub(consumed)
    }

    /// Hands everything not yet copied out to the collector and empties the
    /// buffer. Must only be called by the owning thread.
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
        debug_assert!(from <= to && to <= self.events.len());
        let cells = &self.events[from..to];
        // SAFETY: slots below the published length are initialised and the
        // owner does not write them until it resets the length, which needs
        // the `drain` lock the caller holds. `UnsafeCell<MaybeUninit<T>>` has
        // the layout of `T`.
        unsafe { std::slice::from_raw_parts(cells.as_ptr().cast::<RecordedEvent>(), cells.len()) }
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
        out.iter().flatten().map(|e| e.timestamp_nanos()).collect()
    }

    #[test]
    fn push_reports_full_and_flush_empties() {
        let slot = ThreadSlot::new(3, None);
        let c = CentralCollector::new(100, 3);
        // SAFETY: this test thread is the only user of `slot`.
        unsafe {
            assert!(!slot.push(ev(1)));
            assert!(!slot.push(ev(2)));
            assert!(slot.push(ev(3)));
            slot.flush_owned(&c);
            assert!(!slot.push(ev(4)));
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
                        if slot.push(ev(i)) {
                            slot.flush_owned(&c);
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
