"""Fan-out benchmark: Bulletin against the FastAPI tutorial pattern and nginx + nchan.

One run, one machine, one load generator. For every N and every server: start the server
fresh, warm it up, connect N WebSocket readers (idle), publish M stamped messages at a
fixed interval, wait until every reader has every message, stop everything. Prints a
Markdown table and saves it to bench/results/.

    make bench                                  # N = 1,000 / 5,000 / 10,000
    make bench BENCH_ARGS="--quick"             # a smoke run with small N
    .venv/bin/python bench/fanout.py --readers 10000 --servers bulletin,nchan
    .venv/bin/python bench/fanout.py --readers 5000 --servers bulletin,bulletin-redis,nchan
"""

import argparse
import datetime
import importlib.metadata
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import procstat
import report
from loadgen import ReaderPool, Target
from servers import (
    HOST,
    NGINX,
    Bulletin,
    FastApiTutorial,
    Nchan,
    Server,
    ensure_nginx,
    redis_up,
    start_redis,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SERVER_KEYS = (
    "bulletin",
    "bulletin-redis",
    "tutorial",
    "nchan",
    "nchan-deflate",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", default="1000,5000,10000", help="comma-separated N values")
    parser.add_argument("--messages", type=int, default=20, help="messages published per phase")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between messages")
    parser.add_argument("--message-bytes", type=int, default=1500, help="size of each message")
    parser.add_argument(
        "--clients", type=int, default=2, help="load-generator processes (one loop each)"
    )
    # Niced so that, on a small machine, readers never take a core from a busy server: they
    # run on what the server leaves (measured: +10 keeps nchan's figures as with one reader
    # process on its own core; unniced, three busy processes share two cores).
    parser.add_argument(
        "--client-nice", type=int, default=10, help="niceness of the load-generator processes"
    )
    parser.add_argument("--servers", default=",".join(SERVER_KEYS), help="which servers, in order")
    parser.add_argument("--workers", type=int, default=2, help="workers of the Redis Bulletin")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--idle", type=float, default=2.0, help="idle seconds before measuring RSS")
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument(
        "--quiet-wait", type=float, default=60.0, help="seconds to wait for a busy machine to calm"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 readers, 5 messages")
    parser.add_argument("--out", type=Path, help="where to save the table")
    args = parser.parse_args(argv)
    if args.quick:
        args.readers, args.messages, args.interval, args.idle = "200", 5, 0.1, 0.5
        args.quiet_wait = min(args.quiet_wait, 10.0)
    args.reader_counts = [int(n) for n in args.readers.split(",") if n.strip()]
    args.server_keys = [key.strip() for key in args.servers.split(",") if key.strip()]
    unknown = set(args.server_keys) - set(SERVER_KEYS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVER_KEYS)}")
    return args


def raise_open_files(readers: int) -> None:
    """Readers, their server sockets and some slack; the servers inherit this limit."""
    wanted = max(65536, readers * 2 + 1024)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):  # not root: as far as the hard limit allows
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def publish_all(server: Server, messages: int, interval: float) -> tuple[list[float], list[str]]:
    """Publish on a fixed schedule; a slow publish never delays the next one.

    Returns how long each publish request took (seconds) and the errors.
    """

    def publish_one(index: int) -> float:
        started = time.monotonic()
        server.publish(index, time.time_ns())
        return time.monotonic() - started

    durations: list[float] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        start = time.monotonic()
        futures = []
        for index in range(messages):
            delay = start + index * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(publish_one, index))
        for future in futures:
            try:
                durations.append(future.result(timeout=120))
            except Exception as error:  # reported in the table, not fatal
                errors.append(f"{type(error).__name__}: {error}")
    return durations, errors


def wait_until_quiet(limit: float, threshold: float = 0.15) -> None:
    """Give background load (another test run on a shared machine) up to `limit` s to pass."""
    deadline = time.monotonic() + limit
    while True:
        before = procstat.machine_busy_seconds()
        time.sleep(1.0)
        busy = procstat.machine_busy_seconds() - before
        if busy < threshold or time.monotonic() > deadline:
            return
        print(f"  machine busy ({busy:.0%} of a core); waiting", file=sys.stderr, flush=True)


def run_phase(server: Server, readers: int, args: argparse.Namespace) -> report.PhaseResult:
    """One server, one N: start fresh, connect, measure idle memory, publish, stop."""
    result = report.PhaseResult(server=server.name, readers=readers, messages=args.messages)
    pool: ReaderPool | None = None
    try:
        wait_until_quiet(args.quiet_wait)
        server.start()
        server.warm_up()
        time.sleep(0.5)
        pids = server.pids()
        result.rss_before = procstat.rss_bytes(pids)
        target = Target(HOST, server.port, server.ws_path)
        pool = ReaderPool(target, readers, args.messages, args.clients, args.client_nice)
        _connect(pool, result, args.connect_timeout)
        time.sleep(args.idle)
        result.rss_idle = procstat.rss_bytes(pids)
        spread = server.describe_pids()
        _publish_and_measure(server, pool, pids, result, args)
        result.note = "; ".join(part for part in (result.note, spread) if part)
    except Exception as error:
        first_line = (str(error).splitlines() or [""])[0]
        result.error = f"{type(error).__name__}: {first_line[:120]}"
        tail = server.log_tail(5)
        if tail:
            print(f"  server log tail:\n{tail}", file=sys.stderr)
    finally:
        if pool is not None:
            pool.close()
        server.stop()
    return result


def _connect(pool: ReaderPool, result: report.PhaseResult, timeout: float) -> None:
    opened = pool.wait_connected(timeout)
    result.connected = opened["connected"]
    result.connect_seconds = opened["seconds"]
    result.extension = opened["extension"]
    if opened["failures"]:
        result.note = "connect retries: " + ", ".join(
            f"{reason} x{count}" for reason, count in opened["failures"].most_common(2)
        )


def _publish_and_measure(
    server: Server,
    pool: ReaderPool,
    pids: list[int],
    result: report.PhaseResult,
    args: argparse.Namespace,
) -> None:
    """The window: from the first publish until every reader has every message."""
    ours = [*pids, *pool.pids(), os.getpid()]
    machine_start = procstat.machine_busy_seconds()
    ours_start = procstat.cpu_seconds(ours)
    server_start = procstat.cpu_seconds(pids)
    client_start = procstat.cpu_seconds(pool.pids())
    started = time.monotonic()
    result.publish_seconds, result.publish_errors = publish_all(
        server, args.messages, args.interval
    )
    delivery = pool.finish(args.drain_timeout)
    result.window_seconds = time.monotonic() - started
    result.cpu_seconds = procstat.cpu_seconds(pids) - server_start
    result.client_cpu_seconds = procstat.cpu_seconds(pool.pids()) - client_start
    # Anything else that ran meanwhile (another test suite, say) makes the figures noisy.
    machine = procstat.machine_busy_seconds() - machine_start
    result.background_cpu_seconds = max(0.0, machine - (procstat.cpu_seconds(ours) - ours_start))

    result.latencies_ns = delivery.latencies_ns
    result.lost = delivery.lost
    result.duplicates = delivery.duplicates
    result.other = delivery.other
    result.closes = dict(delivery.closes)
    result.payload_bytes = delivery.payload_bytes
    result.compressed = delivery.compressed


def machine_context(args: argparse.Namespace) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    def command_output(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
        except OSError:
            return "?"
        return (done.stdout + done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"

    nginx = command_output([str(NGINX), "-v"]).replace("nginx version: ", "")
    nchan = command_output(["dpkg-query", "-W", "-f", "${Version}", "libnginx-mod-nchan"])
    return [
        f"Machine: {cpu}, {os.cpu_count()} cores, {memory_kib / 2**20:.0f} GiB, "
        f"Linux {platform.release()}; Python {platform.python_version()}, "
        f"uvicorn {version('uvicorn')}, websockets {version('websockets')}, "
        f"FastAPI {version('fastapi')}, {nginx} with nchan {nchan}.",
        "",
        f"Load: {args.messages} messages of about {args.message_bytes} bytes, "
        f"{args.interval * 1000:.0f} ms apart, to N WebSocket readers of one channel, after "
        f"they are connected and idle; {args.clients} load-generator processes (uvloop, a raw "
        f"protocol per reader, nice +{args.client_nice}) on the same machine, every reader "
        "offering `permessage-deflate; client_max_window_bits` as browsers do. Each server runs "
        "fresh for each N, on 127.0.0.1.",
    ]


def build_servers(
    args: argparse.Namespace, workdir: Path, broker_url: str | None
) -> list[tuple[str, Callable[[Path], Server]]]:
    size = args.message_bytes
    makers: dict[str, Callable[[Path], Server]] = {
        "bulletin": lambda d: Bulletin(d, size),
        "tutorial": lambda d: FastApiTutorial(d, size),
        "nchan": lambda d: Nchan(d, size),
        "nchan-deflate": lambda d: Nchan(d, size, deflate=True),
    }
    if broker_url:
        makers["bulletin-redis"] = lambda d: Bulletin(d, size, args.workers, broker_url)
    return [(key, makers[key]) for key in args.server_keys if key in makers]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A TERM (or make interrupted) unwinds like Ctrl-C: every finally block stops what it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise_open_files(max(args.reader_counts))
    if {"nchan", "nchan-deflate"} & set(args.server_keys):
        ensure_nginx()
    began = time.monotonic()
    results: list[report.PhaseResult] = []
    skipped: list[str] = []
    redis_process = None
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
        workdir = Path(tmp)
        try:
            broker_url = None
            if "bulletin-redis" in args.server_keys:
                if not redis_up():
                    redis_process = start_redis(workdir)
                if redis_up():
                    broker_url = args.redis_url
                else:
                    skipped.append("Bulletin on Redis skipped: no Redis on 127.0.0.1:6379.")
            servers = build_servers(args, workdir, broker_url)
            for readers in args.reader_counts:
                for key, make in servers:
                    phase_dir = workdir / f"{key}-{readers}"
                    phase_dir.mkdir()
                    server = make(phase_dir)
                    print(f"{server.name}, {readers:,} readers ...", file=sys.stderr, flush=True)
                    result = run_phase(server, readers, args)
                    results.append(result)
                    print(f"  {_summary(result)}", file=sys.stderr, flush=True)
        finally:
            if redis_process is not None:
                redis_process.kill()
                redis_process.wait(5)

    now = datetime.datetime.now(datetime.UTC)
    context = [*machine_context(args), *(["", *skipped] if skipped else [])]
    context.append(f"\nRun took {(time.monotonic() - began) / 60:.1f} minutes.")
    heading = f"Fan-out benchmark, {now:%Y-%m-%d %H:%M} UTC"
    table = report.render(results, heading, context)
    out = args.out or RESULTS_DIR / f"fanout-{now:%Y-%m-%d-%H%M}{'-quick' if args.quick else ''}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(table)
    print(f"saved to {out}", file=sys.stderr)
    return 0 if all(r.error is None for r in results) else 1


def _summary(result: report.PhaseResult) -> str:
    if result.error:
        return f"failed: {result.error}"
    return (
        f"delivered {result.delivered:,}/{result.expected:,}, "
        f"CPU {result.cpu_us_per_delivery or 0:.2f} µs/delivery, "
        f"last reader {result.last_reader_ms or 0:.1f} ms, "
        f"{result.kib_per_connection or 0:.1f} KiB/connection"
    )


if __name__ == "__main__":
    sys.exit(main())
