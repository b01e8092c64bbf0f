"""Logs: text for people, or JSON lines for a log pipeline (BULLETIN_LOG_FORMAT=json).

Every request has an id: the caller's `X-Request-ID` when it is well formed (nginx's
`$request_id`, a tracing header), else one made here; it is echoed in the response's
`X-Request-ID`. The id is kept in a context variable, so every log line written while
the request is handled carries it, and the hub stamps it on the announcement of each
event the request committed: the broker carries it to the other processes, whose
delivery lines carry it too (app/realtime/broker/, app/realtime/hub.py).

Secrets never reach a line: fields named like a credential are replaced, and bearer
credentials, Bulletin's tokens, URL passwords and credentials in query strings are masked
in messages and tracebacks.
"""

import functools
import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings

REQUEST_ID_HEADER = "x-request-id"
# What is taken from a caller: a token of safe characters (UUIDs, nginx's 32 hex digits,
# trace ids), never anything that could break a log line or a header.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
REDACTED = "[redacted]"
# Fields whose values are credentials, whatever a caller passes in `extra`.
SECRET_FIELD_RE = re.compile(r"authorization|cookie|password|secret|token|api_?key", re.I)
# Bearer credentials, Bulletin's tokens (app/tokens.py) and the password of a URL (a
# database's, a broker's), wherever they appear in a message.
SECRET_TEXT_RE = re.compile(r"(?i:bearer)\s+\S+|bltn_[A-Za-z0-9_-]+|(?<=://)[^:/@\s]+:[^@\s]+(?=@)")
SECRET_QUERY_RE = re.compile(
    r"([?&;](?:access_token|token|api_?key|key|secret|password|signature)=)[^&;#\s]+", re.I
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

request_id: ContextVar[str] = ContextVar("bulletin_request_id", default="")


def current_request_id() -> str:
    """The id of the request being handled here, or "" outside one."""
    return request_id.get()


def accepted_request_id(offered: str | None) -> str:
    """The caller's id if it is well formed, else a new one (32 hex digits, like nginx's)."""
    if offered is not None and REQUEST_ID_RE.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


class RequestIds:
    """Gives every HTTP request and stream connection an id (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        offered = next(
            (v.decode("latin-1") for n, v in scope["headers"] if n == REQUEST_ID_HEADER.encode()),
            None,
        )
        rid = accepted_request_id(offered)
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = rid
            elif message["type"] == "websocket.accept":  # a stream's handshake answer
                answer = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), rid.encode())]
                message = {**message, "headers": answer}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


# What every record has: only the fields a caller added (`extra=`) can hold a credential.
RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@functools.lru_cache(maxsize=1024)
def _is_secret_field(name: str) -> bool:
    return SECRET_FIELD_RE.search(name) is not None


def mask_secrets(text: str) -> str:
    """`text` with bearer credentials, Bulletin tokens, URL passwords and credentials in
    query strings (Meta's oEmbed takes an `access_token=`) replaced."""
    return SECRET_QUERY_RE.sub(rf"\1{REDACTED}", SECRET_TEXT_RE.sub(REDACTED, text))


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (unless the caller named one in `extra`,
    as the hub does for deliveries of another process's publish), and masks secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = current_request_id()
        for name, value in vars(record).items():
            if name not in RECORD_ATTRIBUTES and _is_secret_field(name) and value is not None:
                setattr(record, name, REDACTED)
        # The arguments first, one by one: formatters that read them (uvicorn's access
        # lines) still find them where they expect; then whatever is left in the message.
        if isinstance(record.args, tuple):
            record.args = tuple(_masked_argument(argument) for argument in record.args)
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def _masked_argument(argument: object) -> object:
    if isinstance(argument, int | float) or argument is None:
        return argument
    text = str(argument)
    masked = mask_secrets(text)
    return argument if masked == text else masked


class JsonLines(JsonFormatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, then
    the record's own fields (`extra=`), and the traceback as `exception` if there is one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            timestamp="time",
            json_ensure_ascii=False,
            # uvicorn's copy of the message with terminal colours is for terminals only.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def formatException(self, ei: Any) -> str:
        text = super().formatException(ei)
        return mask_secrets(text if isinstance(text, str) else "\n".join(text))


def log_config(settings: Settings) -> dict[str, Any]:
    """The `logging.config.dictConfig` of a serving process (uvicorn applies it in each
    worker): Bulletin's and uvicorn's loggers on stderr, in the configured format."""
    level = settings.log_level.upper()
    json_lines = settings.log_format == "json"
    formatter = "json" if json_lines else "text"
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {"()": JsonLines},
            "text": {"format": TEXT_FORMAT},
            "uvicorn": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            },
        },
        "handlers": {
            name: {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": name if not json_lines else "json",
                "filters": ["request_id"],
            }
            for name in ("json", "text", "uvicorn", "access")
        },
        "loggers": {
            "bulletin": {"handlers": [formatter], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["uvicorn"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
        "root": {"handlers": [formatter], "level": "WARNING"},
    }
    return config
