"""The reference for the publish benchmark: a bare FastAPI endpoint inserting one row.

`POST /blogs/{slug}/entries` with a JSON body inserts one SQLAlchemy row and answers it,
nothing else: no token, no sanitising, no rendering, no change log. It runs on the same
database as Bulletin in the same run (SQLite with Bulletin's pragmas, or PostgreSQL through
asyncpg) and is served by uvicorn with the options `bulletin serve` uses (app/serving.py),
so a ratio to it measures what Bulletin's publish path adds to one insert and one commit.
On SQLite its concurrent writers meet as any plain SQLAlchemy app's do: on SQLite's busy
handler.

    BENCH_DATABASE_URL=sqlite+aiosqlite:///bare.db .venv/bin/python bench/peers/bare_insert.py
"""

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import DateTime, String, Text, event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.config import Settings
from app.db import SQLITE_BUSY_TIMEOUT_MS
from app.serving import uvicorn_options


class Base(DeclarativeBase):
    pass


class Post(Base):
    __tablename__ = "bare_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    blog: Mapped[str] = mapped_column(String(64), index=True)
    headline: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PostIn(BaseModel):
    headline: str | None = None
    body: str


class PostOut(BaseModel):
    id: int
    blog: str
    headline: str | None
    body: str
    created_at: datetime


def create_engine(url: str) -> AsyncEngine:
    """SQLAlchemy's defaults; on SQLite the journal and sync settings Bulletin uses."""
    engine = create_async_engine(url)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: object) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

    return engine


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_engine(os.environ["BENCH_DATABASE_URL"])
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.post("/blogs/{slug}/entries", status_code=201)
async def create_post(slug: str, data: PostIn, request: Request) -> PostOut:
    post = Post(blog=slug, headline=data.headline, body=data.body, created_at=datetime.now(UTC))
    async with request.app.state.sessions.begin() as session:
        session.add(post)
    return PostOut.model_validate(post, from_attributes=True)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def create_table(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info", help="as BULLETIN_LOG_LEVEL")
    args = parser.parse_args()
    # Once, before any worker starts, as `bulletin serve` migrates.
    asyncio.run(create_table(os.environ["BENCH_DATABASE_URL"]))
    options = uvicorn_options(Settings(log_level=args.log_level))
    uvicorn.run("bare_insert:app", host=args.host, port=args.port, workers=args.workers, **options)


if __name__ == "__main__":
    main()
