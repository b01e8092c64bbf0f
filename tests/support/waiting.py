"""Bounded waits for something a test can observe.

A condition is read again every `interval` seconds until it holds; the wait fails after
`timeout` seconds with a message naming `what` it waited for and the last value it read.
Use these where no event says the change happened (a counter, a row, a metric); where
one does (a message, a socket closing), wait on that instead.
"""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


def _timed_out(what: str, timeout: float, last: object) -> None:
    seen = "" if isinstance(last, bool) else f"; last read: {last!r}"
    pytest.fail(f"timed out after {timeout}s waiting for {what}{seen}")


async def eventually(
    condition: Callable[[], Any | Awaitable[Any]],
    timeout: float,
    what: str,
    *,
    holds: Callable[[Any], bool] = bool,
    interval: float = 0.02,
) -> Any:
    """Read `condition()` (awaited if it returns an awaitable) until `holds` is true of it;
    return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if holds(value):
            return value
        if time.monotonic() > deadline:
            _timed_out(what, timeout, value)
        await asyncio.sleep(interval)  # between reads only


def eventually_blocking(
    condition: Callable[[], Any], timeout: float, what: str, *, interval: float = 0.05
) -> Any:
    """`eventually` for plain functions and threads: blocks between reads."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            _timed_out(what, timeout, value)
        time.sleep(interval)  # between reads only
