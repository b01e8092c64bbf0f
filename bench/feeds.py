"""Feeds benchmark: requests per second of the feed paths against a bare FastAPI endpoint.

One run, one machine: one `bulletin serve` process (SQLite, a live blog of 50 entries) and
a bare FastAPI endpoint returning a constant (bench/peers/bare.py, the same uvicorn
options), both on 127.0.0.1, each loaded in turn by wrk for a bounded time. Measured: the
bare endpoint, the JSON feed with If-None-Match (304), the full JSON feed and the full Atom
feed (200). Prints a Markdown table of ratios to the bare endpoint and saves it to
bench/results/.

    make bench                                   # fan-out first, then this
    .venv/bin/python bench/feeds.py              # 10 s per measurement
    .venv/bin/python bench/feeds.py --duration 3 --quick
"""

import argparse
import datetime
import http.client
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import procstat
from servers import BENCH_DIR, HOST, VENV_BIN, free_port, post

RESULTS_DIR = BENCH_DIR / "results"
SLUG = "harbour-storm"
ENTRIES = 50
# (label, which server, path, whether to send the feed's ETag, target ratio)
TARGETS = [
    ("bare FastAPI endpoint, constant JSON", "bare", "/constant", False, None),
    ("JSON feed, If-None-Match (304)", "bulletin", f"/blogs/{SLUG}/feed.json", True, 0.8),
    ("JSON feed, full (200)", "bulletin", f"/blogs/{SLUG}/feed.json", False, 0.5),
    ("Atom feed, full (200)", "bulletin", f"/blogs/{SLUG}/feed.atom", False, 0.5),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warm-up", type=int, default=2, help="unmeasured seconds first")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over all targets (median)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--quick", action="store_true", help="3 s measurements, 1 s warm-up")
    parser.add_argument("--out", type=Path, help="where to save the table")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warm_up = 3, 1
    return args


def ensure_wrk() -> str:
    """wrk from Debian's packages, installed when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError("wrk is missing and apt-get is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    print("installing wrk with apt-get", file=sys.stderr, flush=True)
    if subprocess.run(command, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(command, env=env, check=True)
    return shutil.which("wrk") or "wrk"


class Process:
    """A server in its own process group, stopped as a whole."""

    def __init__(
        self, name: str, port: int, argv: list[str], env: dict[str, str], log: Path
    ) -> None:
        self.name = name
        self.port = port
        with log.open("ab") as output:
            self.popen = subprocess.Popen(
                argv,
                env=env,
                cwd=log.parent,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = log

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-2000:]}")
            try:
                if get(self.port, path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer {path} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def start_bulletin(workdir: Path) -> tuple[Process, str]:
    token = "bench-" + os.urandom(18).hex()
    port = free_port()
    env = {
        **os.environ,
        "BULLETIN_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'feeds.db'}",
        "BULLETIN_MIGRATE_ON_START": "true",
        "BULLETIN_ADMIN_TOKEN": token,
        "BULLETIN_RATE_LIMIT_ENABLED": "false",
    }
    argv = [str(VENV_BIN / "bulletin"), "serve", "--host", HOST, "--port", str(port)]
    server = Process("bulletin serve", port, argv, env, workdir / "bulletin.log")
    server.wait_ready("/readyz")
    return server, token


def fill_blog(port: int, token: str) -> None:
    """A live blog of ENTRIES entries like a real one: headlines, bylines, some photos."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    blog = {
        "slug": SLUG,
        "title": "Storm Ilsa: live updates",
        "summary": "<p>Closures, outages and warnings as the storm crosses the coast.</p>",
        "timezone": "Europe/London",
        "topics": ["Weather", "Transport"],
    }
    status, body = post(port, "/api/v1/blogs", json.dumps(blog).encode(), headers)
    if status != 201:
        raise RuntimeError(f"creating the blog: {status} {body[:200]!r}")
    for n in range(ENTRIES):
        entry: dict[str, object] = {
            "headline": f"Update {n}: ferry crossings suspended until the wind drops"
            if n % 3
            else None,
            "body": (
                f"<p>Update {n}. The harbour master has closed the outer berths and "
                "asked owners of small craft to double their moorings. Gusts of 70 mph were "
                "recorded on the breakwater at noon; the forecast is for worse overnight.</p>"
                "<p>Drivers are asked to avoid the coast road between the pier and the "
                "lighthouse, where waves are <strong>overtopping the sea wall</strong>.</p>"
            ),
            "authors": [{"name": "Mara Quinn", "role": "at the harbour"}],
            "key_event": n % 10 == 0,
        }
        if n % 4 == 0:
            entry["media"] = [
                {
                    "kind": "image",
                    "url": f"https://images.news.example/storm/{n}.jpg",
                    "caption": "Waves over the breakwater",
                    "credit": "Photo: D. Okafor",
                    "alt": "Grey waves breaking over a stone wall",
                }
            ]
        status, body = post(
            port, f"/api/v1/blogs/{SLUG}/entries", json.dumps(entry).encode(), headers
        )
        if status != 201:
            raise RuntimeError(f"publishing: {status} {body[:200]!r}")


@dataclass
class Measurement:
    label: str
    target: float | None
    requests_per_second: list[float] = field(default_factory=list)
    cpu_us_per_request: list[float] = field(default_factory=list)
    body_bytes: int = 0
    status: int = 0
    errors: list[str] = field(default_factory=list)
    socket_errors: int = 0

    @property
    def rate(self) -> float:
        return statistics.median(self.requests_per_second) if self.requests_per_second else 0.0

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_us_per_request) if self.cpu_us_per_request else 0.0


def run_wrk(
    wrk: str, args: argparse.Namespace, url: str, headers: dict[str, str], seconds: int
) -> str:
    argv = [wrk, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s"]
    # A generous timeout: on a busy machine a slow answer is slow, not lost.
    argv += ["--timeout", "10s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    completed = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    )
    return completed.stdout


def parse_wrk(output: str) -> tuple[float, int, int]:
    """Requests/s, requests answered outside 2xx/3xx, socket errors."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = sum(int(n) for n in sockets.groups()) if sockets else 0
    return rate, int(bad.group(1)) if bad else 0, socket_errors


def measure(
    wrk: str,
    args: argparse.Namespace,
    ports: dict[str, int],
    pids: dict[str, int],
    etag: str,
    results: dict[str, Measurement],
) -> None:
    for label, which, path, conditional, _target in TARGETS:
        headers = {"If-None-Match": etag} if conditional else {}
        url = f"http://{HOST}:{ports[which]}{path}"
        run_wrk(wrk, args, url, headers, args.warm_up)
        cpu_before = procstat.cpu_seconds([pids[which]])
        output = run_wrk(wrk, args, url, headers, args.duration)
        cpu = procstat.cpu_seconds([pids[which]]) - cpu_before
        rate, bad, socket_errors = parse_wrk(output)
        result = results[label]
        result.requests_per_second.append(rate)
        result.cpu_us_per_request.append(cpu / (rate * args.duration) * 1e6 if rate else 0.0)
        if bad:
            result.errors.append(f"{bad} answers outside 2xx/3xx")
        result.socket_errors += socket_errors
        print(f"  {label}: {rate:,.0f} requests/s", file=sys.stderr, flush=True)


def check_answers(ports: dict[str, int], etag: str, results: dict[str, Measurement]) -> None:
    """Each target answers as it should before it is measured: status and size."""
    for label, which, path, conditional, _target in TARGETS:
        status, _headers, body = get(
            ports[which], path, {"If-None-Match": etag} if conditional else None
        )
        expected = 304 if conditional else 200
        if status != expected:
            raise RuntimeError(f"{label}: status {status}, expected {expected}")
        results[label].status, results[label].body_bytes = status, len(body)


def render(results: dict[str, Measurement], context: list[str], heading: str) -> str:
    bare = results[TARGETS[0][0]].rate
    lines = [
        f"### {heading}",
        "",
        "| request | body | requests/s | ratio to bare | target | server CPU per request "
        "| requests/s in each round |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, _which, _path, _conditional, target in TARGETS:
        result = results[label]
        ratio = result.rate / bare if bare else 0.0
        verdict = "-" if target is None else f"≥ {target:.1f}x {'✓' if ratio >= target else '✗'}"
        size = (
            "none"
            if result.status == 304
            else f"{result.body_bytes} bytes"
            if result.body_bytes < 1024
            else f"{result.body_bytes / 1024:.1f} KiB"
        )
        rounds = " / ".join(f"{rate:,.0f}" for rate in result.requests_per_second)
        lines.append(
            f"| {label} | {size} | {result.rate:,.0f} | {ratio:.2f}x | {verdict} "
            f"| {result.cpu:.0f} µs | {rounds} |"
        )
    errors = [f"{label}: {'; '.join(r.errors)}" for label, r in results.items() if r.errors]
    errors += [
        f"{label}: {r.socket_errors} socket errors (wrk)"
        for label, r in results.items()
        if r.socket_errors
    ]
    return "\n".join([*lines, "", *context, *(["", "Errors:", *errors] if errors else [])]) + "\n"


def machine_context(args: argparse.Namespace, wrk: str) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    banner = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
    wrk_version = banner.split("\n")[0].split(" Copyright")[0]
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("uvicorn", "fastapi", "uvloop")
    )
    command = " ".join(
        ["make bench"] if os.environ.get("MAKELEVEL") else ["bench/feeds.py", *sys.argv[1:]]
    )
    return [
        f"Command: `{command}`. Machine: {cpu}, {os.cpu_count()} cores; Linux "
        f"{platform.release()}; Python {platform.python_version()}, {versions}.",
        f"Load: {wrk_version.strip()} on 127.0.0.1, {args.threads} thread(s), "
        f"{args.connections} connections, {args.duration} s per measurement after "
        f"{args.warm_up} s of warm-up, median of {args.rounds} round(s). One server process "
        f"each; the blog has {ENTRIES} entries (a quarter with a photo); the feeds are "
        "built once per change and then served from memory.",
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wrk = ensure_wrk()
    results = {label: Measurement(label, target) for label, *_rest, target in TARGETS}
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-feeds-") as tmp:
        workdir = Path(tmp)
        servers: list[Process] = []
        try:
            bulletin, token = start_bulletin(workdir)
            servers.append(bulletin)
            fill_blog(bulletin.port, token)
            bare_port = free_port()
            bare_argv = [str(VENV_BIN / "python"), str(BENCH_DIR / "peers" / "bare.py")]
            bare = Process(
                "bare FastAPI",
                bare_port,
                [*bare_argv, "--host", HOST, "--port", str(bare_port)],
                {**os.environ},
                workdir / "bare.log",
            )
            servers.append(bare)
            bare.wait_ready("/constant")
            _status, headers, _body = get(bulletin.port, f"/blogs/{SLUG}/feed.json")
            etag = headers["etag"]
            ports = {"bulletin": bulletin.port, "bare": bare_port}
            pids = {"bulletin": bulletin.popen.pid, "bare": bare.popen.pid}
            check_answers(ports, etag, results)
            for round_number in range(1, args.rounds + 1):
                print(f"round {round_number} of {args.rounds}", file=sys.stderr, flush=True)
                measure(wrk, args, ports, pids, etag, results)
        finally:
            for server in servers:
                server.stop()

    now = datetime.datetime.now(datetime.UTC)
    heading = f"Feeds, {now:%Y-%m-%d %H:%M} UTC"
    table = render(results, machine_context(args, wrk), heading)
    out = args.out or RESULTS_DIR / f"feeds-{now:%Y-%m-%d-%H%M}{'-quick' if args.quick else ''}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(table)
    print(f"saved to {out}", file=sys.stderr)
    bare = results[TARGETS[0][0]].rate
    for result in results.values():
        if result.target is not None and result.rate < result.target * bare:
            print(f"target missed: {result.label}", file=sys.stderr)
    return 1 if any(result.errors for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
