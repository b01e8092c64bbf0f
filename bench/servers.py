"""Start, warm up, publish to and stop each server under test.

Every server runs in its own process group (killed whole in `stop`), on 127.0.0.1, with
its files in a temporary directory. `pids()` names the processes whose CPU and memory
count: the serve process, uvicorn's worker processes, or nginx's worker.
"""

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path

import procstat
from payload import entry_body, peer_message
from websockets.sync.client import connect

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
NGINX = Path("/usr/sbin/nginx")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class Server(ABC):
    """One server under test, started fresh for every phase."""

    name: str
    ws_path: str

    def __init__(self, workdir: Path, message_bytes: int) -> None:
        self.workdir = workdir
        self.message_bytes = message_bytes
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"

    # --- lifecycle -------------------------------------------------------------

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )

    def _wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            with socket.socket() as probe:
                if probe.connect_ex((HOST, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not listen within {timeout:.0f}s")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @abstractmethod
    def start(self) -> None: ...

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
        except ProcessLookupError:
            pass
        # Workers outlive a leader that died first: finish the group either way.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self.process = None

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid]

    def describe_pids(self) -> str:
        return ""

    # --- traffic ---------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}{self.ws_path}"

    @abstractmethod
    def publish(self, index: int, sent_ns: int) -> None:
        """Publish message `index`, stamped with `sent_ns`; raises if the server refused."""

    @abstractmethod
    def warm_up(self) -> None:
        """One reader and one message before anything is measured (first-use costs)."""


class Bulletin(Server):
    ws_path = ""  # set once the blog exists

    def __init__(
        self,
        workdir: Path,
        message_bytes: int,
        workers: int = 1,
        broker_url: str | None = None,
    ) -> None:
        super().__init__(workdir, message_bytes)
        self.workers = workers
        self.broker_url = broker_url
        self.name = "Bulletin" if workers == 1 else f"Bulletin, {workers} workers on Redis"
        self.token = secrets.token_urlsafe(30)[:40]
        # Unique per phase: Redis pub/sub channels are shared by every database number.
        self.slug = f"bench-{secrets.token_hex(4)}"
        self.pad = 0
        self.worker_pids: list[int] = []

    def start(self) -> None:
        self.launch(free_port())
        self.create_blog()

    def launch(self, port: int) -> None:
        """Start `bulletin serve` on `port` (its database and blog, if any, are kept)."""
        self.port = port
        env = {
            **os.environ,
            "BULLETIN_DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'bench.db'}",
            "BULLETIN_MIGRATE_ON_START": "1",
            "BULLETIN_ADMIN_TOKEN": self.token,
            # A heartbeat round is one extra write per reader; keep it out of a short window.
            "BULLETIN_HEARTBEAT_SECONDS": "600",
            "BULLETIN_RATE_LIMIT_ENABLED": "false",  # 10,000 readers from one address
        }
        if self.broker_url:
            env["BULLETIN_BROKER_URL"] = self.broker_url
        argv = [str(VENV_BIN / "bulletin"), "serve", "--host", HOST, "--port", str(self.port)]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        self._spawn(argv, env)
        self._wait_listening(60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(self.port, "/healthz") == 200 and self._workers_up():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not healthy:\n{self.log_tail()}")
            time.sleep(0.1)

    def create_blog(self) -> None:
        status, body = post(
            self.port,
            "/api/v1/blogs",
            json.dumps({"slug": self.slug, "title": "Fan-out benchmark"}).encode(),
            self._headers(),
        )
        if status != 201:
            raise RuntimeError(f"creating the blog: {status} {body[:200]!r}")
        self.ws_path = f"/api/v1/blogs/{self.slug}/ws"

    def _workers_up(self) -> bool:
        if self.workers == 1:
            return True
        assert self.process is not None
        self.worker_pids = [
            pid
            for pid in procstat.children(self.process.pid)
            if "spawn_main" in procstat.cmdline(pid)
        ]
        return len(self.worker_pids) == self.workers

    def pids(self) -> list[int]:
        return self.worker_pids if self.workers > 1 else super().pids()

    def describe_pids(self) -> str:
        if self.workers == 1:
            return ""
        # Sockets per worker: how the kernel spread the readers over the processes.
        return "sockets per worker: " + " / ".join(
            str(procstat.socket_count(pid)) for pid in self.worker_pids
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def _post_entry(self, body_html: str) -> None:
        status, body = post(
            self.port,
            f"/api/v1/blogs/{self.slug}/entries",
            json.dumps({"body": body_html}).encode(),
            self._headers(),
        )
        if status != 201:
            raise RuntimeError(f"publishing: {status} {body[:200]!r}")

    def warm_up(self) -> None:
        """Also calibrates: entry bodies are padded so each event is about message_bytes."""
        probe_pad = 400
        sizes = []
        with connect(self.ws_url, open_timeout=10) as reader:
            for pad in (0, probe_pad):
                # Index 9999 is never a measured message.
                self._post_entry(entry_body(9999, time.time_ns(), pad))
                while True:
                    message = reader.recv(timeout=10)
                    raw = message.encode() if isinstance(message, str) else message
                    if b'"entry.created"' in raw:
                        sizes.append(len(raw))
                        break
        per_char = (sizes[1] - sizes[0]) / probe_pad  # the body appears in `entry` and `html`
        self.pad = max(0, round((self.message_bytes - sizes[0]) / per_char))
        # Each publish is a new connection, which the kernel hands to any worker: a few more
        # make it likely every worker has published once (cold paths) before measuring.
        for _ in range(2 * self.workers if self.workers > 1 else 0):
            self._post_entry(entry_body(9999, time.time_ns(), self.pad))

    def publish(self, index: int, sent_ns: int) -> None:
        self._post_entry(entry_body(index, sent_ns, self.pad))


class FastApiTutorial(Server):
    name = "FastAPI tutorial"
    ws_path = "/ws"

    def start(self) -> None:
        self.port = free_port()
        self._spawn(
            [
                str(VENV_BIN / "uvicorn"),
                "fastapi_tutorial:app",
                "--app-dir",
                str(BENCH_DIR / "peers"),
                "--host",
                HOST,
                "--port",
                str(self.port),
            ]
        )
        self._wait_listening()

    def warm_up(self) -> None:
        with connect(self.ws_url, open_timeout=10) as reader:
            status, _ = post(self.port, "/publish", b"warm-up", {"Content-Type": "text/plain"})
            if status != 200:
                raise RuntimeError(f"warm-up publish: {status}")
            reader.recv(timeout=10)

    def publish(self, index: int, sent_ns: int) -> None:
        body = peer_message(index, sent_ns, self.message_bytes)
        status, reply = post(self.port, "/publish", body, {"Content-Type": "text/plain"})
        if status != 200:
            raise RuntimeError(f"publishing: {status} {reply[:200]!r}")


NCHAN_CONFIG = """\
load_module {module};
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 65536;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    nchan_shared_memory_size 256M;
    server {{
        listen {host}:{port} backlog=4096;
        location = /pub {{
            nchan_publisher http;
            nchan_channel_id bench;
            nchan_message_buffer_length 1000;
            nchan_message_timeout 1h;
            {deflate}
        }}
        location = /sub {{
            nchan_subscriber websocket;
            nchan_channel_id bench;
            nchan_subscriber_first_message newest;
        }}
    }}
}}
"""


def ensure_nginx() -> None:
    """Install nginx and nchan from Debian when missing (never touching the system's nginx)."""
    if NGINX.exists() and NCHAN_MODULE.exists():
        return
    if shutil.which("apt-get") is None:
        raise RuntimeError("nginx + nchan missing and apt-get not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "nginx", "libnginx-mod-nchan"]
    print("installing nginx and libnginx-mod-nchan with apt-get", flush=True)
    if subprocess.run(command, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(command, env=env, check=True)


class Nchan(Server):
    name = "nginx + nchan"
    ws_path = "/sub"

    def __init__(self, workdir: Path, message_bytes: int, *, deflate: bool = False) -> None:
        super().__init__(workdir, message_bytes)
        # nchan_deflate_message_for_websocket: each message is also compressed once, at
        # publish, for readers that agreed to permessage-deflate (as Bulletin does).
        self.deflate = deflate
        if deflate:
            self.name = "nginx + nchan, deflate"

    def start(self) -> None:
        self.port = free_port()
        # The worker runs as nobody: it must be able to reach its temp paths.
        self.workdir.chmod(0o755)
        config = self.workdir / "nginx.conf"
        config.write_text(
            NCHAN_CONFIG.format(
                module=NCHAN_MODULE,
                dir=self.workdir,
                host=HOST,
                port=self.port,
                deflate="nchan_deflate_message_for_websocket on;" if self.deflate else "",
            )
        )
        self._spawn(
            [
                str(NGINX),
                "-p",
                str(self.workdir),
                "-c",
                str(config),
                "-e",
                str(self.workdir / "error.log"),
                "-g",
                "daemon off;",
            ]
        )
        self._wait_listening()
        deadline = time.monotonic() + 10
        while not self.pids():
            if time.monotonic() > deadline:
                raise TimeoutError("no nginx worker process")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        """The worker only: the master does no fan-out."""
        assert self.process is not None
        return procstat.children(self.process.pid)

    def warm_up(self) -> None:
        with connect(self.ws_url, open_timeout=10) as reader:
            status, _ = post(self.port, "/pub", b"warm-up", {"Content-Type": "text/plain"})
            if status not in (201, 202):
                raise RuntimeError(f"warm-up publish: {status}")
            reader.recv(timeout=10)

    def publish(self, index: int, sent_ns: int) -> None:
        body = peer_message(index, sent_ns, self.message_bytes)
        status, reply = post(self.port, "/pub", body, {"Content-Type": "application/json"})
        if status not in (201, 202):
            raise RuntimeError(f"publishing: {status} {reply[:200]!r}")


def redis_up(port: int = 6379) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as redis:
            redis.sendall(b"PING\r\n")
            return redis.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(workdir: Path, port: int = 6379) -> subprocess.Popen[bytes] | None:
    """Our own throwaway Redis when none answers and redis-server is installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    process = subprocess.Popen(
        [binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not redis_up(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            return None
        time.sleep(0.1)
    return process
