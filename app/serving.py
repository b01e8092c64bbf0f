"""How uvicorn serves Bulletin: one set of options for `bulletin serve`, every test server
and the benchmarks, so what is tested at the socket level is what production runs."""

from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

from app.config import Settings

# Stream connections are answered by Bulletin's own edge, without an ASGI task each; after
# the handshake a stream costs little more than its socket (app/realtime/lean_edge.py).
STREAM_EDGE = "app.realtime.uvicorn_edge:StreamProtocol"
# Read by releases before 2026-12-04, which could keep the edge the lean one replaced.
REMOVED_SETTINGS = {
    "BULLETIN_STREAM_EDGE": "every stream now runs on the lean edge; unset it",
}
GUARDED_HTTP = "app.limits.connections:GuardedHttpProtocol"
# Long-lived SSE responses would otherwise hold a shutdown open indefinitely.
GRACEFUL_SHUTDOWN_SECONDS = 5
# Readers never send: anything bigger than a small frame is junk.
WS_MAX_BYTES = 4096


# The versions the protocol subclasses (the stream edge, the guarded HTTP protocol) were
# audited against: see tests/realtime/test_uvicorn_edge_contract.py before changing them.
AUDITED = {"uvicorn": "0.54.0", "websockets": "17.4"}


def installed_versions() -> dict[str, str]:
    return {name: version(name) for name in AUDITED}


def require_audited_versions(module_file: str) -> None:
    """Refuse to import a module that reaches into uvicorn with versions not audited for it."""
    installed = installed_versions()
    if installed != AUDITED:
        raise ImportError(
            f"{module_file} was audited against {AUDITED}, but {installed} is installed: "
            "re-audit it (tests/realtime/test_uvicorn_edge_contract.py) and update AUDITED."
        )


def removed_setting_warnings(environment: Mapping[str, str]) -> list[str]:
    """What to tell an operator whose environment still sets what Bulletin no longer reads."""
    return [
        f"{name} is no longer read: {advice}"
        for name, advice in REMOVED_SETTINGS.items()
        if name in environment
    ]


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config`, less the app and the address."""
    return {
        "log_level": settings.log_level,
        # Bounded request heads, head and body deadlines, a connection cap (app/limits).
        "http": GUARDED_HTTP,
        "ws": STREAM_EDGE,
        # Broadcasts are written once to every reader: never compress per connection.
        "ws_per_message_deflate": False,
        "ws_max_size": WS_MAX_BYTES,
        # Pings find dead peers; well under the 60 s idle timeout of common proxies.
        "ws_ping_interval": settings.heartbeat_seconds,
        "ws_ping_timeout": settings.heartbeat_seconds,
        "proxy_headers": True,
        # X-Forwarded-For is believed only from these proxies (None: uvicorn's default).
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        # Readers reconnecting at once after a restart wait in this queue (BULLETIN_LISTEN_BACKLOG).
        "backlog": settings.listen_backlog,
    }
