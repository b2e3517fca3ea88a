//! `tracing` spans on pulse's timeline (feature `tracing`):
//! [`tracing_layer`] returns a [`tracing_subscriber::Layer`] that records
//! span enter, exit and close, and optionally events, into the same thread
//! buffers and trace as the runtime's own events.

use crate::record::hooks;
use pulse_trace::span::{intern, MAX_TEXT_LEN};
use std::fmt::{self, Write as _};
use std::sync::atomic::{fence, AtomicU64, Ordering};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A [`Layer`] recording `tracing` spans (and, with
/// [`with_events`](PulseLayer::with_events), events) into the pulse
/// recording of the thread that enters them. Made by [`tracing_layer`].
///
/// What it records, and where:
///
/// - **Span enter and exit** on a thread that runs a recorded runtime's
///   worker (the thread of a `current_thread` runtime, a multi-thread
///   runtime's workers): one record each in that thread's buffer, about
///   10 bytes each in the file. The span's name and fields are interned
///   once per span when it is created, so entering a span a million times
///   costs a million small records, not a million names.
/// - **Span close** on such a thread.
/// - **Events** at or above the level given to
///   [`with_events`](PulseLayer::with_events), as marks named by their
///   message.
///
/// Threads that are not workers (the blocking pool, a multi-thread
/// runtime's `block_on` caller, any thread when no recording runs) record
/// nothing: their spans are neither stored nor counted, and the layer does
/// nothing else there. A span created on such a thread and entered on a
/// worker is recorded on the worker. Nothing is recorded while recording
/// is disabled ([`RecordingHandle::disable`](crate::RecordingHandle),
/// `PULSE=off`), except the exits of spans whose enter was recorded, so
/// the trace keeps them paired.
///
/// Fields are formatted `name=value` (strings quoted, as `fmt::Debug`
/// does), space-separated, and bounded: at most
/// [`MAX_TEXT_LEN`](crate::trace::span::MAX_TEXT_LEN) bytes of a span's
/// field text are kept, longer text is cut and ends in
/// [`TRUNCATED_SUFFIX`](crate::trace::span::TRUNCATED_SUFFIX); names are
/// bounded the same way.
///
/// # Examples
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(pulse::tracing_layer().with_fields(&["key"]));
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("cmd::get", key = "user:42", size = 3);
///     let _entered = span.enter();
/// });
/// ```
#[derive(Clone, Debug, Default)]
pub struct PulseLayer {
    /// Only these fields are kept (`None`: all).
    fields: Option<Vec<&'static str>>,
    /// Events at or above this level are recorded as marks.
    events: Option<Level>,
    /// This layer's spans' text words, by id (ids are its subscriber's).
    cache: TextCache,
}

/// A [`PulseLayer`] recording every span with all its fields, and no
/// events.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
///
/// // Composes with other layers: here the fmt layer prints, pulse records.
/// let subscriber = tracing_subscriber::registry()
///     .with(pulse::tracing_layer())
///     .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info_span!("startup").in_scope(|| tracing::info!("ready"));
/// });
/// ```
pub fn tracing_layer() -> PulseLayer {
    PulseLayer::default()
}

impl PulseLayer {
    /// Keeps only the fields named in `names` (others are not formatted or
    /// stored).
    ///
    /// ```
    /// let layer = pulse::tracing_layer().with_fields(&["key", "cmd"]);
    /// # let _ = layer;
    /// ```
    pub fn with_fields(mut self, names: &[&'static str]) -> Self {
        self.fields = Some(names.to_vec());
        self
    }

    /// Also records events at `level` or more severe (`Level::WARN`: warn
    /// and error) as marks named by their message (bounded like field
    /// text).
    ///
    /// ```
    /// let layer = pulse::tracing_layer().with_events(tracing::Level::WARN);
    /// # let _ = layer;
    /// ```
    pub fn with_events(mut self, level: Level) -> Self {
        self.events = Some(level);
        self
    }

    fn keeps(&self, field: &Field) -> bool {
        self.fields
            .as_ref()
            .is_none_or(|names| names.contains(&field.name()))
    }
}

/// What the layer keeps in a span's extensions.
#[derive(Debug)]
struct SpanText {
    /// Name id (low 32 bits) and fields id (high 32 bits).
    word: u64,
    /// The field text, kept for fields recorded later (`Span::record`).
    fields: String,
}

/// Formats the kept fields as `name=value` pairs, bounded.
struct FieldText<'a> {
    layer: &'a PulseLayer,
    out: &'a mut String,
}

impl FieldText<'_> {
    /// Appends one pair, cutting it once the text is over the bound (the
    /// interner appends the truncation marker).
    fn pair(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if !self.layer.keeps(field) || self.out.len() > MAX_TEXT_LEN {
            return;
        }
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        let mut bounded = Bounded(self.out);
        let _ = write!(bounded, "{}={}", field.name(), value);
    }
}

/// A writer that stops one byte past [`MAX_TEXT_LEN`]: a 1 MB field is
/// never copied whole.
struct Bounded<'a>(&'a mut String);

impl fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = (MAX_TEXT_LEN + 1).saturating_sub(self.0.len());
        if s.len() <= room {
            self.0.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(s.get(..end).unwrap_or_default());
        // Padding to the bound with what is left makes the text "too long",
        // so the interner marks it as cut, even when the cut fell on a
        // character boundary just below the bound.
        while self.0.len() <= MAX_TEXT_LEN {
            self.0.push('…');
        }
        Err(fmt::Error)
    }
}

impl Visit for FieldText<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.pair(field, format_args!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, format_args!("{value:?}"));
    }
}

/// An event's message, bounded.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(Bounded(&mut self.0), "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = Bounded(&mut self.0).write_str(value);
        }
    }
}

fn text_word(name: &str, fields: &str) -> u64 {
    u64::from(intern(name).0) | (u64::from(intern(fields).0) << 32)
}

/// The text words of recently created spans, by span id: what
/// [`PulseLayer`]'s `on_enter` needs, without the registry lookup (a
/// reference count and a read lock: about 20 ns of a 25 ns budget).
///
/// A direct-mapped table of seqlocked `(id, word)` slots, one table per
/// layer (span ids are unique per subscriber, not per process: two
/// subscribers both have a span 1). `on_new_span` (and `on_record`) write
/// the slot of their span's id; `on_enter` reads it and uses it only if it
/// holds that id, else looks the span up in the registry. It is never
/// wrong: a subscriber never gives two open spans the same id, and a
/// span's `on_new_span` (which writes its id's slot, or finds another
/// writer there and leaves the slot to it, overwriting any older span's
/// entry under that id either way) happens before anything can enter it.
/// A clone of a layer (which may go into another subscriber) starts with
/// an empty table of its own.
struct TextCache {
    slots: Box<[CacheSlot]>,
}

const CACHE_SLOTS: usize = 4096;

struct CacheSlot {
    /// Even: stable; odd: being written.
    seq: AtomicU64,
    id: AtomicU64,
    word: AtomicU64,
}

impl Default for TextCache {
    fn default() -> Self {
        let slot = || CacheSlot {
            seq: AtomicU64::new(0),
            id: AtomicU64::new(0),
            word: AtomicU64::new(0),
        };
        TextCache {
            slots: (0..CACHE_SLOTS).map(|_| slot()).collect(),
        }
    }
}

impl Clone for TextCache {
    /// An empty table: the clone's spans are another subscriber's.
    fn clone(&self) -> Self {
        TextCache::default()
    }
}

impl fmt::Debug for TextCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextCache")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl TextCache {
    #[inline]
    fn slot(&self, id: u64) -> &CacheSlot {
        // `tracing-subscriber`'s ids carry a slab index in their low bits
        // and a generation in their high bits: mix both.
        let hash = (id ^ (id >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52;
        &self.slots[hash as usize % CACHE_SLOTS]
    }

    /// Records `word` for span `id`, unless another thread is writing the
    /// slot (then its entry, for another span, wins: lookups of `id` fall
    /// back to the registry).
    fn store(&self, id: u64, word: u64) {
        let slot = self.slot(id);
        let seq = slot.seq.load(Ordering::Relaxed);
        if !seq.is_multiple_of(2)
            || slot
                .seq
                .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // A reader that sees any of the stores below then sees the odd
        // sequence number (or a later one) on its second read.
        fence(Ordering::Release);
        slot.id.store(id, Ordering::Relaxed);
        slot.word.store(word, Ordering::Relaxed);
        slot.seq.store(seq + 2, Ordering::Release);
    }

    /// The word of span `id`, if its slot holds it.
    #[inline]
    fn get(&self, id: u64) -> Option<u64> {
        let slot = self.slot(id);
        let before = slot.seq.load(Ordering::Acquire);
        let found = slot.id.load(Ordering::Relaxed);
        let word = slot.word.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let after = slot.seq.load(Ordering::Relaxed);
        (before.is_multiple_of(2) && before == after && found == id).then_some(word)
    }
}

impl<S> Layer<S> for PulseLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = String::new();
        attrs.record(&mut FieldText {
            layer: self,
            out: &mut fields,
        });
        let word = text_word(attrs.metadata().name(), &fields);
        span.extensions_mut().insert(SpanText { word, fields });
        self.cache.store(id.into_u64(), word);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(text) = extensions.get_mut::<SpanText>() else {
            return;
        };
        values.record(&mut FieldText {
            layer: self,
            out: &mut text.fields,
        });
        text.word = text_word(span.name(), &text.fields);
        self.cache.store(id.into_u64(), text.word);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        // Look the span up only where it will be recorded.
        if !hooks::thread_records() {
            return;
        }
        if let Some(word) = self.cache.get(id.into_u64()) {
            hooks::record_span_enter(id.into_u64(), word);
        } else if let Some(span) = ctx.span(id) {
            if let Some(text) = span.extensions().get::<SpanText>() {
                hooks::record_span_enter(id.into_u64(), text.word);
            }
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        hooks::record_span_exit(id.into_u64());
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        hooks::record_span_close(id.into_u64());
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(level) = self.events else {
            return;
        };
        // `Level`'s order runs from ERROR (least) to TRACE (greatest).
        if *event.metadata().level() > level || !hooks::thread_records() {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let name = if message.0.is_empty() {
            event.metadata().name()
        } else {
            &message.0
        };
        hooks::record_mark(intern(name).0, None);
    }
}

#[cfg(test)]
mod tests {
    use super::TextCache;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// The cache never answers with another span's word: writers race on
    /// colliding slots while readers check every answer.
    #[test]
    fn the_text_cache_is_never_wrong() {
        let cache = Arc::new(TextCache::default());
        let base = 0x7777_0000_0000u64;
        let word = |id: u64| id.wrapping_mul(3) ^ 0x5555;
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let stop = stop.clone();
                let cache = cache.clone();
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let id = base + (i * 2 + w) % 20_000;
                        cache.store(id, word(id));
                        i += 1;
                    }
                })
            })
            .collect();
        let mut hits = 0u64;
        for round in 0..200_000u64 {
            let id = base + round % 20_000;
            if let Some(found) = cache.get(id) {
                assert_eq!(found, word(id), "span {id}");
                hits += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }
        assert!(hits > 0);
        // A reused id: the newer span's word.
        cache.store(base + 1, 1);
        cache.store(base + 1, 2);
        assert_eq!(cache.get(base + 1), Some(2));
    }

    /// Two subscribers both have a span 1: each layer answers with its
    /// own, and a cloned layer starts with nothing cached.
    #[test]
    fn each_layer_has_its_own_text_cache() {
        let first = super::tracing_layer();
        let second = first.clone();
        first.cache.store(1, 10);
        assert_eq!(second.cache.get(1), None);
        second.cache.store(1, 20);
        assert_eq!(first.cache.get(1), Some(10));
        assert_eq!(second.cache.get(1), Some(20));
    }
}
