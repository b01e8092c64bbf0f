"""A real Prometheus server (Debian's `prometheus` package, installed with promtool by
.ci/promtool) scraping test servers every second, with its own storage in the test's
directory, on a free port of 127.0.0.1."""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.daemons import Daemon
from tests.support.servers import free_port, log_tail
from tests.support.waiting import eventually_blocking

START_SECONDS = 30


def prometheus_executable() -> str:
    """The prometheus executable; the test fails without it where services are required."""
    found = shutil.which("prometheus")
    if found is None:
        if os.environ.get("BULLETIN_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(
                "prometheus is required (BULLETIN_TEST_REQUIRE_SERVICES=1) but not installed: "
                "run `bash .ci/promtool` (`make services` does)"
            )
        pytest.skip("prometheus is not installed (bash .ci/promtool installs it)")
    return found


class PrometheusProcess(Daemon):
    """Prometheus scraping `targets` (host:port) every second, until stopped."""

    def __init__(self, directory: Path, targets: list[str], token: str | None = None) -> None:
        self.directory = directory
        self.targets = targets
        # Sent as `Authorization: Bearer` with every scrape, as an operator configures it.
        self.token = token
        self.port = free_port()
        self.log = directory / "prometheus.log"
        self.process: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        executable = prometheus_executable()
        self.directory.mkdir(parents=True, exist_ok=True)
        job: dict[str, Any] = {
            "job_name": "bulletin",
            "static_configs": [{"targets": self.targets}],
        }
        if self.token is not None:
            job["authorization"] = {"type": "Bearer", "credentials": self.token}
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [job],
        }
        (self.directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    executable,
                    f"--config.file={self.directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{log_tail(self.log)}")
            try:
                return httpx.get(f"{self.http}/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        eventually_blocking(ready, START_SECONDS, "prometheus to be ready", interval=0.1)

    async def query(self, client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
        """The instant query's series (an error from Prometheus fails the test)."""
        answer = await client.get(f"{self.http}/api/v1/query", params={"query": expr})
        body = answer.json()
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result
