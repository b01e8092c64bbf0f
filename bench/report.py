"""Figures per server and N, and the Markdown tables: absolute, ratios to nchan, diagnostics."""

import math
import statistics
from dataclasses import dataclass, field
from functools import cached_property

from procstat import CLOCK_TICKS

REFERENCE = "nginx + nchan"
# The targets at the largest N, as ratios to nchan in the same run.
TARGETS = {"cpu": 1.25, "memory": 1.5, "last": 1.25, "last_workers": 1.0}


@dataclass
class PhaseResult:
    server: str
    readers: int
    messages: int
    error: str | None = None
    connected: int = 0
    lost: int = 0
    duplicates: int = 0
    other: int = 0
    closes: dict[str, int] = field(default_factory=dict)
    latencies_ns: list[list[int]] = field(default_factory=list)
    cpu_seconds: float = 0.0
    window_seconds: float = 0.0
    rss_before: int = 0
    rss_idle: int = 0
    client_cpu_seconds: float = 0.0
    background_cpu_seconds: float = 0.0  # CPU used by processes outside the benchmark
    connect_seconds: float = 0.0
    extension: str = ""
    publish_errors: list[str] = field(default_factory=list)
    publish_seconds: list[float] = field(default_factory=list)
    payload_bytes: int = 0
    compressed: int = 0  # received messages (hello included) that arrived deflated
    note: str = ""

    @property
    def expected(self) -> int:
        return self.readers * self.messages

    @property
    def delivered(self) -> int:
        return sum(len(per_message) for per_message in self.latencies_ns)

    @cached_property
    def _sorted(self) -> list[int]:
        return sorted(value for per_message in self.latencies_ns for value in per_message)

    def latency_ms(self, quantile: float) -> float | None:
        values = self._sorted
        if not values:
            return None
        rank = max(0, min(len(values) - 1, math.ceil(quantile * len(values)) - 1))
        return values[rank] / 1e6

    @property
    def last_reader_ms(self) -> float | None:
        """Per message, when its last reader had it; the median over messages."""
        worst = [max(per_message) for per_message in self.latencies_ns if per_message]
        return statistics.median(worst) / 1e6 if worst else None

    @property
    def worst_last_reader_ms(self) -> float | None:
        worst = [max(per_message) for per_message in self.latencies_ns if per_message]
        return max(worst) / 1e6 if worst else None

    @property
    def cpu_us_per_delivery(self) -> float | None:
        return self.cpu_seconds * 1e6 / self.delivered if self.delivered else None

    @property
    def client_us_per_delivery(self) -> float | None:
        return self.client_cpu_seconds * 1e6 / self.delivered if self.delivered else None

    @property
    def kib_per_connection(self) -> float | None:
        if not self.connected:
            return None
        return (self.rss_idle - self.rss_before) / self.connected / 1024

    @property
    def background_share(self) -> float | None:
        """Background CPU during the window, as a share of one core."""
        return self.background_cpu_seconds / self.window_seconds if self.window_seconds else None

    @property
    def message_bytes(self) -> float | None:
        return self.payload_bytes / self.delivered if self.delivered else None


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _delivered(result: PhaseResult) -> str:
    text = f"{result.delivered:,}/{result.expected:,}"
    return text if result.delivered == result.expected else f"**{text}**"


def _reference(results: list[PhaseResult], readers: int) -> PhaseResult | None:
    return next(
        (r for r in results if r.server == REFERENCE and r.readers == readers and not r.error),
        None,
    )


def absolute_table(results: list[PhaseResult]) -> list[str]:
    lines = [
        "| server | readers | delivered | p50 ms | p99 ms | last reader ms "
        "| CPU µs/delivery | KiB/connection |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.server} | {r.readers:,} | failed: {r.error} | | | | | |")
            continue
        lines.append(
            f"| {r.server} | {r.readers:,} | {_delivered(r)} | {_num(r.latency_ms(0.5))} "
            f"| {_num(r.latency_ms(0.99))} | {_num(r.last_reader_ms)} "
            f"| {_num(r.cpu_us_per_delivery, 2)} | {_num(r.kib_per_connection)} |"
        )
    return lines


def ratio_table(results: list[PhaseResult]) -> list[str]:
    lines = [
        "| server | readers | CPU/delivery | memory/connection | last-reader latency |",
        "|---|--:|--:|--:|--:|",
    ]
    for r in results:
        ref = _reference(results, r.readers)
        if r.error or ref is None:
            continue
        lines.append(
            f"| {r.server} | {r.readers:,} "
            f"| {_x(_ratio(r.cpu_us_per_delivery, ref.cpu_us_per_delivery))} "
            f"| {_x(_ratio(r.kib_per_connection, ref.kib_per_connection))} "
            f"| {_x(_ratio(r.last_reader_ms, ref.last_reader_ms))} |"
        )
    return lines


def _publish_ms(result: PhaseResult) -> str:
    if not result.publish_seconds:
        return "-"
    median = statistics.median(result.publish_seconds) * 1000
    return f"{median:,.1f} / {max(result.publish_seconds) * 1000:,.1f}"


def _deflate(result: PhaseResult) -> str:
    if not result.extension:
        return "no"
    return f"yes ({result.compressed:,})"


def diagnostics_table(results: list[PhaseResult]) -> list[str]:
    lines = [
        "| server | readers | deflate accepted (compressed msgs) | msg bytes | connect s "
        "| window s | publish request ms (median / max) | last reader ms (worst message) "
        "| server CPU busy | background CPU | load-gen CPU µs/delivery | other msgs "
        "| closed by server | publish errors | notes |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        if r.error:
            continue
        busy = r.cpu_seconds / r.window_seconds if r.window_seconds else None
        closes = ", ".join(f"{code}x{count}" for code, count in sorted(r.closes.items()))
        lost = f"{r.lost:,}" + (f" ({closes})" if closes else "")
        notes = "; ".join(
            part
            for part in (
                r.note,
                f"{r.duplicates} duplicates" if r.duplicates else "",
                f"{r.connected:,} connected" if r.connected != r.readers else "",
                r.publish_errors[0][:80] if r.publish_errors else "",
            )
            if part
        )
        lines.append(
            f"| {r.server} | {r.readers:,} | {_deflate(r)} "
            f"| {_num(r.message_bytes, 0)} | {_num(r.connect_seconds)} | {_num(r.window_seconds)} "
            f"| {_publish_ms(r)} | {_num(r.worst_last_reader_ms)} "
            f"| {_num(None if busy is None else busy * 100, 0)}% "
            f"| {_num(None if r.background_share is None else r.background_share * 100, 0)}% "
            f"| {_num(r.client_us_per_delivery, 2)} | {r.other:,} | {lost} "
            f"| {len(r.publish_errors)} | {notes} |"
        )
    return lines


def targets(results: list[PhaseResult]) -> list[str]:
    """The issue's targets, checked at the largest N of this run."""
    ok = [r for r in results if not r.error]
    if not ok:
        return []
    largest = max(r.readers for r in ok)
    ref = _reference(results, largest)
    if ref is None:
        return [f"No nchan figures at {largest:,} readers: no ratios to check."]

    def x3(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}x"

    def mark(passed: bool) -> str:
        return "met" if passed else "**missed**"

    lines = []
    for r in ok:
        if r.readers != largest or not r.server.startswith("Bulletin"):
            continue
        checks = []
        last = _ratio(r.last_reader_ms, ref.last_reader_ms)
        if "workers" in r.server:
            limit = TARGETS["last_workers"]
            passed = last is not None and last <= limit
            checks.append(f"last-reader {x3(last)} ≤ {limit}x: {mark(passed)}")
        else:
            cpu = _ratio(r.cpu_us_per_delivery, ref.cpu_us_per_delivery)
            memory = _ratio(r.kib_per_connection, ref.kib_per_connection)
            for label, value, limit in (
                ("CPU/delivery", cpu, TARGETS["cpu"]),
                ("memory/connection", memory, TARGETS["memory"]),
                ("last-reader", last, TARGETS["last"]),
            ):
                checks.append(
                    f"{label} {x3(value)} ≤ {limit}x: {mark(value is not None and value <= limit)}"
                )
        every = r.delivered == r.expected
        checks.append(f"every reader got every message: {mark(every)}")
        lines.append(f"- {r.server} at {largest:,} readers: " + "; ".join(checks))
    return lines


def _noise_warning(results: list[PhaseResult], limit: float = 0.1) -> list[str]:
    shares = [r.background_share for r in results if r.background_share is not None]
    if not shares or max(shares) <= limit:
        return []
    return [
        "",
        f"**Warning:** other processes used up to {max(shares):.0%} of a core during "
        "measurement windows (column *background CPU*): those rows are noisy; rerun on an "
        "idle machine.",
    ]


def render(results: list[PhaseResult], heading: str, context: list[str]) -> str:
    parts = [f"# {heading}", "", *context, *_noise_warning(results), "", "## Absolute figures", ""]
    parts += absolute_table(results)
    parts += ["", "## Ratios to nginx + nchan (same run, same N)", ""]
    parts += ratio_table(results)
    checks = targets(results)
    if checks:
        parts += ["", "## Targets (issue 3, at the largest N)", "", *checks]
    parts += ["", "## Diagnostics", ""]
    parts += diagnostics_table(results)
    parts += [
        "",
        "Latencies run from the publisher's send time (stamped into each message) to the "
        "reader's receive time, over every reader-message pair; *last reader* is, per "
        "message, the receive time of its last reader, median over messages. CPU is "
        "utime+stime of the server process(es) from /proc/<pid>/stat over the publishing "
        "window (first publish until every reader has every message), divided by "
        "deliveries; memory is VmRSS with N idle readers minus VmRSS before they connected, "
        "divided by N. nginx is measured on its worker process; Bulletin with workers on "
        "their sum. Bold: not every message reached every reader. CPU includes handling the "
        "publish requests; Bulletin's heartbeat interval is raised out of the window (a "
        f"heartbeat round is one more write per reader).{_resolution(results)}",
        "",
    ]
    return "\n".join(parts)


def _resolution(results: list[PhaseResult]) -> str:
    """/proc counts CPU in clock ticks: how coarse that is at the smallest N of the run."""
    deliveries = [r.delivered for r in results if r.delivered]
    if not deliveries:
        return ""
    coarsest = 1e6 / CLOCK_TICKS / min(deliveries)
    return f" One clock tick of CPU is {coarsest:.2f} µs per delivery at the smallest N here."
