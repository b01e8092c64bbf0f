"""A newcomer's first hour, followed literally: `make run`'s own commands on a port other than
8000, started from another directory, then the README's "Try it" section as it is written
there, and the demo page in Chromium."""

import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests.support.servers import BULLETIN, free_port, log_tail, wait_until_answering

PROJECT = Path(__file__).resolve().parents[3]


def make_recipe(target: str) -> list[str]:
    """The command lines of a Makefile target, as written there."""
    lines = (PROJECT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def readme_section_script(heading: str) -> str:
    """The first ```sh block under a README heading."""
    readme = (PROJECT / "README.md").read_text()
    section = readme.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no sh block under {heading}"
    return match.group(1)


def json_values(text: str) -> list[dict]:
    """The JSON answers curl printed one after the other (curl adds no newline)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


@dataclass
class FirstRun:
    url: str
    port: int
    workdir: Path
    environment: dict[str, str]
    log: Path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    """`make run PORT=<not 8000>` from another directory, with no public base URL set."""
    workdir = tmp_path_factory.mktemp("newcomer")
    port = free_port()
    assert port != 8000
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("BULLETIN_")
    }
    environment["BULLETIN_DATABASE_URL"] = f"sqlite:///{workdir / 'bulletin.db'}"
    variables = {"$(BIN)": str(BULLETIN.parent), "$(HOST)": "127.0.0.1", "$(PORT)": str(port)}
    *setup, serve = make_recipe("run")
    for line in [*setup, serve]:
        assert line.startswith("$(BIN)/bulletin "), f"make run runs {line!r}: update this test"

    def command(line: str) -> list[str]:
        for name, value in variables.items():
            line = line.replace(name, value)
        return shlex.split(line)

    for line in setup:
        subprocess.run(command(line), cwd=workdir, env=environment, check=True, timeout=120)
    log = workdir / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            command(serve), cwd=workdir, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/healthz", server, log)
        yield FirstRun(url, port, workdir, environment, log)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        print(log_tail(log))


def test_serve_prints_the_addresses_to_open_on_its_port(first_run: FirstRun) -> None:
    printed = first_run.log.read_text()
    assert f"serving {first_run.url}/ (blogs), {first_run.url}/newsroom (publish)" in printed
    assert "BULLETIN_PUBLIC_BASE_URL is not set" not in printed  # loopback: nothing to warn


def test_the_readme_try_it_section_works_as_written(first_run: FirstRun) -> None:
    script = readme_section_script("## Try it")
    # The README's commands run in the clone (.venv/bin/bulletin): stand in for it here.
    (first_run.workdir / ".venv").unlink(missing_ok=True)
    (first_run.workdir / ".venv").symlink_to(BULLETIN.parent.parent)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=first_run.workdir,
        env={**first_run.environment, "PORT": str(first_run.port)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"error"' not in result.stdout, result.stdout
    blog, entry, edited, log = json_values(result.stdout)
    assert blog["slug"] == "match-day"
    assert entry["headline"] == "Goal!" and entry["key_event"] is True
    assert edited["headline"] == "Goal! 1-0 after 12 minutes"
    assert [event["type"] for event in log["items"]] == [
        "entry.created",
        "entry.updated",
        "entry.deleted",
        "entry.redacted",  # the deleted entry's earlier events now say only that it is gone
    ]
    assert log["items"][0]["entry"]["status"] == "deleted"
    assert not (PROJECT / "entry.json").exists()


def test_the_demo_page_shows_its_photos_and_links_to_its_own_port(
    first_run: FirstRun, browser: Browser
) -> None:
    page = browser.new_page()
    try:
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(f"{first_run.url}/blogs/storm-ilsa-live", wait_until="load")
        images = page.locator(".entry img")
        assert images.count() >= 2
        for index in range(images.count()):
            image = images.nth(index)
            image.scroll_into_view_if_needed()  # the page's images load lazily
            page.wait_for_function("image => image.complete", arg=image.element_handle())
            assert image.evaluate("image => image.naturalWidth") > 0, image.get_attribute("src")
            assert image.get_attribute("src").startswith(f"{first_run.url}/static/demo/")
        canonical = page.locator("link[rel=canonical]").get_attribute("href")
        og_image = page.locator("meta[property='og:image']").get_attribute("content")
        assert canonical == f"{first_run.url}/blogs/storm-ilsa-live"
        assert og_image.startswith(f"{first_run.url}/static/demo/")
        assert failed == []
    finally:
        page.close()

    feed = httpx.get(f"{first_run.url}/blogs/storm-ilsa-live/feed.json", timeout=10).json()
    assert feed["home_page_url"] == f"{first_run.url}/blogs/storm-ilsa-live"
    attachments = [item for entry in feed["items"] for item in entry.get("attachments", [])]
    assert attachments and all(
        item["url"].startswith(f"{first_run.url}/static/demo/") for item in attachments
    )
