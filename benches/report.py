#!/usr/bin/env python3
"""Turns one run of the `critical_path` bench into BENCHMARKS.md's tables.

Usage:
    python3 benches/report.py [CRITERION_DIR]

CRITERION_DIR defaults to target/criterion at the workspace root. Every
figure and every ratio comes from the latest run criterion saved there, so
ratios compare measurements taken minutes apart on the same machine, never
across runs. Figures are criterion's typical estimate (the slope of the
linear regression, as criterion prints it) with its 95 % confidence
interval, and the median of the samples.
"""

import json
import pathlib
import sys

POLL_EVENT_TARGET_NS = 20.0
PARK_TARGET_RATIO = 1.5
YIELD_TARGET_RATIO = 1.3


def load(root):
    results = {}
    for bench in root.glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        typical = estimates.get("slope") or estimates["mean"]
        interval = typical["confidence_interval"]
        elements = (meta.get("throughput") or {}).get("Elements")
        results[meta["full_id"]] = {
            "ns": typical["point_estimate"],
            "lo": interval["lower_bound"],
            "hi": interval["upper_bound"],
            "median": estimates["median"]["point_estimate"],
            "elements": elements,
        }
    return results


def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.3g} ns"


def cell(r, divide=1):
    return f"{fmt(r['ns'] / divide)} [{fmt(r['lo'] / divide)}, {fmt(r['hi'] / divide)}]"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def main():
    default = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
    root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default
    r = load(root)
    if not r:
        sys.exit(f"no criterion results under {root}")
    get = r.get
    sections = []

    prim = [(k, v) for k, v in sorted(r.items()) if k.startswith("primitives/")]
    if prim:
        sections.append("### Primitives (one call)\n\n" + table(
            ["operation", "typical [95 % CI]", "median"],
            [[f"`{k.split('/', 1)[1]}`", cell(v), fmt(v["median"])] for k, v in prim],
        ))

    poll = [(k, v) for k, v in sorted(r.items()) if k.startswith(("poll_event/", "poll_flush/"))]
    if poll:
        rows = []
        for k, v in poll:
            per_event = v["ns"] / 2
            verdict = "—" if "disabled" in k else (
                "meets" if per_event <= POLL_EVENT_TARGET_NS
                else f"misses by {per_event - POLL_EVENT_TARGET_NS:.1f} ns ({per_event / POLL_EVENT_TARGET_NS:.2f}×)")
            rows.append([f"`{k}`", cell(v), cell(v, 2), f"≤ {POLL_EVENT_TARGET_NS:.0f} ns", verdict])
        sections.append("### Poll events (PollStart + PollEnd)\n\n" + table(
            ["benchmark", "per pair [95 % CI]", "per event", "target", "verdict"], rows))

    mono, wi_in = get("primitives/monotonic_nanos"), get("primitives/worker_index_inside")
    depth = get("primitives/worker_local_queue_depth")
    no_m, with_m = get("poll_event/pair_no_metrics"), get("poll_event/pair_with_metrics")
    hook = get("poll_event/pair_hook_in_worker")
    if mono and no_m:
        rows = [["timestamp (`clock::monotonic_nanos`, 1 per event)", fmt(mono["ns"]), "primitive"]]
        if with_m:
            rows.append(["local queue depth (with − without metrics, per event)",
                         fmt((with_m["ns"] - no_m["ns"]) / 2),
                         f"difference; the bare call is {fmt(depth['ns'])}" if depth else "difference"])
        rows.append(["rest: enabled flag, thread-local, buffer push, amortised flush",
                     fmt(no_m["ns"] / 2 - mono["ns"]), "pair_no_metrics / 2 − timestamp"])
        f64, f1k = get("poll_flush/pair_buffer_events/64"), get("poll_flush/pair_buffer_events/1024")
        if f64 and f1k:
            fixed = (f64["ns"] - f1k["ns"]) / 2 / (1 / 64 - 1 / 1024)
            rows.append(["of which the per-flush fixed cost, amortised over 1024",
                         fmt(fixed / 1024),
                         f"from buffers of 64 vs 1024: {fmt(fixed)} per flush (noisy)"])
        if wi_in:
            rows.append(["worker index (`tokio::runtime::worker_index`, in the hook)",
                         fmt(wi_in["ns"]), "primitive, on a worker"])
            total = (with_m or no_m)["ns"] / 2 + wi_in["ns"]
            rows.append(["**sum: one poll event as the hook records it**", f"**{fmt(total)}**",
                         f"target ≤ {POLL_EVENT_TARGET_NS:.0f} ns"])
        if hook:
            rows.append(["measured: `pair_hook_in_worker` / 2", fmt(hook["ns"] / 2),
                         "the same, timed on a worker thread"])
        sections.append("### Per-poll-event breakdown (same run)\n\n" + table(
            ["part", "ns per event", "how"], rows))

    cpu = get("primitives/thread_cpu_nanos")
    park = [(k, v) for k, v in sorted(r.items()) if k.startswith("park_unpark/")]
    if park:
        rows = []
        for k, v in park:
            per_event = v["ns"] / 2
            if cpu and "disabled" not in k:
                ratio = per_event / cpu["ns"]
                verdict = "meets" if ratio <= PARK_TARGET_RATIO else "misses"
                rows.append([f"`{k}`", cell(v), fmt(per_event), f"{ratio:.2f}× ({verdict})"])
            else:
                rows.append([f"`{k}`", cell(v), fmt(per_event), "—"])
        title = "### Park/unpark events"
        if cpu:
            title += (f" (one `CLOCK_THREAD_CPUTIME_ID` call: {fmt(cpu['ns'])};"
                      f" target ≤ {PARK_TARGET_RATIO}× that per event)")
        sections.append(title + "\n\n" + table(
            ["benchmark", "per pair [95 % CI]", "per event", "per event ÷ CPU clock call"], rows))

    rows = []
    for flavor in ("multi_thread_2", "current_thread"):
        plain, traced = get(f"runtime_yield/plain/{flavor}"), get(f"runtime_yield/traced/{flavor}")
        if not (plain and traced):
            continue
        polls = plain["elements"] or 1
        ratio = traced["ns"] / plain["ns"]
        verdict = "meets" if ratio <= YIELD_TARGET_RATIO else "misses"
        rows.append([f"`{flavor}`", cell(plain), cell(traced), f"{ratio:.2f}× ({verdict})",
                     fmt(plain["ns"] / polls), fmt((traced["ns"] - plain["ns"]) / polls)])
    if rows:
        sections.append("### Whole runtime, tasks that only yield"
                        f" (target ≤ {YIELD_TARGET_RATIO}×)\n\n" + table(
                            ["runtime", "plain", "traced (NullWriter)", "traced ÷ plain",
                             "plain per poll", "added per poll"], rows))

    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
