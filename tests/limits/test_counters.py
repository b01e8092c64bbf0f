"""The in-process window counters."""

import time

from app.limits.counters import MemoryWindowCounters


async def test_memory_counters_open_a_new_window_once_the_last_has_ended() -> None:
    counters = MemoryWindowCounters()
    assert await counters.incr("read/a", 60) == 1
    assert await counters.incr("read/a", 60) == 2
    assert await counters.get("read/a") == 2
    assert time.time() < await counters.get_expiry("read/a") <= time.time() + 60
    assert await counters.incr("read/b", 0) == 1  # a window that has already ended
    assert await counters.get("read/b") == 0
    assert await counters.incr("read/b", 60) == 1


async def test_memory_counters_forget_ended_windows_when_they_sweep() -> None:
    counters = MemoryWindowCounters(sweep_seconds=0)
    for number in range(100):
        await counters.incr(f"read/{number}", 0)
    await counters.incr("read/live", 60)
    assert set(counters.windows) <= {"read/99", "read/live"}
