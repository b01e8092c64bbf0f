"""Fixed-window counters in process memory: a storage for the `limits` package.

limits' own asyncio memory storage sweeps every counter on every count, so a
request costs time in proportion to the addresses seen in the last window
(measured here: 1.4 ms a request with 10,000 addresses, 3.5 ms with 50,000).
These counters expire a window lazily when it is counted or read, and sweep
expired windows out of memory at most every `sweep_seconds`. The event loop runs
each method without awaiting, so no lock is needed. Only the fixed-window
strategy uses these methods.
"""

import time

from limits.aio.storage import Storage

SWEEP_SECONDS = 10.0


class MemoryWindowCounters(Storage):
    # Not registered under a URL scheme: Bulletin builds it directly.
    STORAGE_SCHEME = None

    def __init__(self, sweep_seconds: float = SWEEP_SECONDS) -> None:
        super().__init__()
        self.sweep_seconds = sweep_seconds
        # key -> (count, the window's end as a Unix time)
        self.windows: dict[str, tuple[int, float]] = {}
        self.next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Count `amount` in the key's current window, opening a new one if it has ended."""
        now = time.time()
        if now >= self.next_sweep:
            self._sweep(now)
        count, ends = self.windows.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + expiry
        count += amount
        self.windows[key] = (count, ends)
        return count

    async def get(self, key: str) -> int:
        count, ends = self.windows.get(key, (0, 0.0))
        return count if ends > time.time() else 0

    async def get_expiry(self, key: str) -> float:
        now = time.time()
        _count, ends = self.windows.get(key, (0, 0.0))
        return ends if ends > now else now

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        cleared = len(self.windows)
        self.windows.clear()
        return cleared

    async def clear(self, key: str) -> None:
        self.windows.pop(key, None)

    def _sweep(self, now: float) -> None:
        self.windows = {key: window for key, window in self.windows.items() if window[1] > now}
        self.next_sweep = now + self.sweep_seconds
