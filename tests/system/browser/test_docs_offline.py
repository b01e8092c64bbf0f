"""The API docs in Chromium with nothing but this machine reachable: /docs and /redoc render
the whole API from the server's own copies of Swagger UI and ReDoc.

The server is opened under a name on a newsroom's internal network, as its users reach it
(the test hands those requests to the server on 127.0.0.1), so nothing in the UIs that treats
localhost differently hides a request. Every other request off this machine is aborted and
counted, and any console error (a refused request, a script error, a Content-Security-Policy
violation) fails the test.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
INTERNAL_HOST = "bulletin.newsroom.internal"
OPERATION = "/api/v1/blogs/{slug}/entries"


class Served(Protocol):
    url: str


@dataclass
class Offline:
    """A page that reaches only this machine, and what it tried to reach and said."""

    page: Page
    served: str
    left_the_machine: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.hostname == INTERNAL_HOST:
            # The internal name is this machine's server: fetched from it, as a resolver would.
            local = url._replace(netloc=urlsplit(self.served).netloc).geturl()
            route.fulfill(response=route.fetch(url=local))
        elif url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOCAL_HOSTS:
            self.left_the_machine.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, path: str) -> None:
        port = urlsplit(self.served).port
        response = self.page.goto(f"http://{INTERNAL_HOST}:{port}{path}")
        assert response is not None and response.status == 200


@pytest.fixture
def offline(browser: Browser, bulletin: Served) -> Iterator[Offline]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watched = Offline(page, bulletin.url)
    context.route("**/*", watched.route)
    page.on("console", watched.console)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    yield watched
    context.close()


def loaded_stylesheets(page: Page) -> list[str]:
    """The style sheets the page holds rules of (a sheet that failed to load has none)."""
    return page.evaluate(
        """() => [...document.styleSheets]
            .filter((sheet) => sheet.href && sheet.cssRules.length > 0)
            .map((sheet) => new URL(sheet.href).pathname)"""
    )


def test_swagger_ui_renders_every_operation_with_the_network_cut_off(offline: Offline) -> None:
    page = offline.page
    offline.open("/docs")
    create_entry = page.locator(f'.opblock-post [data-path="{OPERATION}"]')
    expect(create_entry).to_be_visible(timeout=15_000)
    expect(page.locator(".info .title")).to_contain_text("Bulletin")
    assert page.locator(".opblock").count() >= 20  # the whole API, not one section of it
    assert loaded_stylesheets(page) == ["/docs/swagger-ui.css"]

    # The operation opens, with its parameters, as a reader of the docs would use it.
    create_entry.click()
    expect(page.locator(".opblock-post.is-open .parameters")).to_contain_text("slug")
    assert offline.left_the_machine == []
    assert offline.errors == []


def test_redoc_renders_every_operation_with_the_network_cut_off(offline: Offline) -> None:
    page = offline.page
    offline.open("/redoc")
    expect(page.locator(".api-info h1")).to_contain_text("Bulletin", timeout=15_000)
    create_entry = page.get_by_text(OPERATION, exact=True).first
    expect(create_entry).to_be_attached()
    # Its footer logo comes from this server too, and has loaded.
    logo = page.locator('img[alt="redocly logo"]')
    expect(logo).to_have_count(1)
    page.wait_for_function(
        "() => document.querySelector('img[alt=\"redocly logo\"]').naturalWidth > 0"
    )
    assert offline.left_the_machine == []
    assert offline.errors == []
