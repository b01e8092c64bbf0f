"""What the stream edge takes from uvicorn and websockets, named, and checked against them.

app/realtime/uvicorn_edge.py subclasses uvicorn's sans-I/O WebSocket protocol, which has
no public extension contract. These tests list every inherited name the edge uses and
fail, naming the file to re-audit, when an upgrade renames or drops one of them.
"""

import ast
import inspect
from pathlib import Path

import uvicorn
import websockets
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.server import ServerProtocol

from app.config import Settings
from app.limits.connections import GuardedHttpProtocol
from app.main import create_app
from app.realtime.uvicorn_edge import StreamProtocol
from app.serving import AUDITED, installed_versions, uvicorn_options

RE_AUDIT = (
    f"re-audit app/realtime/uvicorn_edge.py for uvicorn {uvicorn.__version__} / "
    f"websockets {websockets.__version__}"
)
RE_AUDIT_HTTP = f"re-audit app/limits/connections.py for uvicorn {uvicorn.__version__}"

# Every attribute and method of uvicorn's protocol that the edge reads, writes or calls.
INHERITED = {
    "app": "the loaded app, ProxyHeadersMiddleware outermost when proxy headers are on",
    "app_state": "the lifespan state, where the edge finds the services",
    "client": "the peer's address, before proxy headers",
    "close_sent": "set when a refused handshake closes the connection",
    "config": "ws_ping_interval, ws_ping_timeout and ws_max_size, for the sweep and the parser",
    "conn": "the websockets ServerProtocol, replaced to decline deflate",
    "connections": "the server's set of open connections: the stream takes this one's place",
    "disconnected": "whether the transport is gone",
    "handshake_complete": "set once the edge sent the handshake response",
    "handshake_initiated": "set once the edge takes the handshake over",
    "logger": "uvicorn's error logger, passed to the ServerProtocol",
    "loop": "the event loop for the edge's tasks and timers",
    "on_task_complete": "the callback that removes a finished task from `tasks`",
    "request": "the handshake request",
    "response": "the handshake response",
    "tasks": "the server's set of tasks, awaited at shutdown",
    "transport": "the asyncio transport the handshake is answered on, then handed over",
}
OVERRIDDEN = (
    "handle_connect",
    "data_received",
    "connection_lost",
    "pause_writing",
    "resume_writing",
)
# The ServerProtocol methods the edge calls to answer the handshake.
SERVER_PROTOCOL = ("accept", "reject", "send_response", "data_to_send")


def _names_taken_from_the_base(subclass: type) -> set[str]:
    """The `self.` names a subclass uses that neither it nor its own __init__ defines."""
    tree = ast.parse(Path(inspect.getfile(subclass)).read_text())
    edge = next(
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == subclass.__name__
    )
    used = {
        node.attr
        for node in ast.walk(edge)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }
    defined = {
        node.name for node in edge.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    defined |= {
        target.id
        for node in edge.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    init = next(
        (
            node
            for node in edge.body
            if isinstance(node, ast.FunctionDef) and node.name == "__init__"
        ),
        None,
    )
    if init is None:
        return used - defined
    # Attributes the edge's own __init__ creates (other than `conn`, which it replaces).
    created = {
        target.attr
        for node in ast.walk(init)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute) and target.attr != "conn"
    }
    return used - defined - created


def test_the_edge_uses_no_inherited_name_that_is_not_listed_here() -> None:
    taken = _names_taken_from_the_base(StreamProtocol)
    assert taken == set(INHERITED), f"{RE_AUDIT}: list the names it now takes ({sorted(taken)})"


def test_every_listed_name_is_still_defined_by_uvicorns_protocol() -> None:
    source = inspect.getsource(WebSocketsSansIOProtocol)
    missing = [
        name
        for name in INHERITED
        if not hasattr(WebSocketsSansIOProtocol, name) and f"self.{name} =" not in source
    ]
    assert not missing, f"{RE_AUDIT}: uvicorn no longer defines {missing}"


def test_the_overridden_methods_keep_their_signatures() -> None:
    for name in (*OVERRIDDEN, "__init__"):
        base = inspect.signature(getattr(WebSocketsSansIOProtocol, name))
        edge = inspect.signature(getattr(StreamProtocol, name))
        assert list(base.parameters) == list(edge.parameters), f"{RE_AUDIT}: {name}{base}"


async def test_a_protocol_built_with_the_served_options_has_every_listed_attribute() -> None:
    config = uvicorn.Config(create_app(Settings()), **uvicorn_options(Settings()))
    config.load()
    protocol = StreamProtocol(config, ServerState(), app_state={})
    set_later = {"client", "request", "response", "transport"}
    missing = [name for name in set(INHERITED) - set_later if not hasattr(protocol, name)]
    assert not missing, f"{RE_AUDIT}: a new protocol lacks {missing}"
    assert isinstance(protocol.conn, ServerProtocol)
    for name in SERVER_PROTOCOL:
        assert callable(getattr(protocol.conn, name, None)), f"{RE_AUDIT}: ServerProtocol.{name}"


def test_proxy_headers_wrap_the_app_outermost_with_the_trusted_hosts_the_edge_asks() -> None:
    settings = Settings(forwarded_allow_ips="10.0.0.1")
    config = uvicorn.Config(create_app(settings), **uvicorn_options(settings))
    config.load()
    proxy = config.loaded_app
    assert isinstance(proxy, ProxyHeadersMiddleware), f"{RE_AUDIT}: proxy middleware moved"
    assert "10.0.0.1" in proxy.trusted_hosts
    assert "10.0.0.2" not in proxy.trusted_hosts
    host, _port = proxy.trusted_hosts.get_trusted_client_address("203.0.113.9, 10.0.0.1")
    assert host == "203.0.113.9"


def test_the_installed_versions_are_the_audited_ones() -> None:
    assert installed_versions() == AUDITED, RE_AUDIT


# What the guarded HTTP protocol takes from uvicorn's httptools protocol.
HTTP_INHERITED = {
    "app_state": "the lifespan state, where it finds the hub to end streams at shutdown",
    "connections": "the server's set of open connections, for the connection cap",
    "cycle": "the request in progress: whether its answer has started",
    "loop": "the event loop for the deadlines",
    "transport": "the asyncio transport refusals are written to",
}
HTTP_OVERRIDDEN = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_header",
    "on_headers_complete",
    "on_message_complete",
    "on_response_complete",
    "handle_websocket_upgrade",
    "shutdown",
)
# What the refusal reads and sets on the request in progress.
CYCLE_ATTRIBUTES = ("response_started", "disconnected", "message_event")


def test_the_guarded_http_protocol_uses_no_inherited_name_that_is_not_listed_here() -> None:
    taken = _names_taken_from_the_base(GuardedHttpProtocol)
    assert taken == set(HTTP_INHERITED), f"{RE_AUDIT_HTTP}: it now takes {sorted(taken)}"


def test_the_guarded_http_protocol_overrides_methods_uvicorn_still_calls() -> None:
    source = inspect.getsource(HttpToolsProtocol)
    for name in HTTP_OVERRIDDEN:
        base = inspect.signature(getattr(HttpToolsProtocol, name))
        guarded = inspect.signature(getattr(GuardedHttpProtocol, name))
        assert list(base.parameters) == list(guarded.parameters), f"{RE_AUDIT_HTTP}: {name}"
    missing = [name for name in HTTP_INHERITED if f"self.{name}" not in source]
    assert not missing, f"{RE_AUDIT_HTTP}: uvicorn no longer defines {missing}"
    cycle = inspect.getsource(RequestResponseCycle)
    missing = [name for name in CYCLE_ATTRIBUTES if f"self.{name} =" not in cycle]
    assert not missing, f"{RE_AUDIT_HTTP}: the request cycle no longer has {missing}"


async def test_a_protocol_declines_per_connection_deflate_even_when_uvicorn_would_offer_it() -> (
    None
):
    options = uvicorn_options(Settings()) | {"ws_per_message_deflate": True}
    config = uvicorn.Config(create_app(Settings()), **options)
    config.load()
    protocol = StreamProtocol(config, ServerState(), app_state={})
    assert protocol.conn.available_extensions == []
    served = uvicorn.Config(create_app(Settings()), **uvicorn_options(Settings()))
    served.load()
    assert StreamProtocol(served, ServerState(), app_state={}).conn.available_extensions == []
