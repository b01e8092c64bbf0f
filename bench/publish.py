"""Publish benchmark: entries per second through Bulletin's API against a bare insert.

One run, one machine, one load generator (wrk with bench/publish.lua, Debian's, installed
when missing). For every database setting — SQLite, PostgreSQL with one worker, PostgreSQL
with two — and every round: a fresh `bulletin serve` (rate limits off, a `publish` token,
100 blogs) and a fresh bare FastAPI endpoint that inserts one SQLAlchemy row per request
(bench/peers/bare_insert.py, the same uvicorn options), each on its own new database, on
127.0.0.1. Each is loaded in turn, case by case: one blog with 1, 4 and 16 concurrent
writers, and 100 blogs with 16. Every entry goes through real HTTP, the token check,
validation, sanitising, rendering and the change log. Measured: entries per second, p50
and p99 latency (wrk's), server CPU per entry; ratios to the bare insert of the same run.
Each measurement is bounded in time (--duration) and in count (--max-entries).

    make bench-publish                             # this alone
    .venv/bin/python bench/publish.py --rounds 2   # each case twice
    .venv/bin/python bench/publish.py --quick --databases sqlite
"""

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import procstat
from feeds import Process, ensure_wrk
from servers import BENCH_DIR, HOST, VENV_BIN, free_port, post

RESULTS_DIR = BENCH_DIR / "results"
SCRIPT = BENCH_DIR / "publish.lua"
BLOGS = 100
# (label, blogs written to, concurrent writers)
CASES = [
    ("1 blog, 1 writer", 1, 1),
    ("1 blog, 4 writers", 1, 4),
    ("1 blog, 16 writers", 1, 16),
    ("100 blogs, 16 writers", BLOGS, 16),
]
# (key, label, database, workers)
SETTINGS = {
    "sqlite": ("SQLite, 1 worker", "sqlite", 1),
    "postgres": ("PostgreSQL, 1 worker", "postgres", 1),
    "postgres-2": ("PostgreSQL, 2 workers", "postgres", 2),
}
POSTGRES_ADMIN_URL = os.environ.get(
    "BULLETIN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
TARGET_RATIO = 0.8
TARGET_P99_MS = 250


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--warm-up", type=int, default=1, help="unmeasured seconds first")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over everything (median)")
    parser.add_argument(
        "--max-entries", type=int, default=20_000, help="most entries one measurement posts"
    )
    parser.add_argument(
        "--databases", default=",".join(SETTINGS), help=f"some of {', '.join(SETTINGS)}"
    )
    parser.add_argument("--quick", action="store_true", help="2 s measurements, 1 s warm-up")
    parser.add_argument("--out", type=Path, help="where to save the table")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warm_up = 2, 1
    args.settings = [key.strip() for key in args.databases.split(",") if key.strip()]
    unknown = set(args.settings) - SETTINGS.keys()
    if unknown:
        parser.error(f"unknown --databases {', '.join(sorted(unknown))}")
    return args


# --- databases ---------------------------------------------------------------------


def new_database(kind: str, workdir: Path, name: str) -> tuple[str, object]:
    """A fresh, empty database of this kind: its URL and what `drop_database` needs."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / (name + '.db')}", None
    database = f"bench_publish_{name}_{secrets.token_hex(4)}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{database}"'))
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}", database


def drop_database(handle: object) -> None:
    if handle is not None:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{handle}" WITH (FORCE)'))


async def _postgres_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL.replace("+asyncpg", ""))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


# --- servers -----------------------------------------------------------------------


@dataclass
class Target:
    """A server under load: where to post and with what."""

    name: str
    process: Process
    prefix: str
    token: str = ""

    def pids(self) -> list[int]:
        workers = procstat.children(self.process.popen.pid)
        return [self.process.popen.pid, *workers]


def start_bulletin(workdir: Path, database_url: str, workers: int) -> Target:
    admin_token = "bench-" + secrets.token_hex(18)
    port = free_port()
    env = {
        **os.environ,
        "BULLETIN_DATABASE_URL": database_url,
        "BULLETIN_MIGRATE_ON_START": "true",
        "BULLETIN_ADMIN_TOKEN": admin_token,
        "BULLETIN_RATE_LIMIT_ENABLED": "false",
        "BULLETIN_LOG_LEVEL": "warning",
    }
    argv = [str(VENV_BIN / "bulletin"), "serve", "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers)]
    process = Process("bulletin serve", port, argv, env, workdir / "bulletin.log")
    process.wait_ready("/readyz")
    admin = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    # The desk posts as a newsroom tool does: with a token of its own, not the admin's.
    status, body = post(
        port,
        "/api/v1/tokens",
        json.dumps({"name": "results desk", "scope": "publish"}).encode(),
        admin,
    )
    if status != 201:
        raise RuntimeError(f"creating the token: {status} {body[:200]!r}")
    token = json.loads(body)["secret"]
    for n in range(BLOGS):
        blog = {"slug": f"desk-{n}", "title": f"Election night: ward {n}"}
        status, body = post(port, "/api/v1/blogs", json.dumps(blog).encode(), admin)
        if status != 201:
            raise RuntimeError(f"creating a blog: {status} {body[:200]!r}")
    return Target("Bulletin", process, "/api/v1/blogs/", token)


def start_bare(workdir: Path, database_url: str, workers: int) -> Target:
    port = free_port()
    argv = [str(VENV_BIN / "python"), str(BENCH_DIR / "peers" / "bare_insert.py")]
    argv += ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    argv += ["--log-level", "warning"]
    env = {**os.environ, "BENCH_DATABASE_URL": database_url}
    process = Process("bare insert", port, argv, env, workdir / "bare.log")
    process.wait_ready("/healthz")
    return Target("bare insert", process, "/blogs/")


# --- load --------------------------------------------------------------------------


@dataclass
class Run:
    created: int
    failed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    first_failure: str
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0


def run_wrk(wrk: str, target: Target, blogs: int, writers: int, seconds: int, limit: int) -> Run:
    url = f"http://{HOST}:{target.process.port}/"
    argv = [wrk, "-t1", f"-c{writers}", f"-d{seconds}s", "--timeout", "10s", "-s", str(SCRIPT)]
    argv += [url, "--", target.prefix, str(blogs), str(limit), target.token]
    pids = target.pids()
    cpu_before = procstat.cpu_seconds(pids)
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    cpu = procstat.cpu_seconds(pids) - cpu_before
    line = next((line for line in completed.stdout.splitlines() if line.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    result = json.loads(line.removeprefix("BENCH "))
    return Run(
        created=result["created"],
        failed=result["failed"],
        seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        socket_errors=result["socket_errors"],
        first_failure=result["first_failure"],
        cpu_seconds=cpu,
    )


@dataclass
class Measurement:
    runs: list[Run] = field(default_factory=list)

    def median(self, name: str) -> float:
        values = [getattr(run, name) for run in self.runs]
        return statistics.median(values) if values else 0.0

    @property
    def cpu_ms_per_entry(self) -> float:
        per_entry = [run.cpu_seconds / run.created * 1000 for run in self.runs if run.created]
        return statistics.median(per_entry) if per_entry else 0.0

    @property
    def errors(self) -> list[str]:
        found = []
        for run in self.runs:
            if run.failed:
                found.append(f"{run.failed} refused ({run.first_failure})")
            if run.socket_errors:
                found.append(f"{run.socket_errors} socket errors")
        return found


Results = dict[tuple[str, str, str], Measurement]  # (setting, case, server)


def measure_setting(
    wrk: str, args: argparse.Namespace, setting: str, results: Results, loads: list[float]
) -> None:
    label, kind, workers = SETTINGS[setting]
    for name, start in (("bare insert", start_bare), ("Bulletin", start_bulletin)):
        with tempfile.TemporaryDirectory(prefix="bulletin-bench-publish-") as tmp:
            workdir = Path(tmp)
            url, handle = new_database(kind, workdir, name.split()[0].lower())
            target: Target | None = None
            try:
                target = start(workdir, url, workers)
                for case, blogs, writers in CASES:
                    run_wrk(wrk, target, blogs, writers, args.warm_up, args.max_entries)
                    loads.append(os.getloadavg()[0])
                    run = run_wrk(wrk, target, blogs, writers, args.duration, args.max_entries)
                    results.setdefault((setting, case, name), Measurement()).runs.append(run)
                    print(
                        f"  {label}, {case}, {name}: {run.rate:,.0f} entries/s, "
                        f"p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms"
                        + (f", {run.failed} refused" if run.failed else ""),
                        file=sys.stderr,
                        flush=True,
                    )
            finally:
                if target is not None:
                    target.process.stop()
                drop_database(handle)


# --- report ------------------------------------------------------------------------


def render(args: argparse.Namespace, results: Results, loads: list[float], heading: str) -> str:
    lines = [
        f"### {heading}",
        "",
        "| database | case | Bulletin entries/s | bare insert entries/s | ratio | target "
        "| Bulletin p50 / p99 ms | bare p50 / p99 ms | p99 target | Bulletin CPU/entry "
        "| bare CPU/entry |",
        "| --- | --- | --: | --: | --: | --- | --: | --: | --- | --: | --: |",
    ]
    errors = []
    for setting in args.settings:
        label = SETTINGS[setting][0]
        for case, _blogs, writers in CASES:
            ours = results.get((setting, case, "Bulletin"))
            bare = results.get((setting, case, "bare insert"))
            if ours is None or bare is None:
                continue
            ratio = ours.median("rate") / bare.median("rate") if bare.median("rate") else 0.0
            p99 = ours.median("p99_ms")
            p99_verdict = (
                f"≤ {TARGET_P99_MS} {'✓' if p99 <= TARGET_P99_MS else '✗'}"
                if writers == 16
                else "-"
            )
            lines.append(
                f"| {label} | {case} | {ours.median('rate'):,.0f} | {bare.median('rate'):,.0f} "
                f"| {ratio:.2f}x | ≥ {TARGET_RATIO}x {'✓' if ratio >= TARGET_RATIO else '✗'} "
                f"| {ours.median('p50_ms'):.1f} / {p99:.1f} "
                f"| {bare.median('p50_ms'):.1f} / {bare.median('p99_ms'):.1f} | {p99_verdict} "
                f"| {ours.cpu_ms_per_entry:.2f} ms | {bare.cpu_ms_per_entry:.2f} ms |"
            )
            for name, measurement in (("Bulletin", ours), ("bare insert", bare)):
                errors += [f"{label}, {case}, {name}: {e}" for e in measurement.errors]
    rounds = [
        f"- {SETTINGS[setting][0]}, {case}: Bulletin "
        + " / ".join(f"{run.rate:,.0f}" for run in results[(setting, case, "Bulletin")].runs)
        + "; bare insert "
        + " / ".join(f"{run.rate:,.0f}" for run in results[(setting, case, "bare insert")].runs)
        for setting in args.settings
        for case, _blogs, _writers in CASES
        if (setting, case, "Bulletin") in results and (setting, case, "bare insert") in results
    ]
    return (
        "\n".join(
            [
                *lines,
                "",
                *context(args, loads),
                "",
                "Entries/s in each round:",
                "",
                *rounds,
                *(["", "Errors:", *errors] if errors else []),
            ]
        )
        + "\n"
    )


def context(args: argparse.Namespace, loads: list[float]) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    wrk_version = wrk_version.split("\n")[0].split(" Copyright")[0].strip()
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("uvicorn", "fastapi", "sqlalchemy", "aiosqlite", "asyncpg")
    )
    command = " ".join(
        ["make bench"] if os.environ.get("MAKELEVEL") else ["bench/publish.py", *sys.argv[1:]]
    )
    load = (
        f"load average (1 min) during the measurements {min(loads):.1f} to {max(loads):.1f}"
        if loads
        else "no load readings"
    )
    return [
        f"Command: `{command}`. Machine: {cpu}, {os.cpu_count()} cores, {load}; Linux "
        f"{platform.release()}; Python {platform.python_version()}, {versions}.",
        f"Load: {wrk_version} on 127.0.0.1 with bench/publish.lua, one thread, one "
        f"connection per writer, each writer posting one entry at a time; {args.duration} s "
        f"(at most {args.max_entries:,} entries) per measurement after {args.warm_up} s of "
        f"warm-up; median of {args.rounds} round(s); latency is wrk's, per request. p99 "
        "target: 16 writers only.",
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wrk = ensure_wrk()
    results: Results = {}
    loads: list[float] = []
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number} of {args.rounds}", file=sys.stderr, flush=True)
        for setting in args.settings:
            measure_setting(wrk, args, setting, results, loads)
    now = datetime.datetime.now(datetime.UTC)
    table = render(args, results, loads, f"Publishing, {now:%Y-%m-%d %H:%M} UTC")
    suffix = "-quick" if args.quick else ""
    out = args.out or RESULTS_DIR / f"publish-{now:%Y-%m-%d-%H%M}{suffix}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(table)
    print(f"saved to {out}", file=sys.stderr)
    return 1 if any(m.errors for m in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
