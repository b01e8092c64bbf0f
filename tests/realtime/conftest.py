"""A real uvicorn server on a free port, for tests that need sockets: WebSocket and SSE."""

from collections.abc import AsyncIterator

import pytest

from app.config import Settings
from tests.support.servers import EDGES, LiveServer, live_server


@pytest.fixture(params=list(EDGES))
async def server(
    stack_settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[LiveServer]:
    """The app served on the stack, by each edge in turn."""
    async with live_server(stack_settings, EDGES[request.param]) as running:
        yield running
