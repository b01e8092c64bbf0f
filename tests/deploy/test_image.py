"""The image's contract, checked without building it (there is no container engine here).

What the Dockerfile states (its ENV, WORKDIR, VOLUME, USER, ENTRYPOINT, CMD, HEALTHCHECK)
is read from the file, not retyped, and the entrypoint script runs as the container would
run it: in an environment made of the image's ENV alone, from a copy of exactly what the
build context ships, made read-only, with its SQLite database in a directory standing in
for the volume. Stand-ins: this test's virtualenv for the image's, and PYTHONPATH pointing
at the copy for the editable install that points at /srv/bulletin in the image.
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.tokens import TOKEN_PREFIX
from tests.support.dockerfiles import (
    PINNED_IMAGE,
    ROOT,
    Stage,
    build_context,
    external_images,
    read_stages,
)
from tests.support.servers import free_port, log_tail, wait_until_answering

# What the python base image's own ENV brings (its PATH and LANG): the host's stand in.
BASE_ENV = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
SOURCE_PACKAGES = {"app", "migrations", "web", "docker"}


@pytest.fixture(scope="module")
def image() -> Stage:
    return read_stages(base_env=BASE_ENV)[-1]


def test_every_base_image_is_pinned_by_full_version_and_digest() -> None:
    images = external_images(read_stages())

    assert images
    for name in images:
        assert PINNED_IMAGE.match(name), name


def test_the_image_runs_as_a_numeric_user_that_is_not_root(image: Stage) -> None:
    assert image.user is not None
    uid, _, gid = image.user.partition(":")
    assert uid.isdigit() and int(uid) != 0, image.user
    assert gid == "" or (gid.isdigit() and int(gid) != 0), image.user


def test_the_build_context_ships_the_application_and_never_the_tests_or_benchmarks() -> None:
    shipped = build_context()
    top_level = {path.split("/")[0] for path in shipped}

    assert top_level == SOURCE_PACKAGES | {"pyproject.toml", "requirements.lock", "README.md"}
    assert "docker/entrypoint.sh" in shipped
    assert "web/templates/page.html" in shipped
    assert not [path for path in shipped if "__pycache__" in path or path.endswith(".pyc")]
    for kept_out in ("tests", "bench", ".git", ".venv", ".env", "bulletin.db"):
        assert not [path for path in shipped if path.split("/")[0] == kept_out], kept_out


def test_dependencies_are_installed_before_any_source_is_copied() -> None:
    # Layer caching: the stage that installs requirements.lock has copied nothing else,
    # so a change to the code does not reinstall the dependencies.
    stages = read_stages()
    installing = [
        stage
        for stage in stages
        if any(
            command.cmd == "RUN" and "requirements.lock" in command.value[0]
            for command in stage.instructions
        )
    ]
    assert len(installing) == 1
    copied = [
        command.value[:-1]
        for command in installing[0].instructions
        if command.cmd in ("COPY", "ADD")
    ]
    assert {source for sources in copied for source in sources} == {
        "pyproject.toml",
        "requirements.lock",
    }
    assert any(command.value[:-1] == (".",) for command in stages[-1].instructions)


def test_the_image_declares_its_volume_port_and_the_database_inside_the_volume(
    image: Stage,
) -> None:
    (volume,) = image.volumes
    assert image.env["BULLETIN_DATABASE_URL"].startswith(f"sqlite+aiosqlite:///{volume}/")
    assert image.exposed == [port_of(image.cmd)]
    assert f"127.0.0.1:{port_of(image.cmd)}/healthz" in " ".join(image.healthcheck)


def port_of(command: list[str]) -> str:
    return command[command.index("--port") + 1]


class Container:
    """The image's filesystem as its process sees it, laid out in a temporary directory:
    the source tree (`COPY . .`) read-only, a volume, the image's environment."""

    def __init__(self, image: Stage, root: Path) -> None:
        self.image = image
        self.source = root / "source"
        self.volume = root / "volume"
        self.log = root / "server.log"
        self.source.mkdir()
        for path in sorted(build_context()):
            copied = self.source / path
            if (ROOT / path).is_dir():
                copied.mkdir(parents=True)
            else:
                shutil.copy2(ROOT / path, copied)
        self.volume.mkdir()
        (volume,) = image.volumes
        venv = next(
            command.value[-1]
            for command in image.instructions
            if command.cmd == "COPY" and any(flag.startswith("--from=") for flag in command.flags)
        )
        self.paths = {image.workdir: str(self.source), volume: str(self.volume), venv: sys.prefix}
        self.env = {name: self.local(value) for name, value in image.env.items()}
        self.env["PYTHONPATH"] = str(self.source)
        self._set_writable(False)

    def local(self, value: str) -> str:
        for image_path, local_path in self.paths.items():
            value = value.replace(image_path, local_path)
        return value

    def _set_writable(self, writable: bool) -> None:
        # Read-only to its owner too: enforced unless the tests run as root (then the
        # listing before and after is what shows nothing was written).
        for directory, _subdirectories, names in os.walk(self.source):
            for path in [directory, *(os.path.join(directory, name) for name in names)]:
                mode = os.stat(path).st_mode
                os.chmod(path, mode | stat.S_IWUSR if writable else mode & ~0o222)

    def listing(self) -> dict[str, tuple[int, int, int]]:
        """Every path under the source tree with its size, modification time and mode."""
        listed = {}
        for directory, _subdirectories, names in os.walk(self.source):
            for path in [directory, *(os.path.join(directory, name) for name in names)]:
                status = os.lstat(path)
                listed[path] = (status.st_size, status.st_mtime_ns, status.st_mode)
        return listed

    def run(self, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The entrypoint with this command, to its end (`docker run IMAGE COMMAND`)."""
        return subprocess.run(
            [self.local(part) for part in [*self.image.entrypoint, *command]],
            env={**self.env, **env},
            cwd=self.source,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self, port: int) -> subprocess.Popen[bytes]:
        """The entrypoint with the image's CMD, on `port` instead of the image's."""
        command = [*self.image.entrypoint, *self.image.cmd]
        command[command.index("--port") + 1] = str(port)
        with self.log.open("ab") as log:
            return subprocess.Popen(
                [self.local(part) for part in command],
                env=self.env,
                cwd=self.source,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def healthcheck(self, port: int) -> subprocess.CompletedProcess[str]:
        """The HEALTHCHECK command exactly as the Dockerfile states it, on `port`."""
        image_port = port_of(self.image.cmd)
        test = [part.replace(f":{image_port}/", f":{port}/") for part in self.image.healthcheck]
        assert test != self.image.healthcheck  # the port was there to replace
        return subprocess.run(
            test,
            env=self.env,
            cwd=self.source,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def restore(self) -> None:
        self._set_writable(True)


@pytest.fixture
def container(image: Stage, tmp_path: Path) -> Iterator[Container]:
    laid_out = Container(image, tmp_path)
    yield laid_out
    laid_out.restore()


def test_the_copy_imports_bulletin_from_its_own_source_tree(container: Container) -> None:
    found = container.run("python", "-c", "import app, migrations; print(app.__file__)")

    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).is_relative_to(container.source)


def test_a_token_is_created_on_a_new_volume_then_the_server_serves_a_blog_from_read_only_source(
    container: Container,
) -> None:
    before = container.listing()

    # `docker run IMAGE bulletin token create ...` on a new volume: migrated first, and
    # only the command's own output on standard output.
    created = container.run("bulletin", "token", "create", "--name", "desk", "--scope", "admin")
    assert created.returncode == 0, created.stderr
    report = created.stderr.splitlines()
    assert report and not set(report) & set(created.stdout.splitlines())
    secret = created.stdout.splitlines()[-1]
    assert secret.startswith(TOKEN_PREFIX)
    assert [path.name for path in container.volume.iterdir() if path.suffix == ".db"] == [
        "bulletin.db"
    ]

    port = free_port()
    server = container.start(port)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/healthz", server, container.log)
        # exec: the server is the process the container started, so it gets the signals.
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
        assert b"serve" in cmdline and not any(b"entrypoint" in part for part in cmdline)

        healthy = container.healthcheck(port)
        assert healthy.returncode == 0, healthy.stderr

        base = f"http://127.0.0.1:{port}"
        blog = httpx.post(
            f"{base}/api/v1/blogs",
            json={"slug": "harbour-fire", "title": "Harbour fire, live"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert blog.status_code == 201, blog.text
        page = httpx.get(f"{base}/blogs/harbour-fire")
        assert page.status_code == 200
        assert "Harbour fire, live" in page.text
        assert httpx.get(f"{base}/static/bulletin.js").status_code == 200
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    # Shut down cleanly; uvicorn then ends by the signal it was stopped with.
    assert server.returncode in (0, -signal.SIGTERM), log_tail(container.log)
    assert "Application shutdown complete" in log_tail(container.log)
    stopped = container.healthcheck(port)
    assert stopped.returncode != 0
    after = container.listing()
    assert not {
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    }


def test_with_migrate_on_start_false_the_command_runs_and_no_database_is_made(
    container: Container,
) -> None:
    ran = container.run("sh", "-c", "echo ran", BULLETIN_MIGRATE_ON_START="false")

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "ran\n"
    assert list(container.volume.iterdir()) == []


def test_after_migrating_the_command_is_told_not_to_migrate_again(container: Container) -> None:
    ran = container.run("sh", "-c", 'echo "$BULLETIN_MIGRATE_ON_START"')

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "0\n"
    assert (container.volume / "bulletin.db").exists()


def test_an_unreadable_migrate_on_start_value_stops_the_container_before_the_command(
    container: Container,
) -> None:
    ran = container.run("sh", "-c", "echo ran", BULLETIN_MIGRATE_ON_START="sometimes")

    assert ran.returncode != 0
    assert ran.stdout == ""
    assert "BULLETIN_MIGRATE_ON_START" in ran.stderr
    assert list(container.volume.iterdir()) == []
