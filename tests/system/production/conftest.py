"""The production shape on one machine: `bulletin serve` processes behind Debian's nginx and
Varnish, on a PostgreSQL database and a Redis of the test module's own.

Every test here carries the `production` mark (`make test-production` runs them alone).
"""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import database_on_same_server, execute, postgres_admin_url
from tests.support.servers import RedisProcess

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.production)


@pytest.fixture(scope="module")
def empty_database() -> Iterator[str]:
    """A new, empty (not migrated) PostgreSQL database, dropped after the module."""
    admin_url = postgres_admin_url()
    name = f"bulletin_production_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(admin_url, f'CREATE DATABASE "{name}"'))
    yield database_on_same_server(admin_url, name)
    asyncio.run(execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A private redis-server: broker and rate-limit counts of this module's processes only."""
    process = RedisProcess(tmp_path_factory.mktemp("redis"))
    try:
        process.start()
        yield process
    finally:
        process.kill()
