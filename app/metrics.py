"""Prometheus metrics, one registry per app (so several apps can live in one process).

Every process serves its own numbers at its own /metrics: scrape each process (each
worker of `bulletin serve --workers N` is one) and sum or take the max across them in
the query. Names follow Prometheus' conventions: counters end in `_total`, durations are
in seconds, and labels stay bounded (the top blogs and webhooks by name, the rest in one
`_other` series).
"""

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Blogs and webhooks named in labels; the rest are summed into the OTHER series.
TOP_LABELS = 20
# Slugs are lower-case letters, digits and dashes: this can never be one.
OTHER = "_other"
SIGN_IN_REFUSALS = ("wrong_password", "locked_out")
CONNECTION_REFUSALS = ("request_timeout", "server_busy", "headers_too_large", "url_too_long")
LAG_BUCKETS_EVENTS = (0, 1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000)
LATENCY_BUCKETS_SECONDS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def top_with_other(
    counts: Iterable[tuple[str, float]], top: int = TOP_LABELS
) -> list[tuple[str, float]]:
    """The `top` largest counts by name, then the sum of the rest as OTHER (always present,
    so a query over it never finds nothing)."""
    ranked = sorted(counts, key=lambda item: (-item[1], item[0]))
    return [*ranked[:top], (OTHER, sum(count for _name, count in ranked[top:]))]


@dataclass(frozen=True, slots=True)
class WebhookStanding:
    """One webhook as the database has it now: events not yet delivered, failures in a row."""

    webhook: str
    backlog: int
    consecutive_failures: int


class _BlogReaders(Collector):
    """Open streams per blog on this process, read from the hub at scrape time."""

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[tuple[str, int]]] = list
        # Readers now per blog are for members only (DESIGN, invariant 7): a scrape without
        # an admin token gets them all summed as OTHER.
        self.named = False

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "bulletin_blog_readers",
            f"Open streams on this process per blog: the {TOP_LABELS} most read by slug, "
            f"the rest summed as blog={OTHER!r} (every blog, unless the scrape sends an "
            "admin token).",
            labels=["blog"],
        )
        for slug, count in top_with_other(self.source(), TOP_LABELS if self.named else 0):
            family.add_metric([slug], count)
        yield family


class _Webhooks(Collector):
    """Backlog and failures per webhook, as last read from the database (at each scrape)."""

    def __init__(self) -> None:
        self.standings: list[WebhookStanding] = []

    def collect(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "bulletin_webhook_backlog_events",
            f"Events of its blog not yet delivered to a webhook (the {TOP_LABELS} largest "
            f"by id, the rest summed as webhook={OTHER!r}); the same on every process.",
            labels=["webhook"],
        )
        by_backlog = top_with_other((s.webhook, s.backlog) for s in self.standings)
        for webhook, count in by_backlog:
            backlog.add_metric([webhook], count)
        yield backlog
        failures = GaugeMetricFamily(
            "bulletin_webhook_consecutive_failures",
            "Failed attempts in a row of an active webhook (0 once one is delivered; it is "
            f"disabled at the configured limit), the {TOP_LABELS} highest by id, the rest "
            f"as webhook={OTHER!r} (their highest).",
            labels=["webhook"],
        )
        ranked = sorted(self.standings, key=lambda s: (-s.consecutive_failures, s.webhook))
        for standing in ranked[:TOP_LABELS]:
            failures.add_metric([standing.webhook], standing.consecutive_failures)
        rest = [standing.consecutive_failures for standing in ranked[TOP_LABELS:]]
        failures.add_metric([OTHER], max(rest, default=0))
        yield failures


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Read at scrape time, before rendering: what only the database knows.
        self._before_scrape: list[Callable[[], Awaitable[None]]] = []
        self.readers = Gauge(
            "bulletin_readers",
            "Open stream connections, by form.",
            ["form"],
            registry=self.registry,
        )
        self.blog_readers = _BlogReaders()
        self.registry.register(self.blog_readers)
        self.channels = Gauge(
            "bulletin_channels", "Blogs this process follows.", registry=self.registry
        )
        self.events_published = Counter(
            "bulletin_events_published",
            "Events committed by this process, by type (entry.created, entry.updated, ...).",
            ["type"],
            registry=self.registry,
        )
        self.events_delivered = Counter(
            "bulletin_events_delivered",
            "Events this process fanned out (once per event, not per reader).",
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "bulletin_delivery_latency_seconds",
            "From an event's commit (on any process) to its last write to this process's "
            "readers' sockets, once per event; events filled from the log are not timed.",
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.reader_lag = Histogram(
            "bulletin_reader_lag_events",
            "Events a reader was behind this process's head when its stream opened (what it "
            "was replayed before going live; 0 for a reader that starts at the head).",
            buckets=LAG_BUCKETS_EVENTS,
            registry=self.registry,
        )
        self.reader_lag_now = Histogram(
            "bulletin_reader_lag_behind_head_events",
            "Events this process's readers of a blog are behind the blog's head in the "
            "database, observed at every check of the heads (BULLETIN_HUB_CHECK_SECONDS), "
            "once per blog with readers here: a blog stuck behind shows at once, not only "
            "when its readers reconnect.",
            buckets=LAG_BUCKETS_EVENTS,
            registry=self.registry,
        )
        self.slow_readers_closed = Counter(
            "bulletin_slow_readers_closed",
            "Readers closed with RESUME because their buffer passed its limit.",
            registry=self.registry,
        )
        self.gaps_filled = Counter(
            "bulletin_gap_fills",
            "Times a missing seq was fetched from the database log.",
            registry=self.registry,
        )
        self.catch_up_queries = Counter(
            "bulletin_catch_up_queries",
            "Database reads made for resuming readers: `load` (a blog's head and newest "
            "events, once per following), `head` (a resume ahead of this process; shared by "
            "the resumes of a blog within 100 ms) and `replay` (a resume older than memory).",
            ["kind"],
            registry=self.registry,
        )
        self.broker_failures = Counter(
            "bulletin_broker_failures",
            "Broker publish or subscribe failures (peers catch up from the log).",
            registry=self.registry,
        )
        self.broker_reconnects = Counter(
            "bulletin_broker_reconnects",
            "Times this process subscribed to the broker again after losing it.",
            registry=self.registry,
        )
        self.writers_waiting = Gauge(
            "bulletin_writers_waiting",
            "Writes queued for this process's turn to write (SQLite: any; PostgreSQL: the blog's).",
            registry=self.registry,
        )
        self.broker_refused = Counter(
            "bulletin_broker_refused",
            "Broker messages dropped because this installation did not sign them.",
            registry=self.registry,
        )
        self.rate_limit_refusals = Counter(
            "bulletin_rate_limit_refusals",
            "Requests answered 429 by the public rate limits, by kind (read, stream_connect: "
            "over the address's rate; open_streams: at its cap of open streams), and "
            "streams closed with 4008 for subscribe messages past their budget "
            "(stream_messages).",
            ["kind"],
            registry=self.registry,
        )
        self.sign_in_refusals = Counter(
            "bulletin_sign_in_refusals",
            "Sign-ins refused, by reason (wrong_password: a wrong login or password, or a "
            "disabled user; locked_out: past the sign-in limits for the login or address).",
            ["reason"],
            registry=self.registry,
        )
        for reason in SIGN_IN_REFUSALS:
            self.sign_in_refusals.labels(reason=reason)
        self.connection_refusals = Counter(
            "bulletin_connection_refusals",
            "Connections answered and closed by the server before any route ran, by reason "
            "(request_timeout: 408, the head or body did not arrive in time; server_busy: 503, "
            "at this process's connection cap; headers_too_large: 431; url_too_long: 414).",
            ["reason"],
            registry=self.registry,
        )
        for reason in CONNECTION_REFUSALS:
            self.connection_refusals.labels(reason=reason)
        self.webhook_attempts = Counter(
            "bulletin_webhook_attempts",
            "Webhook delivery attempts by this process, by outcome (delivered, failed).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("delivered", "failed"):
            self.webhook_attempts.labels(outcome=outcome)
        for kind in ("read", "stream_connect", "open_streams", "stream_messages"):
            self.rate_limit_refusals.labels(kind=kind)
        self.webhooks = _Webhooks()
        self.registry.register(self.webhooks)
        self.db_pool_checked_out = Gauge(
            "bulletin_db_pool_checked_out",
            "Database connections this process has checked out of its pool now.",
            registry=self.registry,
        )
        self.db_pool_size = Gauge(
            "bulletin_db_pool_size",
            "Connections this process's pool keeps; it opens up to twice as many more "
            "(its overflow) before a request waits for one.",
            registry=self.registry,
        )

    def count_refusal(self, kind: str) -> None:
        self.rate_limit_refusals.labels(kind=kind).inc()

    def before_scrape(self, read: Callable[[], Awaitable[None]]) -> None:
        """Run `read` before each scrape is rendered (for numbers only the database has)."""
        self._before_scrape.append(read)

    async def scrape(self, *, name_blogs: bool = False) -> bytes:
        """The exposition text, after the readers registered with `before_scrape` ran; blogs
        are named only with `name_blogs` (an admin's scrape)."""
        for read in self._before_scrape:
            await read()
        # Nothing awaits between these: no other scrape renders with this one's setting.
        self.blog_readers.named = name_blogs
        try:
            return self.render()
        finally:
            self.blog_readers.named = False

    def render(self) -> bytes:
        return generate_latest(self.registry)
