//! The application's own words on the timeline: `tracing` spans and
//! custom marks, and the interned text they name.
//!
//! A span's name and field text, and a mark's name, are interned once per
//! process in the [`TextRegistry`] and named by a [`TextId`]; the records
//! themselves ([`Event::SpanEnter`](crate::Event::SpanEnter),
//! [`Event::SpanExit`](crate::Event::SpanExit),
//! [`Event::SpanClose`](crate::Event::SpanClose),
//! [`Event::Mark`](crate::Event::Mark)) carry ids only, so a span entered a
//! million times costs a few bytes per enter and exit, not its name. The v6
//! encoder writes each text once per file (record `0x89`) before the first
//! record that uses it, so every file of a rotated set reads alone; a
//! [`TraceReader`](crate::TraceReader) resolves ids with
//! [`TraceReader::text`](crate::TraceReader::text).
//!
//! Text is bounded: at most [`MAX_TEXT_LEN`] bytes are kept of any name or
//! field text (longer text is cut at a character boundary and ends in
//! [`TRUNCATED_SUFFIX`]), and at most [`TextRegistry::MAX_TEXTS`] distinct
//! texts (and [`TextRegistry::MAX_BYTES`] bytes) are interned per process;
//! after that new text is recorded as [`TextId::OVERFLOW`], which reads back
//! as `"(text table full)"`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// The id of an interned text (a span name, a span's field text, a mark
/// name): the same in every file of a recording. 0 is the empty text.
///
/// ```
/// let id = pulse_trace::TextId(3);
/// assert_eq!(id.0, 3);
/// assert_eq!(pulse_trace::TextId::EMPTY.0, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TextId(pub u32);

impl TextId {
    /// The empty text (a span without fields). Never defined in a file.
    pub const EMPTY: TextId = TextId(0);
    /// Text that arrived after the [`TextRegistry`] was full. Never defined
    /// in a file; reads back as [`OVERFLOW_TEXT`].
    pub const OVERFLOW: TextId = TextId(u32::MAX);
}

/// What [`TextId::OVERFLOW`] reads back as.
pub const OVERFLOW_TEXT: &str = "(text table full)";

/// A span: `tracing`'s span id (`Id::into_u64`), unique among the spans
/// open at one time. `tracing` may reuse an id after the span closed;
/// every [`Event::SpanEnter`](crate::Event::SpanEnter) carries the span's
/// name and fields, so a reused id is never ambiguous.
///
/// ```
/// assert_eq!(pulse_trace::SpanId(7).to_string(), "span 7");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub u64);

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "span {}", self.0)
    }
}

/// The most bytes of one name or field text that are kept (4 KiB); longer
/// text is cut at a character boundary and [`TRUNCATED_SUFFIX`] appended.
pub const MAX_TEXT_LEN: usize = 4096;

/// Appended to text cut at [`MAX_TEXT_LEN`] bytes.
pub const TRUNCATED_SUFFIX: &str = "…(truncated)";

/// `text` bounded to [`MAX_TEXT_LEN`] bytes plus [`TRUNCATED_SUFFIX`].
///
/// ```
/// use pulse_trace::span::{bounded_text, MAX_TEXT_LEN, TRUNCATED_SUFFIX};
///
/// assert_eq!(bounded_text("short"), "short");
/// let long = "x".repeat(1 << 20);
/// let kept = bounded_text(&long);
/// assert_eq!(kept.len(), MAX_TEXT_LEN + TRUNCATED_SUFFIX.len());
/// assert!(kept.ends_with(TRUNCATED_SUFFIX));
/// ```
pub fn bounded_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_TEXT_LEN {
        return text.into();
    }
    let mut end = MAX_TEXT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut kept = String::with_capacity(end + TRUNCATED_SUFFIX.len());
    kept.push_str(text.get(..end).unwrap_or_default());
    kept.push_str(TRUNCATED_SUFFIX);
    kept.into()
}

/// The process-wide table of interned texts.
///
/// Bounded: at most [`TextRegistry::MAX_TEXTS`] texts and
/// [`TextRegistry::MAX_BYTES`] bytes; later new texts intern as
/// [`TextId::OVERFLOW`]. Each text is at most [`MAX_TEXT_LEN`] bytes plus
/// [`TRUNCATED_SUFFIX`] ([`bounded_text`]).
///
/// ```
/// use pulse_trace::{TextId, TextRegistry};
///
/// let mut registry = TextRegistry::default();
/// let id = registry.intern("cmd::get");
/// assert_eq!(registry.intern("cmd::get"), id, "interned once");
/// assert_eq!(registry.text(id).as_deref(), Some("cmd::get"));
/// assert_eq!(registry.intern(""), TextId::EMPTY);
/// ```
#[derive(Debug, Default)]
pub struct TextRegistry {
    texts: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
    bytes: usize,
}

impl TextRegistry {
    /// At most this many distinct texts are interned per process.
    pub const MAX_TEXTS: usize = 1 << 20;
    /// At most this many bytes of text are interned per process (64 MiB).
    pub const MAX_BYTES: usize = 64 << 20;

    /// The process-wide registry.
    pub fn global() -> &'static Mutex<TextRegistry> {
        static GLOBAL: OnceLock<Mutex<TextRegistry>> = OnceLock::new();
        GLOBAL.get_or_init(Mutex::default)
    }

    /// Interns `text` (bounded first, see [`bounded_text`]); the empty text
    /// is [`TextId::EMPTY`], and [`TextId::OVERFLOW`] once the registry is
    /// full.
    pub fn intern(&mut self, text: &str) -> TextId {
        if text.is_empty() {
            return TextId::EMPTY;
        }
        let text = bounded_text(text);
        if let Some(&id) = self.ids.get(&*text) {
            return TextId(id);
        }
        if self.texts.len() >= Self::MAX_TEXTS || self.bytes + text.len() > Self::MAX_BYTES {
            return TextId::OVERFLOW;
        }
        let text: Arc<str> = Arc::from(&*text);
        self.bytes += text.len();
        self.texts.push(text.clone());
        let id = self.texts.len() as u32;
        self.ids.insert(text, id);
        TextId(id)
    }

    /// The text `id` names, if this registry interned it (the empty and
    /// overflow texts included).
    pub fn text(&self, id: TextId) -> Option<Arc<str>> {
        match id {
            TextId::EMPTY => Some(Arc::from("")),
            TextId::OVERFLOW => Some(Arc::from(OVERFLOW_TEXT)),
            TextId(id) => self.texts.get((id as usize).checked_sub(1)?).cloned(),
        }
    }
}

/// Interns `text` in the process-wide [`TextRegistry`].
///
/// ```
/// let a = pulse_trace::span::intern("cache miss");
/// assert_eq!(pulse_trace::span::intern("cache miss"), a);
/// ```
pub fn intern(text: &str) -> TextId {
    TextRegistry::global()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .intern(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Encoder, FormatVersion, RecordedEvent, TraceEvent, TraceMetadata, TraceReader};

    fn metadata() -> TraceMetadata {
        TraceMetadata {
            time_unit_nanos: 32,
            worker_count: 2,
            ..TraceMetadata::default()
        }
    }

    /// Events and the texts they name, as a reader resolves them.
    fn decode(bytes: &[u8]) -> Vec<(TraceEvent, Vec<String>)> {
        let mut reader = TraceReader::from_reader(bytes, "t").unwrap();
        let mut out = Vec::new();
        while let Some(event) = reader.next_event().unwrap() {
            let ids = match event {
                TraceEvent::SpanEnter { name, fields, .. } => vec![name, fields],
                TraceEvent::Mark { name, .. } => vec![name],
                _ => vec![],
            };
            let texts = ids
                .into_iter()
                .map(|id| reader.text(id).expect("defined").to_owned())
                .collect();
            out.push((event, texts));
        }
        out
    }

    /// Spans and marks round-trip through v6 with their texts, each file
    /// defines the texts it uses, poll records around them keep their
    /// times, and a repeated enter/exit pair costs a few bytes.
    #[test]
    fn spans_and_marks_round_trip_and_files_are_self_contained() {
        let name = intern("cmd::get");
        let fields = intern("key=\"user:42\"");
        let mark = intern("cache miss");
        let here = crate::SpawnLocation(std::panic::Location::caller());
        let events = |t: u64| {
            vec![
                RecordedEvent::PollStart {
                    timestamp_nanos: t,
                    worker: 1,
                    local_queue: 0,
                    task_id: Some(5),
                    spawned_at: here,
                },
                RecordedEvent::SpanEnter {
                    timestamp_nanos: t + 320,
                    worker: 1,
                    span: SpanId(1 << 50),
                    name,
                    fields,
                },
                RecordedEvent::Mark {
                    timestamp_nanos: t + 640,
                    worker: 1,
                    name: mark,
                    value: Some(42),
                },
                RecordedEvent::Mark {
                    timestamp_nanos: t + 650,
                    worker: 0,
                    name: mark,
                    value: None,
                },
                RecordedEvent::SpanExit {
                    timestamp_nanos: t + 960,
                    worker: 1,
                    span: SpanId(1 << 50),
                },
                RecordedEvent::PollEnd {
                    timestamp_nanos: t + 1280,
                    worker: 1,
                    local_queue: 0,
                },
                RecordedEvent::SpanClose {
                    timestamp_nanos: t + 1600,
                    worker: 1,
                    span: SpanId(1 << 50),
                },
            ]
        };
        let mut encoder = Encoder::new(FormatVersion::V6, metadata());
        let mut first = Vec::new();
        encoder.begin_file(0, &mut first);
        for event in events(3_200) {
            encoder.encode(&event, &mut first);
        }
        let before = first.len();
        for event in &events(6_400)[1..5] {
            if matches!(
                event,
                RecordedEvent::SpanEnter { .. } | RecordedEvent::SpanExit { .. }
            ) {
                encoder.encode(event, &mut first);
            }
        }
        assert!(
            first.len() - before <= 24,
            "a repeated enter/exit pair took {} bytes",
            first.len() - before
        );
        let mut second = Vec::new();
        encoder.begin_file(1, &mut second);
        for event in events(9_600) {
            encoder.encode(&event, &mut second);
        }
        for (bytes, t) in [(&first, 3_200), (&second, 9_600)] {
            let decoded = decode(bytes);
            let got: Vec<_> = decoded.iter().take(7).collect();
            assert_eq!(got[0].0.timestamp_nanos(), t);
            let span = SpanId(1 << 50);
            assert_eq!(
                got[1],
                &(
                    TraceEvent::SpanEnter {
                        timestamp_nanos: t + 320,
                        worker: 1,
                        span,
                        name,
                        fields,
                    },
                    vec!["cmd::get".to_owned(), "key=\"user:42\"".to_owned()]
                )
            );
            assert_eq!(
                got[2],
                &(
                    TraceEvent::Mark {
                        timestamp_nanos: t + 640,
                        worker: 1,
                        name: mark,
                        value: Some(42),
                    },
                    vec!["cache miss".to_owned()]
                )
            );
            assert!(matches!(
                got[3].0,
                TraceEvent::Mark { worker: 0, value: None, timestamp_nanos, .. } if timestamp_nanos == t + 640
            ));
            assert_eq!(
                got[4].0,
                TraceEvent::SpanExit {
                    timestamp_nanos: t + 960,
                    worker: 1,
                    span
                }
            );
            assert_eq!(
                got[5].0.timestamp_nanos(),
                t + 1280,
                "polls keep their times"
            );
            assert!(matches!(got[6].0, TraceEvent::SpanClose { .. }));
        }
    }

    /// Old readers skip what they do not know: a reader that drops every
    /// span and mark record (as one without tags 0x89-0x8B does) still
    /// reads the polls around them at the right times.
    #[test]
    fn poll_times_do_not_depend_on_span_records() {
        let name = intern("cmd::set");
        let mut with = Vec::new();
        let mut without = Vec::new();
        let here = crate::SpawnLocation(std::panic::Location::caller());
        for (out, spans) in [(&mut with, true), (&mut without, false)] {
            let mut encoder = Encoder::new(FormatVersion::V6, metadata());
            encoder.begin_file(0, out);
            for i in 0..50u64 {
                let t = i * 10_000;
                encoder.encode(
                    &RecordedEvent::PollStart {
                        timestamp_nanos: t,
                        worker: (i % 2) as u32,
                        local_queue: 0,
                        task_id: Some(i + 1),
                        spawned_at: here,
                    },
                    out,
                );
                if spans {
                    encoder.encode(
                        &RecordedEvent::SpanEnter {
                            timestamp_nanos: t + 5_000,
                            worker: (i % 2) as u32,
                            span: SpanId(i + 1),
                            name,
                            fields: TextId::EMPTY,
                        },
                        out,
                    );
                }
            }
        }
        let polls = |bytes: &[u8]| -> Vec<TraceEvent> {
            decode(bytes)
                .into_iter()
                .map(|(e, _)| e)
                .filter(|e| matches!(e, TraceEvent::PollStart { .. }))
                .collect()
        };
        assert_eq!(polls(&with), polls(&without));
        assert_eq!(polls(&with).len(), 50);
    }

    #[test]
    fn text_is_bounded_and_the_registry_is_bounded_in_bytes() {
        let mut registry = TextRegistry::default();
        let big = "é".repeat(1 << 19);
        let id = registry.intern(&big);
        let text = registry.text(id).unwrap();
        assert!(text.len() <= MAX_TEXT_LEN + TRUNCATED_SUFFIX.len());
        assert!(text.ends_with(TRUNCATED_SUFFIX));
        assert_eq!(registry.intern(&big), id, "truncated text interns once");
        registry.bytes = TextRegistry::MAX_BYTES;
        assert_eq!(registry.intern("new"), TextId::OVERFLOW);
        assert_eq!(
            registry.text(TextId::OVERFLOW).as_deref(),
            Some(OVERFLOW_TEXT)
        );
    }
}
