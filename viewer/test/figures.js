#!/usr/bin/env node
// Loads trace files into the viewer's model (viewer.js's ModelBuilder, with
// decoder.js and timeline.js, as the page does) and prints the figures the
// viewer shows: per poll of at least MIN_NS, its CPU, run-queue and off-CPU
// time (the tooltip's "in the poll" line), and per active period its CPU
// time and run-queue wait (the "CPU/wall ratio" line).
//
//   node viewer/test/figures.js OUT MIN_NS TRACE_FILE...
//
// OUT gets one line per figure:
//   poll WORKER START END CPU RUN_DELAY|- OFF_CPU SAMPLES   (or "... none")
//   period WORKER START END CPU|? RUN_DELAY|?
// tests/tests/one_computation.rs compares them with the analysis.
"use strict";

const fs = require("fs");
const path = require("path");

const html = path.join(__dirname, "..", "..", "pulse-cli", "src", "export", "html");
global.self = global;
self.PulseDecoder = require(path.join(html, "decoder.js"));
self.PulseTimeline = require(path.join(html, "timeline.js"));
require(path.join(html, "viewer.js"));

async function main() {
  const [out, minNs, ...traces] = process.argv.slice(2);
  const min = Number(minNs);
  const files = traces.map((p) => ({ name: path.basename(p), bytes: new Uint8Array(fs.readFileSync(p)) }));
  const builder = new self.PulseViewer.ModelBuilder();
  await builder.decode(files);
  const model = await builder.finish();
  if (model.error) throw new Error("decoding failed: " + model.error.message);
  const lines = [];
  const n = (x) => (x === null ? "-" : String(x));
  for (const w of model.workers) {
    for (let i = 0; i < w.nPolls; i++) {
      const s = w.pStart[i];
      const e = w.pEnd[i];
      if (!(e - s >= min)) continue;
      const f = w.pollFigures(i);
      if (f === null) {
        lines.push(["poll", w.id, s, e, "none"].join(" "));
        continue;
      }
      const c = f.figures;
      lines.push(["poll", w.id, s, e, c.cpu_ns, n(c.run_delay_ns), c.off_cpu_ns, c.samples].join(" "));
    }
    for (let i = 0; i < w.nActive; i++) {
      const cpu = w.aCpu[i];
      const rd = w.aRd[i];
      lines.push(["period", w.id, w.aStart[i], w.aEnd[i], isFinite(cpu) ? cpu : "?", isFinite(rd) ? rd : "?"].join(" "));
    }
  }
  fs.writeFileSync(out, lines.join("\n") + "\n");
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
