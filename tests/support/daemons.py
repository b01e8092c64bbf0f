"""A program a test starts in its own process group (nginx, Varnish, Prometheus) and stops:
SIGTERM to the group, SIGKILL if it has not gone in ten seconds; usable with `with`."""

import os
import signal
import subprocess
from abc import ABC, abstractmethod
from typing import Self

STOP_SECONDS = 10


class Daemon(ABC):
    process: subprocess.Popen | None = None

    @abstractmethod
    def start(self) -> None:
        """Start the program, with `process` its group leader, and wait until it serves."""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_SECONDS)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()
