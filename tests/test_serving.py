"""How `bulletin serve` listens: the accept queue a reconnect storm waits in."""

import subprocess
from pathlib import Path

import pytest

from app.config import Settings
from tests.support.databases import fresh_database
from tests.support.servers import live_server, served_settings


def listen_queue_size(port: int) -> int:
    """The backlog the kernel gave a listening socket: `ss`'s Send-Q for it."""
    listing = subprocess.run(
        ["ss", "-Hltn", "sport", "=", f":{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(listing[2])


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)


@pytest.mark.parametrize("backlog", [None, 1000])
async def test_the_server_listens_with_the_configured_backlog(
    database_url: str, backlog: int | None
) -> None:
    chosen = {} if backlog is None else {"listen_backlog": backlog}
    async with live_server(served_settings(database_url, **chosen)) as server:
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
        # The default, 4096, is twice uvicorn's: the kernel caps either at somaxconn.
        assert listen_queue_size(server.port) == min(backlog or 4096, somaxconn)


def test_a_backlog_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="listen_backlog"):
        Settings(listen_backlog=0)
