"""Bulletin served for tests, two ways: uvicorn in this process (`live_server`) and a real
`bulletin serve` process (`ServerProcess`), plus a private redis-server to take away.

`running_app` is the app with its lifespan and no socket, for `asgi_client`.
"""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.serving import STREAM_EDGE, uvicorn_options
from tests.support.factories import ADMIN_TOKEN
from tests.support.waiting import eventually_blocking

BULLETIN = Path(sys.executable).parent / "bulletin"
STARTUP_SECONDS = 30
# Bulletin's own edge (what `bulletin serve` runs) and uvicorn's stock ASGI WebSocket path
# (what other ASGI servers get: the plain FastAPI route).
EDGES = {
    "edge": STREAM_EDGE,
    "asgi": "websockets-sansio",
}


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """`create_app(settings)` with its lifespan running: what a server process would hold."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@dataclass
class LiveServer:
    http: str
    ws: str
    port: int
    app: FastAPI
    client: httpx.AsyncClient


def served_settings(database_url: str, **settings: object) -> Settings:
    """The settings of a test's in-process server: this database, the test admin token and
    no rate limits (a test makes many requests from one address), then `settings`."""
    defaults: dict[str, object] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "rate_limit_enabled": False,
    }
    return Settings(**(defaults | settings))


@asynccontextmanager
async def live_server(
    settings: Settings, ws: str = EDGES["edge"], ping_seconds: float | None = None
) -> AsyncIterator[LiveServer]:
    """Serve `create_app(settings)` with uvicorn on a free port, with the options of
    `bulletin serve` (app/serving.py) but for the WebSocket implementation, the log level
    and, where a test asks, the ping interval."""
    app = create_app(settings)
    # Every in-process test server's uvicorn options, here only.
    options = {**uvicorn_options(settings), "ws": ws, "log_level": "warning"}
    if ping_seconds is not None:
        options |= {"ws_ping_interval": ping_seconds, "ws_ping_timeout": ping_seconds}
    config = uvicorn.Config(app, host="127.0.0.1", port=0, **options)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=f"http://{base}") as client:
        try:
            yield LiveServer(
                http=f"http://{base}", ws=f"ws://{base}", port=port, app=app, client=client
            )
        finally:
            server.should_exit = True
            await task


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: Path, characters: int = 8000) -> str:
    return path.read_text(errors="replace")[-characters:] if path.exists() else ""


def wait_until_answering(
    url: str, process: subprocess.Popen, log_path: Path, timeout: float = STARTUP_SECONDS
) -> None:
    """Block until `url` answers 200; fail at once, with the log, if the process dies first."""

    def answering() -> bool:
        if process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before answering {url}:\n"
                + log_tail(log_path)
            )
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually_blocking(answering, timeout, f"{url} to answer 200")
    except pytest.fail.Exception as timed_out:
        pytest.fail(f"{timed_out}:\n{log_tail(log_path)}")


def closed(url: str) -> bool:
    """Whether nothing accepts connections at `url` any more."""
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return True
    return False


class ServerProcess:
    """`bulletin serve` on a fixed port, which can be killed and started again.

    As a context manager it is started on entry and stopped on exit.
    """

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        workers: int = 1,
        *,
        ready_path: str = "/readyz",
        cwd: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.workers = workers
        self.ready_path = ready_path
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        command = [str(BULLETIN), "serve", "--host", self.host, "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--workers", str(self.workers)],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_answering(f"{self.http}{self.ready_path}", self.process, self.log_path)

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


class RedisProcess:
    """A private, restartable redis-server, so a test can take Redis away from the app."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed")
        self.executable = executable

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.port)) == 0

        eventually_blocking(listening, 10, "redis-server to listen", interval=0.02)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def serve_environment(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a test's `bulletin serve`: this database, the test admin token and
    no rate limits (a test makes many requests from one address), then BULLETIN_<NAME>."""
    return {
        "BULLETIN_DATABASE_URL": database_url,
        "BULLETIN_ADMIN_TOKEN": ADMIN_TOKEN,
        "BULLETIN_RATE_LIMIT_ENABLED": "false",
        **{f"BULLETIN_{name.upper()}": value for name, value in settings.items()},
    }
