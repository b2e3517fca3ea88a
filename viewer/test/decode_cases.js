#!/usr/bin/env node
// Decodes trace files with the viewer's JavaScript decoder and prints one
// canonical line per file header, event and error, in the format
// tests/tests/viewer_decoder.rs prints from pulse's Rust TraceReader.
//
//   node viewer/test/decode_cases.js CASES_DIR
//
// CASES_DIR/cases.txt lists one case per line: a case name, then the files
// of the case (read in that order as one set), separated by tabs. The
// output is, per case, "case NAME", the lines, and "end".
"use strict";

const fs = require("fs");
const path = require("path");
const PulseDecoder = require(path.join(__dirname, "..", "..", "pulse-cli", "src", "export", "html", "decoder.js"));

function num(v) {
  return v < 9007199254740992 ? String(v) : BigInt(v).toString();
}

function rd(dec) {
  return dec.runDelay < 0 ? "-" : PulseDecoder.u64Text(dec.runDelayI64);
}

function metadataLine(dec) {
  let line = "file " + dec.path + " version=" + dec.version;
  const m = dec.metadata;
  if (m) {
    line +=
      " unit=" + m.timeUnitNanos +
      " workers=" + m.workerCount +
      " start=" + num(m.startUnixNanos) +
      " pulse=" + JSON.stringify(m.pulseVersion) +
      " run_delay=" + m.hasRunDelay +
      " index=" + num(m.fileIndex) +
      " config=" + JSON.stringify(m.config.map(([k, v]) => k + "=" + v).join(";"));
  }
  return line;
}

function eventLine(dec, locations) {
  const K = PulseDecoder.Kind;
  const name = PulseDecoder.KIND_NAMES[dec.kind];
  const t = num(dec.t);
  switch (dec.kind) {
    case K.PollStart: {
      let loc = "-";
      if (dec.location !== 0) loc = "#" + dec.location + "@" + (locations.get(dec.location) ?? "?");
      const task = dec.version === 5 || dec.taskId < 0 ? "-" : PulseDecoder.u64Text(dec.taskIdI64);
      return name + " t=" + t + " w=" + dec.worker + " q=" + dec.localQueue + " task=" + task + " loc=" + loc;
    }
    case K.PollEnd:
      return name + " t=" + t + " w=" + dec.worker + " q=" + dec.localQueue;
    case K.WorkerPark:
    case K.WorkerUnpark:
      return name + " t=" + t + " w=" + dec.worker + " q=" + dec.localQueue + " cpu=" + (dec.cpu < 0 ? "-" : PulseDecoder.u64Text(dec.cpuI64)) + " rd=" + rd(dec);
    case K.QueueSample:
      return name + " t=" + t + " depth=" + num(dec.globalQueue);
    case K.WorkerSample:
      return name + " t=" + t + " w=" + dec.worker + " cpu=" + PulseDecoder.u64Text(dec.cpuI64) + " rd=" + rd(dec);
    case K.WorkerThread:
      return name + " t=" + t + " w=" + dec.worker + " tid=" + dec.tid + " kind=" + dec.threadKind;
    case K.StackSample:
      return name + " t=" + t + " w=" + dec.worker + " kind=" + dec.stackKind + " stack=" + dec.stack;
    case K.ScheduleLatency:
      return name + " t=" + t + " w=" + dec.worker + " latency=" + num(dec.latency);
    case K.SpanEnter:
      return (
        name + " t=" + t + " w=" + dec.worker + " span=" + num(dec.span) +
        " name=" + JSON.stringify(locations.text(dec.spanName)) + " fields=" + JSON.stringify(locations.text(dec.spanFields))
      );
    case K.SpanExit:
    case K.SpanClose:
      return name + " t=" + t + " w=" + dec.worker + " span=" + num(dec.span);
    case K.Mark:
      return (
        name + " t=" + t + " w=" + dec.worker + " name=" + JSON.stringify(locations.text(dec.markName)) +
        " value=" + (dec.markValue < 0 ? "-" : num(dec.markValue))
      );
    default:
      return name + " t=" + t + " count=" + num(dec.count);
  }
}

function errorLine(e) {
  if (!(e instanceof PulseDecoder.TraceError)) throw e;
  return "error kind=" + e.kind + " " + e.message;
}

function runCase(dir, files) {
  const out = [];
  // Each file's header on its own.
  for (const file of files) {
    const bytes = fs.readFileSync(path.join(dir, file));
    try {
      out.push(metadataLine(new PulseDecoder.FileDecoder(bytes, path.join(dir, file))));
    } catch (e) {
      out.push(errorLine(e));
    }
  }
  // Then the events of the whole set, as one reader reads them.
  const locations = new PulseDecoder.LocationTable();
  let dec = null;
  for (const file of files) {
    const bytes = fs.readFileSync(path.join(dir, file));
    try {
      dec = new PulseDecoder.FileDecoder(bytes, path.join(dir, file), locations);
      while (dec.next()) out.push(eventLine(dec, locations));
    } catch (e) {
      out.push(errorLine(e));
      return out;
    }
  }
  // How the trace ended: the last file's end record, if no event followed.
  const end = dec && dec.traceEnd;
  if (end) {
    out.push(
      "end-of-trace t=" + num(end.timestamp_nanos) + " code=" + num(end.code) + " detail=" + num(end.detail) +
        " dropped=" + num(end.dropped_events) + " threads=" + end.threads_still_recording
    );
  }
  return out;
}

function main() {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write("usage: decode_cases.js CASES_DIR\n");
    process.exit(2);
  }
  const manifest = fs.readFileSync(path.join(dir, "cases.txt"), "utf8");
  const chunks = [];
  for (const line of manifest.split("\n")) {
    if (line === "") continue;
    const [name, ...files] = line.split("\t");
    chunks.push("case " + name, ...runCase(dir, files), "end");
  }
  fs.writeFileSync(path.join(dir, "js.txt"), chunks.join("\n") + "\n");
}

main();
