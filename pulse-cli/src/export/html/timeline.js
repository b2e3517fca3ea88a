/*
 * pulse timeline: the JavaScript mirror of the analysis's per-worker
 * timeline and CPU accounting, so the viewer shows the numbers the report,
 * the JSON and the Chrome export show for the same poll and period.
 *
 * Mirrors, name for name and rule for rule (a change there is a change
 * here; tests/tests/one_computation.rs compares the two on real traces):
 *
 * - pulse-cli/src/analysis/accounting.rs: `reading`, `split`, `settle`;
 * - pulse-cli/src/analysis/cpu.rs: `seriesAround`, `interpolate`,
 *   `estimate`, `breakdown`, `windowFigures` (the per-poll figures);
 * - pulse-cli/src/analysis/worker_timeline.rs: `WorkerTimeline` (polls,
 *   parked spans and active periods paired from one worker's events).
 *
 * Numbers are doubles: exact below 2^53, like the decoder's. "None" is
 * `null` (run-queue wait, task ids: -1 as the decoder gives them).
 */
(function (root, factory) {
  "use strict";
  if (typeof module === "object" && module.exports) {
    module.exports = factory(require("./decoder.js"));
  } else {
    root.PulseTimeline = factory(root.PulseDecoder);
  }
})(typeof self !== "undefined" ? self : this, function (D) {
  "use strict";

  const K = D.Kind;

  // ---- accounting.rs ---------------------------------------------------------

  /** The reading a decoded park, unpark or worker sample carries, or null. */
  function reading(dec) {
    if (dec.kind !== K.WorkerPark && dec.kind !== K.WorkerUnpark && dec.kind !== K.WorkerSample) return null;
    if (dec.cpu === null || dec.cpu === undefined || dec.cpu < 0) return null;
    return { t: dec.t, cpu: dec.cpu, runDelay: dec.runDelay >= 0 ? dec.runDelay : null };
  }

  const sub = (a, b) => (a > b ? a - b : 0); // saturating_sub

  /** How the stretch a..b was spent: { wall, cpu, runnable (or null), asleep }. */
  function split(a, b) {
    const wall = sub(b.t, a.t);
    const cpu = Math.min(sub(b.cpu, a.cpu), wall);
    const runnable = a.runDelay !== null && b.runDelay !== null ? Math.min(sub(b.runDelay, a.runDelay), wall - cpu) : null;
    return { wall, cpu, runnable, asleep: wall - cpu - (runnable === null ? 0 : runnable) };
  }

  /** `next` moved to when its counters say it can have been taken at the earliest. */
  function settle(prev, next) {
    if (prev === null || !(prev.t <= next.t)) return next;
    const spent = sub(next.cpu, prev.cpu) + (prev.runDelay !== null && next.runDelay !== null ? sub(next.runDelay, prev.runDelay) : 0);
    return { t: Math.max(next.t, prev.t + spent), cpu: next.cpu, runDelay: next.runDelay };
  }

  // ---- cpu.rs ----------------------------------------------------------------

  /**
   * A worker's sampler readings: t, cpu, runDelay (-1: none), series, tid
   * (-1: not named); or (pushOwn) its own park and unpark readings.
   */
  class CpuPoints {
    constructor(capacity) {
      const cap = capacity || 256;
      this.n = 0;
      this.t = new Float64Array(cap);
      this.cpu = new Float64Array(cap);
      this.rd = new Float64Array(cap);
      this.series = new Uint32Array(cap);
      this.tid = new Float64Array(cap);
      this.currentSeries = 0;
      this.currentTid = -1;
    }

    /** The sampler's readings moved to another thread (`tid`, if named). */
    nextSeries(tid) {
      this.currentSeries++;
      this.currentTid = tid === undefined || tid === null ? -1 : tid;
    }

    /**
     * A worker's own (park or unpark) reading of thread `tid`, settled
     * against the previous one of that thread (the analysis's `own`).
     */
    pushOwn(r, tid) {
      const n = this.n;
      const prev = n > 0 && this.tid[n - 1] === tid ? this.point(n - 1) : null;
      const s = settle(prev, r);
      if (n > 0 && s.t <= this.t[n - 1]) return;
      this.currentTid = tid;
      this.push(s);
    }

    /** Adds a reading; like the analysis, one not after the previous is dropped. */
    push(r) {
      const n = this.n;
      if (n > 0 && r.t <= this.t[n - 1]) return;
      if (n === this.t.length) {
        const grow = (a) => {
          const b = new a.constructor(a.length * 2);
          b.set(a);
          return b;
        };
        this.t = grow(this.t);
        this.cpu = grow(this.cpu);
        this.rd = grow(this.rd);
        this.series = grow(this.series);
        this.tid = grow(this.tid);
      }
      this.t[n] = r.t;
      this.cpu[n] = r.cpu;
      this.rd[n] = r.runDelay === null ? -1 : r.runDelay;
      this.series[n] = this.currentSeries;
      this.tid[n] = this.currentTid;
      this.n = n + 1;
    }

    point(i) {
      return { t: this.t[i], cpu: this.cpu[i], runDelay: this.rd[i] >= 0 ? this.rd[i] : null };
    }
  }

  /** First index in [lo, hi) whose value fails `pred` (Rust's partition_point). */
  function partitionPoint(arr, lo, hi, pred) {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pred(arr[mid])) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The readings of the one thread whose series holds `start`: [lo, hi).
   * Series only grow along the readings, so a series is a contiguous range.
   */
  function seriesAround(points, start) {
    const i = partitionPoint(points.t, 0, points.n, (t) => t <= start);
    const j = i > 0 ? i - 1 : i;
    if (j >= points.n) return [0, 0];
    const s = points.series[j];
    return [partitionPoint(points.series, 0, points.n, (x) => x < s), partitionPoint(points.series, 0, points.n, (x) => x <= s)];
  }

  /**
   * The readings of the series holding `start`, with the worker's own
   * readings of the same named thread from the last one at or before
   * `start` to the second after `end` merged in (cpu.rs `merged`): a
   * CpuPoints and its range [0, n).
   */
  function merged(points, own, start, end) {
    const [lo, hi] = seriesAround(points, start);
    if (hi <= lo || !own || points.tid[lo] < 0) return [points, lo, hi];
    const tid = points.tid[lo];
    const from = Math.max(partitionPoint(own.t, 0, own.n, (t) => t <= start) - 1, 0);
    const to = Math.min(partitionPoint(own.t, 0, own.n, (t) => t < end) + 2, own.n);
    const extra = [];
    for (let i = Math.min(from, to); i < to; i++) if (own.tid[i] === tid) extra.push(own.point(i));
    if (extra.length === 0) return [points, lo, hi];
    const all = [];
    for (let i = lo; i < hi; i++) all.push(points.point(i));
    // A stable sort, as the analysis's: samples before own readings at one instant.
    all.push(...extra);
    all.sort((a, b) => a.t - b.t);
    // Counters never run backwards: a reading below an earlier one's was
    // read before it (a late-stamped sample) and is left out.
    const out = new CpuPoints(all.length);
    for (const p of all) {
      const n = out.n;
      if (n > 0 && (p.cpu < out.cpu[n - 1] || (p.runDelay !== null && out.rd[n - 1] >= 0 && p.runDelay < out.rd[n - 1]))) continue;
      out.push(p);
    }
    return [out, 0, out.n];
  }

  /** The CPU reading at `x`, interpolated in [lo, hi), or null. */
  function interpolate(points, lo, hi, x) {
    const i = partitionPoint(points.t, lo, hi, (t) => t < x);
    if (i >= hi) return null;
    if (points.t[i] === x) return points.cpu[i];
    if (i - 1 < lo) return null;
    const f = (x - points.t[i - 1]) / (points.t[i] - points.t[i - 1]);
    return points.cpu[i - 1] + f * sub(points.cpu[i], points.cpu[i - 1]);
  }

  /**
   * The run-queue wait accrued by reading i, carried back from the readings
   * up to `horizon` (cpu.rs `accrued`), or null.
   */
  function accrued(points, i, horizon, hi) {
    if (i >= hi || points.rd[i] < 0) return null;
    let acc = points.rd[i];
    const last = Math.min(horizon, hi - 1);
    for (let j = i + 1; j <= last; j++) {
      if (points.rd[j] < 0) continue;
      const room = sub(sub(points.t[j], points.t[i]), sub(points.cpu[j], points.cpu[i]));
      acc = Math.max(acc, sub(points.rd[j], room));
    }
    return acc;
  }

  /** CPU time, run-queue wait and `ownLower` of start..end from [lo, hi) (cpu.rs `estimate`). */
  function estimate(points, lo, hi, start, end) {
    const P = (i) => (i >= lo && i < hi ? points.point(i) : null);
    const wall = sub(end, start);
    const firstInside = partitionPoint(points.t, lo, hi, (t) => t <= start);
    const pastInside = partitionPoint(points.t, lo, hi, (t) => t < end);
    const samples = sub(pastInside, firstInside);
    const after = pastInside + 1 < hi ? pastInside + 1 : pastInside < hi ? pastInside : null;
    const before = firstInside - 1 >= lo ? firstInside - 1 : null;
    const horizon = after !== null ? after : hi - 1;
    const acc = (i) => accrued(points, i, horizon, hi);
    const c0 = interpolate(points, lo, hi, start);
    const c1 = interpolate(points, lo, hi, end);
    let cpu;
    let runDelay;
    if (c0 !== null && c1 !== null) {
      runDelay = null;
      if (before !== null && after !== null) {
        const x = acc(before);
        if (x !== null && points.rd[after] >= 0) runDelay = sub(points.rd[after], x);
      }
      cpu = Math.max(c1 - c0, 0);
    } else if (samples >= 2) {
      const first = P(firstInside);
      const last = P(pastInside - 1);
      if (!first || !last) return null;
      const span = sub(last.t, first.t);
      if (!(span > 0)) return null;
      const scale = wall / span;
      cpu = sub(last.cpu, first.cpu) * scale;
      const a = acc(firstInside);
      const b = acc(pastInside - 1);
      runDelay = a !== null && b !== null ? sub(b, a) * scale : null;
    } else {
      return null;
    }
    cpu = Math.min(Math.round(cpu), wall);
    runDelay = runDelay === null ? null : Math.min(Math.round(runDelay), wall - cpu);
    const loI = before !== null ? before : firstInside;
    const hiI = after !== null ? after : pastInside - 1;
    let bounds = null;
    const b = P(loI);
    const a = P(hiI);
    if (b && a && b.t < a.t) {
      const outside = sub(start, b.t) + sub(a.t, end);
      const uncovered = sub(b.t, start) + sub(end, a.t);
      const x = acc(loI);
      const waited = x !== null && a.runDelay !== null ? sub(a.runDelay, x) : 0;
      bounds = { cpu: sub(a.cpu, b.cpu), waited, outside, uncovered };
    }
    let inside = 0;
    if (samples >= 2 && P(firstInside) && P(pastInside - 1)) inside = sub(P(pastInside - 1).cpu, P(firstInside).cpu);
    const cpuLower = Math.min(Math.max(bounds ? sub(bounds.cpu, bounds.outside) : 0, inside), wall);
    const offLower = bounds ? sub(sub(wall, bounds.uncovered), bounds.cpu + bounds.waited) : 0;
    return { cpu, runDelay, samples, ownLower: Math.min(cpuLower + offLower, wall) };
  }

  /** `cpu` and `runDelay` capped so the parts add up to `wall` (a CpuBreakdown). */
  function breakdown(wall, cpu, runDelay, samples) {
    cpu = Math.min(cpu, wall);
    runDelay = runDelay === null ? null : Math.min(runDelay, wall - cpu);
    return { cpu_ns: cpu, run_delay_ns: runDelay, off_cpu_ns: wall - cpu - (runDelay === null ? 0 : runDelay), samples };
  }

  /**
   * A window's CPU, run-queue and off-CPU figures from its worker's sampler
   * readings, as the analysis computes them for a poll: { figures, ownLower },
   * or null without enough readings.
   */
  function windowFigures(points, start, end, own) {
    const [p, lo, hi] = merged(points, own, start, end);
    const e = estimate(p, lo, hi, start, end);
    if (e === null) return null;
    return { figures: breakdown(sub(end, start), e.cpu, e.runDelay, e.samples), ownLower: e.ownLower };
  }

  // ---- worker_timeline.rs -------------------------------------------------------

  /**
   * One worker's timeline, fed its decoded events in their order. `onEvent`
   * returns what the event closed: { poll, park, period, unpaired, retired,
   * outOfOrder } (the object is reused: read it before the next call).
   *
   * poll: { start, end, taskId, location, localQueueStart, localQueueEnd (or
   * null), latency (its task's schedule latency, or null), ending: "ended" |
   * "cut" | "detached" | "retired" };
   * park: { start, end, before, after (readings or null), retired };
   * period: { worker, startNs, endNs, cpuNs, runDelayNs (or null), polls,
   * busyNs, measured (both readings known; viewer only) }.
   */
  class WorkerTimeline {
    constructor(worker) {
      this.worker = worker;
      this.last = null;
      this.poll = null;
      this.park = null;
      this.period = null;
      this.reading = null;
      this.sinceRuns = null;
      this.detached = null;
      this.detachedEnd = null;
      this.retiredPark = null;
      this.closed = { poll: null, park: null, period: null, unpaired: 0, retired: false, outOfOrder: false };
    }

    onEvent(dec) {
      const closed = this.closed;
      closed.poll = null;
      closed.park = null;
      closed.period = null;
      closed.unpaired = 0;
      closed.retired = false;
      closed.outOfOrder = false;
      const raw = dec.t;
      const kind = dec.kind;
      if (kind === K.WorkerThread) {
        this.onThread(dec.threadKind, raw, closed);
        return closed;
      }
      if (kind === K.ScheduleLatency) {
        // It follows its PollStart: the open poll's.
        if (this.poll !== null) this.poll.latency = dec.latency;
        return closed;
      }
      if (kind !== K.PollStart && kind !== K.PollEnd && kind !== K.WorkerPark && kind !== K.WorkerUnpark) return closed;
      if (this.sinceRuns !== null && raw < this.sinceRuns) {
        closed.retired = true;
        this.retire(dec, raw, closed);
        return closed;
      }
      if (this.sinceRuns !== null) this.sinceRuns = Math.max(this.sinceRuns, raw);
      closed.outOfOrder = this.last !== null && raw < this.last;
      const previous = this.last === null ? raw : this.last;
      const t = Math.max(raw, previous);
      this.last = t;
      if (kind === K.PollStart) {
        if (this.park !== null) {
          closed.unpaired++;
          closed.park = { start: this.park.start, end: t, before: this.park.reading, after: null, retired: false };
          this.park = null;
        }
        if (this.poll !== null) {
          closed.unpaired++;
          closed.poll = cut(this.poll, previous);
        }
        if (this.period !== null) this.period.polls++;
        this.poll = { start: t, taskId: dec.taskId, location: dec.location, localQueue: dec.localQueue, latency: null };
      } else if (kind === K.PollEnd) {
        if (this.detachedEnd === raw) {
          this.detachedEnd = null;
          return closed;
        }
        if (this.poll !== null) {
          const poll = this.poll;
          this.poll = null;
          if (this.period !== null) this.period.busy += t - poll.start;
          closed.poll = span(poll, t, dec.localQueue, "ended");
        } else {
          closed.unpaired++;
        }
      } else if (kind === K.WorkerPark) {
        if (this.poll !== null) {
          closed.unpaired++;
          closed.poll = cut(this.poll, previous);
          this.poll = null;
        }
        if (this.park !== null) {
          closed.unpaired++;
          closed.park = { start: this.park.start, end: Math.max(previous, this.park.start), before: this.park.reading, after: null, retired: false };
          this.park = null;
        }
        const r = reading(dec);
        const now = r === null ? null : settle(this.reading, r);
        if (now !== null) this.reading = now;
        if (this.period !== null) {
          const open = this.period;
          this.period = null;
          const endNs = Math.max(now === null ? t : Math.max(now.t, t), open.start);
          let cpuNs = 0;
          let runDelayNs = null;
          const measured = open.reading !== null && now !== null;
          if (measured) {
            const s = split(open.reading, now);
            cpuNs = s.cpu;
            runDelayNs = s.runnable;
          }
          closed.period = { worker: this.worker, startNs: open.start, endNs, cpuNs, runDelayNs, polls: open.polls, busyNs: open.busy, measured };
        }
        this.park = { start: t, reading: this.reading };
      } else {
        const r = reading(dec);
        const now = r === null ? null : settle(this.reading, r);
        if (now !== null) this.reading = now;
        if (this.park !== null) {
          closed.park = { start: this.park.start, end: Math.max(t, this.park.start), before: this.park.reading, after: now, retired: false };
          this.park = null;
        }
        this.period = { start: now === null ? t : Math.max(now.t, t), reading: this.reading, polls: 0, busy: 0 };
      }
      return closed;
    }

    onThread(threadKind, t, closed) {
      if (threadKind === "runs") {
        if (this.poll !== null) this.detached = this.poll;
        this.poll = null;
        this.retiredPark = this.park;
        this.park = null;
        this.sinceRuns = t;
        this.period = null;
        this.reading = null;
      } else if (threadKind === "poll_detached") {
        this.detachedEnd = t;
        let poll = this.detached;
        this.detached = null;
        if (poll === null) {
          poll = this.poll;
          this.poll = null;
        }
        if (poll !== null) closed.poll = span(poll, Math.max(t, poll.start), null, "detached");
      }
    }

    retire(dec, t, closed) {
      switch (dec.kind) {
        case K.WorkerPark:
          this.retiredPark = { start: t, reading: null };
          break;
        case K.WorkerUnpark:
          if (this.retiredPark !== null) {
            closed.park = { start: this.retiredPark.start, end: Math.max(t, this.retiredPark.start), before: null, after: null, retired: true };
            this.retiredPark = null;
          }
          break;
        case K.PollStart:
          this.detached = { start: t, taskId: dec.taskId, location: dec.location, localQueue: dec.localQueue, latency: null };
          break;
        case K.PollEnd:
          if (this.detached !== null) {
            closed.poll = span(this.detached, Math.max(t, this.detached.start), dec.localQueue, "retired");
            this.detached = null;
          }
          break;
      }
    }

    /** The open poll ({ start, taskId, location, localQueue }) or null. */
    openPoll() {
      return this.poll;
    }

    /** The start of the open park, or null. */
    openPark() {
      return this.park === null ? null : this.park.start;
    }

    /** The start of the open active period, or null. */
    openPeriod() {
      return this.period === null ? null : this.period.start;
    }
  }

  function span(poll, end, localQueueEnd, ending) {
    return {
      start: poll.start,
      end,
      taskId: poll.taskId,
      location: poll.location,
      localQueueStart: poll.localQueue,
      localQueueEnd,
      latency: poll.latency === undefined ? null : poll.latency,
      ending,
    };
  }

  function cut(poll, at) {
    return span(poll, Math.max(at, poll.start), null, "cut");
  }

  return { reading, split, settle, CpuPoints, seriesAround, merged, accrued, interpolate, estimate, breakdown, windowFigures, WorkerTimeline };
});
