/*
 * pulse trace decoder: reads pulse trace files (format versions 5 and 6,
 * FORMAT.md at the repository root) in the browser and under Node.
 *
 * It follows pulse's Rust `TraceReader` record for record: the same events,
 * the same values, the same errors (file, byte offset, message). A parity
 * test (tests/tests/viewer_decoder.rs) decodes golden traces with both and
 * compares them event by event.
 *
 * Usage:
 *
 *   const set = new PulseDecoder.LocationTable();        // shared by the files of a set
 *   const dec = new PulseDecoder.FileDecoder(bytes, "trace.0.bin", set);
 *   while (dec.next()) {                                 // throws PulseDecoder.TraceError
 *     // dec.kind, dec.t, dec.worker, dec.localQueue, dec.taskId, dec.location,
 *     // dec.cpu, dec.runDelay, dec.globalQueue, dec.count
 *   }
 *
 * `next()` allocates nothing: the event is in the decoder's fields until the
 * next call. Numbers are JavaScript doubles: exact below 2^53 (104 days of
 * nanoseconds); larger values are rounded.
 */
(function (root, factory) {
  "use strict";
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.PulseDecoder = factory();
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const MAGIC = [0x54, 0x4f, 0x4b, 0x49, 0x4f, 0x54, 0x52, 0x43]; // "TOKIOTRC"
  const HEADER_LEN = 12;
  const MAX_RECORD_LEN = 1 << 20;
  const MAX_WORKERS_PER_FILE = 1 << 16;
  const MAX_LOCATIONS = 1 << 20;
  const U32_MAX = 4294967295;
  const TWO64 = 18446744073709551616;
  const U64_MAX = 18446744073709551615; // rounds to 2^64 as a double
  const MAX_SAFE = 9007199254740991;
  /** At most this many frames per stack definition (Rust's MAX_STACK_FRAMES). */
  const MAX_STACK_FRAMES = 256;

  /** Event kinds, numbered like pulse's `EventType`. */
  const Kind = Object.freeze({
    PollStart: 0,
    PollEnd: 1,
    WorkerPark: 2,
    WorkerUnpark: 3,
    QueueSample: 4,
    WorkerSample: 5,
    EventsDropped: 6,
    WorkerThread: 7,
    StackSample: 8,
    ScheduleLatency: 9,
    SpanEnter: 10,
    SpanExit: 11,
    SpanClose: 12,
    Mark: 13,
  });
  const KIND_NAMES = [
    "PollStart",
    "PollEnd",
    "WorkerPark",
    "WorkerUnpark",
    "QueueSample",
    "WorkerSample",
    "EventsDropped",
    "WorkerThread",
    "StackSample",
    "ScheduleLatency",
    "SpanEnter",
    "SpanExit",
    "SpanClose",
    "Mark",
  ];
  /** The text ids Rust's `TextId::EMPTY` and `TextId::OVERFLOW`. */
  const TEXT_EMPTY = 0;
  const TEXT_OVERFLOW = 4294967295;
  /** `WorkerThread` kinds, numbered like pulse's `WorkerThreadKind`. */
  const THREAD_KINDS = ["runs", "sampled", "poll_detached"];

  // Record kinds as error messages name them (Rust's `RecordKind`).
  const REC = Object.freeze({
    Header: "file header",
    PollStart: "PollStart record",
    PollEnd: "PollEnd record",
    WorkerPark: "WorkerPark record",
    WorkerUnpark: "WorkerUnpark record",
    QueueSample: "QueueSample record",
    WorkerSample: "WorkerSample record",
    EventsDropped: "EventsDropped record",
    WorkerThread: "WorkerThread record",
    StackDefinition: "stack definition record",
    StackSample: "StackSample record",
    ScheduleLatency: "schedule latency record",
    TextDefinition: "text definition record",
    Span: "span record",
    Mark: "Mark record",
    WorkerSwitch: "worker switch record",
    SetTime: "set-time record",
    Metadata: "Metadata record",
    TraceEnd: "end-of-trace record",
    LocationDefinition: "location definition record",
    Record: "record",
  });

  function hex2(n) {
    return n.toString(16).padStart(2, "0");
  }

  function lengthPrefixedKind(tag) {
    switch (tag) {
      case 0x80:
        return REC.Metadata;
      case 0x81:
        return REC.LocationDefinition;
      case 0x82:
        return REC.QueueSample;
      case 0x83:
        return REC.WorkerSample;
      case 0x84:
        return REC.EventsDropped;
      case 0x85:
        return REC.TraceEnd;
      case 0x86:
        return REC.WorkerThread;
      case 0x87:
        return REC.StackDefinition;
      case 0x88:
        return REC.StackSample;
      case 0x8c:
        return REC.ScheduleLatency;
      case 0x89:
        return REC.TextDefinition;
      case 0x8a:
        return REC.Span;
      case 0x8b:
        return REC.Mark;
      default:
        return "record with unknown tag 0x" + hex2(tag);
    }
  }

  function compactKind(tag) {
    if (tag <= 0x1f) return REC.PollEnd;
    if (tag <= 0x3f) return REC.PollStart;
    switch (tag) {
      case 0x40:
        return REC.WorkerPark;
      case 0x41:
        return REC.WorkerUnpark;
      case 0x42:
        return REC.WorkerSwitch;
      case 0x43:
        return REC.SetTime;
      case 0x44:
        return REC.WorkerPark;
      case 0x45:
        return REC.WorkerUnpark;
      default:
        return null;
    }
  }

  /** Rust's `<[u8]>::escape_ascii`, for the bad-magic message. */
  function escapeAscii(bytes) {
    let out = "";
    for (const b of bytes) {
      if (b === 0x09) out += "\\t";
      else if (b === 0x0a) out += "\\n";
      else if (b === 0x0d) out += "\\r";
      else if (b === 0x5c) out += "\\\\";
      else if (b === 0x27) out += "\\'";
      else if (b === 0x22) out += '\\"';
      else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
      else out += "\\x" + hex2(b);
    }
    return out;
  }

  /**
   * An error reading a trace: the file, the byte offset of the record (or
   * header) that failed, and what was wrong, in the words of pulse's Rust
   * reader. `kind` is "bad_magic", "unsupported_version", "truncated" or
   * "corrupt".
   */
  class TraceError extends Error {
    constructor(path, offset, kind, detail) {
      super(path + ": byte " + offset + ": " + detail);
      this.name = "TraceError";
      this.path = path;
      this.offset = offset;
      this.kind = kind;
      this.detail = detail;
    }
    /** The data ended early (a writer killed mid-write): what came before is sound. */
    get isTruncation() {
      return this.kind === "truncated";
    }
  }

  /** What went wrong inside a record, before the file and offset are known. */
  class Fail {
    constructor(kind, detail) {
      this.kind = kind;
      this.detail = detail;
    }
  }

  function truncated(record, needed, available, exact) {
    return new Fail(
      "truncated",
      "truncated " + record + " (needs " + (exact ? "" : "at least ") + needed + " bytes, " + available + " left)"
    );
  }

  function corrupt(detail) {
    return new Fail("corrupt", detail);
  }

  function unzigzag(u) {
    // Exact below 2^53; `u % 2` is exact for any double.
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  const TWO63 = 9223372036854775808;

  // Cumulative u64 quantities (task ids, CPU and run-queue readings) are
  // kept as their two's-complement i64 value, so that small values on
  // either side of 0 (a wrapping delta) stay exact; `u64` converts for use.
  function wrappingAddI64(x, delta) {
    const sum = x + delta;
    if (sum >= TWO63) return sum - TWO64;
    if (sum < -TWO63) return sum + TWO64;
    return sum;
  }

  function i64(u) {
    return u >= TWO63 ? u - TWO64 : u;
  }

  function u64(i) {
    return i < 0 ? i + TWO64 : i;
  }

  // Varint read results below 0 are errors.
  const INCOMPLETE = -1;
  const TOO_LONG = -2;
  const OVERFLOW = -3;

  /**
   * Spawn-location definitions, shared by the files of one set (ids are
   * stable across a rotated set). `get(id)` is the site as
   * "file:line:column".
   */
  class LocationTable {
    constructor() {
      this.sites = new Map(); // id -> { file, line, column, text, gen }
      this.generation = 0;
      // Stack records (0x87): like the Rust reader, kept across files;
      // a file must define the frames and stacks it uses.
      this.stackModules = new Map(); // id -> { path, buildId }
      this.stackFrames = new Map(); // id -> { function, file, line, inlined, module, gen }
      this.stacks = new Map(); // id -> { frames: [frame], truncated, gen }
      // Texts (0x89: span names, span fields, mark names), kept across
      // files; a file must define the texts it uses.
      this.texts = new Map(); // id -> { text, gen }
    }
    /** The text a span or mark names ("" for the empty text). */
    text(id) {
      if (id === TEXT_EMPTY) return "";
      if (id === TEXT_OVERFLOW) return "(text table full)";
      const t = this.texts.get(id);
      return t ? t.text : null;
    }
    get(id) {
      const site = this.sites.get(id);
      return site ? site.text : null;
    }
  }

  let utf8 = null;
  function decodeUtf8(bytes) {
    if (utf8 === null) utf8 = new TextDecoder("utf-8", { fatal: true });
    try {
      return utf8.decode(bytes);
    } catch (_) {
      return null;
    }
  }

  /**
   * Decodes one trace file held in memory (a Uint8Array). The constructor
   * reads the header and, for v6, the metadata record, and throws a
   * TraceError if they are bad. Then each `next()` decodes one event into
   * the decoder's fields and returns true, or returns false at the end of
   * the file; it throws a TraceError for a bad record, after which it
   * returns false.
   */
  class FileDecoder {
    constructor(bytes, path, locations) {
      this.b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
      this.path = String(path);
      this.locations = locations || new LocationTable();
      this.end = this.b.length;
      this.p = 0; // read position
      this.lim = 0; // end of the bytes the current record may use
      this.compact = true; // reading a compact record (vs a payload)
      this.record = REC.Record; // what is being read, for errors
      this.failed = false;
      this.version = 0;
      this.metadata = null;
      // The current event.
      this.kind = -1;
      this.t = 0;
      this.worker = 0;
      this.localQueue = 0;
      this.taskId = -1; // -1: not recorded (v5)
      this.location = 0; // 0: unknown
      this.cpu = 0; // -1 on a park/unpark: no reading
      this.runDelay = -1; // -1: not recorded
      // The same three as two's-complement i64 values, exact near 2^64.
      this.taskIdI64 = -1;
      this.cpuI64 = 0;
      this.runDelayI64 = -1;
      this.globalQueue = 0;
      this.count = 0;
      // v6 per-file state.
      this.unit = 0;
      this.hasRunDelay = false;
      this.slots = new Map(); // worker -> slot
      this.wk = [];
      this.wTicks = [];
      this.wTask = [];
      this.wCpu = [];
      this.wRd = [];
      this.wQueue = [];
      this.wLoc = []; // -1: none yet
      this.curWorker = -1;
      this.curSlot = -1;
      this.recStart = 0;
      this.gen = 0;
      // The file's end-of-trace record, when no event followed it (as
      // Rust's `TraceReader::end`): {timestamp_nanos, reason, signal,
      // dropped_events, threads_still_recording}.
      this.traceEnd = null;
      // Spans and marks (0x8A, 0x8B): per worker, the span of its previous
      // span record in this file.
      this.prevSpan = new Map();
      this.span = 0;
      this.spanName = 0;
      this.spanFields = 0;
      this.markName = 0;
      this.markValue = -1; // -1: none
      this.start();
    }

    error(offset, fail) {
      return new TraceError(this.path, offset, fail.kind, fail.detail);
    }

    /** The offset of the next record. */
    get offset() {
      return this.p;
    }

    start() {
      const b = this.b;
      if (this.end < HEADER_LEN) {
        throw this.error(0, truncated(REC.Header, HEADER_LEN, this.end, true));
      }
      for (let i = 0; i < 8; i++) {
        if (b[i] !== MAGIC[i]) {
          const found = escapeAscii(b.subarray(0, 8));
          throw new TraceError(
            this.path,
            0,
            "bad_magic",
            'not a pulse trace: expected magic "TOKIOTRC", found "' + found + '"'
          );
        }
      }
      const version = (b[8] | (b[9] << 8) | (b[10] << 16) | (b[11] << 24)) >>> 0;
      if (version !== 5 && version !== 6) {
        throw new TraceError(
          this.path,
          8,
          "unsupported_version",
          "unsupported format version " + version + " (this reader supports versions 5 and 6)"
        );
      }
      this.version = version;
      this.p = HEADER_LEN;
      if (version === 6) {
        this.locations.generation += 1;
        this.gen = this.locations.generation;
        const start = this.p;
        if (start >= this.end) {
          throw this.error(start, truncated(REC.Metadata, 2, 0, false));
        }
        const tag = b[start];
        if (tag !== 0x80) {
          throw this.error(
            start,
            corrupt("the first record must be Metadata (tag 0x80), found tag 0x" + hex2(tag))
          );
        }
        try {
          this.readLengthPrefixed(start);
          this.metadata = this.decodeMetadata();
        } catch (e) {
          if (e instanceof Fail) throw this.error(start, e);
          throw e;
        }
        this.p = this.lim;
      }
    }

    // ---- field readers -------------------------------------------------

    varintRaw() {
      const b = this.b;
      const p = this.p;
      if (p < this.lim) {
        const x = b[p];
        if (x < 0x80) {
          this.p = p + 1;
          return x;
        }
      }
      let value = 0;
      let mul = 1;
      for (let i = 0; i < 10; i++) {
        if (p + i >= this.lim) return INCOMPLETE;
        const x = b[p + i];
        if (i === 9) {
          if (x & 0x80) return TOO_LONG;
          if (x > 1) return OVERFLOW;
        }
        value += (x & 0x7f) * mul;
        mul *= 128;
        if ((x & 0x80) === 0) {
          this.p = p + i + 1;
          return value;
        }
      }
      return TOO_LONG; // unreachable
    }

    fieldError(err, field, fieldsAfter) {
      const record = this.record;
      if (err === INCOMPLETE) {
        if (this.compact) {
          const available = this.end - this.recStart;
          return truncated(record, available + 1 + fieldsAfter, available, false);
        }
        return corrupt(record + " ends before its " + field + " field");
      }
      if (err === TOO_LONG) return corrupt(record + ": " + field + " varint is longer than 10 bytes");
      return corrupt(record + ": " + field + " varint overflows u64");
    }

    varint(field, fieldsAfter) {
      const v = this.varintRaw();
      if (v < 0) throw this.fieldError(v, field, fieldsAfter);
      return v;
    }

    zigzag(field, fieldsAfter) {
      return unzigzag(this.varint(field, fieldsAfter));
    }

    u32(field, fieldsAfter) {
      const v = this.varint(field, fieldsAfter);
      if (v > U32_MAX) {
        throw corrupt(this.record + ": " + field + " " + fmtU64(v) + " is out of range (at most " + U32_MAX + ")");
      }
      return v;
    }

    string(field) {
      const len = this.varint(field, 0);
      const left = this.lim - this.p;
      if (len > left) {
        throw corrupt(
          this.record + ": " + field + " length " + fmtU64(len) + " runs past the end of the record (" + left + " bytes left)"
        );
      }
      const text = decodeUtf8(this.b.subarray(this.p, this.p + len));
      if (text === null) throw corrupt(this.record + ": " + field + " is not valid UTF-8");
      this.p += len;
      return text;
    }

    timestamp(ticks) {
      const nanos = ticks * this.unit;
      if (nanos > U64_MAX) throw corrupt(this.record + ": timestamp overflows u64 nanoseconds");
      return nanos;
    }

    // ---- length-prefixed records ----------------------------------------

    /**
     * Reads the tag and length of the record at `start`; sets `p`/`lim` to
     * its payload. Returns its tag.
     */
    readLengthPrefixed(start) {
      const tag = this.b[start];
      const record = lengthPrefixedKind(tag);
      this.record = record;
      this.p = start + 1;
      this.lim = this.end;
      const len = this.varintRaw();
      if (len === INCOMPLETE) {
        const available = this.end - start;
        throw truncated(record, available + 1, available, false);
      }
      if (len === TOO_LONG) throw corrupt(record + ": length varint is longer than 10 bytes");
      if (len === OVERFLOW) throw corrupt(record + ": length varint overflows u64");
      if (len > MAX_RECORD_LEN) {
        throw corrupt(record + " claims " + fmtU64(len) + " payload bytes, more than the " + MAX_RECORD_LEN + "-byte limit");
      }
      const prefix = this.p - start;
      const left = this.end - this.p;
      if (left < len) {
        throw truncated(record, prefix + len, prefix + left, true);
      }
      this.compact = false;
      this.lim = this.p + len;
      return tag;
    }

    decodeMetadata() {
      this.record = REC.Metadata;
      const unit = this.u32("time_unit_nanos", 0);
      if (unit === 0) throw corrupt(REC.Metadata + ": time_unit_nanos is 0");
      const workerCount = this.u32("worker_count", 0);
      const startUnixNanos = this.varint("start_unix_nanos", 0);
      const pulseVersion = this.string("pulse_version");
      const flags = this.varint("flags", 0);
      const fileIndex = this.varint("file_index", 0);
      const count = this.varint("config count", 0);
      const left = this.lim - this.p;
      if (count > Math.floor(left / 2)) {
        throw corrupt(
          REC.Metadata + ": config count length " + fmtU64(count) + " runs past the end of the record (" + left + " bytes left)"
        );
      }
      const config = [];
      for (let i = 0; i < count; i++) {
        const key = this.string("config key");
        const value = this.string("config value");
        config.push([key, value]);
      }
      // Bytes after the known fields belong to later revisions.
      const hasRunDelay = flags % 2 === 1;
      this.unit = unit;
      this.hasRunDelay = hasRunDelay;
      return {
        timeUnitNanos: unit,
        workerCount,
        startUnixNanos,
        pulseVersion,
        hasRunDelay,
        fileIndex,
        config,
      };
    }

    /** Decodes the payload in p..lim of a known tag; true if it is an event. */
    decodePayload(tag) {
      switch (tag) {
        case 0x80:
          throw corrupt("second Metadata record in one file");
        case 0x81: {
          const id = this.u32("id", 0);
          if (id === 0) throw corrupt(this.record + ": id is 0");
          if (id > MAX_LOCATIONS) {
            throw corrupt(this.record + ": id " + id + " is out of range (at most " + MAX_LOCATIONS + ")");
          }
          const file = this.string("file");
          const line = this.u32("line", 0);
          const column = this.u32("column", 0);
          this.locations.sites.set(id, {
            file,
            line,
            column,
            text: file + ":" + line + ":" + column,
            gen: this.gen,
          });
          return false;
        }
        case 0x82: {
          const ticks = this.varint("ticks", 0);
          const depth = this.varint("global_queue", 0);
          this.kind = Kind.QueueSample;
          this.t = this.timestamp(ticks);
          this.globalQueue = depth;
          return true;
        }
        case 0x83: {
          const ticks = this.varint("ticks", 0);
          const worker = this.u32("worker", 0);
          const cpu = this.varint("cpu_nanos", 0);
          const rd = this.varint("run_delay_nanos", 0);
          this.kind = Kind.WorkerSample;
          this.t = this.timestamp(ticks);
          this.worker = worker;
          this.cpu = cpu;
          this.cpuI64 = i64(cpu);
          this.runDelay = this.hasRunDelay ? rd : -1;
          this.runDelayI64 = this.hasRunDelay ? i64(rd) : -1;
          return true;
        }
        case 0x84: {
          const ticks = this.varint("ticks", 0);
          const count = this.varint("count", 0);
          this.kind = Kind.EventsDropped;
          this.t = this.timestamp(ticks);
          this.count = count;
          return true;
        }
        case 0x85: {
          const ticks = this.varint("ticks", 0);
          const reason = this.varint("reason", 0);
          const detail = this.varint("detail", 0);
          const dropped = this.varint("dropped_events", 0);
          const threads = this.u32("threads_still_recording", 0);
          this.traceEnd = {
            timestamp_nanos: this.timestamp(ticks),
            reason: ["shutdown", "signal", "panic", "dump"][reason] || "reason " + reason,
            code: reason,
            // As Rust's EndReason: a detail only for a signal.
            detail: reason === 1 ? detail : 0,
            signal: reason === 1 ? detail : null,
            dropped_events: dropped,
            threads_still_recording: threads,
          };
          return false;
        }
        case 0x87: {
          const kind = this.varint("kind", 0);
          const id = this.u32("id", 0);
          if (id === 0) throw corrupt(this.record + ": id is 0");
          const table = this.locations;
          if (kind === 0) {
            const path = this.string("path");
            const buildId = this.string("build_id");
            table.stackModules.set(id, { path, buildId });
          } else if (kind === 1) {
            const module = this.u32("module", 0);
            const func = this.string("function");
            const file = this.string("file");
            const line = this.u32("line", 0);
            const flags = this.varint("flags", 0);
            table.stackFrames.set(id, {
              function: func,
              file: file === "" ? null : file,
              line: line === 0 ? null : line,
              inlined: flags % 2 === 1,
              module: module === 0 ? null : module,
              gen: this.gen,
            });
          } else if (kind === 2) {
            const flags = this.varint("flags", 0);
            const count = this.varint("frame count", 0);
            if (count > MAX_STACK_FRAMES) {
              throw corrupt(
                this.record + ": frame count " + fmtU64(count) + " is out of range (at most " + MAX_STACK_FRAMES + ")"
              );
            }
            const frames = [];
            for (let i = 0; i < count; i++) {
              const frameId = this.u32("frame", 0);
              const frame = table.stackFrames.get(frameId);
              if (frame === undefined || frame.gen !== this.gen) {
                throw corrupt("frame id " + frameId + " used before its definition (tag 0x87) in this file");
              }
              frames.push(frame);
            }
            table.stacks.set(id, { frames, truncated: flags % 2 === 1, gen: this.gen });
          }
          // Later revisions may define more kinds: skipped.
          return false;
        }
        case 0x88: {
          const ticks = this.varint("ticks", 0);
          const worker = this.u32("worker", 0);
          const kind = this.varint("kind", 0);
          const stack = this.u32("stack", 0);
          const defined = this.locations.stacks.get(stack);
          if (defined === undefined || defined.gen !== this.gen) {
            throw corrupt("stack id " + stack + " used before its definition (tag 0x87) in this file");
          }
          this.kind = Kind.StackSample;
          this.t = this.timestamp(ticks);
          this.worker = worker;
          this.stackKind = kind === 0 ? "off-cpu" : "on-cpu";
          this.stack = stack;
          return true;
        }
        case 0x8c: {
          const worker = this.u32("worker", 1);
          const latency = this.varint("latency_nanos", 0);
          // Its time is the worker's latest record's (its PollStart); a
          // worker without records in this file has no poll for it.
          const slot = this.slots.get(worker);
          if (slot === undefined) return false;
          this.kind = Kind.ScheduleLatency;
          this.t = this.timestamp(this.wTicks[slot]);
          this.worker = worker;
          this.latency = latency;
          return true;
        }
        case 0x89: {
          const id = this.u32("id", 0);
          if (id === TEXT_EMPTY || id === TEXT_OVERFLOW) {
            throw corrupt(this.record + ": id " + id + " is out of range (at most " + (TEXT_OVERFLOW - 1) + ")");
          }
          const text = this.string("text");
          this.locations.texts.set(id, { text, gen: this.gen });
          return false;
        }
        case 0x8a: {
          const worker = this.u32("worker", 0);
          const dt = this.zigzag("dt", 0);
          const t = this.workerRelative(worker, dt);
          const kind = this.varint("kind", 0);
          const change = this.zigzag("span", 0);
          // As the Rust reader: a wrapping u64 (kept as its i64 value).
          const spanI64 = wrappingAddI64(this.prevSpan.get(worker) || 0, change);
          this.prevSpan.set(worker, spanI64);
          const span = u64(spanI64);
          if (kind === 0) {
            this.spanName = this.textId("name");
            this.spanFields = this.textId("fields");
            this.kind = Kind.SpanEnter;
          } else if (kind === 1) {
            this.kind = Kind.SpanExit;
          } else if (kind === 2) {
            this.kind = Kind.SpanClose;
          } else {
            return false;
          }
          this.t = t;
          this.worker = worker;
          this.span = span;
          return true;
        }
        case 0x8b: {
          const worker = this.u32("worker", 0);
          const dt = this.zigzag("dt", 0);
          const t = this.workerRelative(worker, dt);
          this.markName = this.textId("name");
          const flags = this.varint("flags", 0);
          this.markValue = flags % 2 === 1 ? this.varint("value", 0) : -1;
          this.kind = Kind.Mark;
          this.t = t;
          this.worker = worker;
          return true;
        }
        case 0x86: {
          const ticks = this.varint("ticks", 0);
          const worker = this.u32("worker", 0);
          const tid = this.u32("tid", 0);
          const kind = this.varint("kind", 0);
          // A kind this reader does not know says nothing it can use.
          if (kind >= THREAD_KINDS.length) return false;
          this.kind = Kind.WorkerThread;
          this.t = this.timestamp(ticks);
          this.worker = worker;
          this.tid = tid;
          this.threadKind = THREAD_KINDS[kind];
          return true;
        }
        default:
          return false;
      }
    }

    /** A text id of a span or mark record, defined in this file. */
    textId(field) {
      const id = this.u32(field, 0);
      if (id === TEXT_EMPTY || id === TEXT_OVERFLOW) return id;
      const t = this.locations.texts.get(id);
      if (t === undefined || t.gen !== this.gen) {
        throw corrupt("text id " + id + " used before its definition (tag 0x89) in this file");
      }
      return id;
    }

    /** A span or mark record's time: `dt` ticks after its worker's compact clock. */
    workerRelative(worker, dt) {
      const slot = this.slots.get(worker);
      const prev = slot === undefined ? 0 : this.wTicks[slot];
      const ticks = prev + dt;
      if (ticks < 0 || ticks > U64_MAX) throw corrupt(this.record + ": timestamp overflows u64 nanoseconds");
      return this.timestamp(ticks);
    }

    // ---- compact records --------------------------------------------------

    switchWorker(worker) {
      let slot = this.slots.get(worker);
      if (slot === undefined) {
        slot = this.wTicks.length;
        if (slot >= MAX_WORKERS_PER_FILE) {
          throw corrupt("more than " + MAX_WORKERS_PER_FILE + " distinct workers in one file");
        }
        this.slots.set(worker, slot);
        this.wTicks.push(0);
        this.wTask.push(0);
        this.wCpu.push(0);
        this.wRd.push(0);
        this.wQueue.push(0);
        this.wLoc.push(-1);
      }
      this.curWorker = worker;
      this.curSlot = slot;
    }

    requireWorker() {
      if (this.curSlot < 0) {
        throw corrupt(this.record + " before any worker switch (tag 0x42) in this file");
      }
      return this.curSlot;
    }

    advance(slot, dt) {
      const ticks = this.wTicks[slot] + dt;
      if (ticks > U64_MAX) throw corrupt(this.record + ": timestamp overflows u64 nanoseconds");
      const nanos = this.timestamp(ticks);
      this.wTicks[slot] = ticks;
      return nanos;
    }

    /**
     * Poll records, the bulk of a trace. The fast path takes the common
     * shapes (inline queue change, one-byte fields, nothing out of range)
     * and hands everything else, errors included, to `pollSlow`.
     */
    poll(tag) {
      const slot = this.curSlot;
      const lim = this.lim;
      let q = this.p;
      if (slot >= 0 && (tag & 0x0f) !== 0x0f && tag !== 0x1f) {
        const b = this.b;
        // dt: a varint of up to 7 bytes (below 2^49).
        let dt = 0;
        let mul = 1;
        let x = 0x80;
        for (let i = 0; i < 7 && q < lim; i++) {
          x = b[q++];
          dt += (x & 0x7f) * mul;
          mul *= 128;
          if (x < 0x80) break;
        }
        if (x < 0x80) {
          const ticks = this.wTicks[slot] + dt;
          const nanos = ticks * this.unit;
          if (tag < 0x20) {
            const queue = this.wQueue[slot] + ((tag >>> 1) ^ -(tag & 1));
            if (queue >= 0 && queue <= U32_MAX && nanos <= MAX_SAFE) {
              this.p = q;
              this.wQueue[slot] = queue;
              this.wTicks[slot] = ticks;
              this.kind = Kind.PollEnd;
              this.t = nanos;
              this.worker = this.curWorker;
              this.localQueue = queue;
              return;
            }
          } else {
            // task: a zigzag varint of up to 4 bytes.
            let tz = 0;
            mul = 1;
            x = 0x80;
            for (let i = 0; i < 4 && q < lim; i++) {
              x = b[q++];
              tz += (x & 0x7f) * mul;
              mul *= 128;
              if (x < 0x80) break;
            }
            let loc = this.wLoc[slot];
            let ok = x < 0x80;
            if (ok && (tag & 0x10) !== 0) {
              const id = q < lim ? b[q++] : 0x80;
              if (id >= 0x80) {
                ok = false;
              } else if (id !== 0) {
                const site = this.locations.sites.get(id);
                ok = site !== undefined && site.gen === this.gen;
              }
              loc = id;
            }
            const code = tag & 0x0f;
            const queue = this.wQueue[slot] + ((code >>> 1) ^ -(code & 1));
            if (ok && loc >= 0 && queue >= 0 && queue <= U32_MAX && nanos <= MAX_SAFE) {
              this.p = q;
              const task = wrappingAddI64(this.wTask[slot], (tz >>> 1) ^ -(tz & 1));
              this.wTask[slot] = task;
              this.wLoc[slot] = loc;
              this.wQueue[slot] = queue;
              this.wTicks[slot] = ticks;
              this.kind = Kind.PollStart;
              // Task id 0 is "unknown" (Tokio's ids start at 1).
              this.taskId = Number(task) === 0 ? -1 : u64(task);
              this.taskIdI64 = task;
              this.location = loc;
              this.t = nanos;
              this.worker = this.curWorker;
              this.localQueue = queue;
              return;
            }
          }
        }
      }
      this.pollSlow(tag);
    }

    pollSlow(tag) {
      const start = (tag & 0xe0) === 0x20;
      const escape = start ? 0x0f : 0x1f;
      const newLocation = start && (tag & 0x10) !== 0;
      const code = tag & escape;
      const afterQueue = start ? 2 + (newLocation ? 1 : 0) : 1;
      const absolute = code === escape ? this.u32("local_queue", afterQueue) : -1;
      const dt = this.varint("dt", afterQueue - 1);
      let taskDelta = 0;
      let location = -1;
      if (start) {
        taskDelta = this.zigzag("task_id", newLocation ? 1 : 0);
        if (newLocation) location = this.varint("location", 0);
      }
      const slot = this.requireWorker();
      let queue;
      if (absolute >= 0) {
        queue = absolute;
      } else {
        const change = unzigzag(code);
        const previous = this.wQueue[slot];
        queue = previous + change;
        if (queue < 0 || queue > U32_MAX) {
          throw corrupt(
            this.record + ": local queue change " + (change >= 0 ? "+" : "") + change + " from " + previous + " leaves the u32 range"
          );
        }
      }
      const nanos = this.advance(slot, dt);
      if (start) {
        let id;
        if (location >= 0) {
          if (location !== 0) {
            const site = location <= U32_MAX ? this.locations.sites.get(location) : undefined;
            if (site === undefined || site.gen !== this.gen) {
              throw corrupt("spawn location id " + fmtU64(location) + " used before its definition (tag 0x81) in this file");
            }
          }
          id = location;
        } else {
          id = this.wLoc[slot];
          if (id < 0) {
            throw corrupt(
              "PollStart record repeats the previous spawn location, but its worker has none in this file"
            );
          }
        }
        this.wLoc[slot] = id;
        const task = wrappingAddI64(this.wTask[slot], taskDelta);
        this.wTask[slot] = task;
        this.kind = Kind.PollStart;
        this.taskId = Number(task) === 0 ? -1 : u64(task);
        this.taskIdI64 = task;
        this.location = id;
      } else {
        this.kind = Kind.PollEnd;
      }
      this.wQueue[slot] = queue;
      this.t = nanos;
      this.worker = this.curWorker;
      this.localQueue = queue;
    }

    park(tag) {
      const dt = this.varint("dt", 3);
      const queue = this.u32("local_queue", 2);
      const cpuDelta = this.zigzag("cpu_nanos", 1);
      const rdDelta = this.zigzag("run_delay_nanos", 0);
      const slot = this.requireWorker();
      const nanos = this.advance(slot, dt);
      this.wQueue[slot] = queue;
      const cpu = wrappingAddI64(this.wCpu[slot], cpuDelta);
      const rd = wrappingAddI64(this.wRd[slot], rdDelta);
      this.wCpu[slot] = cpu;
      this.wRd[slot] = rd;
      this.kind = tag === 0x40 ? Kind.WorkerPark : Kind.WorkerUnpark;
      this.t = nanos;
      this.worker = this.curWorker;
      this.localQueue = queue;
      this.cpu = u64(cpu);
      this.cpuI64 = cpu;
      this.runDelay = this.hasRunDelay ? u64(rd) : -1;
      this.runDelayI64 = this.hasRunDelay ? rd : -1;
    }

    /** A park or unpark without a reading (tags 0x44, 0x45). */
    parkWithoutReading(tag) {
      const dt = this.varint("dt", 1);
      const queue = this.u32("local_queue", 0);
      const slot = this.requireWorker();
      const nanos = this.advance(slot, dt);
      this.wQueue[slot] = queue;
      this.kind = tag === 0x44 ? Kind.WorkerPark : Kind.WorkerUnpark;
      this.t = nanos;
      this.worker = this.curWorker;
      this.localQueue = queue;
      this.cpu = -1;
      this.cpuI64 = -1;
      this.runDelay = -1;
      this.runDelayI64 = -1;
    }

    // ---- v5 ------------------------------------------------------------

    v5() {
      const b = this.b;
      const p = this.p;
      const code = b[p];
      let record;
      let len;
      switch (code) {
        case 0:
          record = REC.PollStart;
          len = 6;
          break;
        case 1:
          record = REC.PollEnd;
          len = 6;
          break;
        case 5:
          record = REC.PollStart;
          len = 7;
          break;
        case 6:
          record = REC.PollEnd;
          len = 7;
          break;
        case 2:
          record = REC.WorkerPark;
          len = 11;
          break;
        case 3:
          record = REC.WorkerUnpark;
          len = 11;
          break;
        case 4:
          record = REC.QueueSample;
          len = 6;
          break;
        default:
          throw corrupt("unknown v5 event code " + code + " (codes are 0 to 6)");
      }
      const available = this.end - p;
      if (available < len) throw truncated(record, len, available, true);
      const micros = b[p + 1] + b[p + 2] * 0x100 + b[p + 3] * 0x10000 + b[p + 4] * 0x1000000;
      this.t = micros * 1000;
      this.taskId = -1;
      this.taskIdI64 = -1;
      this.location = 0;
      this.runDelay = -1;
      this.runDelayI64 = -1;
      switch (code) {
        case 0:
        case 5:
          this.kind = Kind.PollStart;
          this.worker = b[p + 5];
          this.localQueue = code === 5 ? b[p + 6] : 0;
          break;
        case 1:
        case 6:
          this.kind = Kind.PollEnd;
          this.worker = b[p + 5];
          this.localQueue = code === 6 ? b[p + 6] : 0;
          break;
        case 2:
        case 3:
          this.kind = code === 2 ? Kind.WorkerPark : Kind.WorkerUnpark;
          this.worker = b[p + 5];
          this.localQueue = b[p + 6];
          this.cpu = (b[p + 7] + b[p + 8] * 0x100 + b[p + 9] * 0x10000 + b[p + 10] * 0x1000000) * 1000;
          if (this.cpu === 0) this.cpu = -1; // 0 µs: no reading
          this.cpuI64 = this.cpu;
          break;
        default:
          this.kind = Kind.QueueSample;
          this.globalQueue = b[p + 5];
      }
      this.p = p + len;
    }

    // ---- the loop ----------------------------------------------------------

    /** Decodes the next event into this decoder's fields; false at the end. */
    next() {
      if (this.failed) return false;
      const b = this.b;
      for (;;) {
        const start = this.p;
        if (start >= this.end) return false;
        this.recStart = start;
        try {
          if (this.version === 5) {
            this.v5();
            return true;
          }
          const tag = b[start];
          if (tag < 0x80) {
            const record = compactKind(tag);
            if (record === null) throw corrupt("unknown compact record tag 0x" + hex2(tag));
            this.record = record;
            this.compact = true;
            this.lim = this.end;
            this.p = start + 1;
            if (tag < 0x40) {
              this.poll(tag);
              this.traceEnd = null;
              return true;
            }
            if (tag <= 0x41) {
              this.park(tag);
              this.traceEnd = null;
              return true;
            }
            if (tag >= 0x44) {
              this.parkWithoutReading(tag);
              return true;
            }
            if (tag === 0x42) {
              this.switchWorker(this.u32("worker", 0));
            } else {
              const ticks = this.varint("ticks", 0);
              const slot = this.requireWorker();
              this.wTicks[slot] = ticks;
            }
          } else {
            this.readLengthPrefixed(start);
            const payloadEnd = this.lim;
            // Tags this version does not know are skipped whole.
            const event = tag <= 0x8c ? this.decodePayload(tag) : false;
            this.p = payloadEnd;
            if (event) {
              this.traceEnd = null;
              return true;
            }
          }
        } catch (e) {
          if (e instanceof Fail) {
            this.failed = true;
            this.p = start;
            throw this.error(start, e);
          }
          throw e;
        }
      }
    }

    /** The current event as a plain object (for tests and tooltips). */
    event() {
      const e = { type: KIND_NAMES[this.kind], timestamp_nanos: this.t };
      switch (this.kind) {
        case Kind.PollStart:
          e.worker = this.worker;
          e.local_queue = this.localQueue;
          e.task_id = this.taskId < 0 ? null : this.taskId;
          e.location = this.location === 0 ? null : this.location;
          break;
        case Kind.PollEnd:
          e.worker = this.worker;
          e.local_queue = this.localQueue;
          break;
        case Kind.WorkerPark:
        case Kind.WorkerUnpark:
          e.worker = this.worker;
          e.local_queue = this.localQueue;
          e.cpu_nanos = this.cpu < 0 ? null : this.cpu;
          e.run_delay_nanos = this.runDelay < 0 ? null : this.runDelay;
          break;
        case Kind.QueueSample:
          e.global_queue = this.globalQueue;
          break;
        case Kind.WorkerSample:
          e.worker = this.worker;
          e.cpu_nanos = this.cpu;
          e.run_delay_nanos = this.runDelay < 0 ? null : this.runDelay;
          break;
        case Kind.StackSample:
          e.worker = this.worker;
          e.kind = this.stackKind;
          e.stack = this.stack;
          break;
        case Kind.ScheduleLatency:
          e.worker = this.worker;
          e.latency_nanos = this.latency;
          break;
        case Kind.SpanEnter:
          e.worker = this.worker;
          e.span = this.span;
          e.name = this.locations.text(this.spanName);
          e.fields = this.locations.text(this.spanFields);
          break;
        case Kind.SpanExit:
        case Kind.SpanClose:
          e.worker = this.worker;
          e.span = this.span;
          break;
        case Kind.Mark:
          e.worker = this.worker;
          e.name = this.locations.text(this.markName);
          e.value = this.markValue < 0 ? null : this.markValue;
          break;
        default:
          e.count = this.count;
      }
      return e;
    }
  }

  /** A u64 read as a double, printed as an integer. */
  function fmtU64(v) {
    return v < 9007199254740992 ? String(v) : BigInt(v).toString();
  }

  /** The exact decimal u64 of a two's-complement i64 field (`taskIdI64`, ...). */
  function u64Text(i) {
    return i < 0 ? BigInt.asUintN(64, BigInt(i)).toString() : fmtU64(i);
  }

  /**
   * Decodes every event of a set of files ({ name, bytes }) in order,
   * calling `onEvent(decoder)` for each; returns { events, error, files }
   * where `error` is the first TraceError (reading stops at it, as the Rust
   * reader does) or null.
   */
  function decodeFiles(files, onEvent) {
    const locations = new LocationTable();
    const opened = [];
    let events = 0;
    for (const file of files) {
      let dec;
      try {
        dec = new FileDecoder(file.bytes, file.name, locations);
      } catch (e) {
        if (e instanceof TraceError) return { events, error: e, files: opened, locations };
        throw e;
      }
      opened.push({ name: file.name, version: dec.version, metadata: dec.metadata });
      try {
        while (dec.next()) {
          events += 1;
          if (onEvent) onEvent(dec);
        }
      } catch (e) {
        if (e instanceof TraceError) return { events, error: e, files: opened, locations };
        throw e;
      }
    }
    return { events, error: null, files: opened, locations };
  }

  return {
    Kind,
    KIND_NAMES,
    TraceError,
    LocationTable,
    FileDecoder,
    decodeFiles,
    u64Text,
    MAGIC,
    HEADER_LEN,
  };
});
