"""Figures of the browser benchmark and its Markdown report: absolute, and ratios to each peer."""

import argparse
import math
import statistics
from dataclasses import dataclass, field


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile, as in the fan-out report."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Latency:
    raw_ms: list[float] = field(default_factory=list)
    dom_ms: list[float] = field(default_factory=list)
    frame_ms: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)  # DOM minus raw arrival: offset-free
    request_ms: list[float] = field(default_factory=list)
    offsets: list[tuple[float, float]] = field(default_factory=list)
    shown_before: int = 0  # entries on the page when timing began


@dataclass
class FirstRender:
    loads: dict[bool, list[dict]] = field(default_factory=lambda: {True: [], False: []})

    def median(self, javascript: bool, key: str) -> float | None:
        values = [load[key] for load in self.loads[javascript] if load.get(key) is not None]
        return statistics.median(values) if values else None


@dataclass
class HeapPoint:
    updates: int
    heap_bytes: int
    elements: int
    nodes: int  # DOM node objects alive after GC, detached ones included (CDP)
    listeners: int
    entries: int
    key_events: int
    catch_up_seconds: float = 0.0


@dataclass
class Heap:
    points: list[HeapPoint] = field(default_factory=list)
    delivered: int = 0
    expected: int = 0
    seq_ok: bool = False
    reconnects: int = 0
    main_thread_ms: dict[str, float] = field(default_factory=dict)  # per update
    publish_seconds: float = 0.0
    profiled: int = 0
    hot: list[tuple[str, float]] = field(default_factory=list)  # (function, ms per update)
    key_event_every: int = 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _x(value: float | None, reference: float | None) -> str:
    return "-" if value is None or not reference else f"{value / reference:.2f}x"


def _mib(value: int) -> str:
    return f"{value / 2**20:,.2f} MiB"


def render(
    latency: Latency,
    first: FirstRender,
    heap: Heap,
    args: argparse.Namespace,
    context: list[str],
    heading: str,
) -> str:
    n, pages, loads, updates = args.entries, args.page_entries, args.loads, args.updates
    lines = [f"# {heading}", "", *context, "", "## Bulletin's reader page against its peers", ""]
    lines += ["| measure | Bulletin page | peer | peer figure | ratio |", "|---|--:|---|--:|--:|"]
    raw_peer = "bare WebSocket, same page: message arrival"
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        dom, raw = quantile(latency.dom_ms, q), quantile(latency.raw_ms, q)
        lines.append(
            f"| publish → entry in DOM, {label} ({n} entries) | {_ms(dom)} | {raw_peer} "
            f"| {_ms(raw)} | {_x(dom, raw)} |"
        )
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        frame, raw = quantile(latency.frame_ms, q), quantile(latency.raw_ms, q)
        lines.append(
            f"| publish → next frame, {label} | {_ms(frame)} | {raw_peer} | {_ms(raw)} "
            f"| {_x(frame, raw)} |"
        )
    for key, label in (("fcp", "first contentful paint"), ("dcl", "DOMContentLoaded")):
        on, off = first.median(True, key), first.median(False, key)
        lines.append(
            f"| {label}, {pages}-entry blog (median of {loads} cold loads) | {_ms(on)} "
            f"| same HTML, JavaScript off | {_ms(off)} | {_x(on, off)} |"
        )
    start, end = heap.points[0], heap.points[-1]
    after_load = "same page right after load"
    for label, now, then, fmt in (
        ("JS heap used after GC", end.heap_bytes, start.heap_bytes, _mib),
        ("DOM elements", end.elements, start.elements, "{:,}".format),
        ("DOM nodes alive, detached included", end.nodes, start.nodes, "{:,}".format),
        ("entries in the page", end.entries, start.entries, "{:,}".format),
        ("key-event links", end.key_events, start.key_events, "{:,}".format),
        ("JS event listeners", end.listeners, start.listeners, "{:,}".format),
    ):
        lines.append(
            f"| {label}, after {updates:,} live updates | {fmt(now)} | {after_load} "
            f"| {fmt(then)} | {_x(now, then)} |"
        )
    lines += ["", f"## The page during {updates:,} live updates", ""]
    lines += [
        "| updates applied | JS heap after GC | DOM elements | DOM nodes alive | entries "
        "| key-event links | publish + catch-up s |",
        "|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for p in heap.points:
        lines.append(
            f"| {p.updates:,} | {_mib(p.heap_bytes)} | {p.elements:,} | {p.nodes:,} "
            f"| {p.entries:,} | {p.key_events:,} | {p.catch_up_seconds:,.1f} |"
        )
    lines += _growth(heap)
    lines += ["", "## Diagnostics", "", *_diagnostics(latency, first, heap, args), ""]
    return "\n".join(lines)


def _growth(heap: Heap) -> list[str]:
    """What still grows once the page holds as many entries as it ever will."""
    end = heap.points[-1]
    full = next((p for p in heap.points if p.entries == end.entries), end)
    if full is end:
        return []
    return [
        "",
        f"From {full.updates:,} to {end.updates:,} updates, the page already at its "
        f"{end.entries} entries: JS heap {(end.heap_bytes - full.heap_bytes) / 1024:+,.0f} KiB, "
        f"DOM elements {end.elements - full.elements:+,}, DOM nodes alive "
        f"{end.nodes - full.nodes:+,}, key-event links {end.key_events - full.key_events:+,}, "
        f"JS event listeners {end.listeners - full.listeners:+,}.",
    ]


def _diagnostics(
    latency: Latency, first: FirstRender, heap: Heap, args: argparse.Namespace
) -> list[str]:
    offsets = ", ".join(f"{o:+.2f} ± {u:.2f} ms" for o, u in latency.offsets)
    client = latency.client_ms
    thread = heap.main_thread_ms
    delivered = f"{heap.delivered:,}/{heap.expected:,}"
    lines = [
        f"- Latency: {args.entries} entries published one at a time, {args.interval * 1000:.0f} ms "
        f"apart, to a page already showing {latency.shown_before}; publish request "
        f"{statistics.median(latency.request_ms):.1f} ms median, {max(latency.request_ms):.1f} "
        "ms max. Send time is `time.time()` just before the POST; page times are "
        "`performance.timeOrigin + performance.now()`, corrected by the page-minus-Python "
        f"clock offset measured before and after ({offsets}). bulletin.js's own cost "
        f"(DOM minus raw arrival, no clock involved): p50 {quantile(client, 0.5):.2f} ms, "
        f"p99 {quantile(client, 0.99):.2f} ms, min {min(client):.2f} / max {max(client):.2f} ms. "
        "*In DOM* is when a "
        "MutationObserver saw `#entry-N` added (after bulletin.js applied the event); *next "
        "frame* is the requestAnimationFrame callback after that.",
        f"- First render: each load in a fresh browser context (cold cache), JavaScript on and "
        "off alternating; the page shows 20 entries of the blog and its key events. HTML "
        f"{first.median(True, 'htmlBytes') or 0:,.0f} bytes; time to first byte median "
        f"{_ms(first.median(True, 'ttfb'))} (JS on) / {_ms(first.median(False, 'ttfb'))} "
        f"(JS off); load event {_ms(first.median(True, 'load'))} / "
        f"{_ms(first.median(False, 'load'))}. bulletin.js is `defer`, so DOMContentLoaded "
        "includes running it.",
        f"- Heap: {args.updates:,} entries published {args.concurrency} requests at a time in "
        f"batches of {args.checkpoint:,} ({heap.publish_seconds:,.1f} s publishing in all); "
        f"after each batch the page is awaited until it has applied every event, then garbage "
        f"is collected twice (CDP HeapProfiler.collectGarbage) and Runtime.getHeapUsage and "
        f"Memory.getDOMCounters read. Events the page applied: {delivered}, "
        f"last seq {'equal to' if heap.seq_ok else '**not** equal to'} the blog's head, "
        f"{heap.reconnects} reconnections. The page's main thread per update, while updates "
        f"arrived: {thread.get('TaskDuration', 0):.2f} ms in tasks (wall), "
        f"{thread.get('ThreadTime', 0):.2f} ms CPU; script {thread.get('ScriptDuration', 0):.2f}"
        f" ms, layout {thread.get('LayoutDuration', 0):.2f} ms (CDP Performance.getMetrics). "
        f"One entry in {heap.key_event_every} is a key event.",
        f"- Where the page's time goes at its cap: self time per update over {heap.profiled:,} "
        "more updates under V8's sampling profiler (after the heap was measured; `(program)` "
        "is the browser's own work outside script: parsing, style, layout, paint):",
        "",
        "| function | ms per update |",
        "|---|--:|",
        *(f"| `{name}` | {ms:.2f} |" for name, ms in heap.hot),
    ]
    return lines
