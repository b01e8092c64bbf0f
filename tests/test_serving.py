"""How `bulletin serve` listens: the accept queue a reconnect storm waits in."""

import gc
import subprocess
import weakref
from pathlib import Path

import httpx
import pytest

from app import main
from app.config import Settings
from app.main import create_app
from tests.support.databases import fresh_database
from tests.support.servers import ServerProcess, live_server, serve_environment, served_settings


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


@pytest.mark.parametrize("serving", [True, False])
async def test_a_serving_process_leaves_its_start_up_heap_out_of_collections(
    database_url: str, serving: bool
) -> None:
    # A full collection of a serving process walks everything the imports built (about
    # 70 ms) and stalls every request and delivery: `bulletin serve` freezes it once started.
    # A test's app does not: the test process would keep every earlier test's app forever.
    gc.unfreeze()
    app = create_app(served_settings(database_url), serving=serving)
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
            assert (frozen > 10_000) is serving
            # What is made after start-up is still collected, cycles too.
            probe = weakref.ref(SelfReferring())
            gc.collect()
            assert probe() is None
    finally:
        gc.unfreeze()


class SelfReferring:
    def __init__(self) -> None:
        self.me = self


def test_bulletin_serve_builds_a_serving_app(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[bool] = []
    monkeypatch.setattr(main, "create_app", lambda settings, serving=False: built.append(serving))
    main.app_from_environment()
    assert built == [True]


def test_serve_with_the_removed_edge_setting_serves_and_says_it_is_no_longer_read(
    database_url: str, tmp_path: Path
) -> None:
    environment = serve_environment(database_url, migrate_on_start="true")
    log = tmp_path / "serve.log"
    with ServerProcess(environment | {"BULLETIN_STREAM_EDGE": "websockets"}, log) as server:
        assert httpx.get(f"{server.http}/readyz", timeout=10).status_code == 200
    assert (
        "bulletin: BULLETIN_STREAM_EDGE is no longer read: every stream now runs on the lean "
        "edge; unset it"
    ) in log.read_text()
