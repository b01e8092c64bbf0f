"""`create_app(settings)`: builds the application and owns its resources through the lifespan."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__
from app.api import health
from app.config import Settings
from app.db import Database
from app.errors import install_error_handlers

logger = logging.getLogger("bulletin")


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database_url)
        app.state.database = database
        try:
            yield
        finally:
            await database.dispose()

    app = FastAPI(
        title="Bulletin",
        version=__version__,
        summary="Live blogs for newsrooms: entries, a numbered change log, live streams.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    return app


def app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory`: settings come from `BULLETIN_*` variables."""
    return create_app(Settings())
