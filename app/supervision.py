"""Background loops that must not die unnoticed: log the failure, back off, run again."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from app.db import is_outage

logger = logging.getLogger("bulletin")

FIRST_DELAY_SECONDS = 0.1
MAX_DELAY_SECONDS = 5.0
# A loop that ran this long before failing had been healthy: its next failure is a new outage.
HEALTHY_SECONDS = 30.0


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    restart_when_done: bool = False,
    on_failure: Callable[[], None] | None = None,
    after_pause: Callable[[], None] | None = None,
) -> None:
    """Run `run` until it returns (or for ever, with `restart_when_done`), restarting it
    with exponential back-off whenever it raises. `after_pause` runs before each restart."""
    delay = FIRST_DELAY_SECONDS
    while True:
        started = time.monotonic()
        try:
            await run()
            if not restart_when_done:
                return
            logger.warning("%s stopped; restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # An outage is one line a restart; anything else is a fault worth a traceback.
            logger.warning(
                "%s failed; restarting in %.1fs: %s",
                name,
                delay,
                f"{type(error).__name__}: {str(error)[:200]}",
                exc_info=not is_outage(error),
            )
            if on_failure is not None:
                on_failure()
        if time.monotonic() - started > HEALTHY_SECONDS:
            delay = FIRST_DELAY_SECONDS
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_SECONDS)
        if after_pause is not None:
            after_pause()
