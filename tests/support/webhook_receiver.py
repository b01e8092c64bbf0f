"""A real webhook receiver for tests: an HTTP server in a thread that verifies every
signature with the `standardwebhooks` library and records what arrived."""

import base64
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

WAIT_SECONDS = 30


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Arrival:
    """One request the receiver got, and whether its signature checked out."""

    seq: int
    message_id: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """Answers 200, or what `answer(arrival_number)` says; can hold the answer to one seq."""

    def __init__(self, secret: str, answer: Callable[[int], int] = lambda _n: 200) -> None:
        self.verifier = StandardWebhook(secret)
        self.answer = answer
        self.arrivals: list[Arrival] = []
        self.hold_seq: int | None = None
        self.holding = threading.Event()
        self.released = threading.Event()
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/bulletin"

    def start(self) -> "Receiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def accepted(self) -> list[Arrival]:
        with self._changed:
            return [arrival for arrival in self.arrivals if 200 <= arrival.status < 300]

    def wait_for(self, condition: Callable[["Receiver"], bool], timeout: float = WAIT_SECONDS):
        """Block until `condition(self)` holds after some arrival; AssertionError on timeout."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), timeout=timeout):
                seqs = [(a.seq, a.status) for a in self.arrivals]
                raise AssertionError(f"the receiver did not get what was expected; got {seqs}")

    def wait_for_accepted(self, count: int, timeout: float = WAIT_SECONDS) -> list[Arrival]:
        self.wait_for(lambda receiver: len(receiver.accepted()) >= count, timeout)
        return self.accepted()

    def _take(self, headers: dict[str, str], body: bytes) -> int:
        try:
            self.verifier.verify(body, headers)
            valid = True
        except WebhookVerificationError:
            valid = False
        seq = int(headers.get("bulletin-seq", "0"))
        with self._changed:
            status = self.answer(len(self.arrivals) + 1)
            self.arrivals.append(
                Arrival(
                    seq=seq,
                    message_id=headers.get("webhook-id", ""),
                    headers=headers,
                    body=body,
                    signature_valid=valid,
                    status=status,
                )
            )
            self._changed.notify_all()
        if seq == self.hold_seq:
            self.holding.set()
            self.released.wait(timeout=WAIT_SECONDS)
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go in separate writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every answer.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                status = receiver._take(headers, body)
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: object) -> None:
                return None

        return Handler
