"""Public limits per client address: reads, new streams, and open streams.

Counts use the `limits` package with fixed windows: one counter per address
and window (an INCR with expiry in Redis; app/limits/counters.py in one
process), so an address costs a few bytes and one round trip, and
`Retry-After` is exact: the end of the window. The price is that a client may
spend a whole window's allowance at the end of one window and again at the
start of the next. A moving window would not allow that, but keeps one
timestamp per request per address (600 per address at the default) and, in
limits' memory storage, sweeps them in a thread per key.

Open streams are counted in this process only (a dict of counts): they are
connections this process holds, and releasing one must never wait on storage.

Requests carrying a valid token are not limited. Whether a token is valid is
answered from memory: the hashes of all live tokens, read in one query. A hash
among them is trusted for TOKEN_MEMORY_SECONDS (revocation reaches the limits
that late); one not among them makes the process read them again, at most once
every UNKNOWN_TOKEN_SECONDS. So made-up tokens cost at most one query per that
interval however many are sent, from however many addresses. A real token can
be taken for a made-up one only within that interval of its creation (its
secret is shown once, to a person who must then hand it to a tool), and only
from an address already over its limit.
"""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import limits
import redis.asyncio as redis
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from app.config import Settings
from app.errors import RateLimited
from app.limits.addresses import bearer_secret, client_key
from app.limits.counters import MemoryWindowCounters
from app.tokens import TokenStore

logger = logging.getLogger("bulletin.rate_limits")

# How long a valid token stays exempt without a lookup; revocation reaches limits this late.
TOKEN_MEMORY_SECONDS = 5.0
# How often, at most, a token not known to be live makes the process read the live tokens.
UNKNOWN_TOKEN_SECONDS = 1.0
# When storage fails, requests pass unlimited and storage is not asked again for this long.
STORAGE_RETRY_SECONDS = 5.0
# An address at its open-stream cap is told to come back after this long.
STREAM_CAP_RETRY_SECONDS = 10


# The refusals metric's name for each counted limit (the storage keys keep the short one).
REFUSAL_KINDS = {"read": "read", "stream": "stream_connect"}


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused, and after how many seconds to try again; `kind` names the
    limit for the refusals metric (read, stream_connect, open_streams)."""

    message: str
    retry_after: int
    kind: str = "read"

    def error(self) -> RateLimited:
        return RateLimited(self.message, retry_after=self.retry_after)


class LiveTokens:
    """The hashes of every live token, read again when they may be out of date."""

    def __init__(
        self,
        read: Callable[[], Awaitable[set[str]]],
        *,
        valid_seconds: float = TOKEN_MEMORY_SECONDS,
        unknown_seconds: float = UNKNOWN_TOKEN_SECONDS,
    ) -> None:
        self.read = read
        self.valid_seconds = valid_seconds
        self.unknown_seconds = unknown_seconds
        self.hashes: set[str] = set()
        self.read_at = -math.inf
        self._reading = asyncio.Lock()

    async def __call__(self, secret_hash: str) -> bool:
        """Whether the hash is a live token's, reading the live tokens again if needed."""
        if not self._out_of_date(secret_hash):
            return secret_hash in self.hashes
        async with self._reading:
            # Whoever held the lock may have read them meanwhile: one query for them all.
            if self._out_of_date(secret_hash):
                started = time.monotonic()
                try:
                    self.hashes = await self.read()
                except Exception:
                    # What was read last stays the best answer; asked again after the interval.
                    logger.exception("reading the tokens for the rate limits failed")
                self.read_at = started
        return secret_hash in self.hashes

    def _out_of_date(self, secret_hash: str) -> bool:
        age = time.monotonic() - self.read_at
        return age >= (self.valid_seconds if secret_hash in self.hashes else self.unknown_seconds)


class StreamSlots:
    """Open streams per address in this process, refused past `cap`."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open: dict[str, int] = {}

    def take(self, key: str) -> bool:
        count = self.open.get(key, 0)
        if count >= self.cap:
            return False
        self.open[key] = count + 1
        return True

    def give_back(self, key: str) -> None:
        count = self.open.get(key, 0) - 1
        if count > 0:
            self.open[key] = count
        else:
            self.open.pop(key, None)


@dataclass
class StreamPass:
    """An admitted stream; `release()` (safe to call more than once) frees its slot."""

    slots: StreamSlots | None = None
    key: str = ""
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            if self.slots is not None:
                self.slots.give_back(self.key)


def open_storage(settings: Settings) -> tuple[Storage, redis.ConnectionPool | None]:
    """The counters' storage BULLETIN_RATE_LIMIT_STORAGE_URL names, and its Redis pool (to
    close) if it has one. The public limits and the sign-in limits each open one."""
    url = settings.rate_limit_storage_url
    if url.startswith("memory://"):
        return MemoryWindowCounters(), None
    # Our own pool, with short timeouts: a slow Redis must not hold requests up for long.
    timeout = settings.rate_limit_storage_timeout_seconds
    pool = redis.ConnectionPool.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    storage = RedisStorage(
        "async+" + url,
        implementation="redispy",
        key_prefix=settings.rate_limit_key_prefix,
        wrap_exceptions=True,
        # limits annotates its storage options as scalars; redis-py takes a pool here.
        connection_pool=pool,  # type: ignore[arg-type]
    )
    return storage, pool


class RateLimits:
    """The public limits of one app: built with the app, storage opened in the lifespan."""

    def __init__(self, settings: Settings, refused: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        # Told the kind of every refusal, whichever edge asked (the refusals metric).
        self.refused = refused
        self.reads = limits.parse_many(settings.rate_limit_reads)
        self.stream_connects = limits.parse_many(settings.rate_limit_stream_connects)
        self.slots = StreamSlots(settings.max_streams_per_ip)
        self.live_tokens: LiveTokens | None = None
        self.token_store: TokenStore | None = None
        self.limiter: FixedWindowRateLimiter | None = None
        self._pool: redis.ConnectionPool | None = None
        self._storage_down_until = 0.0

    async def start(self, token_store: TokenStore) -> None:
        """Create the storage (nothing connects until the first count)."""
        storage, self._pool = open_storage(self.settings)
        self.limiter = FixedWindowRateLimiter(storage)
        self.token_store = token_store

        async def read_live_tokens() -> set[str]:
            return {token.secret_hash for token in await token_store.list() if not token.revoked_at}

        self.live_tokens = LiveTokens(read_live_tokens)

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def admit_read(self, host: str | None, authorization: str | None) -> Refusal | None:
        """None if this request may go on; a Refusal once its address is over the read limit."""
        if await self.has_valid_token(authorization):
            return None
        refusal = await self._count(self.reads, "read", client_key(host))
        if refusal is not None:
            self._tell(refusal)
        return refusal

    async def admit_stream(
        self, host: str | None, authorization: str | None
    ) -> StreamPass | Refusal:
        """A pass for a new stream, or a Refusal: too many new or open streams from its address."""
        if await self.has_valid_token(authorization):
            return StreamPass()
        key = client_key(host)
        if not self.slots.take(key):
            at_cap = Refusal(
                f"At most {self.slots.cap} open streams per address; close one first.",
                STREAM_CAP_RETRY_SECONDS,
                kind="open_streams",
            )
            self._tell(at_cap)
            return at_cap
        admitted = StreamPass(self.slots, key)
        refusal = await self._count(self.stream_connects, "stream", key)
        if refusal is not None:
            admitted.release()
            self._tell(refusal)
            return refusal
        return admitted

    def _tell(self, refusal: Refusal) -> None:
        if self.refused is not None:
            self.refused(refusal.kind)

    async def has_valid_token(self, authorization: str | None) -> bool:
        """Whether the request carries a live token; anything else earns no exemption."""
        secret = bearer_secret(authorization)
        if secret is None or self.live_tokens is None or self.token_store is None:
            return False
        return await self.live_tokens(self.token_store.lookup_hash(secret))

    async def _count(
        self, items: list[limits.RateLimitItem], purpose: str, key: str
    ) -> Refusal | None:
        limiter = self.limiter
        if limiter is None or time.monotonic() < self._storage_down_until:
            return None
        try:
            for item in items:
                if not await limiter.hit(item, purpose, key):
                    stats = await limiter.get_window_stats(item, purpose, key)
                    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                    return Refusal(
                        f"Too many requests from your address (limit {item}); "
                        f"retry after {retry_after} s.",
                        retry_after,
                        kind=REFUSAL_KINDS[purpose],
                    )
        except StorageError:
            # Fail open: a storage outage must not take every reader down with it.
            if self._storage_down_until == 0.0:
                logger.exception("rate limit storage failed; not limiting for a while")
            self._storage_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
            return None
        self._storage_down_until = 0.0
        return None
