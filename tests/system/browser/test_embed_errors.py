"""An embed whose blog cannot be had puts text, never markup, into the partner's page
(security review I5): a proxy or CDN in front may answer with an error page of its own."""

import functools
import http.server
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.system.browser.conftest import Bulletin

HOSTILE_ERROR_PAGE = (
    b"<html><body><h1>Not found</h1>"
    b'<img src="/nothing.png" onerror="window.ranInPartnerPage = true"></body></html>'
)


class PartnerAndProxy(http.server.SimpleHTTPRequestHandler):
    """The partner's static pages; under /proxy/, a proxy that answers 404 with its own page."""

    def do_GET(self) -> None:
        if not self.path.startswith("/proxy/"):
            super().do_GET()
            return
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(HOSTILE_ERROR_PAGE)))
        self.end_headers()
        self.wfile.write(HOSTILE_ERROR_PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def partner_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    handler = functools.partial(PartnerAndProxy, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def embed_page(directory: Path, bulletin: Bulletin, slug: str, server: str | None = None) -> str:
    url = f' data-bulletin-url="{server}"' if server else ""
    name = f"{secrets.token_hex(4)}.html"
    (directory / name).write_text(
        "<!doctype html><html><head><title>Partner</title></head><body>"
        f'<div data-bulletin-blog="{slug}"{url}></div>'
        f'<script src="{bulletin.url}/static/bulletin.js" async></script></body></html>'
    )
    return name


def test_a_proxys_error_page_is_not_put_into_the_partners_page(
    page: Page, bulletin: Bulletin, partner_site: tuple[Path, str]
) -> None:
    directory, origin = partner_site
    name = embed_page(directory, bulletin, "some-blog", server=f"{origin}/proxy")
    page.goto(f"{origin}/{name}")
    container = page.locator('[data-bulletin-blog="some-blog"]')
    expect(container).to_have_text("There is no such live blog.")
    assert container.locator("*").count() == 0
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.ranInPartnerPage") is None


def test_bulletins_own_answer_for_an_unknown_blog_is_shown_as_text(
    page: Page, bulletin: Bulletin, partner_site: tuple[Path, str]
) -> None:
    directory, origin = partner_site
    name = embed_page(directory, bulletin, "no-such-blog")
    page.goto(f"{origin}/{name}")
    container = page.locator('[data-bulletin-blog="no-such-blog"]')
    expect(container).to_have_text("There is no such live blog.")
    assert container.locator("*").count() == 0
