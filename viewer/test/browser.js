#!/usr/bin/env node
// Opens a pulse viewer page in headless Chromium and reports what it shows,
// as JSON: the page's state, the lanes, the summary counts as the page
// displays them, the findings and the markers drawn for them, the tooltip
// shown when the pointer rests on a poll, every JavaScript error, and timings.
//
//   node viewer/test/browser.js PAGE.html OUT.json [options]
//
//   --open-files A,B      choose these files with the page's file picker first
//   --focus-verdict V     step to the first finding with verdict V, then hover it
//   --select-verdict V    show the whole trace, select that finding, hover it
//   --finding W:START     with either: the finding of worker W starting at START ns
//   --hover-longest W     hover the middle of worker W's longest poll
//   --view T0:T1          then show T0..T1 (ns since the first event)
//   --screenshot FILE     save a PNG of the page
//   --interact            wheel, drag and keys, as a person would; reports the
//                         view (and current finding) after each
//   --bench               also time panning and zooming (frames)
//   --size WxH            window size (default 1400x900)
//   --timeout S           give up after S seconds (default 120)
//
// It drives Chromium over the DevTools protocol on a pipe
// (--remote-debugging-pipe): no dependency, no network, no port.
// $CHROMIUM names the browser (default: chromium).
"use strict";

const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

function parseArgs(argv) {
  const args = { page: argv[0], out: argv[1], size: [1400, 900], timeout: 120 };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--focus-verdict") args.focusVerdict = argv[++i];
    else if (a === "--select-verdict") (args.focusVerdict = argv[++i]), (args.selectOnly = true);
    else if (a === "--finding") args.finding = argv[++i].split(":").map(Number);
    else if (a === "--hover-longest") args.hoverLongest = Number(argv[++i]);
    else if (a === "--open-files") args.openFiles = argv[++i].split(",").map((f) => path.resolve(f));
    else if (a === "--screenshot") args.screenshot = argv[++i];
    else if (a === "--view") args.view = argv[++i].split(":").map(Number);
    else if (a === "--bench") args.bench = true;
    else if (a === "--interact") args.interact = true;
    else if (a === "--size") args.size = argv[++i].split("x").map(Number);
    else if (a === "--timeout") args.timeout = Number(argv[++i]);
    else throw new Error("unknown option " + a);
  }
  if (!args.page || !args.out) throw new Error("usage: browser.js PAGE.html OUT.json [options]");
  return args;
}

/** A DevTools protocol connection over Chromium's pipe (fds 3 and 4). */
class Cdp {
  constructor(proc) {
    this.proc = proc;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = [];
    this.buffer = Buffer.alloc(0);
    proc.stdio[4].on("data", (chunk) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      let end;
      while ((end = this.buffer.indexOf(0)) >= 0) {
        const msg = JSON.parse(this.buffer.subarray(0, end).toString("utf8"));
        this.buffer = this.buffer.subarray(end + 1);
        if (msg.id !== undefined && this.pending.has(msg.id)) {
          const { resolve, reject } = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          if (msg.error) reject(new Error(msg.error.message + " (" + msg.error.code + ")"));
          else resolve(msg.result);
        } else if (msg.method) {
          for (const l of this.listeners) l(msg);
        }
      }
    });
  }
  send(method, params, sessionId) {
    const id = this.nextId++;
    const msg = { id, method, params: params || {} };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.proc.stdio[3].write(JSON.stringify(msg) + "\0");
    });
  }
  on(fn) {
    this.listeners.push(fn);
  }
  waitFor(method, sessionId, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timed out waiting for " + method)), timeoutMs);
      this.on((msg) => {
        if (msg.method === method && (!sessionId || msg.sessionId === sessionId)) {
          clearTimeout(timer);
          resolve(msg.params);
        }
      });
    });
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const page = path.resolve(args.page);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "pulse-chromium-"));
  const chromium = process.env.CHROMIUM || "chromium";
  const proc = spawn(
    chromium,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--disable-features=Translate,MediaRouter,OptimizationHints",
      "--allow-file-access-from-files",
      "--user-data-dir=" + profile,
      "--window-size=" + args.size.join(","),
      "--remote-debugging-pipe",
      "about:blank",
    ],
    // Its temporary files (the singleton socket's directory) go in the
    // profile, which is removed below: Chromium killed with SIGKILL never
    // removes them itself. Its own process group, so that the browser and
    // every child it started (GPU, renderer, utility processes, which
    // write into the profile too) are killed together before the profile
    // is removed.
    {
      stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"],
      env: { ...process.env, TMPDIR: profile },
      detached: true,
    }
  );
  const killAll = () => {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch (_) {
      try {
        proc.kill("SIGKILL");
      } catch (_) {}
    }
  };
  // Removes the profile; once more if a process that outlived the kill
  // wrote into it again.
  const removeProfile = () => {
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch (e) {
      process.stderr.write("browser.js: could not remove " + profile + ": " + e.message + "\n");
    }
  };
  let stderr = "";
  proc.stdio[2].on("data", (d) => (stderr += d));
  const killTimer = setTimeout(() => {
    process.stderr.write("browser.js: timed out after " + args.timeout + " s\n" + stderr.slice(-4000));
    killAll();
    removeProfile();
    process.exit(3);
  }, args.timeout * 1000);
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  const cleanup = async () => {
    killAll();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    removeProfile();
    await new Promise((r) => setTimeout(r, 200));
    if (fs.existsSync(profile)) removeProfile();
  };

  const result = { errors: [], console: [] };
  try {
    const cdp = new Cdp(proc);
    const { targetInfos } = await cdp.send("Target.getTargets");
    let target = targetInfos.find((t) => t.type === "page");
    const targetId = target ? target.targetId : (await cdp.send("Target.createTarget", { url: "about:blank" })).targetId;
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const s = (method, params) => cdp.send(method, params, sessionId);
    cdp.on((msg) => {
      if (msg.sessionId !== sessionId) return;
      const p = msg.params;
      if (msg.method === "Runtime.exceptionThrown") {
        const d = p.exceptionDetails;
        result.errors.push("exception: " + ((d.exception && d.exception.description) || d.text));
      } else if (msg.method === "Runtime.consoleAPICalled") {
        const text = p.args.map((a) => (a.value !== undefined ? String(a.value) : a.description || a.type)).join(" ");
        result.console.push(p.type + ": " + text);
        if (p.type === "error" || p.type === "assert") result.errors.push("console." + p.type + ": " + text);
      } else if (msg.method === "Log.entryAdded") {
        const e = p.entry;
        result.console.push("log " + e.level + ": " + e.text);
        if (e.level === "error") result.errors.push("log: " + e.text + (e.url ? " (" + e.url + ")" : ""));
      }
    });
    await s("Runtime.enable");
    await s("Log.enable");
    await s("Page.enable");
    await s("Emulation.setDeviceMetricsOverride", {
      width: args.size[0],
      height: args.size[1],
      deviceScaleFactor: 1,
      mobile: false,
    });
    // Long main-thread tasks while loading (a frozen tab shows up here).
    await s("Page.addScriptToEvaluateOnNewDocument", {
      source:
        "window.__longTasks = [];" +
        "try { new PerformanceObserver(l => { for (const e of l.getEntries()) window.__longTasks.push([Math.round(e.startTime), Math.round(e.duration)]); })" +
        ".observe({ type: 'longtask', buffered: true }); } catch (e) {}",
    });
    const loaded = cdp.waitFor("Page.loadEventFired", sessionId, args.timeout * 1000);
    const started = Date.now();
    await s("Page.navigate", { url: "file://" + page });
    await loaded;
    const evaluate = async (expression, awaitPromise) => {
      const r = await s("Runtime.evaluate", { expression, awaitPromise: !!awaitPromise, returnByValue: true });
      if (r.exceptionDetails) {
        throw new Error("evaluating " + expression + ": " + (r.exceptionDetails.exception ? r.exceptionDetails.exception.description : r.exceptionDetails.text));
      }
      return r.result.value;
    };
    result.state = await evaluate("pulseViewer.ready.then(() => pulseViewer.state, e => 'error: ' + e)", true);
    result.ready_ms = Date.now() - started;
    if (args.openFiles) {
      // The file picker, as a person would use it.
      result.stateBeforeOpen = result.state;
      const { root } = await s("DOM.getDocument", { depth: 1 });
      const { nodeId } = await s("DOM.querySelector", { nodeId: root.nodeId, selector: "#file-input" });
      await s("DOM.setFileInputFiles", { nodeId, files: args.openFiles });
      const opened = Date.now();
      result.state = await evaluate(
        `new Promise((resolve) => { const check = () => { const st = pulseViewer.state;
           if (st === 'ready' || st === 'error') resolve(st); else setTimeout(check, 50); }; setTimeout(check, 50); })`,
        true
      );
      result.open_ms = Date.now() - opened;
    }
    // Let a frame or two be drawn.
    await evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))", true);
    result.page = await evaluate(
      `(() => {
        const count = (sel) => { const e = document.querySelector(sel); return e ? Number(e.dataset.count) : null; };
        const kinds = {};
        for (const tr of document.querySelectorAll('#summary tr[data-kind]')) kinds[tr.dataset.kind] = Number(tr.dataset.count);
        return {
          title: document.title,
          laneLabels: [...document.querySelectorAll('.lane-label')].map(e => ({ worker: Number(e.dataset.worker), text: e.innerText })),
          summaryText: document.getElementById('summary').innerText,
          summary: { events: count('[data-summary=events]'), dropped: count('[data-summary=dropped]'), kinds },
          workersShown: Number((document.querySelector('[data-summary=workers] .v') || {}).textContent),
          findingItems: [...document.querySelectorAll('#finding-list li[data-verdict]')].map(li => ({ verdict: li.dataset.verdict, worker: Number(li.dataset.worker), text: li.innerText })),
          status: document.getElementById('status').innerText,
          model: pulseViewer.summary(),
          lanes: pulseViewer.lanes(),
          findings: pulseViewer.findings().length,
          markers: pulseViewer.markers(),
          findingNote: (document.getElementById('findings-omitted') || {}).innerText || null,
          timings: pulseViewer.timings,
          longTasks: window.__longTasks || [],
          viewerErrors: pulseViewer.errors,
        };
      })()`
    );

    if (args.focusVerdict !== undefined || args.hoverLongest !== undefined) {
      let target;
      if (args.focusVerdict !== undefined) {
        target = await evaluate(
          `(() => {
            const fs = pulseViewer.findings();
            const want = ${JSON.stringify(args.finding || null)};
            const i = fs.findIndex(f => f.verdict === ${JSON.stringify(args.focusVerdict)}
              && (!want || (f.worker === want[0] && f.start_ns === want[1])));
            if (i < 0) return null;
            if (${!!args.selectOnly}) { pulseViewer.fit(); pulseViewer.selectFinding(i); }
            else pulseViewer.focusFinding(i);
            const f = fs[i];
            const first = pulseViewer.summary().first;
            return { index: i, worker: f.worker, t: (f.start_ns + f.end_ns) / 2 - first, finding: f };
          })()`
        );
      } else {
        target = await evaluate(
          `(() => {
            const p = pulseViewer.longestPolls().find(p => p.worker === ${args.hoverLongest});
            if (!p || p.start === null) return null;
            const d = p.end - p.start;
            pulseViewer.setView(p.start - d, p.end + d);
            return { worker: p.worker, t: (p.start + p.end) / 2, poll: p };
          })()`
        );
      }
      result.target = target;
      if (target) {
        await evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))", true);
        result.markers = await evaluate("pulseViewer.markers()");
        // The colours the canvas really has across the focused marker's left edge.
        if (target.index !== undefined) {
          result.markerPixel = await evaluate(
            `(() => {
              const m = pulseViewer.markers().find(m => m.index === ${target.index});
              if (!m) return null;
              const c = document.getElementById('canvas');
              const scale = c.width / c.getBoundingClientRect().width;
              // The pixels across the marker's left edge, half-way down.
              const y = Math.round(((m.y0 + m.y1) / 2) * scale);
              const out = [];
              for (let dx = -2; dx <= 2; dx++) {
                const px = c.getContext('2d').getImageData(Math.round((m.x0 + dx) * scale), y, 1, 1).data;
                out.push([px[0], px[1], px[2], px[3]]);
              }
              return out;
            })()`
          );
        }
        const at = await evaluate(`pulseViewer.locate(${target.worker}, ${target.t})`);
        // Scroll the lane into view if it is below the fold.
        await evaluate(
          `(() => { const tl = document.getElementById('timeline'); const r = tl.getBoundingClientRect();
             if (${at.y} > r.bottom - 20) tl.scrollTop += ${at.y} - r.bottom + 80; })()`
        );
        const at2 = await evaluate(`pulseViewer.locate(${target.worker}, ${target.t})`);
        await s("Input.dispatchMouseEvent", { type: "mouseMoved", x: at2.x, y: at2.y });
        await evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))", true);
        result.hover = { at: at2 };
        result.tooltip = await evaluate(
          "(() => { const t = document.getElementById('tooltip'); return { visible: !t.hidden, text: t.innerText }; })()"
        );
      }
    }

    if (args.interact) {
      const frame = () => evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))", true);
      const state = async (what) => {
        await frame();
        const v = await evaluate(
          "(() => { const v = pulseViewer.view(); return { t0: v.t0, t1: v.t1, pos: document.getElementById('finding-pos').textContent }; })()"
        );
        v.what = what;
        steps.push(v);
      };
      const key = async (k, code) => {
        await s("Input.dispatchKeyEvent", { type: "keyDown", key: k, code, text: k.length === 1 ? k : undefined });
        await s("Input.dispatchKeyEvent", { type: "keyUp", key: k, code });
      };
      const steps = [];
      const c = await evaluate("(() => { const r = document.getElementById('canvas').getBoundingClientRect(); return { x: r.left + r.width * 0.6, y: r.top + 100 }; })()");
      await evaluate("pulseViewer.fit(), 0");
      await state("fit");
      await s("Input.dispatchMouseEvent", { type: "mouseWheel", x: c.x, y: c.y, deltaX: 0, deltaY: -240 });
      await state("wheel up");
      await s("Input.dispatchMouseEvent", { type: "mouseWheel", x: c.x, y: c.y, deltaX: 0, deltaY: 120 });
      await state("wheel down");
      await s("Input.dispatchMouseEvent", { type: "mousePressed", x: c.x, y: c.y, button: "left", clickCount: 1 });
      await s("Input.dispatchMouseEvent", { type: "mouseMoved", x: c.x - 200, y: c.y, button: "left", buttons: 1 });
      await s("Input.dispatchMouseEvent", { type: "mouseReleased", x: c.x - 200, y: c.y, button: "left", clickCount: 1 });
      await state("drag left");
      await key("w", "KeyW");
      await state("key w");
      await key("s", "KeyS");
      await state("key s");
      await key("d", "KeyD");
      await state("key d");
      await key("ArrowLeft", "ArrowLeft");
      await state("key ArrowLeft");
      await key("0", "Digit0");
      await state("key 0");
      await key("n", "KeyN");
      await state("key n");
      await key("n", "KeyN");
      await state("key n again");
      await key("p", "KeyP");
      await state("key p");
      result.interact = steps;
    }

    if (args.bench) {
      result.bench = await evaluate(
        `(async () => {
          const frame = () => new Promise(r => requestAnimationFrame(r));
          const stats = (xs) => { const s = xs.slice().sort((a, b) => a - b); return { n: s.length, median: s[s.length >> 1], p95: s[Math.floor(s.length * 0.95)], max: s[s.length - 1] }; };
          pulseViewer.setView(-1e12, 1e15);
          const whole = [];
          for (let i = 0; i < 30; i++) { whole.push(pulseViewer.panBy(0.02)); await frame(); }
          const s = pulseViewer.summary();
          const span = s.last - s.first;
          const zoomed = [];
          for (const width of [span / 10, span / 100, span / 1000, span / 1e4, span / 1e5]) {
            pulseViewer.setView(span / 2 - width / 2, span / 2 + width / 2);
            for (let i = 0; i < 20; i++) { zoomed.push(pulseViewer.panBy(0.05)); await frame(); }
          }
          const zoom = [];
          pulseViewer.setView(span / 2 - 1e5, span / 2 + 1e5);
          for (let i = 0; i < 40; i++) { zoom.push(pulseViewer.zoomBy(1.35)); await frame(); }
          return { panWhole: stats(whole), panZoomed: stats(zoomed), zoomOut: stats(zoom), heapMB: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null };
        })()`,
        true
      );
    }

    if (args.view) await evaluate(`pulseViewer.setView(${args.view[0]}, ${args.view[1]}), 0`);
    if (args.screenshot) {
      // As the page is now (after any hover above).
      await evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))", true);
      const shot = await s("Page.captureScreenshot", { format: "png" });
      fs.writeFileSync(args.screenshot, Buffer.from(shot.data, "base64"));
    }
    await cdp.send("Browser.close").catch(() => {});
  } catch (e) {
    result.failure = String(e && e.stack ? e.stack : e);
  } finally {
    clearTimeout(killTimer);
    await cleanup();
  }
  fs.writeFileSync(args.out, JSON.stringify(result, null, 2));
  if (result.failure) {
    process.stderr.write(result.failure + "\n" + stderr.slice(-4000) + "\n");
    process.exit(2);
  }
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(2);
});
