"""Browser tests: Debian's Chromium driven by Playwright against real `bulletin serve` processes."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.support.factories import ADMIN_TOKEN
from tests.support.servers import BULLETIN, ServerProcess

CHROMIUM = os.environ.get("BULLETIN_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
NETWORK_NOISE = ("WebSocket connection to", "Failed to load resource", "net::ERR_")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


# Per module, not per session: while Playwright's sync API runs, it holds this thread's event
# loop, and the rest of the suite needs the thread back (asyncio.run in other fixtures).
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("BULLETIN_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Chromium is required at {CHROMIUM} (make test-system installs it)")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@dataclass
class Bulletin:
    """A served Bulletin and a newsroom tool talking to it with the admin token."""

    process: ServerProcess
    api: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(
            base_url=f"{self.process.http}/api/v1",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )

    @property
    def url(self) -> str:
        return self.process.http

    def create_blog(self, slug: str, **fields) -> dict:
        response = self.api.post("/blogs", json={"slug": slug, "title": slug, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def publish(self, slug: str, **fields) -> dict:
        fields.setdefault("body", "<p>An update.</p>")
        response = self.api.post(f"/blogs/{slug}/entries", json=fields)
        assert response.status_code == 201, response.text
        return response.json()

    def edit(self, slug: str, entry_id: int, **fields) -> dict:
        response = self.api.patch(f"/blogs/{slug}/entries/{entry_id}", json=fields)
        assert response.status_code == 200, response.text
        return response.json()

    def delete(self, slug: str, entry_id: int) -> None:
        assert self.api.delete(f"/blogs/{slug}/entries/{entry_id}").status_code == 204


def server_process(directory: Path, database_url: str | None = None) -> ServerProcess:
    """A `bulletin serve` process on a migrated SQLite database in `directory`."""
    if database_url is None:
        database_url = f"sqlite+aiosqlite:///{directory / 'bulletin.db'}"
        # The CLI in its own process: Playwright's sync API owns this thread's event loop.
        subprocess.run(
            [str(BULLETIN), "migrate"],
            env={**os.environ, "BULLETIN_DATABASE_URL": database_url},
            check=True,
            capture_output=True,
        )
    process = ServerProcess(
        {
            "BULLETIN_DATABASE_URL": database_url,
            "BULLETIN_ADMIN_TOKEN": ADMIN_TOKEN,
            "BULLETIN_HUB_CHECK_SECONDS": "0.2",
            "BULLETIN_RATE_LIMIT_ENABLED": "false",
        },
        directory / f"server-{len(list(directory.glob('server-*.log')))}.log",
    )
    process.env["BULLETIN_PUBLIC_BASE_URL"] = process.http
    return process


@pytest.fixture(scope="module")
def bulletin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bulletin]:
    process = server_process(tmp_path_factory.mktemp("browser"))
    process.start()
    served = Bulletin(process)
    yield served
    served.api.close()
    process.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser page; any script error on it fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def on_console(message: ConsoleMessage) -> None:
        # Refused connections while a server is down are expected; script errors are not.
        if message.type == "error" and not any(
            expected in message.text for expected in NETWORK_NOISE
        ):
            errors.append(message.text)

    page.on("console", on_console)
    yield page
    context.close()
    assert not errors, errors


def screenshot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=path)
    return path
