/*
 * pulse viewer: an interactive timeline of a pulse trace, drawn on a canvas.
 *
 * One lane per worker: its polls coloured by duration, its parked time
 * hatched, its active periods (unpark -> park) shaded by scheduling ratio
 * (CPU time / wall time, from the park and unpark CPU readings), and its
 * local queue depth; above them the global queue depth and the points where
 * events were dropped; the analysis findings as markers, stepped through
 * with n / p.
 *
 * Scale: events are decoded straight into typed arrays (no object per
 * event), in time slices so the tab never freezes. Each worker gets a
 * pyramid of time buckets (each level 4x coarser) summarising busy time,
 * poll count, longest poll, parked and active time, CPU time and local
 * queue depth, so a frame costs a few thousand buckets per lane whatever
 * the trace's size; single polls are drawn only when few enough are in
 * view.
 *
 * Polls, parks and active periods are paired, and their CPU figures
 * computed, by timeline.js: the analysis's own rules, mirrored, so a poll
 * shows the numbers the report shows.
 *
 * No network, no build step: this file, decoder.js and timeline.js are
 * inlined into the page by `pulse html` (pulse_cli::export::html).
 */
(function (root) {
  "use strict";

  const D = root.PulseDecoder;
  const K = D.Kind;
  // The analysis's per-worker timeline and CPU accounting, mirrored.
  const T = root.PulseTimeline;

  // ---- small helpers -------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function clamp(x, lo, hi) {
    return x < lo ? lo : x > hi ? hi : x;
  }

  /** A duration in ns, e.g. "12.3 µs", "600.1 ms". */
  function fmtDur(ns) {
    if (!isFinite(ns)) return "–";
    const a = Math.abs(ns);
    if (a < 1e3) return Math.round(ns) + " ns";
    if (a < 1e6) return (ns / 1e3).toFixed(a < 1e4 ? 2 : 1) + " µs";
    if (a < 1e9) return (ns / 1e6).toFixed(a < 1e7 ? 2 : 1) + " ms";
    return (ns / 1e9).toFixed(a < 1e10 ? 3 : 2) + " s";
  }

  /** A time since the trace started, to the nanosecond: "1.234 567 890 s". */
  function fmtTime(ns) {
    const neg = ns < 0;
    ns = Math.abs(Math.round(ns));
    const s = Math.floor(ns / 1e9);
    const frac = String(ns - s * 1e9).padStart(9, "0");
    return (neg ? "-" : "") + s + "." + frac.slice(0, 3) + " " + frac.slice(3, 6) + " " + frac.slice(6) + " s";
  }

  function fmtInt(n) {
    return Number(n).toLocaleString("en-US");
  }

  function fmtPct(x) {
    return isFinite(x) ? (x * 100).toFixed(x < 0.1 ? 1 : 0) + "%" : "–";
  }

  function upperBound(arr, n, x) {
    // First index in arr[0..n) with arr[i] > x.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (arr[mid] <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function lowerBound(arr, n, x) {
    // First index in arr[0..n) with arr[i] >= x.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (arr[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function grow(arr, need) {
    if (need <= arr.length) return arr;
    let cap = arr.length * 2;
    while (cap < need) cap *= 2;
    const next = new arr.constructor(cap);
    next.set(arr);
    return next;
  }

  /** The first n elements, as a view (no copy). */
  function trim(arr, n) {
    return arr.length === n ? arr : arr.subarray(0, n);
  }

  function reserve(arr, n) {
    if (n <= arr.length) return arr;
    const next = new arr.constructor(n);
    next.set(arr);
    return next;
  }

  /** Yields to the browser so a long job never freezes the tab. */
  const yieldToBrowser = (function () {
    // Node (benchmarks) has setImmediate; browsers get a zero-delay message.
    if (typeof setImmediate === "function") return () => new Promise((r) => setImmediate(r));
    if (typeof MessageChannel === "undefined") return () => new Promise((r) => setTimeout(r, 0));
    const channel = new MessageChannel();
    const queue = [];
    channel.port1.onmessage = () => queue.shift()();
    return () =>
      new Promise((resolve) => {
        queue.push(resolve);
        channel.port2.postMessage(0);
      });
  })();

  const now = () => performance.now();

  // ---- colours -------------------------------------------------------------

  // Poll duration classes (upper bounds in ns) and their colours.
  const POLL_CLASSES = [
    [1e4, "#9ecae1", "< 10 µs"],
    [1e5, "#4a90d9", "10–100 µs"],
    [1e6, "#31a354", "0.1–1 ms"],
    [1e7, "#f2b134", "1–10 ms"],
    [1e8, "#e8601c", "10–100 ms"],
    [Infinity, "#a3001b", "≥ 100 ms"],
  ];

  // Schedule latency classes (lower bounds in ns) for the wait strip.
  const WAIT_CLASSES = [
    [1e6, "#f2b134", "waited 1–10 ms"],
    [1e7, "#e8601c", "waited 10–100 ms"],
    [1e8, "#a3001b", "waited ≥ 100 ms"],
  ];

  /** The wait class of a schedule latency, or -1 below 1 ms (or none). */
  function waitClass(ns) {
    for (let i = WAIT_CLASSES.length - 1; i >= 0; i--) if (ns >= WAIT_CLASSES[i][0]) return i;
    return -1;
  }

  function pollColor(dur) {
    for (let i = 0; i < POLL_CLASSES.length; i++) if (dur < POLL_CLASSES[i][0]) return i;
    return POLL_CLASSES.length - 1;
  }

  // Scheduling ratio: 0 (red) .. 0.5 (yellow) .. 1 (green).
  const RATIO_STOPS = [
    [0, [215, 48, 39]],
    [0.5, [254, 224, 139]],
    [1, [26, 152, 80]],
  ];
  const RATIO_COLORS = [];
  for (let i = 0; i <= 20; i++) {
    const r = i / 20;
    const [a, b] = r <= 0.5 ? [RATIO_STOPS[0], RATIO_STOPS[1]] : [RATIO_STOPS[1], RATIO_STOPS[2]];
    const f = (r - a[0]) / (b[0] - a[0]);
    const c = a[1].map((v, j) => Math.round(v + (b[1][j] - v) * f));
    RATIO_COLORS.push("rgb(" + c.join(",") + ")");
  }
  function ratioColor(r) {
    return RATIO_COLORS[Math.round(clamp(r, 0, 1) * 20)];
  }

  const VERDICTS = {
    blocked_in_poll: ["#d62728", "blocked in a poll"],
    cpu_bound_poll: ["#ff7f0e", "long CPU-bound poll"],
    descheduled: ["#7b3fb5", "descheduled by the OS"],
    parked_while_queued: ["#1f63c6", "parked while work queued"],
    long_poll: ["#8c564b", "long poll (cause unknown)"],
    block_in_place: ["#2a9d8f", "block_in_place section"],
    unparked_off_cpu: ["#b5384f", "unparked but off-CPU"],
    busy_without_parking: ["#d9822b", "busy without parking"],
  };
  function verdictColor(v) {
    return (VERDICTS[v] || ["#444", v])[0];
  }
  function verdictLabel(v) {
    return (VERDICTS[v] || ["#444", String(v).replace(/_/g, " ")])[1];
  }

  const PARKED = "#dfe2e8";
  const GLOBAL_Q = "#3b6fb6";
  const LOCAL_Q = "#7d8aa5";
  const DROPPED = "#e0001b";

  // ---- the model -------------------------------------------------------------

  /** Everything about one worker, in typed arrays. */
  class Worker {
    constructor(id) {
      this.id = id;
      const cap = 1024;
      // Polls, by start time.
      this.nPolls = 0;
      this.pStart = new Float64Array(cap);
      this.pEnd = new Float64Array(cap);
      this.pTask = new Float64Array(cap);
      this.pLoc = new Uint32Array(cap);
      this.pQ0 = new Uint32Array(cap);
      this.pQ1 = new Uint32Array(cap);
      // Each poll's schedule latency (NaN where not recorded).
      this.pLat = new Float64Array(cap);
      this.firstPoll = NaN; // the first poll's start
      // Pairs polls, parks and active periods as the analysis does.
      this.timeline = new T.WorkerTimeline(id);
      // The sampler's readings, by thread series: the per-poll figures.
      this.samples = new T.CpuPoints();
      // Its own park and unpark readings, of the thread that ran it then.
      this.own = new T.CpuPoints();
      this.runsTid = null;
      this.seenPark = false;
      // Parks (park -> unpark) and active periods (unpark -> park).
      this.nParks = 0;
      this.kStart = new Float64Array(256);
      this.kEnd = new Float64Array(256);
      this.nActive = 0;
      this.aStart = new Float64Array(256);
      this.aEnd = new Float64Array(256);
      this.aCpu = new Float64Array(256); // NaN: unknown
      this.aRd = new Float64Array(256); // NaN: unknown
      // CPU readings (park, unpark, worker samples), sorted at the end.
      this.nReadings = 0;
      this.rT = new Float64Array(256);
      this.rCpu = new Float64Array(256);
      this.rRd = new Float64Array(256);
      this.lastT = -Infinity;
      this.unordered = false;
      this.unpaired = 0;
      this.maxQ = 0;
      this.busy = 0;
      this.longest = 0;
      this.longestAt = -1;
      this.pyramid = null;
      // `tracing` spans (enter -> exit on this worker's thread, or exit on
      // another after the task moved) and marks (issue 19).
      this.spans = []; // { s, e, depth, label }, sorted by s at the end
      this.open = []; // { id, s, label } entered and not exited, outermost first
      this.spanMaxDur = 0;
      this.marks = []; // { t, label }, sorted by t at the end
    }

    enterSpan(id, t, label) {
      this.open.push({ id, s: t, label, depth: this.open.length });
    }

    /** Ends span `id` if this worker entered it; true if it did. */
    exitSpan(id, t) {
      for (let i = this.open.length - 1; i >= 0; i--) {
        const o = this.open[i];
        if (o.id !== id) continue;
        this.open.splice(i, 1);
        this.pushSpan(o, t);
        return true;
      }
      return false;
    }

    pushSpan(o, e) {
      const end = Math.max(e, o.s);
      this.spans.push({ s: o.s, e: end, depth: o.depth, label: o.label });
      if (end - o.s > this.spanMaxDur) this.spanMaxDur = end - o.s;
    }

    /** Makes room for this many polls, parks and readings in all. */
    reserve(polls, parks, readings) {
      this.pStart = reserve(this.pStart, polls);
      this.pEnd = reserve(this.pEnd, polls);
      this.pTask = reserve(this.pTask, polls);
      this.pLoc = reserve(this.pLoc, polls);
      this.pQ0 = reserve(this.pQ0, polls);
      this.pQ1 = reserve(this.pQ1, polls);
      this.kStart = reserve(this.kStart, parks);
      this.kEnd = reserve(this.kEnd, parks);
      this.aStart = reserve(this.aStart, parks);
      this.aEnd = reserve(this.aEnd, parks);
      this.aCpu = reserve(this.aCpu, parks);
      this.aRd = reserve(this.aRd, parks);
      this.rT = reserve(this.rT, readings);
      this.rCpu = reserve(this.rCpu, readings);
      this.rRd = reserve(this.rRd, readings);
    }

    reading(t, cpu, rd) {
      const n = this.nReadings;
      if (n === this.rT.length) {
        this.rT = grow(this.rT, n + 1);
        this.rCpu = grow(this.rCpu, n + 1);
        this.rRd = grow(this.rRd, n + 1);
      }
      this.rT[n] = t;
      this.rCpu[n] = cpu;
      this.rRd[n] = rd;
      this.nReadings = n + 1;
    }

    pushPark(s, e) {
      const n = this.nParks;
      if (n === this.kStart.length) {
        this.kStart = grow(this.kStart, n + 1);
        this.kEnd = grow(this.kEnd, n + 1);
      }
      this.kStart[n] = s;
      this.kEnd[n] = e;
      this.nParks = n + 1;
    }

    pushActive(s, e, cpu, rd) {
      const n = this.nActive;
      if (n === this.aStart.length) {
        this.aStart = grow(this.aStart, n + 1);
        this.aEnd = grow(this.aEnd, n + 1);
        this.aCpu = grow(this.aCpu, n + 1);
        this.aRd = grow(this.aRd, n + 1);
      }
      this.aStart[n] = s;
      this.aEnd[n] = e;
      this.aCpu[n] = cpu;
      this.aRd[n] = rd;
      this.nActive = n + 1;
    }

    pushPoll(start, end, task, loc, q0, q1, lat) {
      const n = this.nPolls;
      if (n === this.pStart.length) {
        this.pStart = grow(this.pStart, n + 1);
        this.pEnd = grow(this.pEnd, n + 1);
        this.pTask = grow(this.pTask, n + 1);
        this.pLoc = grow(this.pLoc, n + 1);
        this.pQ0 = grow(this.pQ0, n + 1);
        this.pQ1 = grow(this.pQ1, n + 1);
        this.pLat = grow(this.pLat, n + 1);
      }
      if (start < this.lastT) this.unordered = true;
      this.lastT = start;
      if (!(start >= this.firstPoll)) this.firstPoll = start;
      this.pStart[n] = start;
      this.pEnd[n] = end;
      this.pTask[n] = task;
      this.pLoc[n] = loc;
      this.pQ0[n] = q0;
      this.pQ1[n] = q1;
      this.pLat[n] = lat === null || lat === undefined ? NaN : lat;
      this.nPolls = n + 1;
    }

    /** A decoded poll, park, unpark or WorkerThread event of this worker. */
    onEvent(dec) {
      const kind = dec.kind;
      if (kind !== K.WorkerThread && kind !== K.ScheduleLatency && dec.localQueue > this.maxQ) this.maxQ = dec.localQueue;
      // dec.cpu < 0: a park or unpark without a reading (tags 0x44/0x45).
      if ((kind === K.WorkerPark || kind === K.WorkerUnpark) && dec.cpu >= 0) this.reading(dec.t, dec.cpu, dec.runDelay);
      const periodWasOpen = this.timeline.openPeriod() !== null;
      const c = this.timeline.onEvent(dec);
      if (kind === K.WorkerThread && dec.threadKind === "runs") this.runsTid = dec.tid;
      if ((kind === K.WorkerPark || kind === K.WorkerUnpark) && !c.retired && this.runsTid !== null) {
        const r = T.reading(dec);
        if (r !== null) this.own.pushOwn(r, this.runsTid);
      }
      this.unpaired += c.unpaired;
      const p = c.poll;
      if (p !== null) this.pushPoll(p.start, p.end, p.taskId, p.location, p.localQueueStart, p.localQueueEnd === null ? p.localQueueStart : p.localQueueEnd, p.latency);
      if (c.park !== null && !c.park.retired) this.pushPark(c.park.start, c.park.end);
      const a = c.period;
      if (a !== null) {
        this.pushActive(a.startNs, a.endNs, a.measured ? a.cpuNs : NaN, a.measured && a.runDelayNs !== null ? a.runDelayNs : NaN);
      } else if (kind === K.WorkerPark && !c.retired && !periodWasOpen && !this.seenPark && this.nPolls > 0) {
        // Active since before the trace began: from its first poll, with
        // the CPU estimated from the readings inside (see finish).
        this.pushActive(this.firstPoll, dec.t, NaN, NaN);
      }
      if (kind === K.WorkerPark || kind === K.WorkerUnpark) this.seenPark = true;
    }

    /** A sampler reading of this worker's thread. */
    sample(dec) {
      this.reading(dec.t, dec.cpu, dec.runDelay);
      const r = T.reading(dec);
      if (r !== null) this.samples.push(r);
    }

    /** A poll's CPU, run-queue and off-CPU figures, as the analysis computes them (or null). */
    pollFigures(i) {
      return T.windowFigures(this.samples, this.pStart[i], this.pEnd[i], this.own);
    }

    /** Closes what is open at the end of the trace and sorts what must be. */
    finish(end) {
      for (const o of this.open) this.pushSpan(o, end);
      this.open = [];
      this.spans.sort((x, y) => x.s - y.s || x.depth - y.depth);
      this.marks.sort((x, y) => x.t - y.t);
      this.markT = Float64Array.from(this.marks, (m) => m.t);
      this.rT = trim(this.rT, this.nReadings);
      this.rCpu = trim(this.rCpu, this.nReadings);
      this.rRd = trim(this.rRd, this.nReadings);
      sortPairs(this.rT, [this.rCpu, this.rRd]);
      const tl = this.timeline;
      const open = tl.openPoll();
      if (open !== null) this.pushPoll(open.start, Math.max(end, open.start), open.taskId, open.location, open.localQueue, open.localQueue, open.latency);
      if (tl.openPark() !== null) this.pushPark(tl.openPark(), Math.max(end, tl.openPark()));
      // Active when the trace ended: CPU from the readings inside.
      if (tl.openPeriod() !== null) this.pushActive(tl.openPeriod(), Math.max(end, tl.openPeriod()), NaN, NaN);
      if (!this.seenPark && this.nPolls > 0) this.pushActive(this.firstPoll, Math.max(end, this.firstPoll), NaN, NaN);
      this.estimateUnknownPeriods();
      const n = this.nPolls;
      this.pStart = trim(this.pStart, n);
      this.pEnd = trim(this.pEnd, n);
      this.pTask = trim(this.pTask, n);
      this.pLoc = trim(this.pLoc, n);
      this.pQ0 = trim(this.pQ0, n);
      this.pQ1 = trim(this.pQ1, n);
      this.pLat = trim(this.pLat, n);
      if (this.unordered) this.sortPolls();
      this.kStart = trim(this.kStart, this.nParks);
      this.kEnd = trim(this.kEnd, this.nParks);
      sortPairs(this.kStart, [this.kEnd]);
      this.aStart = trim(this.aStart, this.nActive);
      this.aEnd = trim(this.aEnd, this.nActive);
      this.aCpu = trim(this.aCpu, this.nActive);
      this.aRd = trim(this.aRd, this.nActive);
      sortPairs(this.aStart, [this.aEnd, this.aCpu, this.aRd]);
      let busy = 0;
      for (let i = 0; i < n; i++) {
        const d = this.pEnd[i] - this.pStart[i];
        busy += d;
        if (d > this.longest) {
          this.longest = d;
          this.longestAt = i;
        }
      }
      this.busy = busy;
    }

    /**
     * Active periods without CPU readings at both ends (the first one, when
     * the trace began while the worker was active, and the last, when it
     * ended so): CPU and run-queue wait from the first and last readings
     * inside them, scaled to the whole period.
     */
    estimateUnknownPeriods() {
      const n = this.nReadings;
      for (let i = 0; i < this.nActive; i++) {
        if (isFinite(this.aCpu[i])) continue;
        const s = this.aStart[i];
        const e = this.aEnd[i];
        const r0 = lowerBound(this.rT, n, s);
        const r1 = upperBound(this.rT, n, e) - 1;
        if (r0 >= n || r1 <= r0 || !(this.rT[r1] > this.rT[r0])) continue;
        const scale = (e - s) / (this.rT[r1] - this.rT[r0]);
        this.aCpu[i] = Math.max(0, this.rCpu[r1] - this.rCpu[r0]) * scale;
        const rd0 = this.rRd[r0];
        const rd1 = this.rRd[r1];
        this.aRd[i] = rd0 >= 0 && rd1 >= 0 ? Math.max(0, rd1 - rd0) * scale : NaN;
      }
    }

    sortPolls() {
      sortPairs(this.pStart, [this.pEnd, this.pTask, this.pLoc, this.pQ0, this.pQ1, this.pLat]);
    }
  }

  /** Sorts `keys` ascending and applies the same permutation to `others` (only if unsorted). */
  function sortPairs(keys, others) {
    const n = keys.length;
    let sorted = true;
    for (let i = 1; i < n; i++) {
      if (keys[i] < keys[i - 1]) {
        sorted = false;
        break;
      }
    }
    if (sorted) return;
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    idx.sort((a, b) => keys[a] - keys[b] || a - b);
    for (const arr of [keys, ...others]) {
      const copy = arr.slice();
      for (let i = 0; i < n; i++) arr[i] = copy[idx[i]];
    }
  }

  // Pyramid fields, per bucket.
  const F_BUSY = 0; // ns inside polls
  const F_POLLS = 1; // polls starting in the bucket
  const F_LONGEST = 2; // longest poll overlapping the bucket
  const F_PARKED = 3; // ns parked
  const F_ACTIVE = 4; // ns in active periods
  const F_KNOWN = 5; // ns in active periods with a CPU reading
  const F_CPU = 6; // CPU ns (active ns x ratio)
  const F_QMAX = 7; // deepest local queue
  const F_WAIT = 8; // longest schedule latency of the polls starting in the bucket
  const STRIDE = 9;
  const SUMMED = [F_BUSY, F_PARKED, F_ACTIVE, F_KNOWN, F_CPU];

  /**
   * Time buckets summarising a worker: level 0 buckets are `width` ns from
   * `origin`, each level 4x wider than the one below.
   */
  async function buildPyramid(w, origin, width, buckets) {
    const level0 = new Float32Array(buckets * STRIDE);
    const inv = 1 / width;
    const last = buckets - 1;
    const bucketOf = (t) => {
      const b = Math.floor((t - origin) * inv);
      return b < 0 ? 0 : b > last ? last : b;
    };
    // Adds the overlap of [s, e) with each bucket (times `weight`) to `field`.
    const add = (s, e, field, weight) => {
      if (!(e > s)) return;
      const b0 = bucketOf(s);
      const b1 = bucketOf(e);
      if (b0 === b1) {
        level0[b0 * STRIDE + field] += (e - s) * weight;
        return;
      }
      level0[b0 * STRIDE + field] += (origin + (b0 + 1) * width - s) * weight;
      for (let b = b0 + 1; b < b1; b++) level0[b * STRIDE + field] += width * weight;
      level0[b1 * STRIDE + field] += (e - (origin + b1 * width)) * weight;
    };
    const n = w.nPolls;
    const pStart = w.pStart;
    const pEnd = w.pEnd;
    const pQ0 = w.pQ0;
    const pQ1 = w.pQ1;
    // Local queue: the deepest depth seen in each bucket, and buckets
    // without events keep the depth of the last one.
    let qBucket = 0;
    let qDepth = 0;
    let sliceStart = now();
    for (let i = 0; i < n; i++) {
      if ((i & 0xffff) === 0xffff && now() - sliceStart > 25) {
        await yieldToBrowser();
        sliceStart = now();
      }
      const s = pStart[i];
      const e = pEnd[i];
      const d = e - s;
      const b0 = bucketOf(s);
      const b1 = bucketOf(e);
      const o0 = b0 * STRIDE;
      level0[o0 + F_POLLS] += 1;
      const lat = w.pLat[i];
      if (lat > level0[o0 + F_WAIT]) level0[o0 + F_WAIT] = lat;
      if (b0 === b1) {
        level0[o0 + F_BUSY] += d;
        if (level0[o0 + F_LONGEST] < d) level0[o0 + F_LONGEST] = d;
      } else {
        add(s, e, F_BUSY, 1);
        for (let b = b0; b <= b1; b++) {
          const o = b * STRIDE + F_LONGEST;
          if (level0[o] < d) level0[o] = d;
        }
      }
      // Depth at the start, held until the end, then the end's depth.
      if (b0 > qBucket) {
        for (let b = qBucket + 1; b <= b0; b++) {
          const o = b * STRIDE + F_QMAX;
          if (level0[o] < qDepth) level0[o] = qDepth;
        }
      }
      const q0 = pQ0[i];
      const q1 = pQ1[i];
      for (let b = b0; b <= b1; b++) {
        const o = b * STRIDE + F_QMAX;
        if (level0[o] < q0) level0[o] = q0;
      }
      const o1 = b1 * STRIDE + F_QMAX;
      if (level0[o1] < q1) level0[o1] = q1;
      qBucket = b1;
      qDepth = q1;
    }
    for (let i = 0; i < w.nParks; i++) add(w.kStart[i], w.kEnd[i], F_PARKED, 1);
    for (let i = 0; i < w.nActive; i++) {
      const s = w.aStart[i];
      const e = w.aEnd[i];
      add(s, e, F_ACTIVE, 1);
      const cpu = w.aCpu[i];
      if (isFinite(cpu) && e > s) {
        add(s, e, F_KNOWN, 1);
        add(s, e, F_CPU, clamp(cpu / (e - s), 0, 1));
      }
    }
    const levels = [level0];
    let count = buckets;
    let prev = level0;
    while (count > 1) {
      const nextCount = Math.ceil(count / 4);
      const next = new Float32Array(nextCount * STRIDE);
      for (let i = 0; i < count; i++) {
        const p = i * STRIDE;
        const o = (i >> 2) * STRIDE;
        next[o + F_BUSY] += prev[p + F_BUSY];
        next[o + F_POLLS] += prev[p + F_POLLS];
        next[o + F_PARKED] += prev[p + F_PARKED];
        next[o + F_ACTIVE] += prev[p + F_ACTIVE];
        next[o + F_KNOWN] += prev[p + F_KNOWN];
        next[o + F_CPU] += prev[p + F_CPU];
        if (next[o + F_LONGEST] < prev[p + F_LONGEST]) next[o + F_LONGEST] = prev[p + F_LONGEST];
        if (next[o + F_QMAX] < prev[p + F_QMAX]) next[o + F_QMAX] = prev[p + F_QMAX];
        if (next[o + F_WAIT] < prev[p + F_WAIT]) next[o + F_WAIT] = prev[p + F_WAIT];
      }
      levels.push(next);
      prev = next;
      count = nextCount;
    }
    return { origin, width, levels };
  }

  /** A (time, value) series with max-of-block levels for drawing many points. */
  class Series {
    constructor() {
      this.n = 0;
      this.t = new Float64Array(256);
      this.v = new Float64Array(256);
      this.levels = null;
    }
    push(t, v) {
      const n = this.n;
      if (n === this.t.length) {
        this.t = grow(this.t, n + 1);
        this.v = grow(this.v, n + 1);
      }
      this.t[n] = t;
      this.v[n] = v;
      this.n = n + 1;
    }
    finish() {
      this.t = trim(this.t, this.n);
      this.v = trim(this.v, this.n);
      sortPairs(this.t, [this.v]);
      // levels[k][i] = max of v over points [i*4^(k+1), (i+1)*4^(k+1))
      this.levels = [];
      let prev = this.v;
      while (prev.length > 4) {
        const next = new Float64Array(Math.ceil(prev.length / 4));
        for (let i = 0; i < prev.length; i++) if (prev[i] > next[i >> 2]) next[i >> 2] = prev[i];
        this.levels.push(next);
        prev = next;
      }
    }
    /** The largest value among points i0..i1 (exclusive). */
    max(i0, i1) {
      let m = -Infinity;
      const levels = this.levels;
      while (i0 < i1) {
        // The largest aligned block starting at i0 that fits.
        let k = 0;
        let size = 1;
        while (k < levels.length && i0 % (size * 4) === 0 && i0 + size * 4 <= i1) {
          k++;
          size *= 4;
        }
        const x = (k === 0 ? this.v : levels[k - 1])[i0 / size];
        if (x > m) m = x;
        i0 += size;
      }
      return m;
    }
    /** The value of the last point at or before t. */
    at(t) {
      const i = upperBound(this.t, this.n, t) - 1;
      return i >= 0 ? this.v[i] : NaN;
    }
  }

  /** Decodes files into a model, in time slices. */
  class ModelBuilder {
    constructor() {
      this.workers = new Map();
      this.globalQueue = new Series();
      this.dropped = new Series();
      this.counts = D.KIND_NAMES.map(() => 0);
      this.events = 0;
      this.first = Infinity;
      this.last = -Infinity;
      this.files = [];
      this.error = null;
      this.locations = new D.LocationTable();
      this.droppedTotal = 0;
      this.traceEnd = null;
      // `pulse html --from/--to`: only events inside [lo, hi] are kept.
      this.lo = -Infinity;
      this.hi = Infinity;
    }

    worker(id) {
      let w = this.workers.get(id);
      if (w === undefined) {
        w = new Worker(id);
        this.workers.set(id, w);
      }
      return w;
    }

    /** Decodes `files` ({name, bytes}), calling progress(done, total) between slices. */
    async decode(files, progress) {
      const total = files.reduce((n, f) => n + f.bytes.length, 0);
      let before = 0;
      for (const file of files) {
        let dec;
        try {
          dec = new D.FileDecoder(file.bytes, file.name, this.locations);
        } catch (e) {
          if (!(e instanceof D.TraceError)) throw e;
          this.error = e;
          return;
        }
        this.files.push({ name: file.name, bytes: file.bytes.length, version: dec.version, metadata: dec.metadata });
        let reserved = false;
        for (;;) {
          let done;
          try {
            done = this.slice(dec, 30);
          } catch (e) {
            if (!(e instanceof D.TraceError)) throw e;
            this.error = e;
            return;
          }
          if (done) break;
          // After the first slice, make room for the rest of the set at the
          // rate seen so far, instead of growing arrays again and again.
          const seen = before + dec.offset;
          if (!reserved && seen > 0 && seen < total / 2) {
            reserved = true;
            const scale = (total / seen) * 1.1;
            for (const w of this.workers.values()) {
              w.reserve(Math.ceil(w.nPolls * scale) + 1024, Math.ceil(w.nActive * scale) + 256, Math.ceil(w.nReadings * scale) + 256);
            }
          }
          if (progress) progress(before + dec.offset, total, this.events);
          await yieldToBrowser();
        }
        before += file.bytes.length;
        file.bytes = null; // let the bytes go
        if (progress) progress(before, total, this.events);
      }
    }

    /** Decodes events for about `budget` ms; true when the file is done. */
    slice(dec, budget) {
      const start = now();
      const counts = this.counts;
      let first = this.first;
      let last = this.last;
      let events = this.events;
      let w = null;
      let wid = -1;
      const lo = this.lo;
      const hi = this.hi;
      try {
        for (;;) {
          for (let i = 0; i < 8192; i++) {
            if (!dec.next()) {
              // The last file's end record says how the recording ended.
              this.traceEnd = dec.traceEnd;
              return true;
            }
            const t = dec.t;
            if (t < lo || t > hi) continue;
            events++;
            const kind = dec.kind;
            counts[kind]++;
            if (t < first) first = t;
            if (t > last) last = t;
            switch (kind) {
              case K.PollStart:
              case K.PollEnd:
              case K.WorkerPark:
              case K.WorkerUnpark:
                if (dec.worker !== wid) {
                  wid = dec.worker;
                  w = this.worker(wid);
                }
                w.onEvent(dec);
                break;
              case K.QueueSample:
                this.globalQueue.push(t, dec.globalQueue);
                break;
              case K.WorkerSample:
                this.worker(dec.worker).sample(dec);
                wid = -1;
                break;
              case K.WorkerThread:
                // Which OS thread runs the worker: the sampler's readings
                // start a new series, or the timeline follows a hand-over.
                if (dec.threadKind === "sampled") this.worker(dec.worker).samples.nextSeries(dec.tid);
                else this.worker(dec.worker).onEvent(dec);
                wid = -1;
                break;
              case K.StackSample:
                // Stacks of long polls: `pulse analyze` shows them; the
                // viewer counts them only.
                break;
              case K.ScheduleLatency:
                // The latency of the worker's open poll (it follows its
                // PollStart).
                this.worker(dec.worker).onEvent(dec);
                break;
              case K.SpanEnter: {
                const name = this.locations.text(dec.spanName) ?? "span";
                const fields = this.locations.text(dec.spanFields) ?? "";
                this.worker(dec.worker).enterSpan(dec.span, t, fields === "" ? name : name + "{" + fields + "}");
                wid = -1;
                break;
              }
              case K.SpanExit:
                // A span exited on another worker than the one that
                // entered it (its task moved) ends on the entering one.
                if (!this.worker(dec.worker).exitSpan(dec.span, t)) {
                  for (const other of this.workers.values()) if (other.exitSpan(dec.span, t)) break;
                }
                wid = -1;
                break;
              case K.SpanClose:
                break;
              case K.Mark: {
                const name = this.locations.text(dec.markName) ?? "mark";
                const label = dec.markValue < 0 ? name : name + "=" + dec.markValue;
                this.worker(dec.worker).marks.push({ t, label });
                wid = -1;
                break;
              }
              default:
                this.dropped.push(t, dec.count);
                this.droppedTotal += dec.count;
            }
          }
          if (now() - start > budget) return false;
        }
      } finally {
        this.first = first;
        this.last = last;
        this.events = events;
      }
    }

    /** Closes open intervals, sorts, and builds the pyramids, in slices. */
    async finish(progress) {
      if (this.events === 0) {
        this.first = 0;
        this.last = 0;
      }
      const end = this.last;
      const workers = [...this.workers.values()].sort((a, b) => a.id - b.id);
      for (const w of workers) {
        w.finish(end);
        await yieldToBrowser();
      }
      this.globalQueue.finish();
      this.dropped.finish();
      const span = Math.max(1, this.last - this.first);
      let maxPolls = 0;
      for (const w of workers) maxPolls = Math.max(maxPolls, w.nPolls, w.nActive);
      // About 4 polls per finest bucket, within [1024, 2^18] buckets.
      const target = clamp(Math.ceil(maxPolls / 4), 1024, 1 << 18);
      let width = Math.pow(2, Math.ceil(Math.log2(span / target)));
      if (!(width >= 1)) width = 1;
      const buckets = Math.floor(span / width) + 1;
      for (let i = 0; i < workers.length; i++) {
        workers[i].pyramid = await buildPyramid(workers[i], this.first, width, buckets);
        if (progress) progress(i + 1, workers.length);
        await yieldToBrowser();
      }
      return {
        workers,
        globalQueue: this.globalQueue,
        dropped: this.dropped,
        droppedTotal: this.droppedTotal,
        traceEnd: this.traceEnd,
        counts: this.counts,
        events: this.events,
        first: this.first,
        last: this.last,
        files: this.files,
        error: this.error,
        locations: this.locations,
      };
    }
  }

  // ---- findings ----------------------------------------------------------------

  /** Normalises findings from `pulse html`, `pulse analyze --json`, or a plain array. */
  function readFindings(json) {
    if (json === null || json === undefined) return null;
    if (Array.isArray(json)) {
      if (json.length > 0 && json[0] && Array.isArray(json[0].findings)) {
        return json.flatMap((a) => a.findings);
      }
      return json;
    }
    if (Array.isArray(json.findings)) return json.findings;
    return null;
  }

  /** Evidence lines for a finding, from the analysis' fields. */
  function evidence(f) {
    if (Array.isArray(f.evidence)) return f.evidence.map(String);
    const lines = [];
    if (f.task_id !== null && f.task_id !== undefined) {
      lines.push("task " + f.task_id + (f.spawned_at ? " spawned at " + f.spawned_at : ""));
    }
    if (f.cpu) {
      const c = f.cpu;
      let s = "on CPU " + fmtDur(c.cpu_ns);
      if (c.run_delay_ns !== null && c.run_delay_ns !== undefined) s += ", waiting for a CPU " + fmtDur(c.run_delay_ns);
      s += ", off CPU " + fmtDur(c.off_cpu_ns) + " (" + c.samples + " readings)";
      lines.push(s);
    }
    if (f.local_queue_start !== null && f.local_queue_start !== undefined) {
      lines.push("local queue " + f.local_queue_start + " → " + f.local_queue_end);
    }
    if (f.next_task_id !== null && f.next_task_id !== undefined) {
      lines.push("stuck behind it: task " + f.next_task_id + (f.next_spawned_at ? " (" + f.next_spawned_at + ")" : ""));
    }
    if (f.other_workers_parked !== null && f.other_workers_parked !== undefined) {
      lines.push("other workers parked " + fmtPct(f.other_workers_parked) + " of the time");
    }
    if (f.queued_on) {
      const where = f.queued_on === "global" ? "the global queue" : "worker " + f.queued_on.worker + "'s local queue";
      lines.push("work queued on " + where + (f.queue_depth_max !== null && f.queue_depth_max !== undefined ? ", up to " + f.queue_depth_max : ""));
    }
    if (f.global_queue_max !== null && f.global_queue_max !== undefined) lines.push("global queue up to " + f.global_queue_max);
    if (f.parked_ns !== null && f.parked_ns !== undefined) lines.push("parked " + fmtDur(f.parked_ns) + " in all");
    if (f.wake_wait_ns) lines.push("then waited " + fmtDur(f.wake_wait_ns) + " for a CPU");
    if (f.ongoing) lines.push("still running when the trace ended");
    if (f.stack && Array.isArray(f.stack.frames)) lines.push(...stackLines(f.stack));
    return lines;
  }

  /** A stack frame as `pulse analyze` prints it: `function (file:line)`. */
  function frameText(fr) {
    let s = String(fr.function);
    if (fr.file) s += " (" + fr.file + (fr.line !== null && fr.line !== undefined ? ":" + fr.line : "") + ")";
    return s;
  }

  /**
   * A finding's stack (its most frequent sample, as the analysis chose it):
   * the user's innermost frame, then the innermost frames down to it, with
   * runs of library frames folded, as `pulse analyze` prints them.
   */
  function stackLines(st) {
    const share = "[" + st.kind + ", " + st.samples + " of " + st.total_samples + " stack samples]";
    const user = Number.isInteger(st.user_frame) ? st.frames[st.user_frame] : null;
    const lines = [user ? "in your code: " + frameText(user) + " " + share : "no frame of your code in the stack " + share];
    const last = Math.min(st.frames.length, (user ? st.user_frame : 0) + 3);
    const parts = [];
    let folded = 0;
    for (let i = 0; i < last; i++) {
      const fr = st.frames[i];
      if (fr.user || i === 0 || i + 1 === st.user_frame) {
        if (folded > 0) parts.push("… " + folded + " library frame(s)");
        folded = 0;
        parts.push((i === st.user_frame ? "» " : "") + frameText(fr));
      } else folded += 1;
    }
    const rest = folded + st.frames.length - last;
    if (rest > 0) parts.push("… " + rest + " more frame(s)");
    lines.push("stack, innermost first: " + parts.join(" ← ") + (st.truncated ? " (unwinding stopped early)" : ""));
    return lines;
  }

  /** Long polls as markers, when no analysis came with the trace. */
  function longPollMarkers(model, threshold) {
    const out = [];
    for (const w of model.workers) {
      for (let i = 0; i < w.nPolls; i++) {
        const d = w.pEnd[i] - w.pStart[i];
        if (d >= threshold) {
          out.push({
            verdict: "long_poll",
            worker: w.id,
            start_ns: w.pStart[i],
            end_ns: w.pEnd[i],
            duration_ns: d,
            task_id: w.pTask[i] >= 0 ? w.pTask[i] : null,
            spawned_at: w.pLoc[i] ? model.locations.get(w.pLoc[i]) : null,
            evidence: ["a poll of at least " + fmtDur(threshold) + "; add the analysis (pulse analyze --json) for its cause"],
          });
          if (out.length >= 10000) return out;
        }
      }
    }
    return out.sort((a, b) => a.start_ns - b.start_ns);
  }

  // ---- the view ---------------------------------------------------------------------

  const LABEL_W = 96;
  const AXIS_H = 30;
  const QUEUE_H = 58;
  // Lane geometry: lanes grow to fill the window when there are few workers.
  let LANE_H = 64;
  const RATIO_Y = 3;
  const RATIO_H = 8;
  const POLL_Y = 13;
  let POLL_H = 24;
  let LQ_Y = 40;
  let LQ_H = 20;

  function setLaneHeight(h) {
    LANE_H = Math.round(clamp(h, 64, 132));
    POLL_H = Math.round((LANE_H - POLL_Y - 6) * 0.55);
    LQ_Y = POLL_Y + POLL_H + 3;
    LQ_H = LANE_H - LQ_Y - 4;
    SPAN_H = Math.max(4, Math.floor((LQ_H - 2) / SPAN_DEPTHS) - 1);
  }
  // Span bars (issue 19): nested rows over the local-queue band.
  const SPAN_DEPTHS = 3;
  let SPAN_H = 5;
  const SPAN_COLORS = ["#7b5ea7", "#9d7cc9", "#b99be0"];
  const MARK_COLOR = "#e07b00";
  // More spans than this in view are not drawn (a label says to zoom in).
  const SPAN_DRAW_LIMIT = 20000;
  const RAW_LIMIT = 4000;
  // Findings narrower than this (px) gather into one marker per column this wide.
  const MARKER_BIN = 6;

  class Viewer {
    constructor() {
      this.model = null;
      this.findings = [];
      this.current = -1;
      this.t0 = 0;
      this.t1 = 1;
      this.dirty = false;
      this.hover = null;
      this.markers = [];
      this.lanes = [];
      this.errors = [];
      this.state = "empty";
      this.timings = {};
      this.canvas = $("canvas");
      this.ctx = this.canvas.getContext("2d");
      this.width = 0;
      this.height = 0;
      this.hatch = null;
      this.findingsSource = "none";
      this.bind();
    }

    // --- loading ---

    async load(files, findingsJson) {
      const t0 = now();
      this.state = "loading";
      $("drop").hidden = true;
      this.tooltip(null);
      this.status("Reading " + files.map((f) => f.name).join(", ") + " …", true);
      const builder = new ModelBuilder();
      this.builder = builder;
      if (this.window) {
        builder.lo = this.window[0];
        builder.hi = this.window[1];
      }
      await builder.decode(files, (done, total, events) => {
        this.progress("Decoding: " + fmtInt(events) + " events", done / Math.max(1, total));
      });
      const t1 = now();
      const building = (done, total) =>
        this.progress("Building the timeline of " + fmtInt(builder.events) + " events: " + Math.round((100 * done) / Math.max(1, total)) + " %", done / Math.max(1, total));
      building(0, 1);
      const model = await builder.finish(building);
      this.builder = null;
      const t2 = now();
      this.model = model;
      const findings = readFindings(findingsJson);
      if (findings) {
        this.findingsSource = "analysis";
        this.findings = findings.slice().sort((a, b) => a.start_ns - b.start_ns);
      } else {
        this.findingsSource = "long polls";
        this.findings = longPollMarkers(model, 10e6);
      }
      this.current = -1;
      this.renderSummary();
      this.renderFindings();
      this.fit();
      this.layout();
      this.draw();
      const t3 = now();
      this.timings = {
        decode_ms: t1 - t0,
        build_ms: t2 - t1,
        first_draw_ms: t3 - t2,
        total_ms: t3 - t0,
        events: model.events,
        marks: { decode: t0, build: t1, draw: t2, done: t3 },
      };
      if (model.error) {
        const e = model.error;
        this.status(
          (e.isTruncation ? "The trace ends mid-record (the recording was cut short); showing everything before it: " : "Reading stopped at a bad record; showing everything before it: ") + e.message,
          false,
          true
        );
      } else {
        const rel = this.windowSinceStart;
        const cut = this.window
          ? " (only " + (rel ? fmtDur(rel[0]) + " → " + fmtDur(rel[1]) + " after the trace's start" : "a window of the trace") + ", cut by pulse html --from/--to)"
          : "";
        this.status(
          "Loaded " + fmtInt(model.events) + " events" + cut + " in " + fmtDur((t3 - t0) * 1e6) + ". Wheel or w/s to zoom, drag or a/d to pan, hover for details, n/p for findings.",
          false
        );
      }
      this.state = "ready";
    }

    async loadEmbedded() {
      const blocks = document.querySelectorAll('script[type="application/x-pulse-trace"]');
      if (blocks.length === 0) return false;
      const t0 = now();
      // Each file comes in parts (script elements) of base64, in order.
      const parts = new Map();
      for (const block of blocks) {
        const name = block.dataset.name;
        if (!parts.has(name)) parts.set(name, []);
        parts.get(name).push(block);
      }
      const files = [];
      for (const [name, blocks] of parts) {
        this.progress("Unpacking " + name, 0);
        files.push({ name, bytes: await unpackBase64(blocks, (f) => this.progress("Unpacking " + name, f)) });
      }
      const json = document.getElementById("pulse-findings");
      let findings = null;
      if (json) findings = JSON.parse(json.textContent);
      const metaBlock = document.getElementById("pulse-meta");
      const meta = metaBlock ? JSON.parse(metaBlock.textContent) : {};
      if (meta.name) $("trace-name").textContent = meta.name;
      this.omitted = meta.findings_omitted || 0;
      this.window = Array.isArray(meta.window) ? meta.window : null;
      this.windowSinceStart = Array.isArray(meta.window_since_start) ? meta.window_since_start : null;
      const unpacked = now() - t0;
      await this.load(files, findings);
      this.timings.unpack_ms = unpacked;
      this.timings.marks.unpack = t0;
      this.timings.total_ms += unpacked;
      return true;
    }

    async loadDropped(fileList) {
      const traces = [];
      let findings = null;
      try {
        for (const file of fileList) {
          const bytes = new Uint8Array(await file.arrayBuffer());
          if (file.name.endsWith(".json") || bytes[0] === 0x7b || bytes[0] === 0x5b) {
            findings = JSON.parse(new TextDecoder().decode(bytes));
          } else {
            traces.push({ name: file.name, bytes });
          }
        }
      } catch (e) {
        this.status("Could not read the dropped files: " + e.message, false, true);
        return;
      }
      if (traces.length === 0) {
        if (findings && this.model) {
          this.findings = (readFindings(findings) || []).slice().sort((a, b) => a.start_ns - b.start_ns);
          this.findingsSource = "analysis";
          this.renderFindings();
          this.draw();
        }
        return;
      }
      // A rotated set: file order is NAME.<index>.EXT order.
      const index = (name) => {
        const m = /\.(\d+)(\.[^.]*)?$/.exec(name);
        return m ? Number(m[1]) : -1;
      };
      traces.sort((a, b) => index(a.name) - index(b.name) || (a.name < b.name ? -1 : 1));
      $("trace-name").textContent = traces.map((t) => t.name).join(", ");
      await this.load(traces, findings);
    }

    status(text, busy, error) {
      const s = $("status");
      s.className = error ? "error" : "";
      s.textContent = text;
      if (busy) s.appendChild(el("progress"));
    }

    progress(text, fraction) {
      const s = $("status");
      let p = s.querySelector("progress");
      if (!p || s.firstChild.nodeValue !== text) {
        s.className = "";
        s.textContent = text;
        p = el("progress", { max: "1" });
        s.appendChild(p);
      }
      p.value = fraction;
    }

    // --- summary, legend, findings ---

    renderSummary() {
      const m = this.model;
      const s = $("summary");
      s.textContent = "";
      const item = (key, label, value, title, warn) => {
        const d = el("div", { class: "item" + (warn ? " warn" : ""), "data-summary": key });
        if (title) d.title = title;
        d.appendChild(el("span", { class: "k" }, label));
        d.appendChild(el("span", { class: "v" }, value));
        s.appendChild(d);
        return d;
      };
      item("duration", "duration", fmtDur(m.last - m.first), fmtTime(m.first) + " → " + fmtTime(m.last));
      item("workers", "workers", String(m.workers.length));
      const events = item("events", "events", fmtInt(m.events));
      events.dataset.count = String(m.events);
      const dropped = item(
        "dropped",
        "dropped events",
        fmtInt(m.droppedTotal) + (m.dropped.n ? " at " + m.dropped.n + (m.dropped.n === 1 ? " point" : " points") : ""),
        "Events the recorder lost because its writer fell behind or failed; red lines mark where.",
        m.droppedTotal > 0
      );
      dropped.dataset.count = String(m.droppedTotal);
      if (m.traceEnd && m.traceEnd.threads_still_recording === 0) {
        const how = m.traceEnd.reason + (m.traceEnd.signal ? " " + m.traceEnd.signal : "");
        item("ended", "ended", how, "The recording ended on purpose and wrote everything it held.");
      } else if (m.traceEnd) {
        item(
          "ended",
          "ended",
          "with " + m.traceEnd.threads_still_recording + " threads still running",
          "The recording ended while runtime threads were still running (its guard was dropped before the runtime): what they did afterwards is missing.",
          true
        );
      } else {
        item(
          "ended",
          "ended",
          "without shutdown",
          "ended without shutdown (killed, crashed or still running); events after " + fmtTime(m.last) + " may be missing",
          true
        );
      }
      const meta = m.files.length ? m.files[0].metadata : null;
      item("format", "format", "v" + (m.files.length ? m.files[0].version : "?") + (meta ? ", " + meta.timeUnitNanos + " ns ticks" : ""));
      if (meta && meta.startUnixNanos) {
        item("start", "recorded", new Date(meta.startUnixNanos / 1e6).toISOString().replace("T", " ").replace("Z", " UTC"));
      }
      const det = el("details");
      det.appendChild(el("summary", null, "events by type, files"));
      const table = el("table");
      for (let k = 0; k < D.KIND_NAMES.length; k++) {
        const tr = el("tr", { "data-kind": D.KIND_NAMES[k], "data-count": String(m.counts[k]) });
        tr.appendChild(el("td", null, D.KIND_NAMES[k]));
        tr.appendChild(el("td", null, fmtInt(m.counts[k])));
        table.appendChild(tr);
      }
      for (const f of m.files) {
        const tr = el("tr", { "data-file": f.name });
        tr.appendChild(el("td", null, f.name));
        tr.appendChild(el("td", null, fmtInt(f.bytes) + " bytes, v" + f.version + (f.metadata ? ", pulse " + f.metadata.pulseVersion : "")));
        table.appendChild(tr);
      }
      det.appendChild(table);
      s.appendChild(det);
      if (m.error) {
        const d = item("error", m.error.isTruncation ? "truncated" : "error", "at byte " + m.error.offset, m.error.message, true);
        d.dataset.message = m.error.message;
      }
    }

    renderLegend() {
      const L = $("legend");
      L.textContent = "";
      const group = (title) => {
        const g = el("span", { class: "group" });
        g.appendChild(el("span", null, title));
        L.appendChild(g);
        return g;
      };
      const sw = (g, color, label, cls) => {
        const s = el("span");
        const b = el("span", { class: "sw" + (cls ? " " + cls : "") });
        if (color) b.style.background = color;
        s.appendChild(b);
        s.appendChild(document.createTextNode(label));
        g.appendChild(s);
      };
      const polls = group("polls:");
      for (const [, color, label] of POLL_CLASSES) sw(polls, color, label);
      const ratio = group("active, CPU / wall:");
      const grad = el("span", { class: "grad" });
      grad.style.background = "linear-gradient(to right, " + RATIO_COLORS[0] + ", " + RATIO_COLORS[10] + ", " + RATIO_COLORS[20] + ")";
      ratio.appendChild(el("span", null, "0"));
      ratio.appendChild(grad);
      ratio.appendChild(el("span", null, "1"));
      const other = group("");
      sw(other, null, "parked", "hatch");
      sw(other, GLOBAL_Q, "global queue");
      sw(other, LOCAL_Q, "local queue");
      sw(other, DROPPED, "events dropped");
      const f = group("findings:");
      for (const key of Object.keys(VERDICTS)) sw(f, VERDICTS[key][0], VERDICTS[key][1]);
    }

    renderFindings() {
      const list = $("finding-list");
      list.textContent = "";
      const stale = document.getElementById("findings-omitted");
      if (stale) stale.remove();
      const fs = this.findings;
      $("finding-count").textContent = fs.length ? "(" + fs.length + ")" : "";
      $("finding-note").textContent =
        this.findingsSource === "analysis"
          ? fs.length
            ? "From pulse's analysis. Click one, or step with n / p."
            : "pulse's analysis found nothing to report."
          : fs.length
          ? "Long polls (≥ 10 ms). For verdicts, open the trace with `pulse html`, or drop the JSON of `pulse analyze --json` here too."
          : "No poll of 10 ms or more. For verdicts, open the trace with `pulse html`.";
      if (this.omitted > 0 && this.findingsSource === "analysis") {
        const last = fs.reduce((m, f) => Math.max(m, f.end_ns), -Infinity);
        const note = el(
          "div",
          { class: "note warn", id: "findings-omitted", "data-count": String(this.omitted) },
          fmtInt(this.omitted) +
            " more findings were left out: the analysis lists at most " +
            fmtInt(fs.length) +
            (isFinite(last) && this.model ? ", so there are no markers after " + fmtDur(last - this.model.first) : "") +
            ". To see them, cut a window there: pulse html TRACE --from START --to END."
        );
        list.before(note);
      }
      const shown = Math.min(fs.length, 2000);
      for (let i = 0; i < shown; i++) {
        const f = fs[i];
        const li = el("li", { "data-index": String(i), "data-verdict": f.verdict, "data-worker": String(f.worker) });
        li.style.borderLeftColor = verdictColor(f.verdict);
        li.appendChild(el("div", { class: "v" }, verdictLabel(f.verdict)));
        li.appendChild(
          el("div", { class: "w" }, "worker " + f.worker + " · at " + (f.start_ns / 1e9).toFixed(3) + " s · for " + fmtDur(f.end_ns - f.start_ns))
        );
        const ev = evidence(f);
        if (ev.length) li.appendChild(el("div", { class: "e" }, ev.join("; ")));
        li.addEventListener("click", () => this.focusFinding(i));
        list.appendChild(li);
      }
      if (fs.length > shown) list.appendChild(el("li", null, "… and " + (fs.length - shown) + " more (step with n / p)"));
      this.updateFindingButtons();
    }

    updateFindingButtons() {
      const n = this.findings.length;
      $("prev-finding").disabled = n === 0;
      $("next-finding").disabled = n === 0;
      $("finding-pos").textContent = n === 0 ? "–" : (this.current >= 0 ? this.current + 1 : "–") + " / " + n;
      for (const li of $("finding-list").children) li.classList.toggle("current", Number(li.dataset.index) === this.current);
    }

    focusFinding(i) {
      const n = this.findings.length;
      if (n === 0) return;
      this.current = ((i % n) + n) % n;
      const f = this.findings[this.current];
      const d = Math.max(f.end_ns - f.start_ns, 1e5);
      this.setView(f.start_ns - this.model.first - d * 0.6, f.end_ns - this.model.first + d * 0.6);
      this.updateFindingButtons();
      const li = $("finding-list").querySelector('li[data-index="' + this.current + '"]');
      if (li) li.scrollIntoView({ block: "nearest" });
      const lane = this.lanes.find((l) => l.worker === f.worker);
      if (lane) {
        const tl = $("timeline");
        if (lane.y < tl.scrollTop + AXIS_H + QUEUE_H || lane.y + LANE_H > tl.scrollTop + tl.clientHeight) {
          tl.scrollTop = Math.max(0, lane.y - AXIS_H - QUEUE_H - 10);
        }
      }
    }

    // --- view state ---

    span() {
      return Math.max(1, this.model.last - this.model.first);
    }

    fit() {
      const s = this.span();
      this.setView(-s * 0.01, s * 1.01);
    }

    setView(t0, t1) {
      const s = this.span();
      const minW = 200; // ns across the whole width
      let w = clamp(t1 - t0, minW, s * 1.5);
      let c = (t0 + t1) / 2;
      c = clamp(c, -s * 0.25, s * 1.25);
      this.t0 = c - w / 2;
      this.t1 = c + w / 2;
      this.request();
    }

    zoom(factor, atX) {
      const tw = this.t1 - this.t0;
      const f = atX === undefined ? 0.5 : clamp((atX - LABEL_W) / (this.width - LABEL_W), 0, 1);
      const at = this.t0 + tw * f;
      const nw = tw * factor;
      this.setView(at - nw * f, at - nw * f + nw);
    }

    pan(fraction) {
      const tw = this.t1 - this.t0;
      this.setView(this.t0 + tw * fraction, this.t1 + tw * fraction);
    }

    request() {
      if (this.dirty) return;
      this.dirty = true;
      requestAnimationFrame(() => {
        this.dirty = false;
        this.draw();
      });
    }

    /** Canvas x of relative time t. */
    x(t) {
      return LABEL_W + ((t - this.t0) / (this.t1 - this.t0)) * (this.width - LABEL_W);
    }

    /** Relative time at canvas x. */
    t(x) {
      return this.t0 + ((x - LABEL_W) / (this.width - LABEL_W)) * (this.t1 - this.t0);
    }

    layout() {
      const tl = $("timeline");
      const dpr = window.devicePixelRatio || 1;
      const workers = this.model ? this.model.workers.length : 0;
      const w = Math.max(300, tl.clientWidth);
      setLaneHeight(workers ? (tl.clientHeight - AXIS_H - QUEUE_H - 8) / workers : 64);
      const h = Math.max(tl.clientHeight, AXIS_H + QUEUE_H + workers * LANE_H + 8);
      this.width = w;
      this.height = h;
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      this.canvas.style.width = w + "px";
      this.canvas.style.height = h + "px";
      this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      this.hatch = null;
      // Labels, in the DOM so they can be read and selected.
      const labels = $("labels");
      labels.textContent = "";
      this.lanes = [];
      if (!this.model) return;
      const q = el("div", { class: "track-label", "data-track": "global-queue" });
      q.style.top = AXIS_H + "px";
      q.style.height = QUEUE_H + "px";
      q.appendChild(el("b", null, "global queue"));
      q.appendChild(el("span", null, fmtInt(this.model.globalQueue.n) + " samples"));
      labels.appendChild(q);
      let y = AXIS_H + QUEUE_H;
      for (const w of this.model.workers) {
        const d = el("div", { class: "lane-label", "data-worker": String(w.id) });
        d.style.top = y + "px";
        d.style.height = LANE_H + "px";
        d.appendChild(el("b", null, "worker " + w.id));
        d.appendChild(el("span", null, fmtInt(w.nPolls) + " polls"));
        const ratio = this.workerRatio(w);
        d.appendChild(el("span", null, "CPU/wall " + (isFinite(ratio) ? ratio.toFixed(2) : "–")));
        labels.appendChild(d);
        this.lanes.push({ worker: w.id, y, model: w });
        y += LANE_H;
      }
    }

    workerRatio(w) {
      let cpu = 0;
      let wall = 0;
      for (let i = 0; i < w.nActive; i++) {
        if (isFinite(w.aCpu[i])) {
          cpu += w.aCpu[i];
          wall += w.aEnd[i] - w.aStart[i];
        }
      }
      return wall > 0 ? cpu / wall : NaN;
    }

    // --- drawing ---

    hatchPattern() {
      if (this.hatch) return this.hatch;
      const c = document.createElement("canvas");
      c.width = 6;
      c.height = 6;
      const g = c.getContext("2d");
      g.fillStyle = "#eef0f4";
      g.fillRect(0, 0, 6, 6);
      g.strokeStyle = "#c9ced8";
      g.lineWidth = 1.5;
      g.beginPath();
      g.moveTo(-1, 7);
      g.lineTo(7, -1);
      g.moveTo(-1, 1);
      g.lineTo(1, -1);
      g.moveTo(5, 7);
      g.lineTo(7, 5);
      g.stroke();
      this.hatch = this.ctx.createPattern(c, "repeat");
      return this.hatch;
    }

    draw() {
      const ctx = this.ctx;
      const W = this.width;
      ctx.clearRect(0, 0, W, this.height);
      if (!this.model) return;
      const m = this.model;
      const origin = m.first;
      this.markers = [];
      ctx.save();
      ctx.beginPath();
      ctx.rect(LABEL_W, 0, W - LABEL_W, this.height);
      ctx.clip();
      // Trace bounds.
      const xs = this.x(0);
      const xe = this.x(m.last - origin);
      ctx.fillStyle = "#f3f4f7";
      if (xs > LABEL_W) ctx.fillRect(LABEL_W, AXIS_H, xs - LABEL_W, this.height);
      if (xe < W) ctx.fillRect(xe, AXIS_H, W - xe, this.height);
      this.drawGlobalQueue(AXIS_H);
      for (const lane of this.lanes) this.drawLane(lane);
      this.drawDropped();
      this.drawFindings();
      ctx.restore();
      this.drawAxis();
      if (this.hover) this.updateTooltip(this.hover.x, this.hover.y, this.hover.cx, this.hover.cy);
    }

    drawAxis() {
      const ctx = this.ctx;
      const W = this.width;
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, W, AXIS_H);
      ctx.strokeStyle = "#d9dde5";
      ctx.beginPath();
      ctx.moveTo(0, AXIS_H - 0.5);
      ctx.lineTo(W, AXIS_H - 0.5);
      ctx.stroke();
      const tw = this.t1 - this.t0;
      const target = tw / ((W - LABEL_W) / 110);
      const pow = Math.pow(10, Math.floor(Math.log10(target)));
      let step = pow;
      for (const k of [1, 2, 5, 10]) {
        if (pow * k >= target) {
          step = pow * k;
          break;
        }
      }
      const decimals = Math.max(0, -Math.floor(Math.log10(step / 1e9) + 1e-9));
      ctx.fillStyle = "#5b6475";
      ctx.font = "11px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      // Ticks at round times since the trace started.
      const origin = this.model ? this.model.first : 0;
      const first = Math.ceil((this.t0 + origin) / step) * step;
      for (let abs = first; abs <= this.t1 + origin; abs += step) {
        const t = abs - origin;
        const x = Math.round(this.x(t)) + 0.5;
        if (x < LABEL_W) continue;
        ctx.strokeStyle = "#c3c8d2";
        ctx.beginPath();
        ctx.moveTo(x, AXIS_H - 7);
        ctx.lineTo(x, AXIS_H);
        ctx.stroke();
        ctx.strokeStyle = "rgba(0,0,0,0.05)";
        ctx.beginPath();
        ctx.moveTo(x, AXIS_H);
        ctx.lineTo(x, this.height);
        ctx.stroke();
        ctx.fillText((abs / 1e9).toFixed(Math.min(decimals, 9)) + " s", x + 3, AXIS_H / 2 - 2);
      }
      ctx.fillStyle = "#1d2330";
      ctx.font = "600 11px system-ui, sans-serif";
      ctx.fillText("time", 8, AXIS_H / 2 - 2);
      // Dropped-event markers in the axis.
      const d = this.model.dropped;
      const i0 = lowerBound(d.t, d.n, this.model.first + this.t0);
      const i1 = upperBound(d.t, d.n, this.model.first + this.t1);
      ctx.fillStyle = DROPPED;
      let labelEnd = -Infinity;
      for (let i = i0; i < i1; i++) {
        const x = this.x(d.t[i] - this.model.first);
        ctx.beginPath();
        ctx.moveTo(x - 5, AXIS_H - 9);
        ctx.lineTo(x + 5, AXIS_H - 9);
        ctx.lineTo(x, AXIS_H - 1);
        ctx.fill();
        // A count where it fits (the tooltip over the axis gives each one).
        const label = fmtInt(d.v[i]) + " dropped";
        if (x + 6 > labelEnd + 8) {
          ctx.fillText(label, x + 6, AXIS_H + 8);
          labelEnd = x + 6 + ctx.measureText(label).width;
        }
      }
    }

    drawGlobalQueue(y) {
      const ctx = this.ctx;
      const s = this.model.globalQueue;
      const W = this.width;
      ctx.fillStyle = "#fbfbfd";
      ctx.fillRect(LABEL_W, y, W - LABEL_W, QUEUE_H);
      ctx.strokeStyle = "#e3e6ec";
      ctx.beginPath();
      ctx.moveTo(LABEL_W, y + QUEUE_H - 0.5);
      ctx.lineTo(W, y + QUEUE_H - 0.5);
      ctx.stroke();
      if (s.n === 0) {
        this.label("no queue samples in this trace", LABEL_W + 8, y + QUEUE_H / 2);
        return;
      }
      const max = this.drawSeries(s, y + 12, QUEUE_H - 14, GLOBAL_Q, "rgba(59,111,182,0.28)");
      this.label("max " + fmtInt(max) + " in view", W - 110, y + 7);
    }

    /** Draws a step series as an area of per-pixel maxima; returns the max in view. */
    drawSeries(s, y, h, stroke, fill) {
      const ctx = this.ctx;
      const origin = this.model.first;
      const W = this.width;
      const cols = Math.ceil(W - LABEL_W);
      const tAt = (px) => origin + this.t(LABEL_W + px);
      const vals = new Float64Array(cols);
      let i = upperBound(s.t, s.n, tAt(0)) - 1;
      let max = 0;
      for (let px = 0; px < cols; px++) {
        const end = upperBound(s.t, s.n, tAt(px + 1));
        let v = i >= 0 && i < s.n ? s.v[i] : 0;
        if (tAt(px) > s.t[s.n - 1] || tAt(px + 1) < s.t[0]) v = NaN;
        else if (end > i + 1) v = Math.max(v, s.max(i + 1, end));
        vals[px] = v;
        if (v > max) max = v;
        i = end - 1;
      }
      const scale = max > 0 ? h / max : 0;
      ctx.fillStyle = fill;
      ctx.strokeStyle = stroke;
      ctx.lineWidth = 1;
      ctx.beginPath();
      let open = false;
      let lastX = 0;
      for (let px = 0; px < cols; px++) {
        const v = vals[px];
        const x = LABEL_W + px;
        if (isNaN(v)) {
          if (open) {
            ctx.lineTo(lastX, y + h);
            ctx.closePath();
            open = false;
          }
          continue;
        }
        const yy = y + h - v * scale;
        if (!open) {
          ctx.moveTo(x, y + h);
          open = true;
        }
        ctx.lineTo(x, yy);
        ctx.lineTo(x + 1, yy);
        lastX = x + 1;
      }
      if (open) {
        ctx.lineTo(lastX, y + h);
        ctx.closePath();
      }
      ctx.fill();
      ctx.stroke();
      return max;
    }

    label(text, x, y) {
      const ctx = this.ctx;
      ctx.font = "10px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      ctx.fillStyle = "#7a8294";
      ctx.fillText(text, x, y);
    }

    /**
     * One worker's lane. Whatever the zoom, the lane is first summarised
     * per pixel column (from single polls, parks and active periods when
     * few are in view, else from the pyramid), then drawn as runs of equal
     * columns: a frame costs the items in view plus the columns.
     */
    drawLane(lane) {
      const ctx = this.ctx;
      const w = lane.model;
      const y = lane.y;
      const W = this.width;
      const origin = this.model.first;
      const a = origin + this.t0;
      const b = origin + this.t1;
      ctx.strokeStyle = "#e3e6ec";
      ctx.beginPath();
      ctx.moveTo(LABEL_W, y + LANE_H - 0.5);
      ctx.lineTo(W, y + LANE_H - 0.5);
      ctx.stroke();
      const cols = Math.max(1, Math.ceil(W - LABEL_W));
      if (!this.acc || this.acc.length !== cols * STRIDE) this.acc = new Float64Array(cols * STRIDE);
      const acc = this.acc;
      acc.fill(0);
      const p0 = Math.max(0, upperBound(w.pStart, w.nPolls, a) - 1);
      const p1 = upperBound(w.pStart, w.nPolls, b);
      const k0 = Math.max(0, upperBound(w.kStart, w.nParks, a) - 1);
      const k1 = upperBound(w.kStart, w.nParks, b);
      const a0 = Math.max(0, upperBound(w.aStart, w.nActive, a) - 1);
      const a1 = upperBound(w.aStart, w.nActive, b);
      // Single items while there are few per column; the pyramid (whose
      // finest buckets hold about 4 polls) beyond that.
      const raw = p1 - p0 + (k1 - k0) + (a1 - a0) <= Math.max(RAW_LIMIT, 8 * cols);
      lane.raw = raw;
      if (raw) this.columnsFromItems(w, acc, cols, p0, p1, k0, k1, a0, a1);
      else this.columnsFromPyramid(w, acc, cols);
      this.drawColumns(acc, cols, y);
      this.drawSpans(w, y, a, b);
    }

    /** The spans of worker `w` overlapping [a, b] (absolute ns), at most `max`. */
    spansIn(w, a, b, max) {
      const spans = w.spans;
      // Spans are sorted by start; none lasts longer than spanMaxDur.
      let lo = 0;
      let hi = spans.length;
      const from = a - w.spanMaxDur;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (spans[mid].s < from) lo = mid + 1;
        else hi = mid;
      }
      const out = [];
      for (let i = lo; i < spans.length && spans[i].s <= b && out.length < max; i++) {
        if (spans[i].e >= a) out.push(spans[i]);
      }
      return out;
    }

    /** `tracing` spans as nested bars over the local-queue band, marks as ticks. */
    drawSpans(w, y, a, b) {
      if (w.spans.length === 0 && w.marks.length === 0) return;
      const ctx = this.ctx;
      const W = this.width;
      const origin = this.model.first;
      const px = (t) => LABEL_W + this.col(t - origin);
      ctx.save();
      ctx.beginPath();
      ctx.rect(LABEL_W, y, W - LABEL_W, LANE_H);
      ctx.clip();
      ctx.font = "9px sans-serif";
      ctx.textBaseline = "top";
      const visible = this.spansIn(w, a, b, SPAN_DRAW_LIMIT + 1);
      if (visible.length > SPAN_DRAW_LIMIT) {
        // Drawing only the first ones would misrepresent the rest.
        ctx.fillStyle = SPAN_COLORS[0];
        ctx.fillText("more than " + fmtInt(SPAN_DRAW_LIMIT) + " spans in view: zoom in to see them", LABEL_W + 6, y + LQ_Y);
      }
      for (const sp of visible.length > SPAN_DRAW_LIMIT ? [] : visible) {
        const x0 = Math.max(LABEL_W, px(sp.s));
        const x1 = Math.min(W, px(sp.e));
        if (x1 - x0 < 0.5 && sp.depth > 0) continue;
        const depth = Math.min(sp.depth, SPAN_DEPTHS - 1);
        const top = y + LQ_Y + depth * (SPAN_H + 1);
        ctx.fillStyle = SPAN_COLORS[depth % SPAN_COLORS.length];
        ctx.fillRect(x0, top, Math.max(1, x1 - x0), SPAN_H);
        if (x1 - x0 > 40 && SPAN_H >= 8) {
          ctx.fillStyle = "#fff";
          ctx.fillText(sp.label, x0 + 2, top, x1 - x0 - 4);
        }
      }
      ctx.fillStyle = MARK_COLOR;
      ctx.strokeStyle = MARK_COLOR;
      const m0 = lowerBound(w.markT, w.marks.length, a);
      const m1 = upperBound(w.markT, w.marks.length, b);
      if (m1 - m0 > SPAN_DRAW_LIMIT) {
        ctx.fillText("more than " + fmtInt(SPAN_DRAW_LIMIT) + " marks in view: zoom in to see them", LABEL_W + 6, y + POLL_Y - 10);
        ctx.restore();
        return;
      }
      for (let i = m0; i < m1; i++) {
        const x = Math.round(px(w.marks[i].t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x, y + POLL_Y);
        ctx.lineTo(x, y + LANE_H - 2);
        ctx.stroke();
        ctx.beginPath();
        ctx.moveTo(x - 3, y + POLL_Y - 4);
        ctx.lineTo(x + 3, y + POLL_Y - 4);
        ctx.lineTo(x, y + POLL_Y);
        ctx.fill();
      }
      ctx.restore();
    }

    /** Column of relative time t (fractional). */
    col(t) {
      return ((t - this.t0) / (this.t1 - this.t0)) * (this.width - LABEL_W);
    }

    /** Adds the overlap of [s, e) (relative ns) with each column to `field`, times `weight`. */
    spread(acc, cols, s, e, field, weight) {
      const nsPerCol = (this.t1 - this.t0) / (this.width - LABEL_W);
      let c0 = this.col(s);
      let c1 = this.col(e);
      if (c1 <= 0 || c0 >= cols || !(e > s)) return;
      if (c0 < 0) c0 = 0;
      if (c1 > cols) c1 = cols;
      const i0 = Math.floor(c0);
      const i1 = Math.min(cols - 1, Math.floor(c1));
      if (i0 === i1) {
        acc[i0 * STRIDE + field] += (c1 - c0) * nsPerCol * weight;
        return;
      }
      acc[i0 * STRIDE + field] += (i0 + 1 - c0) * nsPerCol * weight;
      for (let i = i0 + 1; i < i1; i++) acc[i * STRIDE + field] += nsPerCol * weight;
      acc[i1 * STRIDE + field] += (c1 - i1) * nsPerCol * weight;
    }

    /** Sets `field` to at least `value` in the columns [s, e] (relative ns). */
    raise(acc, cols, s, e, field, value) {
      const i0 = Math.max(0, Math.floor(this.col(s)));
      const i1 = Math.min(cols - 1, Math.floor(this.col(e)));
      for (let i = i0; i <= i1; i++) {
        const o = i * STRIDE + field;
        if (acc[o] < value) acc[o] = value;
      }
    }

    columnsFromItems(w, acc, cols, p0, p1, k0, k1, a0, a1) {
      const origin = this.model.first;
      for (let i = k0; i < k1; i++) this.spread(acc, cols, w.kStart[i] - origin, w.kEnd[i] - origin, F_PARKED, 1);
      for (let i = a0; i < a1; i++) {
        const s = w.aStart[i] - origin;
        const e = w.aEnd[i] - origin;
        this.spread(acc, cols, s, e, F_ACTIVE, 1);
        const cpu = w.aCpu[i];
        if (isFinite(cpu) && e > s) {
          this.spread(acc, cols, s, e, F_KNOWN, 1);
          this.spread(acc, cols, s, e, F_CPU, clamp(cpu / (e - s), 0, 1));
        }
      }
      // The local queue holds its last depth between polls.
      let prevEnd = -Infinity;
      let prevDepth = 0;
      for (let i = p0; i < p1; i++) {
        const s = w.pStart[i] - origin;
        const e = w.pEnd[i] - origin;
        const d = e - s;
        this.spread(acc, cols, s, e, F_BUSY, 1);
        this.raise(acc, cols, s, e, F_LONGEST, d);
        const c = Math.floor(this.col(s));
        if (c >= 0 && c < cols) {
          acc[c * STRIDE + F_POLLS] += 1;
          const lat = w.pLat[i];
          if (lat > acc[c * STRIDE + F_WAIT]) acc[c * STRIDE + F_WAIT] = lat;
        }
        if (prevEnd > -Infinity) this.raise(acc, cols, prevEnd, s, F_QMAX, prevDepth);
        this.raise(acc, cols, s, e, F_QMAX, w.pQ0[i]);
        this.raise(acc, cols, e, e, F_QMAX, w.pQ1[i]);
        prevEnd = e;
        prevDepth = w.pQ1[i];
      }
      if (p1 > p0 && p1 < w.nPolls) this.raise(acc, cols, prevEnd, w.pStart[p1] - origin, F_QMAX, prevDepth);
    }

    columnsFromPyramid(w, acc, cols) {
      const pyr = w.pyramid;
      const origin = this.model.first;
      const nsPerCol = (this.t1 - this.t0) / (this.width - LABEL_W);
      // The coarsest level with at least one bucket per column.
      let level = 0;
      let width = pyr.width;
      while (level + 1 < pyr.levels.length && width * 4 <= nsPerCol) {
        level++;
        width *= 4;
      }
      const data = pyr.levels[level];
      const count = data.length / STRIDE;
      const base = pyr.origin - origin;
      const b0 = clamp(Math.floor((this.t0 - base) / width), 0, count);
      const b1 = clamp(Math.ceil((this.t1 - base) / width) + 1, 0, count);
      for (let bi = b0; bi < b1; bi++) {
        const o = bi * STRIDE;
        const s = base + bi * width;
        const e = s + width;
        // Sums spread over the columns the bucket covers, maxima raised.
        for (const f of SUMMED) {
          const v = data[o + f];
          if (v > 0) this.spread(acc, cols, s, e, f, v / width);
        }
        if (data[o + F_POLLS] > 0) {
          const c = clamp(Math.floor(this.col(s)), 0, cols - 1);
          acc[c * STRIDE + F_POLLS] += data[o + F_POLLS];
          if (data[o + F_WAIT] > acc[c * STRIDE + F_WAIT]) acc[c * STRIDE + F_WAIT] = data[o + F_WAIT];
        }
        if (data[o + F_LONGEST] > 0) this.raise(acc, cols, s, e - 1e-9, F_LONGEST, data[o + F_LONGEST]);
        if (data[o + F_QMAX] > 0) this.raise(acc, cols, s, e - 1e-9, F_QMAX, data[o + F_QMAX]);
      }
    }

    /** Draws a lane's columns as runs of equal colour. */
    drawColumns(acc, cols, y) {
      const ctx = this.ctx;
      const nsPerCol = (this.t1 - this.t0) / (this.width - LABEL_W);
      const alphaStep = (x) => Math.round(clamp(x, 0, 1) * 8);
      // Three bands, each a run-length pass: key per column, draw on change.
      const band = (keyOf, paint) => {
        let runKey = -1;
        let runStart = 0;
        for (let i = 0; i <= cols; i++) {
          const key = i < cols ? keyOf(i * STRIDE) : -2;
          if (key !== runKey) {
            if (runKey >= 0) paint(runKey, LABEL_W + runStart, i - runStart);
            runKey = key;
            runStart = i;
          }
        }
      };
      // Ratio band: active shaded by CPU / wall, parked grey. Key: colour * 16 + alpha.
      band(
        (o) => {
          if (acc[o + F_ACTIVE] > nsPerCol * 0.02) {
            const colour = acc[o + F_KNOWN] > 0 ? Math.round(clamp(acc[o + F_CPU] / acc[o + F_KNOWN], 0, 1) * 20) : 21;
            return colour * 16 + 1 + alphaStep(acc[o + F_ACTIVE] / nsPerCol);
          }
          if (acc[o + F_PARKED] > nsPerCol * 0.02) return 22 * 16 + 1 + alphaStep(acc[o + F_PARKED] / nsPerCol);
          return -1;
        },
        (key, x, width) => {
          const colour = key >> 4;
          ctx.globalAlpha = 0.3 + 0.7 * (((key & 15) - 1) / 8);
          ctx.fillStyle = colour <= 20 ? RATIO_COLORS[colour] : colour === 21 ? "#c8ccd4" : PARKED;
          ctx.fillRect(x, y + RATIO_Y, width, RATIO_H);
        }
      );
      ctx.globalAlpha = 1;
      // Parked and not polling: hatched.
      const hatch = this.hatchPattern();
      band(
        (o) => (acc[o + F_PARKED] > nsPerCol * 0.5 && acc[o + F_BUSY] === 0 ? 1 : -1),
        (key, x, width) => {
          ctx.fillStyle = hatch;
          ctx.fillRect(x, y + POLL_Y, width, POLL_H);
        }
      );
      // Polls: colour by the longest poll, opacity by the share of time polling.
      band(
        (o) => (acc[o + F_BUSY] > 0 || acc[o + F_POLLS] > 0 ? pollColor(acc[o + F_LONGEST]) * 16 + alphaStep(acc[o + F_BUSY] / nsPerCol) : -1),
        (key, x, width) => {
          ctx.globalAlpha = 0.35 + 0.65 * ((key & 15) / 8);
          ctx.fillStyle = POLL_CLASSES[key >> 4][1];
          ctx.fillRect(x, y + POLL_Y, width, POLL_H);
        }
      );
      ctx.globalAlpha = 1;
      // Polls whose task waited 1 ms or more to be polled: a strip on top
      // of the poll row, coloured by the longest wait (schedule latency).
      band(
        (o) => waitClass(acc[o + F_WAIT]),
        (key, x, width) => {
          ctx.fillStyle = WAIT_CLASSES[key][1];
          ctx.fillRect(x, y + POLL_Y, Math.max(width, 2), 3);
        }
      );
      // Local queue: the deepest depth per column, as bars.
      let qmax = 0;
      for (let i = 0; i < cols; i++) if (acc[i * STRIDE + F_QMAX] > qmax) qmax = acc[i * STRIDE + F_QMAX];
      if (qmax === 0) {
        this.label("local queue: empty in view", LABEL_W + 6, y + LQ_Y + LQ_H / 2);
        return;
      }
      const scale = LQ_H / qmax;
      const base = y + LQ_Y + LQ_H;
      ctx.fillStyle = "rgba(125,138,165,0.6)";
      band(
        (o) => (acc[o + F_QMAX] > 0 ? Math.max(1, Math.round(acc[o + F_QMAX] * scale)) : -1),
        (h, x, width) => ctx.fillRect(x, base - h, width, h)
      );
      this.label("local queue max " + fmtInt(qmax), this.width - 130, y + LQ_Y + 5);
    }

    drawDropped() {
      const ctx = this.ctx;
      const d = this.model.dropped;
      const origin = this.model.first;
      const i0 = lowerBound(d.t, d.n, origin + this.t0);
      const i1 = upperBound(d.t, d.n, origin + this.t1);
      ctx.strokeStyle = DROPPED;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([4, 3]);
      for (let i = i0; i < i1; i++) {
        const x = Math.round(this.x(d.t[i] - origin)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x, AXIS_H);
        ctx.lineTo(x, this.height);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      ctx.lineWidth = 1;
    }

    drawFindings() {
      const ctx = this.ctx;
      const origin = this.model.first;
      const fs = this.findings;
      if (fs.length === 0) return;
      const laneOf = new Map(this.lanes.map((l) => [l.worker, l]));
      // Findings narrower than a few pixels are gathered, per lane, into one
      // marker per column of MARKER_BIN pixels that says how many it holds:
      // zoomed out over a long trace, lanes stay visible and a frame draws
      // a few hundred markers, not thousands.
      const bins = new Map();
      for (let i = 0; i < fs.length; i++) {
        const f = fs[i];
        const s = f.start_ns - origin;
        const e = f.end_ns - origin;
        if (e < this.t0 || s > this.t1) continue;
        const lane = laneOf.get(f.worker);
        if (!lane) continue;
        const xs = this.x(s);
        const xe = this.x(e);
        if (xe - xs < MARKER_BIN && i !== this.current) {
          const col = Math.floor(Math.max(xs, LABEL_W - 4) / MARKER_BIN);
          const key = f.worker * 1e6 + col;
          const bin = bins.get(key);
          if (bin === undefined) bins.set(key, { index: i, count: 1, lane, col, xe });
          else {
            bin.count++;
            if (xe > bin.xe) bin.xe = xe;
          }
          continue;
        }
        this.drawMarker(i, f.verdict, lane, Math.max(xs, LABEL_W - 4), Math.min(Math.max(xe, xs + 3), this.width + 4), 1);
      }
      for (const bin of bins.values()) {
        const x0 = Math.max(bin.col * MARKER_BIN, LABEL_W - 4);
        const x1 = Math.min(Math.max(bin.xe, x0 + 3), this.width + 4);
        this.drawMarker(bin.index, fs[bin.index].verdict, bin.lane, x0, x1, bin.count);
      }
      ctx.lineWidth = 1;
      // Counts on gathered markers.
      ctx.font = "600 10px system-ui, sans-serif";
      ctx.textBaseline = "top";
      for (const mk of this.markers) {
        if (mk.count < 2) continue;
        const label = mk.count > 999 ? "999+" : String(mk.count);
        const w = ctx.measureText(label).width + 4;
        ctx.fillStyle = "rgba(255,255,255,0.9)";
        ctx.fillRect(mk.x0 + 1, mk.y0 + 10, w, 11);
        ctx.fillStyle = verdictColor(mk.verdict);
        ctx.fillText(label, mk.x0 + 3, mk.y0 + 11);
      }
      ctx.lineWidth = 1;
      // Labels for markers wide enough.
      ctx.font = "600 10px system-ui, sans-serif";
      ctx.textBaseline = "top";
      for (const mk of this.markers) {
        if (mk.count > 1) continue;
        const label = verdictLabel(mk.verdict);
        if (mk.x1 - mk.x0 > ctx.measureText(label).width + 16) {
          ctx.fillStyle = "rgba(255,255,255,0.85)";
          ctx.fillRect(mk.x0 + 10, mk.y0 + 1, ctx.measureText(label).width + 4, 11);
          ctx.fillStyle = verdictColor(mk.verdict);
          ctx.fillText(label, mk.x0 + 12, mk.y0 + 2);
        }
      }
    }

    /** One marker: an outline over the lane and a flag; `count` findings gathered in it. */
    drawMarker(index, verdict, lane, x0, x1, count) {
      const ctx = this.ctx;
      const color = verdictColor(verdict);
      const current = index === this.current;
      const y0 = lane.y + 1;
      const y1 = lane.y + LANE_H - 2;
      ctx.strokeStyle = color;
      ctx.lineWidth = current ? 3 : 2;
      ctx.strokeRect(x0, y0 + 0.5, x1 - x0, y1 - y0);
      if (current) {
        ctx.fillStyle = color;
        ctx.globalAlpha = 0.1;
        ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
        ctx.globalAlpha = 1;
      }
      // A flag at the start.
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.moveTo(x0, y0);
      ctx.lineTo(x0 + 9, y0);
      ctx.lineTo(x0, y0 + 9);
      ctx.fill();
      this.markers.push({ index, verdict, worker: lane.worker, x0, x1, y0, y1, count });
    }

    // --- hover ---

    /** What is at canvas (x, y): a lane band, the queue chart, a marker. */
    hit(x, y) {
      if (!this.model || x < LABEL_W) return null;
      const t = this.t(x);
      const hit = { t, x, y };
      for (const mk of this.markers) {
        if (x >= mk.x0 - 2 && x <= mk.x1 + 2 && y >= mk.y0 - 2 && y <= mk.y1 + 2) {
          hit.finding = mk.index;
          hit.gathered = mk.count;
          break;
        }
      }
      if (y < AXIS_H) {
        hit.area = "axis";
      } else if (y < AXIS_H + QUEUE_H) {
        hit.area = "global";
      } else {
        const lane = this.lanes[Math.floor((y - AXIS_H - QUEUE_H) / LANE_H)];
        if (!lane) return hit.finding !== undefined ? hit : null;
        hit.lane = lane;
        const ly = y - lane.y;
        hit.area = ly < POLL_Y - 1 ? "ratio" : ly < LQ_Y - 1 ? "poll" : "local";
      }
      return hit;
    }

    /** The poll under (or, zoomed out, the longest poll near) time t on worker w. */
    pollAt(w, t, halfPx) {
      const n = w.nPolls;
      if (n === 0) return -1;
      const origin = this.model.first;
      const at = origin + t;
      let i = upperBound(w.pStart, n, at) - 1;
      if (i >= 0 && w.pEnd[i] >= at) return i;
      // None exactly there: the longest poll within the pixel's span.
      const lo = Math.max(0, upperBound(w.pStart, n, at - halfPx) - 1);
      const hi = upperBound(w.pStart, n, at + halfPx);
      let best = -1;
      let bestD = -1;
      const limit = Math.min(hi, lo + 2000000);
      for (let k = lo; k < limit; k++) {
        if (w.pEnd[k] < at - halfPx) continue;
        const d = w.pEnd[k] - w.pStart[k];
        if (d > bestD) {
          bestD = d;
          best = k;
        }
      }
      return best;
    }

    updateTooltip(x, y, cx, cy) {
      const h = this.hit(x, y);
      if (!h) {
        this.tooltip(null);
        return;
      }
      const m = this.model;
      const origin = m.first;
      const nsPerPx = (this.t1 - this.t0) / (this.width - LABEL_W);
      const parts = [];
      const row = (text, cls) => parts.push('<div class="' + (cls || "") + '">' + escapeHtml(text) + "</div>");
      if (h.area === "global" || h.area === "axis") {
        const depth = m.globalQueue.at(origin + h.t);
        row("Global queue", "h");
        row("at " + fmtTime(origin + h.t));
        row("depth " + (isNaN(depth) ? "–" : fmtInt(depth)) + " (last sample)");
        const d = m.dropped;
        const i = lowerBound(d.t, d.n, origin + h.t - nsPerPx * 4);
        if (i < d.n && d.t[i] <= origin + h.t + nsPerPx * 4) {
          row(fmtInt(d.v[i]) + " events dropped at " + fmtTime(d.t[i]), "h");
        }
      } else if (h.lane) {
        const w = h.lane.model;
        row("Worker " + w.id, "h");
        if (h.area === "poll" || h.area === "local") {
          const i = this.pollAt(w, h.t, nsPerPx * 2);
          if (i >= 0) this.describePoll(w, i, row, h.lane.raw ? 0 : nsPerPx);
          else row("no poll at " + fmtTime(origin + h.t), "m");
        }
        if (h.area === "ratio" || h.area === "poll") this.describePeriod(w, origin + h.t, row);
        this.describeSpans(w, origin + h.t, nsPerPx, row);
      }
      if (h.finding !== undefined) {
        const f = this.findings[h.finding];
        parts.push('<div class="f">');
        row(verdictLabel(f.verdict) + " — worker " + f.worker, "h");
        row(fmtTime(f.start_ns) + " → " + fmtTime(f.end_ns) + " (" + fmtDur(f.end_ns - f.start_ns) + ")");
        for (const line of evidence(f)) row(line, "m");
        if (h.gathered > 1) row("and " + (h.gathered - 1) + " more findings here: zoom in to tell them apart, or step with n / p", "m");
        parts.push("</div>");
      }
      this.tooltip(parts.join(""), cx, cy);
    }

    /** Spans active on worker `w` at absolute time t (innermost first) and marks within 3 px. */
    describeSpans(w, t, nsPerPx, row) {
      const marks = w.marks.filter((m) => Math.abs(m.t - t) <= nsPerPx * 3);
      for (const m of marks.slice(0, 5)) row("mark " + m.label + " at " + fmtTime(m.t), "h");
      const spans = this.spansIn(w, t, t, 64)
        .filter((sp) => sp.e - sp.s >= nsPerPx || sp.s <= t)
        .sort((x, y) => y.depth - x.depth);
      if (spans.length === 0) return;
      row("inside span" + (spans.length === 1 ? "" : "s") + " (innermost first)", "h");
      for (const sp of spans.slice(0, 8)) row(sp.label + " — " + fmtDur(sp.e - sp.s) + " from " + fmtTime(sp.s), "m");
    }

    describePoll(w, i, row, pixelNs) {
      const m = this.model;
      const origin = m.first;
      const s = w.pStart[i];
      const e = w.pEnd[i];
      const task = w.pTask[i];
      row("Poll" + (task >= 0 ? " of task " + task : ""), "h");
      row("start " + fmtTime(s));
      row("end   " + fmtTime(e));
      row("duration " + fmtDur(e - s));
      const loc = w.pLoc[i] ? m.locations.get(w.pLoc[i]) : null;
      row("spawned at " + (loc || (m.files[0] && m.files[0].version === 5 ? "– (v5 traces have none)" : "unknown")));
      row("local queue " + w.pQ0[i] + " → " + w.pQ1[i]);
      const lat = w.pLat[i];
      if (lat >= 0) row("waited " + fmtDur(lat) + " to be polled (scheduled → polled; schedule latency)");
      // CPU, run-queue wait and off-CPU time in the poll: the analysis's
      // own figures (timeline.js mirrors them).
      const figures = e > s ? w.pollFigures(i) : null;
      if (figures) {
        const c = figures.figures;
        let text = "in the poll: on CPU " + fmtDur(c.cpu_ns) + " (" + fmtPct(c.cpu_ns / (e - s)) + ")";
        if (c.run_delay_ns !== null) text += ", waiting for a CPU " + fmtDur(c.run_delay_ns);
        text += ", off CPU " + fmtDur(c.off_cpu_ns) + " (" + c.samples + " readings inside)";
        row(text, "m");
      }
      if (pixelNs > 0) row("(the longest poll near the pointer; zoom in for every poll)", "m");
    }

    describePeriod(w, at, row) {
      const origin = this.model.first;
      const ai = upperBound(w.aStart, w.nActive, at) - 1;
      if (ai >= 0 && w.aEnd[ai] >= at) {
        const s = w.aStart[ai];
        const e = w.aEnd[ai];
        const cpu = w.aCpu[ai];
        const rd = w.aRd[ai];
        let text = "active " + fmtDur(e - s) + " (" + fmtTime(s) + " → " + fmtTime(e) + ")";
        row(text, "m");
        if (isFinite(cpu) && e > s) {
          text = "CPU/wall ratio " + (cpu / (e - s)).toFixed(3) + " (CPU " + fmtDur(cpu) + ")";
          if (isFinite(rd)) text += ", run-queue wait " + fmtDur(rd) + " (" + fmtPct(rd / (e - s)) + "), off CPU " + fmtDur(e - s - cpu - rd);
          row(text, "m");
        } else {
          row("CPU/wall ratio unknown (no CPU reading at its end)", "m");
        }
        return;
      }
      const ki = upperBound(w.kStart, w.nParks, at) - 1;
      if (ki >= 0 && w.kEnd[ki] >= at) {
        row("parked " + fmtDur(w.kEnd[ki] - w.kStart[ki]) + " (" + fmtTime(w.kStart[ki]) + " → " + fmtTime(w.kEnd[ki]) + ")", "m");
      }
    }

    tooltip(html, cx, cy) {
      const tip = $("tooltip");
      if (!html) {
        tip.hidden = true;
        return;
      }
      tip.innerHTML = html;
      tip.hidden = false;
      const r = tip.getBoundingClientRect();
      let left = cx + 14;
      let top = cy + 14;
      if (left + r.width > window.innerWidth - 4) left = Math.max(4, cx - r.width - 14);
      if (top + r.height > window.innerHeight - 4) top = Math.max(4, cy - r.height - 14);
      tip.style.left = left + "px";
      tip.style.top = top + "px";
    }

    // --- input ---

    bind() {
      const c = this.canvas;
      let drag = null;
      const pos = (ev) => {
        const r = c.getBoundingClientRect();
        return { x: ev.clientX - r.left, y: ev.clientY - r.top };
      };
      c.addEventListener(
        "wheel",
        (ev) => {
          if (!this.model) return;
          ev.preventDefault();
          const p = pos(ev);
          const dx = ev.deltaMode === 1 ? ev.deltaX * 16 : ev.deltaX;
          const dy = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY;
          if (ev.shiftKey || Math.abs(dx) > Math.abs(dy)) {
            this.pan((ev.shiftKey ? dy || dx : dx) / (this.width - LABEL_W));
          } else {
            this.zoom(Math.exp(clamp(dy, -300, 300) * 0.0022), p.x);
          }
        },
        { passive: false }
      );
      c.addEventListener("mousedown", (ev) => {
        if (!this.model || ev.button !== 0) return;
        const p = pos(ev);
        drag = { x: p.x, t0: this.t0, t1: this.t1, moved: false };
        c.classList.add("dragging");
        ev.preventDefault();
      });
      window.addEventListener("mousemove", (ev) => {
        if (!this.model) return;
        const p = pos(ev);
        if (drag) {
          const dx = p.x - drag.x;
          if (Math.abs(dx) > 2) drag.moved = true;
          const dt = (dx / (this.width - LABEL_W)) * (drag.t1 - drag.t0);
          this.setView(drag.t0 - dt, drag.t1 - dt);
          this.tooltip(null);
          return;
        }
        if (ev.target !== c) {
          if (this.hover) {
            this.hover = null;
            this.tooltip(null);
          }
          return;
        }
        this.hover = { x: p.x, y: p.y, cx: ev.clientX, cy: ev.clientY };
        this.updateTooltip(p.x, p.y, ev.clientX, ev.clientY);
      });
      window.addEventListener("mouseup", (ev) => {
        if (!drag) return;
        const moved = drag.moved;
        drag = null;
        c.classList.remove("dragging");
        if (!moved) {
          const p = pos(ev);
          const h = this.hit(p.x, p.y);
          if (h && h.finding !== undefined) this.focusFinding(h.finding);
        }
      });
      c.addEventListener("mouseleave", () => {
        this.hover = null;
        this.tooltip(null);
      });
      window.addEventListener("keydown", (ev) => {
        if (ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA")) return;
        if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
        const k = ev.key;
        if (k === "?") {
          $("help").hidden = !$("help").hidden;
          return;
        }
        if (k === "Escape") {
          $("help").hidden = true;
          this.hover = null;
          this.tooltip(null);
          return;
        }
        if (!this.model) return;
        let handled = true;
        if (k === "w" || k === "W" || k === "+" || k === "=") this.zoom(0.7);
        else if (k === "s" || k === "S" || k === "-" || k === "_") this.zoom(1 / 0.7);
        else if (k === "a" || k === "A" || k === "ArrowLeft") this.pan(-0.15);
        else if (k === "d" || k === "D" || k === "ArrowRight") this.pan(0.15);
        else if (k === "0" || k === "Home") this.fit();
        else if (k === "n" || k === "N" || k === "j") this.focusFinding(this.current + 1);
        else if (k === "p" || k === "P" || k === "k") this.focusFinding(this.current < 0 ? -1 : this.current - 1);
        else handled = false;
        if (handled) ev.preventDefault();
      });
      $("zoom-in").addEventListener("click", () => this.model && this.zoom(0.5));
      $("zoom-out").addEventListener("click", () => this.model && this.zoom(2));
      $("zoom-fit").addEventListener("click", () => this.model && this.fit());
      $("next-finding").addEventListener("click", () => this.focusFinding(this.current + 1));
      $("prev-finding").addEventListener("click", () => this.focusFinding(this.current < 0 ? -1 : this.current - 1));
      $("help-button").addEventListener("click", () => ($("help").hidden = !$("help").hidden));
      $("file-input").addEventListener("change", (ev) => {
        const files = [...ev.target.files];
        ev.target.value = "";
        if (files.length) this.loadDropped(files);
      });
      document.addEventListener("dragover", (ev) => {
        ev.preventDefault();
        document.body.classList.add("dragover");
      });
      document.addEventListener("dragleave", (ev) => {
        if (ev.target === document.documentElement || ev.relatedTarget === null) document.body.classList.remove("dragover");
      });
      document.addEventListener("drop", (ev) => {
        ev.preventDefault();
        document.body.classList.remove("dragover");
        const files = [...(ev.dataTransfer ? ev.dataTransfer.files : [])];
        if (files.length) this.loadDropped(files);
      });
      window.addEventListener("resize", () => {
        if (!this.model) return;
        this.layout();
        this.request();
      });
      $("timeline").addEventListener("scroll", () => this.tooltip(null));
    }
  }

  /** What to tell a person when loading failed; memory runs out first on huge traces. */
  function failureMessage(e, builder) {
    if (e instanceof RangeError && /alloc|memory|Invalid array length|Invalid typed array length/i.test(e.message)) {
      const events = builder ? builder.events : 0;
      return (
        "This trace is too large for one browser tab: memory ran out" +
        (events ? " after " + fmtInt(events) + " events" : "") +
        " (a tab holds about 0.7 billion). Cut a time window and open that: " +
        "pulse html TRACE --from 10s --to 20s (times from the trace's first event; pulse info TRACE gives its duration)."
      );
    }
    return "Could not show the trace: " + e;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  /**
   * The bytes of base64 parts (script elements, each a whole number of
   * 4-character groups), one part per time slice; each element is removed
   * once decoded.
   */
  async function unpackBase64(blocks, progress) {
    let chars = 0;
    // (The parser may split long text into several nodes.)
    for (const b of blocks) for (const n of b.childNodes) chars += n.length;
    const out = new Uint8Array(Math.ceil(chars / 4) * 3);
    let o = 0;
    for (let i = 0; i < blocks.length; i++) {
      const text = blocks[i].textContent;
      if (typeof out.setFromBase64 === "function") {
        o += out.subarray(o).setFromBase64(text).written;
      } else {
        const bin = atob(text);
        for (let j = 0; j < bin.length; j++) out[o++] = bin.charCodeAt(j);
      }
      blocks[i].remove();
      progress((i + 1) / blocks.length);
      await yieldToBrowser();
    }
    return out.subarray(0, o);
  }

  // ---- entry point -------------------------------------------------------------------

  let viewer = null;

  const api = {
    /** Starts the page: loads embedded traces, or waits for files. */
    boot() {
      viewer = new Viewer();
      root.pulseViewer = api;
      viewer.renderLegend();
      viewer.layout();
      api.ready = viewer
        .loadEmbedded()
        .then((embedded) => {
          if (!embedded) {
            viewer.state = "empty";
            viewer.status("Open a trace (.bin) or drop it on the page.");
          }
          return viewer.state;
        })
        .catch((e) => {
          viewer.state = "error";
          viewer.errors.push(String(e && e.stack ? e.stack : e));
          viewer.status(failureMessage(e, viewer.builder), false, true);
          throw e;
        });
      return api.ready;
    },
    // Introspection, for tests and the curious (the page never needs it).
    get state() {
      return viewer ? viewer.state : "booting";
    },
    get timings() {
      return viewer ? viewer.timings : {};
    },
    get errors() {
      return viewer ? viewer.errors.slice() : [];
    },
    summary() {
      const m = viewer && viewer.model;
      if (!m) return null;
      const counts = {};
      D.KIND_NAMES.forEach((k, i) => (counts[k] = m.counts[i]));
      return {
        events: m.events,
        counts,
        workers: m.workers.map((w) => w.id),
        polls: m.workers.map((w) => w.nPolls),
        dropped: m.droppedTotal,
        first: m.first,
        last: m.last,
        error: m.error ? m.error.message : null,
        ended: m.traceEnd ? m.traceEnd.reason : null,
      };
    },
    lanes() {
      return viewer ? viewer.lanes.map((l) => ({ worker: l.worker, y: l.y, height: LANE_H, raw: !!l.raw })) : [];
    },
    findings() {
      return viewer ? viewer.findings.slice() : [];
    },
    /** Finding markers drawn in the last frame (canvas coordinates). */
    markers() {
      return viewer ? viewer.markers.slice() : [];
    },
    view() {
      return viewer ? { t0: viewer.t0, t1: viewer.t1 } : null;
    },
    setView(t0, t1) {
      viewer.setView(t0, t1);
      viewer.draw();
    },
    focusFinding(i) {
      viewer.focusFinding(i);
      viewer.draw();
    },
    /** Marks finding i as the current one without moving the view. */
    selectFinding(i) {
      viewer.current = i;
      viewer.updateFindingButtons();
      viewer.draw();
    },
    fit() {
      viewer.fit();
      viewer.draw();
    },
    /** Client coordinates of time t (ns since the first event) in worker's poll band. */
    locate(worker, t) {
      const lane = viewer.lanes.find((l) => l.worker === worker);
      if (!lane) return null;
      const r = viewer.canvas.getBoundingClientRect();
      return { x: r.left + viewer.x(t), y: r.top + lane.y + POLL_Y + POLL_H / 2 };
    },
    /** The longest poll on each worker: { worker, start, end, task } (relative ns). */
    longestPolls() {
      const m = viewer.model;
      return m.workers.map((w) => ({
        worker: w.id,
        start: w.longestAt >= 0 ? w.pStart[w.longestAt] - m.first : null,
        end: w.longestAt >= 0 ? w.pEnd[w.longestAt] - m.first : null,
        task: w.longestAt >= 0 ? w.pTask[w.longestAt] : null,
      }));
    },
    /** Redraws now, returning how long it took in ms. */
    redraw() {
      const t = now();
      viewer.draw();
      return now() - t;
    },
    /** Pans by a fraction of the view and redraws, returning ms. */
    panBy(fraction) {
      const t = now();
      viewer.pan(fraction);
      viewer.draw();
      viewer.dirty = false;
      return now() - t;
    },
    zoomBy(factor) {
      const t = now();
      viewer.zoom(factor);
      viewer.draw();
      return now() - t;
    },
  };

  // The model, without a page (benchmarks under Node).
  api.ModelBuilder = ModelBuilder;

  root.PulseViewer = api;
})(typeof self !== "undefined" ? self : this);
