"""The scheduler: publishes held and scheduled entries when they fall due, exactly once.

Every serving process runs one. An entry waiting in the private state `scheduled` is
claimed by one process with a lease (`schedule_lease_owner`, `schedule_lease_until`), as
webhook deliveries are (app/webhooks/worker.py): a process claims what falls due before its
next sweep, sets a timer for it, and publishes it then through `Publisher.publish_due`,
which checks in the transaction that logs it that the entry is still scheduled, due and
leased to this process. So a crash at any point publishes it once: before the commit
nothing was sent, after it the state says it is done.

Wake-ups: this process's own holds and schedules set its timer at once (the publisher's
schedule listener); a sweep every `schedule_sweep_seconds` finds what other processes
scheduled, what was scheduled before a restart, and what a process that died had leased
(its lease runs out `schedule_lease_seconds` after the due time). An entry goes out at
its due time, or, if the process holding it dies, at most lease + sweep seconds after it.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select, update

from app.db import Database
from app.models import Entry, utc_now
from app.publishing import Publisher
from app.supervision import supervise

logger = logging.getLogger("bulletin.scheduler")

CLAIM_BATCH = 100


class Scheduler:
    """Publishes this installation's due entries; one per process, started in the lifespan."""

    def __init__(
        self,
        database: Database,
        publisher: Publisher,
        *,
        sweep_seconds: float,
        lease_seconds: float,
    ) -> None:
        self.database = database
        self.publisher = publisher
        self.sweep = timedelta(seconds=sweep_seconds)
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.publisher.schedule_listeners.append(self.scheduled)
        self._task = asyncio.create_task(
            supervise("scheduler", self._run, restart_when_done=True), name="scheduler"
        )

    async def stop(self) -> None:
        """Stop, and give back every lease so that another process publishes on time."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            async with self.database.write_session() as session:
                await session.execute(
                    update(Entry)
                    .where(Entry.schedule_lease_owner == self.owner)
                    .values(schedule_lease_owner=None, schedule_lease_until=None)
                )
        except Exception:
            logger.warning("could not give back scheduled entries' leases; they expire")

    def scheduled(self, _due: datetime) -> None:
        """The publisher's listener: a publish was held or scheduled here; look now."""
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            soonest = await self.turn()
            wait = self.sweep.total_seconds()
            if soonest is not None:
                wait = min(wait, max(0.0, (soonest - utc_now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()

    async def turn(self) -> datetime | None:
        """Claim what falls due before the next sweep, publish what of ours is due; return
        when the next of ours falls due (the timer)."""
        now = utc_now()
        await self._claim(now)
        async with self.database.read_session(background="scheduler") as session:
            mine = (
                await session.execute(
                    select(Entry.id, Entry.publish_at)
                    .where(Entry.status == "scheduled", Entry.schedule_lease_owner == self.owner)
                    .order_by(Entry.publish_at)
                )
            ).all()
        soonest = None
        for entry_id, due in mine:
            if due is not None and due > now:
                soonest = due if soonest is None else min(soonest, due)
                continue
            try:
                if await self.publisher.publish_due(entry_id, self.owner):
                    logger.info("published scheduled entry %d", entry_id)
            except Exception:
                # The lease stays ours: the next turn tries again, or another process
                # does once it runs out.
                logger.warning("publishing scheduled entry %d failed", entry_id, exc_info=True)
        return soonest

    def _claimable(self, now: datetime) -> Select[int, datetime | None]:
        """Scheduled entries due before the next sweep that no live process holds."""
        return (
            select(Entry.id, Entry.publish_at)
            .where(
                Entry.status == "scheduled",
                Entry.publish_at <= now + self.sweep,
                or_(Entry.schedule_lease_until.is_(None), Entry.schedule_lease_until < now),
            )
            .order_by(Entry.publish_at)
            .limit(CLAIM_BATCH)
        )

    async def _claim(self, now: datetime) -> None:
        # A read first: the common answer is "nothing to claim", which needs no write lock.
        async with self.database.read_session(background="scheduler") as session:
            if not (await session.execute(self._claimable(now))).first():
                return
        async with self.database.write_session() as session:
            # Locked rows are another process's claim (or a change) in flight: skipped.
            rows = (
                await session.execute(
                    self._claimable(now).with_for_update(skip_locked=True, of=Entry)
                )
            ).all()
            for entry_id, due in rows:
                await session.execute(
                    update(Entry)
                    .where(Entry.id == entry_id)
                    .values(
                        schedule_lease_owner=self.owner,
                        schedule_lease_until=max(due or now, now) + self.lease,
                    )
                )
