//! Custom marks: `pulse::mark!("name")` and `pulse::mark!("name", value)`
//! put a timestamped application event (a request id, a cache miss, a
//! deploy) on the current worker's timeline.

use crate::record::hooks;
use std::sync::atomic::{AtomicU32, Ordering};

/// Records a mark: a timestamped application event on the current worker's
/// timeline, shown by `pulse analyze` (in the window of a finding), the
/// viewer (a tick on the worker's lane) and the exports.
///
/// `pulse::mark!("name")` records the name; `pulse::mark!("name", value)`
/// a value too (any [`MarkValue`]: unsigned integers and `bool`). The name
/// must be a `&'static str` constant (a literal): it is interned once per
/// call site, so a mark costs a timestamp and two or three words in the
/// thread's buffer. Names are bounded like span text
/// ([`pulse::trace::span::MAX_TEXT_LEN`](crate::trace::span::MAX_TEXT_LEN)).
///
/// Marks are recorded on threads that run a recorded runtime's workers
/// (the thread of a `current_thread` runtime, a multi-thread runtime's
/// worker threads) while recording is enabled; elsewhere (the blocking
/// pool, a multi-thread runtime's `block_on` caller, no recording, or
/// `PULSE=off`) the macro does nothing. It never needs the `tracing`
/// feature.
///
/// # Examples
///
/// ```
/// use pulse::{Config, Recorder, WriterConfig};
///
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// builder.enable_all();
/// let (runtime, guard) = Recorder::from_config(builder, &Config::new().writer(WriterConfig::Null))?;
/// runtime.block_on(async {
///     tokio::spawn(async {
///         pulse::mark!("cache miss");
///         pulse::mark!("request id", 42u64);
///     })
///     .await
///     .unwrap();
/// });
/// drop(runtime);
/// guard.finish()?;
/// # Ok::<(), pulse::Error>(())
/// ```
#[macro_export]
macro_rules! mark {
    ($name:expr $(,)?) => {{
        static SITE: $crate::MarkSite = $crate::MarkSite::new($name);
        SITE.mark()
    }};
    ($name:expr, $value:expr $(,)?) => {{
        static SITE: $crate::MarkSite = $crate::MarkSite::new($name);
        SITE.mark_value($crate::MarkValue::into_mark_value($value))
    }};
}

/// A value [`mark!`] can record: stored as a `u64`.
///
/// ```
/// use pulse::MarkValue;
///
/// assert_eq!(7u8.into_mark_value(), 7);
/// assert_eq!(true.into_mark_value(), 1);
/// ```
pub trait MarkValue {
    /// The value as stored in the trace.
    fn into_mark_value(self) -> u64;
}

macro_rules! mark_value_from {
    ($($ty:ty),*) => {$(
        impl MarkValue for $ty {
            #[inline]
            fn into_mark_value(self) -> u64 {
                u64::from(self)
            }
        }
    )*};
}
mark_value_from!(u8, u16, u32, u64, bool);

impl MarkValue for usize {
    #[inline]
    fn into_mark_value(self) -> u64 {
        self as u64
    }
}

/// One [`mark!`] call site: its name, interned on first use. Made by the
/// macro; use the macro.
///
/// ```
/// static SITE: pulse::MarkSite = pulse::MarkSite::new("deploy");
/// SITE.mark(); // no recording on this thread: nothing happens
/// assert_eq!(SITE.name(), "deploy");
/// ```
#[derive(Debug)]
pub struct MarkSite {
    name: &'static str,
    /// The name's text id; 0 until interned.
    id: AtomicU32,
}

impl MarkSite {
    /// A call site named `name`.
    pub const fn new(name: &'static str) -> MarkSite {
        MarkSite {
            name,
            id: AtomicU32::new(0),
        }
    }

    /// The mark's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Records the mark without a value.
    #[inline]
    pub fn mark(&self) {
        hooks::record_mark(self.id(), None);
    }

    /// Records the mark with `value`.
    #[inline]
    pub fn mark_value(&self, value: u64) {
        hooks::record_mark(self.id(), Some(value));
    }

    #[inline]
    fn id(&self) -> u32 {
        match self.id.load(Ordering::Relaxed) {
            0 => self.intern(),
            id => id,
        }
    }

    #[cold]
    fn intern(&self) -> u32 {
        // An empty name interns as the empty text (id 0): keep it as
        // "(unnamed)" so the site is interned once.
        let name = if self.name.is_empty() {
            "(unnamed)"
        } else {
            self.name
        };
        let id = pulse_trace::span::intern(name).0;
        self.id.store(id, Ordering::Relaxed);
        id
    }
}
