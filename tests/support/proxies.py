"""nginx and Varnish in front of `bulletin serve`, as production runs them, for tests.

Each runs in the foreground with its own configuration, prefix and logs in a directory
of the test's, on a free port of 127.0.0.1; no system service is started or touched.
`.ci/proxies` installs Debian's packages when they are missing.
"""

import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.daemons import Daemon
from tests.support.servers import free_port, log_tail
from tests.support.waiting import eventually_blocking

README = Path(__file__).resolve().parents[2] / "README.md"
START_SECONDS = 20
# Room for thousands of proxied streams: each one holds two connections in nginx.
NGINX_CONNECTIONS = 8192


def find_tool(name: str) -> str:
    """The path of a Debian-packaged tool (in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(f"{name} is not installed: `make proxies` installs it")
    return found


def readme_block(heading: str, language: str) -> str:
    """The first ```language block under the README heading `heading`, as written there."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    if match is None:
        raise ValueError(f"no {language} block under {heading!r} in README.md")
    return match.group(1)


def with_upstreams(snippet: str, upstreams: list[str], listen: str) -> str:
    """The nginx snippet with its upstream servers and its listen address replaced, and
    nothing else changed."""
    block = re.compile(r"(upstream bulletin \{\n)(.*?)(\n\})", re.S)
    if not block.search(snippet):
        raise ValueError("the snippet has no `upstream bulletin { ... }` block")

    def servers(match: re.Match[str]) -> str:
        listed = match.group(2).splitlines()
        kept = [line for line in listed if not line.strip().startswith("server ")]
        # The snippet's server parameters (max_fails=0) are kept: only the addresses change.
        first = next(line for line in listed if line.strip().startswith("server "))
        parameters = "".join(f" {word}" for word in first.strip().rstrip(";").split()[2:])
        lines = [f"    server {address}{parameters};" for address in upstreams]
        return match.group(1) + "\n".join(lines + kept) + match.group(3)

    snippet = block.sub(servers, snippet, count=1)
    replaced, count = re.subn(r"^(\s*)listen [^;]+;", rf"\1listen {listen};", snippet, flags=re.M)
    if count != 1:
        raise ValueError("the snippet must have exactly one listen line")
    return replaced


def wait_listening(port: int, process: subprocess.Popen, log: Path, what: str) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log_tail(log)}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    eventually_blocking(listening, START_SECONDS, f"{what} to listen on {port}", interval=0.02)


class Nginx(Daemon):
    """nginx serving `site` (an http-context snippet) in a main configuration of its own."""

    def __init__(self, directory: Path, site: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.site = site
        self.process: subprocess.Popen | None = None
        self.log = directory / "error.log"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def configuration(self) -> str:
        root = self.directory
        # As root, nginx's workers would otherwise switch to `nobody`, who cannot use the
        # test's directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = "\n".join(
            f"    {kind}_temp_path {root / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            f"{user}daemon off;\nworker_processes 1;\npid {root / 'nginx.pid'};\n"
            f"error_log {self.log} warn;\nworker_rlimit_nofile {NGINX_CONNECTIONS * 2};\n"
            f"events {{ worker_connections {NGINX_CONNECTIONS}; }}\n"
            f"http {{\n    access_log {root / 'access.log'};\n{temp}\n"
            f"    include {root / 'bulletin.conf'};\n}}\n"
        )

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "bulletin.conf").write_text(self.site)
        (self.directory / "nginx.conf").write_text(self.configuration())
        command = [find_tool("nginx"), "-p", str(self.directory), "-c", "nginx.conf"]
        # -e: the error log before the configuration is read, instead of /var/log/nginx.
        self.process = subprocess.Popen(
            [*command, "-e", str(self.log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_listening(self.port, self.process, self.log, "nginx")


def nginx_in_front(directory: Path, snippet: str, upstreams: list[str]) -> Nginx:
    """nginx running `snippet` with only its upstreams and listen address replaced."""
    nginx = Nginx(directory, "")
    nginx.site = with_upstreams(snippet, upstreams, f"127.0.0.1:{nginx.port}")
    return nginx


class Varnish(Daemon):
    """varnishd with Varnish's built-in VCL and one backend (`-b`): nothing else configured."""

    def __init__(self, directory: Path, backend: str, storage: str = "malloc,64m") -> None:
        self.directory = directory
        self.port = free_port()
        self.backend = backend
        self.storage = storage
        self.process: subprocess.Popen | None = None
        self.log = directory / "varnishd.log"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    find_tool("varnishd"),
                    "-F",  # foreground, a child of the test
                    "-n",
                    str(self.directory / "work"),
                    "-a",
                    f"127.0.0.1:{self.port}",
                    "-b",
                    self.backend,
                    "-s",
                    self.storage,
                    # No jail: the test's directory belongs to whoever runs the test.
                    "-j",
                    "none",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_listening(self.port, self.process, self.log, "varnishd")

    def counters(self) -> dict[str, int]:
        """varnishstat's counters (MAIN.backend_req, MAIN.cache_hit, ...)."""
        output = subprocess.run(
            [find_tool("varnishstat"), "-n", str(self.directory / "work"), "-1", "-j"],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        found = json.loads(output)
        found = found.get("counters", found)
        return {
            name: int(value["value"])
            for name, value in found.items()
            if isinstance(value, dict) and "value" in value
        }
