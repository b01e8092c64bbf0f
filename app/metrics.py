"""Prometheus metrics, one registry per app (so several apps can live in one process)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.readers = Gauge(
            "bulletin_readers",
            "Open stream connections, by form.",
            ["form"],
            registry=self.registry,
        )
        self.channels = Gauge(
            "bulletin_channels", "Blogs this process follows.", registry=self.registry
        )
        self.events_delivered = Counter(
            "bulletin_events_delivered",
            "Events this process fanned out (once per event, not per reader).",
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
        self.broker_failures = Counter(
            "bulletin_broker_failures",
            "Broker publish or subscribe failures (peers catch up from the log).",
            registry=self.registry,
        )
        self.writers_waiting = Gauge(
            "bulletin_writers_waiting",
            "Writes queued for this process's turn to write (SQLite has one writer).",
            registry=self.registry,
        )
        self.broker_refused = Counter(
            "bulletin_broker_refused",
            "Broker messages dropped because this installation did not sign them.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
