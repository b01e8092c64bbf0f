"""`bulletin user ...` and `bulletin token create --user`, run as an operator runs them: a
real process on a SQLite file, then the API on that file to see what they did."""

import os
import pty
import select
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.demo import DEMO_SLUG
from app.tokens import TOKEN_PREFIX
from tests.support.clients import asgi_client
from tests.support.servers import BULLETIN, running_app

PASSWORD = "a long passphrase for Sam"


@pytest.fixture
def database_file(tmp_path: Path) -> Path:
    path = tmp_path / "bulletin.db"
    for args in (("migrate",), ("demo",)):
        assert run(path, *args).returncode == 0
    return path


def run(database_file: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "BULLETIN_DATABASE_URL": f"sqlite:///{database_file}"}
    return subprocess.run(
        [str(BULLETIN), *args],
        env=environment,
        cwd=database_file.parent,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(database_file: Path, *args: str, stdin: str = "") -> str:
    result = run(database_file, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def stored(database_file: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database_file) as connection:
        return connection.execute(query).fetchall()


async def me(database_file: Path, secret: str) -> httpx.Response:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{database_file}", rate_limit_enabled=False
    )
    async with running_app(settings) as app, asgi_client(app) as client:
        return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})


async def test_an_operator_creates_a_user_grants_a_role_and_makes_a_narrowed_token(
    database_file: Path,
) -> None:
    created = ok(
        database_file, "user", "create", "--name", "Sam Vale", "--login", "Sam@News.test",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert created.startswith("created user 1 Sam@News.test (Sam Vale)")
    [(password_hash,)] = stored(database_file, "SELECT password_hash FROM users")
    assert password_hash.startswith("$argon2id$") and PASSWORD not in created
    ok(database_file, "user", "grant", "sam@news.test", "--blog", DEMO_SLUG, "--role", "editor")
    output = ok(
        database_file, "token", "create", "--name", "phone", "--user", "sam@news.test",
        "--blog", DEMO_SLUG, "--max-role", "contributor",
    )  # fmt: skip
    assert f"acting as Sam@News.test, on {DEMO_SLUG} only, at most contributor" in output
    [secret] = [line for line in output.splitlines() if line.startswith(TOKEN_PREFIX)]

    answer = (await me(database_file, secret)).json()
    assert answer["user"]["name"] == "Sam Vale"
    assert [(b["slug"], b["role"]) for b in answer["blogs"]] == [(DEMO_SLUG, "contributor")]
    listing = ok(database_file, "user", "list").splitlines()
    assert listing[0].split() == ["id", "state", "admin", "login", "name", "roles"]
    assert listing[1].split() == [
        "1",
        "active",
        "no",
        "Sam@News.test",
        "Sam",
        "Vale",
        f"{DEMO_SLUG}:editor",
    ]

    ok(database_file, "user", "disable", "sam@news.test")
    assert (await me(database_file, secret)).status_code == 401
    ok(database_file, "user", "enable", "sam@news.test")
    assert (await me(database_file, secret)).status_code == 200
    ok(database_file, "user", "revoke", "sam@news.test", "--blog", DEMO_SLUG)
    assert (await me(database_file, secret)).json()["blogs"] == []
    ok(database_file, "user", "grant", "sam@news.test", "--admin")
    assert "yes" in ok(database_file, "user", "list").splitlines()[1].split()
    actions = [row[0] for row in stored(database_file, "SELECT action FROM audit_records")]
    assert actions[-7:] == [
        "user.created", "member.added", "token.created", "user.updated", "user.updated",
        "member.removed", "user.updated",
    ]  # fmt: skip
    assert {row[0] for row in stored(database_file, "SELECT via FROM audit_records")} >= {
        "command line"
    }


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (("--login", "sam@news.test"), "too short\n", "12 to 1000 characters"),
        (("--login", "not-an-email"), PASSWORD + "\n", "login"),
        (("--login", "sam@news.test"), "", "12 to 1000 characters"),
    ],
    ids=["short-password", "bad-login", "no-password"],
)
def test_a_user_the_rules_refuse_is_not_created(
    database_file: Path, args: tuple[str, ...], stdin: str, says: str
) -> None:
    result = run(database_file, "user", "create", "--name", "Sam Vale", *args, stdin=stdin)
    assert result.returncode == 1
    assert says in result.stderr and "nothing was stored" in result.stderr
    assert stored(database_file, "SELECT * FROM users") == []


def test_a_second_user_with_the_same_login_in_another_case_is_refused(database_file: Path) -> None:
    ok(database_file, "user", "create", "--name", "Sam", "--login", "sam@news.test", stdin=PASSWORD)
    result = run(
        database_file, "user", "create", "--name", "Sam", "--login", "SAM@news.test",
        stdin=PASSWORD,
    )  # fmt: skip
    assert result.returncode == 1 and "already" in result.stderr
    assert len(stored(database_file, "SELECT * FROM users")) == 1


class Terminal:
    """`bulletin ARGS...` with a terminal as its standard input, typed at line by line."""

    def __init__(self, database_file: Path, *args: str) -> None:
        self.master, slave = pty.openpty()
        environment = {**os.environ, "BULLETIN_DATABASE_URL": f"sqlite:///{database_file}"}
        self.process = subprocess.Popen(
            [str(BULLETIN), *args],
            env=environment,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # no controlling terminal: getpass prompts on stderr
        )
        os.close(slave)
        self.seen = b""

    def answer(self, prompt: bytes, line: str) -> None:
        """Wait for `prompt` on standard error, then type `line` and Enter."""
        stderr = self.process.stderr
        assert stderr is not None
        deadline = time.monotonic() + 30
        while prompt not in self.seen:
            ready, _, _ = select.select([stderr], [], [], max(0, deadline - time.monotonic()))
            assert ready, f"no prompt {prompt!r}; saw {self.seen!r}"
            chunk = os.read(stderr.fileno(), 1024)
            assert chunk, f"the command ended; saw {self.seen!r}"
            self.seen += chunk
        self.seen = self.seen.split(prompt, 1)[1]
        os.write(self.master, line.encode() + b"\n")

    def finish(self) -> tuple[int, str]:
        """The exit code, and everything shown: standard error and the terminal's echo."""
        _out, err = self.process.communicate(timeout=60)
        echoed = b""
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 1024)
            except OSError:  # the terminal is closed at the other end
                break
            if not chunk:
                break
            echoed += chunk
        os.close(self.master)
        return self.process.returncode, (self.seen + err + echoed).decode()


def test_at_a_terminal_the_password_is_typed_twice(database_file: Path) -> None:
    args = ("user", "create", "--name", "Sam Vale", "--login", "sam@news.test")
    mistyped = Terminal(database_file, *args)
    mistyped.answer(b"Password: ", PASSWORD)
    mistyped.answer(b"Password again: ", PASSWORD + "!")
    code, said = mistyped.finish()
    assert code == 1 and "differ" in said
    assert stored(database_file, "SELECT * FROM users") == []

    typed = Terminal(database_file, *args)
    typed.answer(b"Password: ", PASSWORD)
    typed.answer(b"Password again: ", PASSWORD)
    code, said = typed.finish()
    assert code == 0, said
    assert PASSWORD not in said  # never echoed to the terminal
    assert len(stored(database_file, "SELECT * FROM users")) == 1
