#!/usr/bin/env python3
"""Summary and chart of a bench/soak.sh run; python3 standard library only.

Reads the run's work directory (samples.csv, events.csv, load.json, load.log and the server
logs), prints the summary, writes OUT.html (one self-contained page: inline SVG, no network)
and OUT.txt (the summary), and exits 1 when a process crashed other than in the planned
restarts, the load generator left no report, or a slope is clearly positive.

Slopes: per process and metric, a least-squares line over the samples after warm-up (the first
WARMUP share of the run, and as long again after each restart of that process), with one
intercept per process lifetime, so a restart's drop does not count as a fall. A slope is
clearly positive when it is above three standard errors and its drift over the fitted time
exceeds both three times the residual noise and a floor (RSS: 2 MiB and 2%; fds: 3; threads: 2),
unless the later half of the fitted samples rises at less than half that slope: a series still
settling at the start of the window and flat by its end is reported as settling, not judged.
Only the servers are judged: the load generator keeps a per-second timeline of histograms for
its report, so its memory grows with the run's length; its slopes are shown, not judged.

Errors: a restart explains errors of the workloads that reach the restarted server (through the
edge: the edge and the origin) from 2 s before it stops until RECOVER seconds after it listens
again; the business workloads are never restarted, so any error of theirs is unexplained.
"""

import argparse
import csv
import html
import json
import math
import os
import re
import sys
from collections import defaultdict

PROCESSES = ["origin", "edge", "business", "load"]
COLORS = {"origin": "#1f77b4", "edge": "#ff7f0e", "business": "#2ca02c", "load": "#9467bd"}
METRICS = [
    ("rss_kib", "RSS (MiB)", lambda v: v / 1024.0),
    ("fds", "open fds", lambda v: v),
    ("threads", "threads", lambda v: v),
    ("conns", "open connections (/metrics)", lambda v: v),
]
FITTED = ["rss_kib", "fds", "threads"]
PLAYERS = {"hls-play", "flv-play", "rtmp-play"}
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\s+(WARN|ERROR)\s+(.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def floor_for(metric, mean):
    if metric == "rss_kib":
        return max(2048.0, 0.02 * mean)
    return 3.0 if metric == "fds" else 2.0


def read_csv(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def unix_ms_of(stamp):
    """RFC 3339 UTC without the Z, as unix milliseconds."""
    import datetime

    date, _, frac = stamp.partition(".")
    dt = datetime.datetime.strptime(date, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() * 1000 + (float("0." + frac) * 1000 if frac else 0)


def log_events(path, t0_ms):
    """(seconds from the start, level, message) of each WARN/ERROR line in a log."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = LOG_LINE.match(ANSI.sub("", line.rstrip("\n")))
                if m:
                    out.append(((unix_ms_of(m.group(1)) - t0_ms) / 1000.0, m.group(2), m.group(3)))
    except FileNotFoundError:
        pass
    return out


def fit(segments):
    """Pooled least-squares slope over segments [(t_min, y)], one intercept per segment.

    Returns dict(slope, se, sigma, span, n, mean) or None when there are too few points."""
    segs = [s for s in segments if len(s) >= 3]
    n = sum(len(s) for s in segs)
    if n < len(segs) + 3:
        return None
    sxx = sxy = 0.0
    for s in segs:
        tm = sum(t for t, _ in s) / len(s)
        ym = sum(y for _, y in s) / len(s)
        sxx += sum((t - tm) ** 2 for t, _ in s)
        sxy += sum((t - tm) * (y - ym) for t, y in s)
    if sxx <= 0:
        return None
    b = sxy / sxx
    sse = 0.0
    for s in segs:
        tm = sum(t for t, _ in s) / len(s)
        ym = sum(y for _, y in s) / len(s)
        sse += sum((y - ym - b * (t - tm)) ** 2 for t, y in s)
    dof = n - len(segs) - 1
    sigma = math.sqrt(sse / dof) if dof > 0 else 0.0
    return {
        "slope": b,
        "se": sigma / math.sqrt(sxx),
        "sigma": sigma,
        "span": sum(s[-1][0] - s[0][0] for s in segs),
        "n": n,
        "mean": sum(y for s in segs for _, y in s) / n,
        "lines": [(s[0][0], s[-1][0], sum(y for _, y in s) / len(s), sum(t for t, _ in s) / len(s)) for s in segs],
    }


def verdict(metric, f, late):
    """`late`: the fit over the later half of each lifetime's samples (None if too few)."""
    if f is None:
        return "too few samples"
    drift = f["slope"] * f["span"]
    floor = floor_for(metric, f["mean"])
    clear = f["slope"] > 0 and f["slope"] > 3 * f["se"] and drift > 3 * f["sigma"] and drift > floor
    if clear and late is not None and late["slope"] < f["slope"] / 2:
        # Still filling at the start of the window and flat by its end: settling, not growing.
        return f"settling (later half {fmt_num(late['slope'], metric)}/min)"
    if clear:
        return "RISING"
    if f["slope"] > 0 and f["slope"] > 3 * f["se"] and drift > 3 * f["sigma"]:
        return "rising, below the floor"
    return "flat"


def fmt_num(v, metric):
    if metric == "rss_kib":
        return f"{v:+.0f} KiB"
    return f"{v:+.2f}"


def nice_step(span, ticks=4):
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def svg_chart(title, series, events, warm_end, t_max, fits=None, bars=None, width=900, height=260):
    """series: {name: [(t_min, y, lifetime)]}, a new lifetime starting a new line;
    events: [(t_min, label)]; fits: {name: [(t0, t1, y0, y1)]}; bars: bin width in minutes to
    draw bars (side by side per series) instead of lines."""
    ml, mr, mt, mb = 60, 110, 24, 30
    pw, ph = width - ml - mr, height - mt - mb
    ys = [p[1] for pts in series.values() for p in pts]
    step = nice_step(max(ys) if ys and max(ys) > 0 else 1.0)
    y_max = step * (math.floor((max(ys) if ys else 0) / step) + 1)
    t_max = max(t_max, 1e-6)

    def x(t):
        return ml + pw * t / t_max

    def y(v):
        return mt + ph * (1 - v / y_max)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">']
    out.append(f'<text x="{ml}" y="15" font-size="13" font-weight="bold">{html.escape(title)}</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{x(warm_end) - ml:.1f}" height="{ph}" fill="#eee"/>')
    out.append(f'<text x="{ml + 3}" y="{mt + ph - 4}" fill="#888">warm-up</text>')
    v = 0.0
    while v <= y_max + 1e-9:
        out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{ml - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        v += step
    t_step = nice_step(t_max, 10)
    t = 0.0
    while t <= t_max + 1e-9:
        out.append(f'<text x="{x(t):.1f}" y="{mt + ph + 14}" text-anchor="middle">{t:g}</text>')
        t += t_step
    out.append(f'<text x="{ml + pw}" y="{height - 2}" text-anchor="end">minutes</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for k, (t, label) in enumerate(events):
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{mt}" y2="{mt + ph}" stroke="#c00" '
                   f'stroke-dasharray="4,3"/>')
        out.append(f'<text x="{x(t) + 3:.1f}" y="{mt + 11 + 12 * (k % 2)}" fill="#c00">{html.escape(label)}</text>')
    palette = ["#d62728", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    for k, (name, pts) in enumerate(series.items()):
        color = COLORS.get(name) or palette[k % len(palette)]
        if bars:
            bw = pw * bars / t_max / len(series)
            for t, v, _ in pts:
                out.append(f'<rect x="{x(t) + k * bw:.1f}" y="{y(v):.1f}" width="{max(bw - 0.5, 0.5):.1f}" '
                           f'height="{y(0) - y(v):.1f}" fill="{color}"><title>{html.escape(name)}: '
                           f'{v:g} at {t:g} min</title></rect>')
        else:
            path, last = [], None
            for t, v, life in pts:
                path.append(f"{'L' if life == last else 'M'}{x(t):.1f},{y(v):.1f}")
                last = life
            out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        for t0, t1, y0, y1 in (fits or {}).get(name, []):
            out.append(f'<line x1="{x(t0):.1f}" x2="{x(t1):.1f}" y1="{y(y0):.1f}" y2="{y(y1):.1f}" '
                       f'stroke="{color}" stroke-dasharray="2,2" stroke-width="2"/>')
        out.append(f'<rect x="{ml + pw + 10}" y="{mt + 14 * k}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{ml + pw + 24}" y="{mt + 14 * k + 9}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--warmup", type=float, default=0.2)
    ap.add_argument("--recover-secs", type=float, default=30)
    ap.add_argument("--sample-secs", type=float, default=10)
    ap.add_argument("--out", required=True, help="path prefix: writes PREFIX.html and PREFIX.txt")
    ap.add_argument("--ports", default="", help="ROLE=PORT[,PORT] … of the servers, e.g. origin=1935,8080")
    a = ap.parse_args()
    run_secs = a.minutes * 60
    warm_secs = a.warmup * run_secs
    lines, failures = [], []

    def say(s=""):
        lines.append(s)
        print(s)

    events = read_csv(os.path.join(a.work, "events.csv"))
    samples = read_csv(os.path.join(a.work, "samples.csv"))
    try:
        report = json.load(open(os.path.join(a.work, "load.json")))
    except (OSError, ValueError) as e:
        report = None
        failures.append(f"the load generator left no report ({e})")
    load_start = next((int(e["unix_ms"]) for e in events if e["role"] == "load" and e["event"] == "start"), None)
    t0_ms = report["started_unix_ms"] if report else (load_start or 0)

    def rel(ms):
        return (int(ms) - t0_ms) / 1000.0

    # Restarts: planned (stop … ready) and crashes (crash … ready), each a window in seconds.
    windows, marks, crashes = [], [], []
    pending = {}
    for e in events:
        role, ev = e["role"], e["event"]
        if ev == "stop" and e["detail"] == "SIGTERM":
            pending[role] = ("planned", rel(e["unix_ms"]))
        elif ev == "crash":
            crashes.append(f"{role} (pid {e['pid']}) at {rel(e['unix_ms']):.0f} s: {e['detail']}")
            pending[role] = ("crash", rel(e["unix_ms"]))
        elif ev == "ready" and role in pending:
            kind, t_stop = pending.pop(role)
            t_ready = rel(e["unix_ms"])
            windows.append((role, kind, t_stop, t_ready))
            marks.append((t_stop / 60, f"{role} {'restart' if kind == 'planned' else 'CRASH'}"))
    for role, (kind, t_stop) in pending.items():
        if kind == "crash":
            marks.append((t_stop / 60, f"{role} CRASH"))
    for c in crashes:
        failures.append(f"crash: {c}")

    port_role = {}
    for item in a.ports.split():
        role, _, ports = item.partition("=")
        for port in ports.split(","):
            port_role[port] = role

    def reached(text):
        """The servers a workload target or a log message reaches; None when it names none."""
        for port, role in port_role.items():
            if re.search(rf"[:/]{port}\b", text or ""):
                return {"edge", "origin"} if role == "edge" else {role}
        return None

    def around_restart(t, roles=None):
        return next((f"{r} {k}" for r, k, s, e in windows
                     if s - 2 <= t <= e + a.recover_secs and (roles is None or r in roles)), None)

    say(f"== soak: {a.minutes:g} min, samples every {a.sample_secs:g} s, warm-up {warm_secs:.0f} s "
        f"dropped (also after each restart), errors up to {a.recover_secs:g} s after a restart count as its own")
    for role, kind, s, e in windows:
        say(f"   {kind} restart of {role}: stopped at {s:.1f} s, listening again at {e:.1f} s ({e - s:.1f} s down)")
    for c in crashes:
        say(f"   CRASH {c}")

    # Per-process series, split into lifetimes (pids).
    start_of = {}
    for e in events:
        if e["event"] == "ready" and e["pid"]:
            start_of[(e["role"], e["pid"])] = rel(e["unix_ms"])
        if e["role"] == "load" and e["event"] == "start":
            start_of[("load", e["pid"])] = rel(e["unix_ms"])
    by_proc = defaultdict(list)
    for r in samples:
        by_proc[r["process"]].append(r)
    say()
    say("== slopes after warm-up (least squares per minute; noise = residual standard deviation)")
    say(f"{'process':<9} {'metric':<8} {'mean':>10} {'slope/min':>12} {'± s.e.':>10} {'drift':>11} "
        f"{'noise':>9} {'n':>4}  verdict")
    fits_for = defaultdict(dict)
    for proc in PROCESSES:
        rows = by_proc.get(proc, [])
        for metric in FITTED:
            lifetimes = defaultdict(list)
            for r in rows:
                t = rel(r["unix_ms"])
                # The last seconds: the generator stops its users and the servers see them go.
                if r[metric] == "" or t > run_secs - 5:
                    continue
                begin = max(0.0, start_of.get((proc, r["pid"]), 0.0))
                if t >= begin + warm_secs:
                    lifetimes[r["pid"]].append((t / 60, float(r[metric])))
            f = fit(list(lifetimes.values()))
            late = fit([pts[len(pts) // 2:] for pts in lifetimes.values()])
            v = verdict(metric, f, late)
            if f is None:
                say(f"{proc:<9} {metric:<8} {'':>10} {'':>12} {'':>10} {'':>11} {'':>9} {'':>4}  {v}")
                continue
            scale = 1.0 / 1024 if metric == "rss_kib" else 1.0
            fits_for[metric][proc] = [
                (t_a, t_b, (ym + f["slope"] * (t_a - tm)) * scale, (ym + f["slope"] * (t_b - tm)) * scale)
                for t_a, t_b, ym, tm in f["lines"]
            ]
            if v == "RISING" and proc == "load":
                v = "rising (generator, not judged)"
            say(f"{proc:<9} {metric:<8} {f['mean']:>10.0f} {fmt_num(f['slope'], metric):>12} "
                f"{f['se']:>10.2f} {fmt_num(f['slope'] * f['span'], metric):>11} {f['sigma']:>9.2f} "
                f"{f['n']:>4}  {v}")
            if v == "RISING":
                failures.append(f"{proc} {metric} rises {fmt_num(f['slope'], metric)}/min "
                                f"(± {f['se']:.2f}, noise {f['sigma']:.2f})")

    # Load report: errors per workload, and when they happened.
    say()
    err_series = defaultdict(lambda: defaultdict(float))
    outside = []
    after_crash = 0
    deferred = 0
    if report:
        say("== load report")
        say(f"{'workload':<12} {'driver':<13} {'started':>8} {'errors':>7} {'rate':>8}  errors by kind / outcomes / media")
        for w in report["workloads"]:
            errs = w.get("errors", {})
            media = w.get("media") or {}
            extra = ", ".join(f"{k} {v}" for k, v in sorted(errs.items())) or "-"
            outs = ", ".join(f"{k} {v}" for k, v in sorted((w.get("outcomes") or {}).items()))
            if outs:
                extra += f" | {outs}"
            if media:
                extra += (f" | sessions {media.get('sessions')}, reconnects {media.get('reconnects')}, "
                          f"stalls {media.get('stalls')}, startup failures {media.get('startup_failures')}")
            say(f"{w['name']:<12} {w['driver']:<13} {w['arrivals']['started']:>8} {sum(errs.values()):>7} "
                f"{w.get('error_rate', 0):>8.2%}  {extra}")
            end = run_secs
            roles = reached(w.get("target", "")) or set()
            for sec in w.get("timeline", []):
                n = sec.get("errors", 0)
                if not n:
                    continue
                t = sec["t"]
                err_series["load report"][math.floor(t / a.sample_secs) * a.sample_secs / 60] += n
                cause = around_restart(t, roles)
                if cause:
                    after_crash += n if cause.endswith("crash") else 0
                    continue
                if w["driver"] in PLAYERS and t >= end - 3:
                    # A player session adds up its retried failures when it ends, at the end of the
                    # run; those are timed by the generator's log lines below.
                    deferred += n
                    continue
                outside.append(f"{w['name']}: {n} error(s) at {t} s")
        g = (report.get("generators") or [{}])[0]
        say(f"generator: {g.get('cpu_cores_avg', 0):.2f} cores avg, max RSS {g.get('max_rss_bytes', 0) / 2**20:.0f} MiB"
            + ("; " + "; ".join(g["warnings"]) if g.get("warnings") else ""))
        for th in report.get("thresholds", []):
            if not th.get("passed"):
                say(f"threshold breached: {th['workload']}: {th['expr']} (actual {th.get('actual')})")
        if deferred:
            say(f"({deferred} player errors were reported when their sessions ended; timed by the log below)")

    # Warnings and errors logged by the generator (players' retries) and by the servers.
    say()
    say("== WARN/ERROR log lines (by process: around a restart / elsewhere)")
    for proc in PROCESSES:
        evs = log_events(os.path.join(a.work, f"{proc}.log"), t0_ms)
        own = {"origin": {"origin"}, "edge": {"edge", "origin"}, "business": {"business"}}.get(proc)

        def near_restart(e):
            return around_restart(e[0], own if own else reached(e[2]))

        near = [e for e in evs if near_restart(e)]
        if proc == "load":
            after_crash += sum(1 for e in near if near_restart(e).endswith("crash"))
        # The last seconds of the run: publishers and viewers stopping together.
        tail = [e for e in evs if not near_restart(e) and e[0] >= run_secs - 2]
        other = [e for e in evs if not near_restart(e) and e[0] < run_secs - 2]
        for t, _, _ in evs:
            err_series[f"{proc} log"][math.floor(t / a.sample_secs) * a.sample_secs / 60] += 1
        say(f"{proc:<9} {len(near):>6} around restarts, {len(other):>6} elsewhere"
            + (f", {len(tail)} in the run's last 2 s" if tail else ""))
        for t, level, msg in other[:5]:
            say(f"    {t:8.1f} s {level} {msg[:160]}")
        if len(other) > 5:
            say(f"    … {len(other) - 5} more")
        outside += [f"{proc} log at {t:.1f} s: {level} {msg[:120]}" for t, level, msg in other if proc == "load"]

    say()
    if outside or after_crash:
        say(f"errors only around the planned restarts: no; {after_crash} around crashes, "
            f"{len(outside)} outside any restart" + (f" (first: {outside[0]})" if outside else ""))
    else:
        say("errors only around the planned restarts: yes")

    say()
    if failures:
        say("RESULT: FAIL")
        for f in failures:
            say(f"  - {f}")
    else:
        say("RESULT: PASS (no crash, no clearly positive slope)")

    # The page.
    t_max = max([run_secs / 60] + [rel(r["unix_ms"]) / 60 for r in samples])
    charts = []
    for metric, label, conv in METRICS:
        series = {}
        for proc in PROCESSES:
            pts = [(rel(r["unix_ms"]) / 60, conv(float(r[metric])), r["pid"])
                   for r in by_proc.get(proc, []) if r[metric] != ""]
            if pts:
                series[proc] = pts
        if series:
            charts.append(svg_chart(label, series, marks, warm_secs / 60, t_max, fits_for.get(metric)))
    if err_series:
        charts.append(svg_chart(
            f"errors in the load report (players' at their session's end) and WARN/ERROR log lines, "
            f"per {a.sample_secs:g} s",
            {k: [(t, n, None) for t, n in sorted(v.items())] for k, v in err_series.items()},
            marks, warm_secs / 60, t_max, bars=a.sample_secs / 60))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>livepulse soak, {a.minutes:g} min</title>
<style>body{{font-family:sans-serif;margin:20px;max-width:960px}} pre{{background:#f6f6f6;padding:8px;
overflow-x:auto;font-size:12px}}</style></head><body>
<h1>livepulse soak, {a.minutes:g} minutes</h1>
<p>One origin, one edge, one business server and the load generator, each its own process, sampled
every {a.sample_secs:g} s. Grey: warm-up, left out of the fitted slopes (dashed lines, one per
process lifetime). Red: restarts. Produced by <code>bench/soak.sh {a.minutes:g}</code>.</p>
{"".join(f"<div>{c}</div>" for c in charts)}
<h2>Summary</h2>
<pre>{html.escape(chr(10).join(lines))}</pre>
</body></html>
"""
    with open(a.out + ".html", "w") as f:
        f.write(page)
    with open(a.out + ".txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
