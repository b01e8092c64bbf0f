"""Public limits per client address: reads, new streams, and open streams.

Counts use the `limits` package with fixed windows: one counter per address
and window (an INCR with expiry in Redis; app/rate_limit_memory.py in one
process), so an address costs a few bytes and one round trip, and
`Retry-After` is exact: the end of the window. The price is that a client may
spend a whole window's allowance at the end of one window and again at the
start of the next. A moving window would not allow that, but keeps one
timestamp per request per address (600 per address at the default) and, in
limits' memory storage, sweeps them in a thread per key.

Open streams are counted in this process only (a dict of counts): they are
connections this process holds, and releasing one must never wait on storage.

Requests carrying a valid token are not limited; recently seen valid tokens are
remembered by hash for a few seconds so newsroom tools cost no lookup each.
"""

import ipaddress
import logging
import math
import time
from dataclasses import dataclass, field

import limits
import redis.asyncio as redis
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from app.config import Settings
from app.rate_limit_memory import MemoryWindowCounters
from app.tokens import TokenStore, hash_secret

logger = logging.getLogger("bulletin.rate_limits")

# How long a valid token stays exempt without a lookup; revocation reaches limits this late.
TOKEN_MEMORY_SECONDS = 5.0
TOKEN_MEMORY_SIZE = 1024
# When storage fails, requests pass unlimited and storage is not asked again for this long.
STORAGE_RETRY_SECONDS = 5.0
# An address at its open-stream cap is told to come back after this long.
STREAM_CAP_RETRY_SECONDS = 10
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused, and after how many seconds to try again."""

    message: str
    retry_after: int


def client_key(host: str | None) -> str:
    """The address a limit counts against: IPv4 as it is, IPv6 by its /64.

    One subscriber usually holds a whole /64, so counting single IPv6 addresses
    would let one client appear as billions.
    """
    if not host:
        return "unknown"
    if ":" not in host:
        return host[:64]  # IPv4 (or a name), as the socket or a trusted proxy gave it
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of an `Authorization: Bearer ...` header, if that is what was sent."""
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        return None
    return secret


class RecentTokens:
    """Hashes of tokens found valid in the last few seconds, at most `size` of them."""

    def __init__(self, ttl_seconds: float = TOKEN_MEMORY_SECONDS, size: int = TOKEN_MEMORY_SIZE):
        self.ttl_seconds = ttl_seconds
        self.size = size
        self._expiry: dict[str, float] = {}

    def __contains__(self, secret_hash: str) -> bool:
        expires = self._expiry.get(secret_hash)
        if expires is None:
            return False
        if expires < time.monotonic():
            del self._expiry[secret_hash]
            return False
        return True

    def add(self, secret_hash: str) -> None:
        self._expiry.pop(secret_hash, None)
        while len(self._expiry) >= self.size:
            del self._expiry[next(iter(self._expiry))]  # the oldest
        self._expiry[secret_hash] = time.monotonic() + self.ttl_seconds


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


def _storage(settings: Settings) -> tuple[Storage, redis.ConnectionPool | None]:
    url = settings.rate_limit_storage_url
    if url.startswith("memory://"):
        return MemoryWindowCounters(), None
    # Our own pool, with short timeouts: a slow Redis must not hold requests up for long.
    pool = redis.ConnectionPool.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    storage = RedisStorage(
        "async+" + url,
        implementation="redispy",
        key_prefix=settings.rate_limit_key_prefix,
        wrap_exceptions=True,
        connection_pool=pool,
    )
    return storage, pool


class RateLimits:
    """The public limits of one app: built with the app, storage opened in the lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reads = limits.parse_many(settings.rate_limit_reads)
        self.stream_connects = limits.parse_many(settings.rate_limit_stream_connects)
        self.slots = StreamSlots(settings.max_streams_per_ip)
        self.recent_tokens = RecentTokens()
        self.token_store: TokenStore | None = None
        self.limiter: FixedWindowRateLimiter | None = None
        self._pool: redis.ConnectionPool | None = None
        self._storage_down_until = 0.0

    async def start(self, token_store: TokenStore) -> None:
        """Create the storage (nothing connects until the first count)."""
        storage, self._pool = _storage(self.settings)
        self.limiter = FixedWindowRateLimiter(storage)
        self.token_store = token_store

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def admit_read(self, host: str | None, authorization: str | None) -> Refusal | None:
        """None if this request may go on; a Refusal once its address is over the read limit."""
        if await self.has_valid_token(authorization):
            return None
        return await self._count(self.reads, "read", client_key(host))

    async def admit_stream(
        self, host: str | None, authorization: str | None
    ) -> StreamPass | Refusal:
        """A pass for a new stream, or a Refusal: too many new or open streams from its address."""
        if await self.has_valid_token(authorization):
            return StreamPass()
        key = client_key(host)
        if not self.slots.take(key):
            return Refusal(
                f"At most {self.slots.cap} open streams per address; close one first.",
                STREAM_CAP_RETRY_SECONDS,
            )
        admitted = StreamPass(self.slots, key)
        refusal = await self._count(self.stream_connects, "stream", key)
        if refusal is not None:
            admitted.release()
            return refusal
        return admitted

    async def has_valid_token(self, authorization: str | None) -> bool:
        """Whether the request carries a live token; anything else earns no exemption."""
        secret = bearer_secret(authorization)
        if secret is None or self.token_store is None:
            return False
        secret_hash = hash_secret(secret)
        if secret_hash in self.recent_tokens:
            return True
        try:
            token = await self.token_store.authenticate(secret)
        except Exception:
            logger.exception("checking a token for the rate limits failed; limiting as public")
            return False
        if token is None:
            return False
        self.recent_tokens.add(secret_hash)
        return True

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
                    )
        except StorageError:
            # Fail open: a storage outage must not take every reader down with it.
            if self._storage_down_until == 0.0:
                logger.exception("rate limit storage failed; not limiting for a while")
            self._storage_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
            return None
        self._storage_down_until = 0.0
        return None
