"""Browser benchmark: the reader page and bulletin.js in headless Chromium, each beside a peer.

One run, one fresh `bulletin serve` process on SQLite on 127.0.0.1, Debian's Chromium driven
by Playwright (no browser downloads). Three measures, each with its peer in the same run:

1. publish -> entry in the DOM, p50/p99 over entries published one at a time through the API;
   peer: a bare WebSocket on the same stream, in the same page, that only notes arrival.
2. first render of the reader page of a blog with 500 entries (median of a few cold loads);
   peer: the same HTML with JavaScript disabled.
3. JS heap and DOM size after 5,000 live updates; peer: the same page right after it loaded.

Prints a Markdown table and saves it to bench/results/.

    make bench                                   # after the fan-out benchmark
    .venv/bin/python bench/browser.py            # this one alone
    .venv/bin/python bench/browser.py --quick    # a smoke run
"""

import argparse
import datetime
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import procstat
from browser_report import FirstRender, Heap, HeapPoint, Latency, render
from fanout import wait_until_quiet
from payload import filler
from playwright.sync_api import Browser, Page, sync_playwright
from servers import HOST, VENV_BIN, free_port, get

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWPORT = {"width": 1280, "height": 900}
KEY_EVENT_EVERY = 25  # one entry in 25 is a key event, as on a busy news day
T = TypeVar("T")
PREFILL = 20  # entries already published when a page opens: one full first page

# Injected before the page's own scripts. Times are performance.timeOrigin + performance.now(),
# wall-clock milliseconds on this machine, compared with the publisher's time.time().
PROBE_JS = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const probe = (globalThis.benchProbe = { raw: {}, dom: {}, frame: {}, hello: false });
  // The peer: a bare WebSocket on the same stream that only notes when each message arrives.
  // It opens before bulletin.js connects, so the server writes to it first.
  const socket = (probe.socket = new WebSocket(WS_URL));
  socket.onmessage = (message) => {
    const at = now();
    const event = JSON.parse(message.data);
    if (event.type === "hello") probe.hello = true;
    if (event.type === "entry.created") probe.raw[event.entry.id] = at;
  };
  // Mutation records are delivered once bulletin.js has finished applying the event.
  new MutationObserver((records) => {
    const at = now();
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1 || !node.id.startsWith("entry-")) continue;
        const id = node.id.slice(6);
        if (id in probe.dom) continue;
        probe.dom[id] = at;
        requestAnimationFrame(() => { probe.frame[id] = now(); });
      }
    }
  }).observe(document, { childList: true, subtree: true });
})();
"""
CONNECTED_JS = """() => {
  const state = document.querySelector("[data-bulletin-state]");
  return state && state.dataset.bulletinState === "connected" && globalThis.bulletinPage;
}"""
COUNTER_JS = """() => {
  const count = (globalThis.benchCount = { events: 0, seq: null, states: [] });
  bulletinPage.addEventListener("event", (e) => { count.events++; count.seq = e.detail.seq; });
  bulletinPage.addEventListener("state", (e) => count.states.push(e.detail.newState));
}"""
DOM_JS = """() => ({
  elements: document.getElementsByTagName("*").length,
  entries: document.querySelectorAll("[data-bulletin-entries] article").length,
  keyEvents: document.querySelectorAll("[data-bulletin-key-events] li").length,
})"""
LOAD_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  return nav && {
    fcp: fcp ? fcp.startTime : null,
    ttfb: nav.responseStart,
    dcl: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd,
    htmlBytes: nav.decodedBodySize,
  };
}"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100, help="entries timed for latency")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between them")
    parser.add_argument("--page-entries", type=int, default=500, help="entries of the big blog")
    parser.add_argument("--loads", type=int, default=7, help="cold loads of each page variant")
    parser.add_argument("--updates", type=int, default=5000, help="live updates for the heap")
    parser.add_argument("--checkpoint", type=int, default=1000, help="updates between heap reads")
    parser.add_argument(
        "--profile-updates", type=int, default=300, help="updates under the CPU profiler"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="parallel publish requests")
    parser.add_argument(
        "--chromium", default=os.environ.get("BULLETIN_TEST_CHROMIUM", "/usr/bin/chromium")
    )
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="seconds to wait for calm")
    parser.add_argument("--quick", action="store_true", help="smoke run with small counts")
    parser.add_argument("--out", type=Path, help="where to save the table")
    args = parser.parse_args(argv)
    if args.quick:
        args.entries, args.page_entries, args.loads = 20, 100, 2
        args.updates, args.checkpoint, args.quiet_wait = 500, 250, 5.0
        args.profile_updates = 100
    if min(args.entries, args.page_entries, args.loads, args.updates, args.checkpoint) < 1:
        parser.error("counts must be at least 1")
    return args


def entry_fields(index: int) -> dict:
    """An entry shaped like a real one: headline, two paragraphs, a byline, now and then key."""
    text = filler(index, 700)
    return {
        "headline": f"Update {index}: officials prepare a statement",
        "body": f"<p>{text[:350]}</p><p>{text[350:]}</p>",
        "authors": [{"name": "Sam Reporter", "role": "Correspondent"}],
        "key_event": index % KEY_EVENT_EVERY == 0,
    }


class ReaderServer:
    """A fresh `bulletin serve` process on SQLite and a newsroom tool with the admin token."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / "server.log"
        token = secrets.token_urlsafe(30)[:40]
        self.env = {
            **os.environ,
            "BULLETIN_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
            "BULLETIN_MIGRATE_ON_START": "1",
            "BULLETIN_ADMIN_TOKEN": token,
            "BULLETIN_PUBLIC_BASE_URL": self.url,
            "BULLETIN_RATE_LIMIT_ENABLED": "false",  # thousands of publishes from one address
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            limits=httpx.Limits(max_connections=32),
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        argv = [str(VENV_BIN / "bulletin"), "serve", "--host", HOST, "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"bulletin serve exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                if get(self.port, "/readyz") == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("bulletin serve did not get ready within 60 s")
            time.sleep(0.1)

    def stop(self) -> None:
        self.api.close()
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def create_blog(self, slug: str, **fields) -> dict:
        response = self.api.post("/blogs", json={"slug": slug, "title": slug, **fields})
        response.raise_for_status()
        return response.json()

    def head_seq(self, slug: str) -> int:
        response = self.api.get(f"/blogs/{slug}")
        response.raise_for_status()
        return response.json()["head_seq"]

    def publish(self, slug: str, index: int) -> dict:
        response = self.api.post(f"/blogs/{slug}/entries", json=entry_fields(index))
        response.raise_for_status()
        return response.json()

    def publish_many(self, slug: str, indexes: range, concurrency: int) -> float:
        """Publish as fast as the server takes them; returns the seconds it took."""
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(lambda index: self.publish(slug, index), indexes))
        return time.monotonic() - started


@dataclass
class BackgroundMeter:
    """CPU used by processes other than this benchmark, its server and its browser."""

    seconds: float = 0.0
    wall: float = 0.0

    @contextmanager
    def window(self) -> Iterator[None]:
        machine, ours, started = procstat.machine_busy_seconds(), _our_cpu(), time.monotonic()
        try:
            yield
        finally:
            other = procstat.machine_busy_seconds() - machine - (_our_cpu() - ours)
            self.seconds += max(0.0, other)
            self.wall += time.monotonic() - started

    @property
    def share(self) -> float:
        return self.seconds / self.wall if self.wall else 0.0


def _our_cpu() -> float:
    """This process and all its descendants: the server, Playwright's driver, Chromium."""
    pids, frontier = [], [os.getpid()]
    while frontier:
        pid = frontier.pop()
        pids.append(pid)
        frontier.extend(procstat.children(pid))
    total = 0.0
    for pid in pids:
        try:
            total += procstat.cpu_seconds([pid])
        except OSError:
            continue  # exited while we looked
    return total


def clock_offset_ms(page: Page, rounds: int = 20) -> tuple[float, float]:
    """(page clock - time.time(), uncertainty) in ms, from the tightest of a few round trips."""
    best: tuple[float, float] | None = None
    for _ in range(rounds):
        before = time.time() * 1000
        in_page = page.evaluate("performance.timeOrigin + performance.now()")
        after = time.time() * 1000
        half = (after - before) / 2
        if best is None or half < best[1]:
            best = (in_page - (before + half), half)
    assert best is not None
    return best


def measure_latency(browser: Browser, server: ReaderServer, args: argparse.Namespace) -> Latency:
    slug = "reader-latency"
    server.create_blog(slug)
    server.publish_many(slug, range(PREFILL), args.concurrency)
    ws_url = f"ws://{HOST}:{server.port}/api/v1/blogs/{slug}/ws"
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.add_init_script(PROBE_JS.replace("WS_URL", json.dumps(ws_url)))
        page.goto(f"{server.url}/blogs/{slug}")
        # Functions, not expressions: Playwright polls an expression with eval, which the
        # page's Content-Security-Policy forbids.
        page.wait_for_function(f"() => ({CONNECTED_JS})() && benchProbe.hello")
        for index in range(PREFILL, PREFILL + 5):  # first-use costs, not timed
            entry = server.publish(slug, index)
            page.wait_for_function(f"() => benchProbe.frame[{entry['id']}] !== undefined")
        result = Latency(offsets=[clock_offset_ms(page)], shown_before=PREFILL + 5)
        sent: dict[int, float] = {}
        start = time.monotonic()
        for n in range(args.entries):
            delay = start + n * args.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent_ms = time.time() * 1000
            entry = server.publish(slug, PREFILL + 5 + n)
            result.request_ms.append(time.time() * 1000 - sent_ms)
            sent[entry["id"]] = sent_ms
        page.wait_for_function(
            "ids => ids.every(id => benchProbe.frame[id] !== undefined && id in benchProbe.raw)",
            arg=list(sent),
            timeout=60_000,
        )
        probe = page.evaluate(
            "({raw: benchProbe.raw, dom: benchProbe.dom, frame: benchProbe.frame})"
        )
        result.offsets.append(clock_offset_ms(page))
    finally:
        context.close()
    offset = statistics.mean(o for o, _ in result.offsets)
    for entry_id, sent_ms in sent.items():
        raw, dom, frame = (probe[kind][str(entry_id)] for kind in ("raw", "dom", "frame"))
        result.raw_ms.append(raw - offset - sent_ms)
        result.dom_ms.append(dom - offset - sent_ms)
        result.frame_ms.append(frame - offset - sent_ms)
        result.client_ms.append(dom - raw)
    return result


def measure_first_render(
    browser: Browser, server: ReaderServer, args: argparse.Namespace
) -> FirstRender:
    slug = "reader-500"
    server.create_blog(
        slug,
        title="Election night: live results",
        summary="<p>Counting continues across the country.</p>",
        topics=["Elections", "Politics"],
    )
    server.publish_many(slug, range(args.page_entries), args.concurrency)
    url = f"{server.url}/blogs/{slug}"
    result = FirstRender()
    for javascript in (True, False):  # first-use costs on both sides, not counted
        load_page(browser, url, javascript)
    for round_ in range(args.loads):
        for javascript in (True, False) if round_ % 2 == 0 else (False, True):
            result.loads[javascript].append(load_page(browser, url, javascript))
    return result


def load_page(browser: Browser, url: str, javascript: bool) -> dict:
    """One cold load in a fresh context (empty cache); Performance API timings in ms."""
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=javascript)
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        if javascript:
            page.wait_for_function(CONNECTED_JS)  # the page is live, not only drawn
        deadline = time.monotonic() + 10
        while (timing := page.evaluate(LOAD_JS))["fcp"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return timing
    finally:
        context.close()


MAIN_THREAD = ("TaskDuration", "ThreadTime", "ScriptDuration", "LayoutDuration")


class LivePage:
    """An open reader page counting the events bulletin.js applies, measured through CDP."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.page.goto(url)
        self.page.wait_for_function(CONNECTED_JS)
        self.page.evaluate(COUNTER_JS)
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("Performance.enable")

    def snapshot(self, updates: int) -> HeapPoint:
        for _ in range(2):  # a second pass frees what the first one's finalisers let go
            self.cdp.send("HeapProfiler.collectGarbage")
        counters = self.cdp.send("Memory.getDOMCounters")
        dom = self.page.evaluate(DOM_JS)
        return HeapPoint(
            updates=updates,
            heap_bytes=self.cdp.send("Runtime.getHeapUsage")["usedSize"],
            elements=dom["elements"],
            nodes=counters["nodes"],
            listeners=counters["jsEventListeners"],
            entries=dom["entries"],
            key_events=dom["keyEvents"],
        )

    def main_thread(self) -> dict[str, float]:
        """Seconds the page's main thread spent so far (wall in tasks, CPU, script, layout)."""
        metrics = self.cdp.send("Performance.getMetrics")["metrics"]
        values = {m["name"]: m["value"] for m in metrics}
        return {name: values[name] for name in MAIN_THREAD}

    def wait_for(self, events: int) -> None:
        self.page.wait_for_function(
            f"() => benchCount.events >= {events}", timeout=300_000, polling=100
        )

    def close(self) -> None:
        self.context.close()


def measure_heap(browser: Browser, server: ReaderServer, args: argparse.Namespace) -> Heap:
    slug = "reader-heap"
    server.create_blog(slug)
    server.publish_many(slug, range(PREFILL), args.concurrency)
    live = LivePage(browser, f"{server.url}/blogs/{slug}")
    result = Heap(expected=args.updates, key_event_every=KEY_EVENT_EVERY)
    spent = dict.fromkeys(MAIN_THREAD, 0.0)
    try:
        result.points.append(live.snapshot(0))
        for start in range(0, args.updates, args.checkpoint):
            stop = min(start + args.checkpoint, args.updates)
            before, started = live.main_thread(), time.monotonic()
            indexes = range(PREFILL + start, PREFILL + stop)
            result.publish_seconds += server.publish_many(slug, indexes, args.concurrency)
            live.wait_for(stop)
            caught_up, after = time.monotonic() - started, live.main_thread()
            for name in MAIN_THREAD:  # only while updates arrive: not the GC of the snapshot
                spent[name] += after[name] - before[name]
            point = live.snapshot(stop)
            point.catch_up_seconds = caught_up
            result.points.append(point)
        count = live.page.evaluate("benchCount")
        result.delivered = count["events"]
        result.seq_ok = count["seq"] == server.head_seq(slug)
        result.reconnects = count["states"].count("connecting")
        result.main_thread_ms = {k: v * 1000 / args.updates for k, v in spent.items()}
        # Where the time goes, on a page at its cap; after the heap was measured.
        first = PREFILL + args.updates
        more = range(first, first + args.profile_updates)
        result.profiled = len(more)
        result.hot = profile(
            live, lambda: server.publish_many(slug, more, args.concurrency), len(more)
        )
    finally:
        live.close()
    return result


def profile(
    live: LivePage, publish: Callable[[], object], updates: int, top: int = 8
) -> list[tuple[str, float]]:
    """Self time per function (V8's sampling profiler) while `publish` runs, ms per update."""
    before = live.page.evaluate("benchCount.events")
    live.cdp.send("Profiler.enable")
    live.cdp.send("Profiler.setSamplingInterval", {"interval": 200})
    live.cdp.send("Profiler.start")
    publish()
    live.wait_for(before + updates)
    samples = live.cdp.send("Profiler.stop")["profile"]
    frames = {node["id"]: node["callFrame"] for node in samples["nodes"]}
    self_us: dict[str, float] = {}
    for node_id, delta in zip(samples["samples"], samples["timeDeltas"], strict=True):
        frame = frames[node_id]
        name = frame["functionName"] or "(anonymous)"
        if frame["url"]:
            name += f" ({frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber'] + 1})"
        self_us[name] = self_us.get(name, 0.0) + delta
    self_us.pop("(idle)", None)
    ranked = sorted(self_us.items(), key=lambda item: -item[1])[:top]
    return [(name, us / 1000 / updates) for name, us in ranked]


def machine_context(browser: Browser, background: BackgroundMeter) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    lines = [
        f"Machine: {cpu}, {os.cpu_count()} cores; Chromium {browser.version} headless "
        f"({' '.join(CHROMIUM_FLAGS[1:])}), viewport {VIEWPORT['width']}x{VIEWPORT['height']}; "
        "one `bulletin serve` process on SQLite, 127.0.0.1, rate limits off.",
    ]
    if background.share > 0.1:
        lines += [
            "",
            f"**Warning:** other processes used {background.share:.0%} of a core on average "
            "while this ran: absolute figures are noisy; the ratios are what to compare.",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not Path(args.chromium).exists():
        print(f"no Chromium at {args.chromium} (`make browser` installs it)", file=sys.stderr)
        return 1
    began = time.monotonic()
    background = BackgroundMeter()
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-browser-") as tmp:
        server = ReaderServer(Path(tmp))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
            try:
                server.start()

                def phase(name: str, measure: Callable[..., T]) -> T:
                    wait_until_quiet(args.quiet_wait)
                    print(f"{name} ...", file=sys.stderr, flush=True)
                    with background.window():
                        return measure(browser, server, args)

                latency = phase("publish → DOM latency", measure_latency)
                first = phase("first render", measure_first_render)
                heap = phase("heap after live updates", measure_heap)
                context = machine_context(browser, background)
            finally:
                server.stop()
                browser.close()
    now = datetime.datetime.now(datetime.UTC)
    context.append(f"\nRun took {(time.monotonic() - began) / 60:.1f} minutes.")
    heading = f"Browser benchmark, {now:%Y-%m-%d %H:%M} UTC"
    table = render(latency, first, heap, args, context, heading)
    suffix = "-quick" if args.quick else ""
    out = args.out or RESULTS_DIR / f"browser-{now:%Y-%m-%d-%H%M}{suffix}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(table)
    print(f"saved to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
