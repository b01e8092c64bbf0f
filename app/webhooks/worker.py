"""The webhook worker: claims webhooks with undelivered events and sends them in order.

Leases, turns and the record of every attempt live here; one HTTP attempt is
app/webhooks/delivery.py's job.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Select, delete, or_, select, update

from app.config import Settings
from app.db import Database, is_outage
from app.metrics import Metrics, WebhookStanding
from app.models import Blog, Webhook, WebhookDelivery, utc_now
from app.queries import event_payloads_since
from app.realtime.broker import Announcement
from app.supervision import supervise
from app.webhooks.delivery import Destination, Outcome, Sender, retry_delay
from app.webhooks.signing import SecretBox

logger = logging.getLogger("bulletin.webhooks")

# Webhooks one process delivers to at the same time.
MAX_PARALLEL = 16
EVENT_BATCH = 50
# A webhook with a backlog gives its slot back after this many events or seconds (after
# the attempt in flight), so slow receivers cannot keep every slot from the others.
TURN_EVENTS = 200
TURN_SECONDS = 2.0
# Delivery attempts kept per webhook for `GET .../deliveries`; older ones are pruned.
KEEP_ATTEMPTS = 500
LEASE_FLOOR_SECONDS = 60.0
# The longest a scrape of /metrics waits for the webhooks' numbers from the database.
MEASURE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Assignment:
    """The next events for a leased webhook, with what is needed to send the first one."""

    destination: Destination
    failures: int
    events: list[tuple[int, bytes]]


class WebhookWorker:
    """Delivers every blog's events to its webhooks; one per process, started in the lifespan."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        box: SecretBox,
        *,
        parallel: int = MAX_PARALLEL,
        turn_events: int = TURN_EVENTS,
        turn_seconds: float = TURN_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        self.database = database
        self.metrics = metrics
        if metrics is not None:
            metrics.before_scrape(self.measure)
        self.settings = settings
        self.box = box
        self.parallel = parallel
        self.turn_events = turn_events
        self.turn_seconds = turn_seconds
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.sender = Sender(settings, box)
        # Far longer than an attempt can take: a live holder never loses its lease.
        self.lease = timedelta(seconds=max(LEASE_FLOOR_SECONDS, 4 * self.sender.attempt_seconds))
        self._wakeup = asyncio.Event()
        self._serving: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        await self.sender.start()
        self._task = asyncio.create_task(
            supervise("webhook worker", self._dispatch), name="webhook-worker"
        )

    async def stop(self) -> None:
        """Stop claiming, let attempts in flight finish (so none is sent again after a
        restart), then give every lease back so the next process starts at once."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        serving = list(self._serving.values())
        if serving:
            _done, late = await asyncio.wait(serving, timeout=self.sender.attempt_seconds + 1)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        try:
            async with self.database.write_session() as session:
                await session.execute(
                    update(Webhook)
                    .where(Webhook.lease_owner == self.owner)
                    .values(lease_owner=None, lease_until=None)
                )
        except Exception:
            logger.warning("could not give back webhook leases; they expire", exc_info=True)

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        self._wakeup.set()

    def committed(self, _events: Sequence[Announcement]) -> None:
        """The publisher's listener: this process just committed events, so look now."""
        self.wake()

    async def measure(self) -> None:
        """Read every active webhook's backlog and failures in a row into the metrics (at
        each scrape: the numbers are the database's, the same from every process)."""
        if self.metrics is None:
            return
        query = (
            select(
                Webhook.id,
                Blog.head_seq - Webhook.delivered_seq,
                Webhook.consecutive_failures,
            )
            .join(Blog, Blog.id == Webhook.blog_id)
            .where(Webhook.active.is_(True))
        )
        try:
            # A scrape must answer while the database is away: the rest of it says so.
            async with asyncio.timeout(MEASURE_SECONDS), self.database.read_session() as session:
                rows = (await session.execute(query)).all()
        except Exception as error:
            # The last numbers stay; a database outage has metrics of its own.
            logger.warning(
                "reading webhook backlogs failed: %s", error, exc_info=not is_outage(error)
            )
            return
        self.metrics.webhooks.standings = [
            WebhookStanding(str(webhook_id), max(0, backlog), failures)
            for webhook_id, backlog, failures in rows
        ]

    # --- claiming --------------------------------------------------------------

    async def _dispatch(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            wait = self.settings.webhook_poll_seconds
            room = self.parallel - len(self._serving)
            if room > 0:
                claimed, soonest = await self._claim(room)
                for webhook_id in claimed:
                    task = asyncio.create_task(
                        self._serve(webhook_id), name=f"webhook-{webhook_id}"
                    )
                    self._serving[webhook_id] = task
                    task.add_done_callback(partial(self._finished, webhook_id))
                if soonest is not None:
                    wait = min(wait, max(0.0, (soonest - utc_now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    def _finished(self, webhook_id: int, task: asyncio.Task[None]) -> None:
        self._serving.pop(webhook_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                "delivering to webhook %d failed; it is retried",
                webhook_id,
                exc_info=task.exception(),
            )
        self.wake()

    def _candidates(self, now: datetime) -> Select[int, datetime]:
        """Active webhooks with undelivered events that no live process holds, soonest first.

        A webhook that just gave its slot back was due most recently, so it queues behind
        every webhook that was already waiting."""
        return (
            select(Webhook.id, Webhook.next_attempt_at)
            .join(Blog, Blog.id == Webhook.blog_id)
            .where(
                Webhook.active.is_(True),
                Blog.head_seq > Webhook.delivered_seq,
                or_(Webhook.lease_until.is_(None), Webhook.lease_until < now),
                Webhook.id.not_in(list(self._serving)),
            )
            .order_by(Webhook.next_attempt_at)
        )

    async def _claim(self, room: int) -> tuple[list[int], datetime | None]:
        """Lease up to `room` webhooks that are due; also when the next retry falls due."""
        now = utc_now()
        # A read first: the common answer is "nothing to do", which needs no write lock.
        async with self.database.read_session() as session:
            rows = (await session.execute(self._candidates(now).limit(room))).all()
        due = [webhook_id for webhook_id, at in rows if at <= now]
        soonest = min((at for _id, at in rows if at > now), default=None)
        if not due:
            return [], soonest
        async with self.database.write_session() as session:
            query = (
                self._candidates(now)
                .where(Webhook.id.in_(due), Webhook.next_attempt_at <= now)
                .with_for_update(skip_locked=True, of=Webhook)
            )
            claimed = [webhook_id for webhook_id, _at in await session.execute(query)]
            if claimed:
                await session.execute(
                    update(Webhook)
                    .where(Webhook.id.in_(claimed))
                    .values(lease_owner=self.owner, lease_until=now + self.lease)
                )
        return claimed, soonest

    # --- delivering ------------------------------------------------------------

    async def _serve(self, webhook_id: int) -> None:
        """Send a leased webhook its events in order for one turn: until it is caught up, an
        attempt fails, it is changed so that it should stop, or its turn is over."""
        turn_ends = time.monotonic() + self.turn_seconds
        events_left = self.turn_events
        try:
            async with self.sender.client() as client:
                while not self._stopping and events_left > 0:
                    assignment = await self._assignment(webhook_id, min(EVENT_BATCH, events_left))
                    if assignment is None or not assignment.events:
                        return
                    destination = assignment.destination
                    failures = assignment.failures
                    for seq, payload in assignment.events:
                        outcome = await self.sender.attempt(
                            client, webhook_id, destination, seq, payload
                        )
                        if self.metrics is not None:
                            self.metrics.webhook_attempts.labels(
                                outcome="delivered" if outcome.delivered else "failed"
                            ).inc()
                        # Read again with every record: a new URL or secret, or a pause, applies
                        # from the next event, not the next batch.
                        following = await self._record(webhook_id, seq, failures + 1, outcome)
                        if following is None:
                            return
                        destination = following
                        failures = 0
                        events_left -= 1
                        if self._stopping or time.monotonic() >= turn_ends:
                            return
        finally:
            await self._release(webhook_id)

    async def _assignment(self, webhook_id: int, limit: int) -> Assignment | None:
        """The next events after the cursor, or None when the webhook is no longer ours to serve."""
        async with self.database.read_session() as session:
            webhook = await session.get(Webhook, webhook_id)
            if webhook is None or not webhook.active or webhook.lease_owner != self.owner:
                return None
            events = await event_payloads_since(
                session, webhook.blog_id, webhook.delivered_seq, limit
            )
            return Assignment(
                destination=_destination(webhook),
                failures=webhook.consecutive_failures,
                events=events,
            )

    async def _record(
        self, webhook_id: int, seq: int, attempt: int, outcome: Outcome
    ) -> Destination | None:
        """Store the attempt and move the cursor or schedule the retry. Returns where the next
        event goes, as the webhook stands now, or None to stop sending."""
        now = utc_now()
        async with self.database.write_session() as session:
            webhook = await session.get(Webhook, webhook_id, with_for_update=True)
            if webhook is None or webhook.lease_owner != self.owner:
                return None  # deleted, or (after an attempt longer than the lease) taken over
            session.add(
                WebhookDelivery(
                    webhook_id=webhook_id,
                    seq=seq,
                    attempt=attempt,
                    delivered=outcome.delivered,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                    attempted_at=now,
                )
            )
            webhook.last_attempt_at = now
            webhook.last_status_code = outcome.status_code
            if outcome.delivered:
                webhook.delivered_seq = seq
                webhook.consecutive_failures = 0
                webhook.last_error = None
                webhook.last_success_at = now
                webhook.next_attempt_at = now
                webhook.lease_until = now + self.lease
                return _destination(webhook) if webhook.active else None
            failures = webhook.consecutive_failures + 1
            webhook.consecutive_failures = failures
            webhook.last_error = outcome.error
            webhook.next_attempt_at = now + timedelta(
                seconds=retry_delay(
                    failures,
                    self.settings.webhook_retry_base_seconds,
                    self.settings.webhook_retry_cap_seconds,
                )
            )
            if webhook.active and failures >= self.settings.webhook_disable_after_failures:
                webhook.active = False
                webhook.disabled_at = now
                webhook.disabled_reason = (
                    f"disabled after {failures} failed attempts in a row; last: {outcome.error}"
                )
                logger.warning("webhook %d disabled after %d failures", webhook_id, failures)
            return None

    async def _release(self, webhook_id: int) -> None:
        """Give the lease back and prune old attempts; then look again, in case a publish
        came while we held it and another process could not claim it."""
        cutoff = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .offset(KEEP_ATTEMPTS)
            .limit(1)
            .scalar_subquery()
        )
        try:
            async with self.database.write_session() as session:
                await session.execute(
                    update(Webhook)
                    .where(Webhook.id == webhook_id, Webhook.lease_owner == self.owner)
                    .values(lease_owner=None, lease_until=None)
                )
                await session.execute(
                    delete(WebhookDelivery).where(
                        WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.id <= cutoff
                    )
                )
        except Exception:
            logger.warning("could not give back webhook %d's lease; it expires", webhook_id)
        self.wake()


def _destination(webhook: Webhook) -> Destination:
    return Destination(url=webhook.url, secret_ciphertext=bytes(webhook.secret_ciphertext))
