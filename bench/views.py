"""Reader page views benchmark: building a page of one tag, and oldest first, against the
default page (newest first, every entry), in one run on the same database.

A blog of ENTRIES entries written through the publisher (one in TAGGED_EVERY carries the
tag measured, every one some other tag) is read by `load_page` (what a 200 of the reader
page costs before rendering) for each view in turn, ROUNDS times; the median of each is
printed as a ratio to the default page's. A tag filter is an indexed query (entry_tags),
so its page should cost about what the default page does, however rare the tag. The
database is analysed after the writes, as autovacuum does in production.

    .venv/bin/python bench/views.py                                   # SQLite
    .venv/bin/python bench/views.py --postgres postgresql+asyncpg://postgres@127.0.0.1/postgres
"""

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import text

from app import migrating
from app.config import Settings
from app.pages import PageView, load_page
from app.queries import find_blog
from app.schemas import BlogCreate, EntryCreate
from app.services import open_services

ENTRIES = 3000
TAGGED_EVERY = 50
ROUNDS = 30
SLUG = "harbour-storm"
VIEWS = [
    ("newest first, every entry (the default page)", PageView()),
    (f"one tag on 1 in {TAGGED_EVERY} entries", PageView(tag="rare")),
    ("one tag on every other entry", PageView(tag="common")),
    ("oldest first, every entry", PageView(oldest_first=True)),
    ("oldest first, one rare tag", PageView(oldest_first=True, tag="rare")),
]


@asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A new PostgreSQL database for this run, dropped afterwards."""
    name = f"bulletin_bench_{uuid.uuid4().hex[:12]}"
    plain = admin_url.replace("+asyncpg", "")
    connection = await asyncpg.connect(plain)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        connection = await asyncpg.connect(plain)
        await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await connection.close()


async def measure(database_url: str) -> list[tuple[str, float]]:
    """Median seconds of load_page per view."""
    await asyncio.to_thread(migrating.upgrade, database_url)
    settings = Settings(database_url=database_url, rate_limit_enabled=False)
    async with open_services(settings) as services:
        await services.publisher.create_blog(BlogCreate(slug=SLUG, title="Harbour storm"))
        start = datetime.now(UTC) - timedelta(days=2)
        for n in range(ENTRIES):
            tags = ["common" if n % 2 else "other"] + (["rare"] if n % TAGGED_EVERY == 0 else [])
            entry = EntryCreate(
                headline=f"Update {n}",
                body=f"<p>The harbour wall, hour {n}.</p>",
                tags=tags,
                published_at=start + timedelta(seconds=30 * n),
            )
            await services.publisher.create_entry(SLUG, entry)
        # As autovacuum would have by now: without statistics of the new rows PostgreSQL
        # joins entry_tags to entries by a nested loop (300 ms for 3,000 entries; 1.4 ms
        # after ANALYZE, EXPLAIN ANALYZE of the tag counts).
        async with services.database.write_session() as session:
            await session.execute(text("ANALYZE"))
        medians = []
        for label, view in VIEWS:
            times = []
            for _ in range(ROUNDS):
                async with services.database.read_session() as session:
                    blog = await find_blog(session, SLUG)
                    began = time.perf_counter()
                    await load_page(session, blog, None, services.renderer, view)
                    times.append(time.perf_counter() - began)
            medians.append((label, statistics.median(times)))
        return medians


def report(database: str, medians: list[tuple[str, float]]) -> str:
    base = medians[0][1]
    lines = [
        f"### {database}: {ENTRIES} entries, median of {ROUNDS} reads",
        "",
        "| view | ms | ratio to the default page |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {label} | {s * 1000:.2f} | {s / base:.2f}x |" for label, s in medians]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="an admin URL; a new database is made for the run")
    args = parser.parse_args()
    if args.postgres:
        async with postgres_database(args.postgres) as url:
            print(report("PostgreSQL", await measure(url)))
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        print(report("SQLite", await measure(url)))


if __name__ == "__main__":
    asyncio.run(main())
