"""The `bulletin` console script, run as an operator runs it: a real process on a SQLite file."""

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.cli import public_base_url, public_base_url_warning
from app.config import PROJECT_DIR, Settings, local_url
from app.demo import DEMO_SLUG
from app.migrating import downgrade, head_revision
from app.tokens import TOKEN_PREFIX, hash_secret
from tests.support.clients import asgi_client
from tests.support.databases import database_on_same_server, execute, postgres_admin_url
from tests.support.servers import BULLETIN, running_app

Bulletin = Callable[..., str]


@pytest.fixture
def database_file(tmp_path: Path) -> Path:
    return tmp_path / "bulletin.db"


def run_bulletin(
    *args: str, database_url: str, command: tuple[str, ...] = (str(BULLETIN),), cwd: Path
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "BULLETIN_DATABASE_URL": database_url}
    environment.pop("BULLETIN_PUBLIC_BASE_URL", None)
    return subprocess.run(
        [*command, *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def bulletin(database_file: Path) -> Bulletin:
    """Run `bulletin ARGS...` on the test's database file; returns its standard output."""

    def run(*args: str, command: tuple[str, ...] = (str(BULLETIN),)) -> str:
        result = run_bulletin(
            *args,
            database_url=f"sqlite:///{database_file}",
            command=command,
            cwd=database_file.parent,
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


def test_migrate_says_what_it_did_to_the_database(bulletin: Bulletin, database_file: Path) -> None:
    head = head_revision(f"sqlite:///{database_file}")
    assert bulletin("migrate") == (
        f"created the database at {database_file} and applied every migration (now at {head})\n"
    )
    assert (
        bulletin("migrate") == f"the database at {database_file} is up to date (migration {head})\n"
    )

    downgrade(f"sqlite:///{database_file}", "0004")
    assert bulletin("migrate") == f"migrated the database at {database_file} from 0004 to {head}\n"


def test_python_dash_m_app_runs_the_same_cli(bulletin: Bulletin) -> None:
    assert "created the database" in bulletin("migrate", command=(sys.executable, "-m", "app"))
    assert list_tokens(bulletin) == {}


# Every command but `migrate`, as an operator would first type it on a new machine.
COMMANDS = [
    ("token", "create", "--name", "me", "--scope", "admin"),
    ("token", "list"),
    ("token", "revoke", "1"),
    ("demo", "--if-empty"),
    ("serve", "--port", "1"),  # refused before it listens
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: "-".join(command[:2]))
def test_a_command_on_a_missing_database_says_so_in_one_line_and_creates_nothing(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    database_file = tmp_path / "data" / "bulletin.db"
    result = run_bulletin(*command, database_url=f"sqlite:///{database_file}", cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr == (
        f"bulletin: no database at {database_file}: run `bulletin migrate` to create it\n"
    )
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: "-".join(command[:2]))
def test_a_command_on_an_unmigrated_or_older_database_says_so_in_one_line(
    command: tuple[str, ...], bulletin: Bulletin, database_file: Path
) -> None:
    sqlite3.connect(database_file).close()  # an empty file: a database nobody migrated
    url = f"sqlite:///{database_file}"
    result = run_bulletin(*command, database_url=url, cwd=database_file.parent)
    assert (result.returncode, result.stderr) == (
        1,
        f"bulletin: the database at {database_file} is not migrated: run `bulletin migrate`\n",
    )

    bulletin("migrate")
    downgrade(url, "0004")
    result = run_bulletin(*command, database_url=url, cwd=database_file.parent)
    assert (result.returncode, result.stderr) == (
        1,
        f"bulletin: the database at {database_file} is at migration 0004, not "
        f"{head_revision(url)}: run `bulletin migrate`\n",
    )


def test_a_command_on_an_unmigrated_postgresql_database_says_so(
    postgres_url: str, tmp_path: Path
) -> None:
    name = f"bulletin_unmigrated_{uuid.uuid4().hex[:8]}"
    admin_url = postgres_admin_url()
    asyncio.run(execute(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        url = database_on_same_server(postgres_url, name)
        result = run_bulletin("token", "list", database_url=url, cwd=tmp_path)
    finally:
        asyncio.run(execute(admin_url, f'DROP DATABASE "{name}"'))
    assert result.returncode == 1
    assert result.stderr == (
        f"bulletin: the database at {url} is not migrated: run `bulletin migrate`\n"
    )


def test_a_database_that_cannot_be_reached_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    url = "postgresql://bulletin:hunter2-not-shown@127.0.0.1:1/bulletin"
    result = run_bulletin("token", "list", database_url=url, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "bulletin: cannot reach the database at postgresql+asyncpg://bulletin:***@127.0.0.1:1/"
    )
    assert len(result.stderr.splitlines()) == 1
    assert "hunter2" not in result.stderr


def test_the_default_database_is_the_same_file_from_any_directory(tmp_path: Path) -> None:
    probe = "from app.config import Settings; print(Settings().database_url)"
    environment = {k: v for k, v in os.environ.items() if k != "BULLETIN_DATABASE_URL"}
    found = {
        subprocess.run(
            [sys.executable, "-c", probe],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for cwd in (tmp_path, PROJECT_DIR, PROJECT_DIR / "web")
    }
    assert found == {f"sqlite+aiosqlite:///{PROJECT_DIR / 'bulletin.db'}"}


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

    assert f"demo blog ready: http://127.0.0.1:8000/blogs/{DEMO_SLUG}" in bulletin(
        "demo", "--if-empty"
    )
    assert "blogs exist already; demo not loaded" in bulletin("demo", "--if-empty")


def test_demo_prints_the_reader_page_where_the_server_will_listen(bulletin: Bulletin) -> None:
    bulletin("migrate")
    assert bulletin("demo", "--port", "18123", "--host", "0.0.0.0") == (
        f"demo blog ready: http://127.0.0.1:18123/blogs/{DEMO_SLUG}\n"
    )


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


@pytest.mark.parametrize(
    ("host", "configured", "warned"),
    [
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("192.0.2.10", None, True),
        ("0.0.0.0", "https://live.example.org", False),
    ],
)
def test_serving_beyond_this_machine_without_a_public_address_warns(
    host: str, configured: str | None, warned: bool
) -> None:
    settings = Settings(public_base_url=configured) if configured else Settings()
    base_url = public_base_url(settings, host, 8080)
    assert base_url == configured or base_url == local_url(host, 8080)
    warning = public_base_url_warning(settings, host, base_url)
    assert (warning is not None) == warned
    if warning:
        assert base_url in warning and "BULLETIN_PUBLIC_BASE_URL" in warning


def test_the_local_address_of_a_listening_server() -> None:
    assert local_url("0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert local_url("::1", 8080) == "http://[::1]:8080"
    assert local_url("localhost", 80) == "http://localhost"
