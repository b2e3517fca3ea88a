//! Stacks of long polls: symbolized frames, interned.
//!
//! The recorder captures a worker thread's user stack while a poll has
//! lasted longer than a threshold, symbolizes it (function, file:line,
//! inlined frames) off the hot path and interns it in the process-wide
//! [`StackRegistry`]. A [`Event::StackSample`](crate::Event::StackSample)
//! names the stack by its [`StackId`]; the v6 encoder writes each module,
//! frame and stack definition once per file (record `0x87`) before the
//! first sample that uses it (record `0x88`), so a trace is self-contained:
//! `pulse analyze` needs no binary. A [`TraceReader`](crate::TraceReader)
//! resolves ids with [`TraceReader::stack`](crate::TraceReader::stack).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// The id of an interned stack: the same in every file of a recording.
///
/// ```
/// let id = pulse_trace::StackId(3);
/// assert_eq!(id.0, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackId(pub u32);

/// Where the thread was when its stack was captured.
///
/// ```
/// assert_eq!(pulse_trace::StackKind::OffCpu.name(), "off-cpu");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StackKind {
    /// Asleep in a system call (blocking I/O, sleep, a lock): where it blocks.
    OffCpu,
    /// Running on a CPU: where it computes.
    OnCpu,
}

impl StackKind {
    /// `"off-cpu"` or `"on-cpu"`, as written in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            StackKind::OffCpu => "off-cpu",
            StackKind::OnCpu => "on-cpu",
        }
    }
}

/// A loaded module (the executable or a shared library) that frames
/// belong to, with its GNU build-id, so a symbolized trace can be matched to
/// the exact binary that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StackModule {
    /// The module's path when it was recorded.
    pub path: String,
    /// The ELF `NT_GNU_BUILD_ID` note (empty if the module has none).
    pub build_id: Vec<u8>,
}

impl StackModule {
    /// The build-id as lowercase hex (empty if none).
    pub fn build_id_hex(&self) -> String {
        self.build_id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One symbolized frame. An address that inlined functions expand to gives
/// several frames: the inlined ones first (`inlined = true`), then the
/// function they were inlined into.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StackFrame {
    /// The demangled function name, without the trailing hash; `"??"` when
    /// the module has no symbol for the address.
    pub function: String,
    /// The source file, when the module has line tables.
    pub file: Option<String>,
    /// The line, when known.
    pub line: Option<u32>,
    /// This frame was inlined into the next (outer) one.
    pub inlined: bool,
    /// Index of the module in the reader's module table, if known.
    pub module: Option<u32>,
}

impl fmt::Display for StackFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function)?;
        if let Some(file) = &self.file {
            write!(f, " ({file}")?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A symbolized stack, innermost frame first.
///
/// # Examples
///
/// ```
/// use pulse_trace::{Stack, StackFrame};
///
/// let frame = |name: &str| StackFrame {
///     function: name.into(), file: None, line: None, inlined: false, module: None,
/// };
/// let stack = Stack { frames: vec![frame("std::thread::sleep"), frame("app::get")], truncated: false };
/// assert_eq!(stack.frames[0].to_string(), "std::thread::sleep");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stack {
    /// Innermost first.
    pub frames: Vec<StackFrame>,
    /// The unwinder stopped before the thread's first frame (stack copy too
    /// small, or no unwind information for a frame).
    pub truncated: bool,
}

/// The process-wide table of modules, frames and stacks the recorder has
/// captured, each interned once.
///
/// Its size is bounded: at most [`StackRegistry::MAX_STACKS`] stacks and
/// [`StackRegistry::MAX_FRAMES`] frames; later new stacks are refused
/// (`intern` returns `None`) and not recorded.
///
/// ```
/// use pulse_trace::{Stack, StackFrame, StackModule, StackRegistry};
///
/// let mut registry = StackRegistry::default();
/// let module = registry.module(StackModule { path: "/bin/app".into(), build_id: vec![0xab] });
/// let frame = StackFrame {
///     function: "app::get".into(), file: None, line: None, inlined: false, module: Some(module),
/// };
/// let stack = Stack { frames: vec![frame], truncated: false };
/// let id = registry.intern(&stack).unwrap();
/// assert_eq!(registry.intern(&stack), Some(id), "interned once");
/// assert_eq!(registry.stack(id).unwrap().frames.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct StackRegistry {
    modules: Vec<Arc<StackModule>>,
    module_ids: HashMap<Arc<StackModule>, u32>,
    frames: Vec<Arc<StackFrame>>,
    frame_ids: HashMap<Arc<StackFrame>, u32>,
    stacks: Vec<Arc<InternedStack>>,
    stack_ids: HashMap<Arc<InternedStack>, u32>,
}

/// A stack as the registry stores it: frame ids, innermost first.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct InternedStack {
    /// Frame ids (1-based), innermost first.
    pub frames: Vec<u32>,
    /// See [`Stack::truncated`].
    pub truncated: bool,
}

impl StackRegistry {
    /// At most this many distinct stacks are interned per process.
    pub const MAX_STACKS: usize = 16_384;
    /// At most this many distinct frames are interned per process.
    pub const MAX_FRAMES: usize = 65_536;

    /// The process-wide registry.
    pub fn global() -> &'static Mutex<StackRegistry> {
        static GLOBAL: OnceLock<Mutex<StackRegistry>> = OnceLock::new();
        GLOBAL.get_or_init(Mutex::default)
    }

    /// Interns a module, returning its id (1-based).
    pub fn module(&mut self, module: StackModule) -> u32 {
        if let Some(&id) = self.module_ids.get(&module) {
            return id;
        }
        let module = Arc::new(module);
        self.modules.push(module.clone());
        let id = self.modules.len() as u32;
        self.module_ids.insert(module, id);
        id
    }

    /// Interns a stack whose frames' `module` fields are ids from
    /// [`StackRegistry::module`]; `None` once the registry is full.
    pub fn intern(&mut self, stack: &Stack) -> Option<StackId> {
        let mut ids = Vec::with_capacity(stack.frames.len());
        for frame in &stack.frames {
            let id = match self.frame_ids.get(frame) {
                Some(&id) => id,
                None => {
                    if self.frames.len() >= Self::MAX_FRAMES {
                        return None;
                    }
                    let frame = Arc::new(frame.clone());
                    self.frames.push(frame.clone());
                    let id = self.frames.len() as u32;
                    self.frame_ids.insert(frame, id);
                    id
                }
            };
            ids.push(id);
        }
        let interned = InternedStack {
            frames: ids,
            truncated: stack.truncated,
        };
        if let Some(&id) = self.stack_ids.get(&interned) {
            return Some(StackId(id));
        }
        if self.stacks.len() >= Self::MAX_STACKS {
            return None;
        }
        let interned = Arc::new(interned);
        self.stacks.push(interned.clone());
        let id = self.stacks.len() as u32;
        self.stack_ids.insert(interned, id);
        Some(StackId(id))
    }

    /// The interned stack `id`.
    pub fn stack(&self, id: StackId) -> Option<&Arc<InternedStack>> {
        self.stacks.get((id.0 as usize).checked_sub(1)?)
    }

    /// The interned frame `id` (1-based).
    pub fn frame(&self, id: u32) -> Option<&Arc<StackFrame>> {
        self.frames.get((id as usize).checked_sub(1)?)
    }

    /// The interned module `id` (1-based).
    pub fn module_by_id(&self, id: u32) -> Option<&Arc<StackModule>> {
        self.modules.get((id as usize).checked_sub(1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Encoder, FormatVersion, RecordedEvent, TraceEvent, TraceMetadata, TraceReader};

    fn metadata() -> TraceMetadata {
        TraceMetadata {
            time_unit_nanos: 10,
            worker_count: 2,
            start_unix_nanos: 0,
            pulse_version: "t".into(),
            has_run_delay: true,
            file_index: 0,
            config: Vec::new(),
        }
    }

    fn frame(function: &str, line: u32, inlined: bool, module: u32) -> StackFrame {
        StackFrame {
            function: function.into(),
            file: Some("src/get.rs".into()),
            line: Some(line),
            inlined,
            module: Some(module),
        }
    }

    fn sample(timestamp_nanos: u64, stack: StackId) -> RecordedEvent {
        RecordedEvent::StackSample {
            timestamp_nanos,
            worker: 1,
            kind: StackKind::OffCpu,
            stack,
        }
    }

    fn decode(bytes: &[u8]) -> Vec<(TraceEvent, Option<Stack>)> {
        let mut reader = TraceReader::from_reader(bytes, "t").unwrap();
        let mut out = Vec::new();
        while let Some(event) = reader.next_event().unwrap() {
            let stack = match event {
                TraceEvent::StackSample { stack, .. } => reader.stack(stack).cloned(),
                _ => None,
            };
            out.push((event, stack));
        }
        out
    }

    /// Each file defines the modules, frames and stacks it uses once, with
    /// the registry's ids, so every file reads alone; repeated samples cost
    /// a few bytes.
    #[test]
    fn stacks_round_trip_and_each_file_is_self_contained() {
        let (id, module) = {
            let mut registry = StackRegistry::global().lock().unwrap();
            let module = registry.module(StackModule {
                path: "/bin/app".into(),
                build_id: vec![0xab, 0x01],
            });
            let stack = Stack {
                frames: vec![
                    frame("std::thread::sleep", 9, true, module),
                    frame("app::get", 78, false, module),
                ],
                truncated: false,
            };
            (registry.intern(&stack).unwrap(), module)
        };
        let mut encoder = Encoder::new(FormatVersion::V6, metadata());
        let mut first = Vec::new();
        encoder.begin_file(0, &mut first);
        encoder.encode(&sample(1_000, id), &mut first);
        let before = first.len();
        encoder.encode(&sample(2_000, id), &mut first);
        assert!(first.len() - before <= 8, "a repeated sample is small");
        let mut second = Vec::new();
        encoder.begin_file(1, &mut second);
        encoder.encode(&sample(3_000, id), &mut second);

        for bytes in [&first[..], &second[..]] {
            let decoded = decode(bytes);
            assert!(!decoded.is_empty());
            for (event, stack) in decoded {
                let TraceEvent::StackSample {
                    worker,
                    kind,
                    stack: got,
                    ..
                } = event
                else {
                    panic!("only stack samples: {event:?}");
                };
                assert_eq!((worker, kind, got), (1, StackKind::OffCpu, id));
                let stack = stack.expect("defined in this file");
                assert_eq!(stack.frames[1].function, "app::get");
                assert_eq!(stack.frames[1].line, Some(78));
                assert!(stack.frames[0].inlined && !stack.frames[1].inlined);
                assert_eq!(stack.frames[0].module, Some(module));
            }
            let reader = TraceReader::from_reader(bytes, "t").unwrap();
            drop(reader);
        }
        let mut reader = TraceReader::from_reader(&second[..], "t").unwrap();
        while reader.next_event().unwrap().is_some() {}
        let module = reader.stack_module(module).unwrap();
        assert_eq!(
            (module.path.as_str(), module.build_id_hex().as_str()),
            ("/bin/app", "ab01")
        );
    }

    /// v5 cannot carry stacks: the encoder writes nothing for them.
    #[test]
    fn v5_omits_stack_samples() {
        let mut encoder = Encoder::new(FormatVersion::V5, metadata());
        let mut out = Vec::new();
        encoder.begin_file(0, &mut out);
        let header = out.len();
        encoder.encode(&sample(1_000, StackId(1)), &mut out);
        assert_eq!(out.len(), header);
    }

    #[test]
    fn the_registry_interns_and_is_bounded_in_ids() {
        let mut registry = StackRegistry::default();
        let stack = Stack {
            frames: vec![frame("a", 1, false, 1)],
            truncated: false,
        };
        let a = registry.intern(&stack).unwrap();
        assert_eq!(registry.intern(&stack), Some(a));
        let other = Stack {
            truncated: true,
            ..stack.clone()
        };
        assert_ne!(registry.intern(&other), Some(a));
        assert_eq!(registry.frames.len(), 1, "frames are shared");
    }
}
