"""Migration 0006 (people, roles, audit) on a database that holds a blog, its entries and its
change log: up and back down without a row lost or a reference cleared, on SQLite (where
rebuilding a table would run the ON DELETE actions of the tables that refer to it) and on
PostgreSQL."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrating
from tests.support.databases import database_on_same_server, execute, postgres_admin_url

ROWS = [
    "INSERT INTO blogs (id, slug, title, summary_html, status, timezone, coverage_start, topics,"
    " head_seq, created_at, updated_at) VALUES (1, 'vote-night', 'Vote night', '', 'live',"
    " 'UTC', '2026-11-03 18:00:00', '[]', 1, '2026-11-03 18:00:00', '2026-11-03 18:00:00')",
    "INSERT INTO entries (id, blog_id, body_html, authors, media, key_event, pinned, status,"
    " published_at, created_at, updated_at, version) VALUES (1, 1, '<p>Polls close</p>', '[]',"
    " '[]', false, false, 'published', '2026-11-03 19:00:00', '2026-11-03 19:00:00',"
    " '2026-11-03 19:00:00', 1)",
    "INSERT INTO events (id, blog_id, seq, type, entry_id, payload, created_at) VALUES"
    " (1, 1, 1, 'entry.created', 1, 'x', '2026-11-03 19:00:00')",
    "INSERT INTO webhooks (id, blog_id, url, description, secret_ciphertext, active,"
    " delivered_seq, consecutive_failures, next_attempt_at, created_at, updated_at) VALUES"
    " (1, 1, 'https://partner.example/in', '', 'x', true, 1, 0, '2026-11-03 19:00:00',"
    " '2026-11-03 19:00:00', '2026-11-03 19:00:00')",
]
CHECKS = {
    "blogs": "SELECT count(*) FROM blogs",
    "entries": "SELECT count(*) FROM entries",
    "event entry ids": "SELECT entry_id FROM events",
    "webhooks": "SELECT count(*) FROM webhooks",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bulletin.db'}"
        return
    admin_url = postgres_admin_url()
    name = f"bulletin_people_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield database_on_same_server(admin_url, name)
    finally:
        asyncio.run(execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_sql(url: str, statements: list[str]) -> list[list[tuple]]:
    async def run() -> list[list[tuple]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                if url.startswith("sqlite"):
                    await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                results = []
                for statement in statements:
                    result = await connection.execute(text(statement))
                    results.append([tuple(row) for row in result] if result.returns_rows else [])
                return results
        finally:
            await engine.dispose()

    return asyncio.run(run())


def counts(url: str) -> dict[str, list[tuple]]:
    return dict(zip(CHECKS, run_sql(url, list(CHECKS.values())), strict=True))


def test_people_arrive_and_leave_without_touching_blogs_entries_or_the_log(
    database_url: str,
) -> None:
    migrating.upgrade(database_url, "0005")
    run_sql(database_url, ROWS)
    before = counts(database_url)
    assert before["event entry ids"] == [(1,)]

    migrating.upgrade(database_url, "0006")
    assert counts(database_url) == before
    [(setting,)] = run_sql(database_url, ["SELECT contributors_may_publish FROM blogs"])[0]
    assert not setting  # existing blogs keep review on

    migrating.downgrade(database_url, "0005")
    assert counts(database_url) == before
    migrating.downgrade(database_url, "0004")  # 0005's column goes as quietly
    assert counts(database_url) == before
    migrating.upgrade(database_url)
    assert counts(database_url) == before
    # And every later migration, down and up again, on the same rows.
    migrating.downgrade(database_url, "0005")
    assert counts(database_url) == before
    migrating.upgrade(database_url)
    assert counts(database_url) == before
