"""Limits on signing in: failures per login, attempts per client address.

Counted with the `limits` package in the storage BULLETIN_RATE_LIMIT_STORAGE_URL names
(each process's memory, or one Redis for all of them), in fixed windows, as the public
limits are (app/limits/), but always on: they guard passwords, not capacity.

- Per login: every attempt counts against BULLETIN_SIGN_IN_LIMIT_PER_LOGIN, and a
  successful sign-in clears the count, so what is counted is the failures since the last
  success. Counted before the password is checked, so attempts sent at once cannot pass
  the limit together. Logins nobody has are counted the same way: a refusal says nothing
  of whether a login exists. A login is counted by its hash, so no login is stored in Redis.
- Per address: every attempt counts against BULLETIN_SIGN_IN_LIMIT_PER_ADDRESS (IPv6 by its
  /64, as the public limits count it), whatever the login.

The price of the per-login limit: anyone can keep one login from signing in by failing
on purpose. The password stays safe; the user waits for the window to end (Retry-After),
or an admin's token keeps working, since tokens never sign in.
"""

import hashlib
import logging
import math
import time

import limits
import redis.asyncio as redis
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from app.config import Settings
from app.errors import RateLimited
from app.limits import STORAGE_RETRY_SECONDS, open_storage
from app.limits.addresses import client_key
from app.people.users import login_key

logger = logging.getLogger("bulletin.sign_in")

PER_LOGIN = "sign-in-login"
PER_ADDRESS = "sign-in-address"


def login_counter(login: str) -> str:
    """What a login is counted by: the hash of its casefolded form."""
    return hashlib.sha256(login_key(login).encode()).hexdigest()[:32]


class SignInLimits:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.per_login = limits.parse_many(settings.sign_in_limit_per_login)
        self.per_address = limits.parse_many(settings.sign_in_limit_per_address)
        self.limiter: FixedWindowRateLimiter | None = None
        self._pool: redis.ConnectionPool | None = None
        self._storage_down_until = 0.0

    async def start(self) -> None:
        storage, self._pool = open_storage(self.settings)
        self.limiter = FixedWindowRateLimiter(storage)

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def admit(self, login: str, address: str | None) -> None:
        """Count an attempt; raises RateLimited (429 with Retry-After) past either limit."""
        await self._hit(self.per_address, PER_ADDRESS, client_key(address))
        await self._hit(self.per_login, PER_LOGIN, login_counter(login))

    async def succeeded(self, login: str) -> None:
        """A sign-in with this login succeeded: its failures are forgotten."""
        limiter = self.limiter
        if limiter is None:
            return
        try:
            for item in self.per_login:
                await limiter.clear(item, PER_LOGIN, login_counter(login))
        except StorageError:
            logger.warning("clearing a login's sign-in count failed", exc_info=True)

    async def _hit(self, items: list[limits.RateLimitItem], purpose: str, key: str) -> None:
        """Count one attempt against each limit; raise RateLimited past one."""
        limiter = self.limiter
        if limiter is None or time.monotonic() < self._storage_down_until:
            return
        try:
            for item in items:
                if not await limiter.hit(item, purpose, key):
                    stats = await limiter.get_window_stats(item, purpose, key)
                    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                    # One message for both limits, known logins and unknown ones alike.
                    raise RateLimited(
                        f"Too many sign-in attempts; try again in {retry_after} s.",
                        retry_after=retry_after,
                    )
        except StorageError:
            # As the public limits do: an outage of the counters must not stop every
            # sign-in. Argon2 still makes each guess cost a fifth of a second of CPU.
            if self._storage_down_until == 0.0:
                logger.exception("sign-in limit storage failed; not limiting for a while")
            self._storage_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
            return
        self._storage_down_until = 0.0
