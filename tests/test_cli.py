"""The `bulletin` console script, run as an operator runs it: a real process on a SQLite file."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.demo import DEMO_SLUG
from app.tokens import TOKEN_PREFIX, hash_secret
from tests.support.clients import asgi_client
from tests.support.servers import BULLETIN, running_app

Bulletin = Callable[..., str]


@pytest.fixture
def database_file(tmp_path: Path) -> Path:
    return tmp_path / "bulletin.db"


@pytest.fixture
def bulletin(database_file: Path) -> Bulletin:
    """Run `bulletin ARGS...` on the test's database file; returns its standard output."""

    def run(*args: str, command: tuple[str, ...] = (str(BULLETIN),)) -> str:
        environment = {**os.environ, "BULLETIN_DATABASE_URL": f"sqlite:///{database_file}"}
        result = subprocess.run(
            [*command, *args],
            env=environment,
            cwd=database_file.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run


def list_tokens(bulletin: Bulletin) -> dict[str, dict[str, str]]:
    """`bulletin token list` parsed into {name: {id, scope, prefix, state}}."""
    header, *rows = bulletin("token", "list").splitlines()
    assert header.split() == ["id", "scope", "prefix", "state", "name"]
    columns = ["id", "scope", "prefix", "state"]
    return {row.split()[-1]: dict(zip(columns, row.split(), strict=False)) for row in rows}


def create_token(bulletin: Bulletin) -> tuple[str, str]:
    """Create a publish token named 'desk' with the CLI; returns its id and its secret."""
    output = bulletin("token", "create", "--name", "desk", "--scope", "publish")
    secrets = [line for line in output.splitlines() if line.startswith(TOKEN_PREFIX)]
    assert len(secrets) == 1, output
    return list_tokens(bulletin)["desk"]["id"], secrets[0]


def test_migrate_reports_the_database_up_to_date(bulletin: Bulletin) -> None:
    assert "database is up to date" in bulletin("migrate")
    assert "database is up to date" in bulletin("migrate")


def test_python_dash_m_app_runs_the_same_cli(bulletin: Bulletin) -> None:
    assert "database is up to date" in bulletin("migrate", command=(sys.executable, "-m", "app"))
    assert list_tokens(bulletin) == {}


def test_token_list_shows_a_created_token_active_then_revoked_never_its_secret(
    bulletin: Bulletin,
) -> None:
    bulletin("migrate")
    token_id, secret = create_token(bulletin)

    listing = bulletin("token", "list")
    assert secret not in listing
    desk = list_tokens(bulletin)["desk"]
    assert desk["scope"] == "publish"
    assert desk["state"] == "active"
    assert secret.startswith(desk["prefix"]) and len(desk["prefix"]) < len(secret)

    assert f"revoked token {token_id}" in bulletin("token", "revoke", token_id)
    assert list_tokens(bulletin)["desk"]["state"] == "revoked"


def test_token_secret_is_stored_only_as_a_hash(bulletin: Bulletin, database_file: Path) -> None:
    bulletin("migrate")
    _token_id, secret = create_token(bulletin)

    stored = b"".join(path.read_bytes() for path in database_file.parent.glob("bulletin.db*"))
    assert secret.encode() not in stored
    assert hash_secret(secret).encode() in stored


def test_demo_if_empty_loads_the_demo_blog_only_once(bulletin: Bulletin) -> None:
    bulletin("migrate")

    assert f"demo blog ready: http://127.0.0.1:8000/api/v1/blogs/{DEMO_SLUG}" in bulletin(
        "demo", "--if-empty"
    )
    assert "blogs exist already; demo not loaded" in bulletin("demo", "--if-empty")


async def test_a_cli_token_publishes_until_it_is_revoked(
    bulletin: Bulletin, database_file: Path
) -> None:
    await asyncio.to_thread(bulletin, "migrate")
    await asyncio.to_thread(bulletin, "demo", "--if-empty")
    token_id, secret = await asyncio.to_thread(create_token, bulletin)
    settings = Settings(database_url=f"sqlite:///{database_file}")

    async with running_app(settings) as app, asgi_client(app) as client:

        async def publish() -> httpx.Response:
            return await client.post(
                f"/api/v1/blogs/{DEMO_SLUG}/entries",
                json={"body": "<p>The wind has dropped.</p>"},
                headers={"Authorization": f"Bearer {secret}"},
            )

        accepted = await publish()
        assert accepted.status_code == 201, accepted.text

        await asyncio.to_thread(bulletin, "token", "revoke", token_id)

        refused = await publish()
        assert refused.status_code == 401
        error = refused.json()["error"]
        assert error["code"] == "unauthorised"
        assert isinstance(error["message"], str) and error["message"]


# The CLI starts fast: commands that only touch the database load no web stack.
HEAVY = ("fastapi", "starlette", "alembic", "uvicorn", "redis", "limits")


def test_importing_the_cli_loads_no_web_framework_server_or_migration_tool() -> None:
    probe = f"import sys, app.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
