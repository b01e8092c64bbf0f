"""Real `bulletin serve` processes, started per test and stopped after it."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import ServerProcess, log_tail


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start a `bulletin serve` process: `serve(env, name="server", workers=1)`.

    Each is stopped at the end of the test, and the tail of its log printed then: pytest
    shows it only when the test failed.
    """
    started: list[ServerProcess] = []

    def start(env: dict[str, str], name: str = "server", **options: Any) -> ServerProcess:
        process = ServerProcess(env, tmp_path / f"{name}.log", **options)
        started.append(process)
        process.start()
        return process

    yield start
    for process in reversed(started):
        process.stop()
        if tail := log_tail(process.log_path):
            print(f"--- {process.log_path.name} (tail) ---\n{tail}")
