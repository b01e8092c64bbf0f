"""The API docs, /docs (Swagger UI) and /redoc (ReDoc), need nothing but this server.

tests/system/browser/test_docs_offline.py renders them in Chromium with the network cut off.
"""

from pathlib import Path

import html5lib
import httpx
import pytest

from tests.support.databases import fresh_database

DOC_PAGES = ("/docs", "/redoc")
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)  # the docs do not depend on the database


def referenced_urls(html: str) -> list[str]:
    """Every URL the page loads by itself: scripts, style sheets, icons."""
    document = html5lib.parse(html, namespaceHTMLElements=False)
    urls = [element.get("src") for element in document.iter("script") if element.get("src")]
    urls += [element.get("href") for element in document.iter("link")]
    return urls


@pytest.mark.parametrize("path", DOC_PAGES)
async def test_the_docs_load_only_assets_of_this_server(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # No absolute URL at all: no CDN, no web fonts, no favicon from elsewhere.
    assert "http" not in page.text
    urls = referenced_urls(page.text)
    assert {Path(url).suffix for url in urls} >= {".js", ".png"}
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url  # a path on this server
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[Path(url).suffix]), url
        assert len(asset.content) > 500, url


async def test_swagger_ui_is_given_the_schema_and_its_own_style_sheet(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/docs")).text
    assert "url: '/openapi.json'" in html
    assert "/docs/swagger-ui.css" in referenced_urls(html)
    script = await client.get("/docs/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in script.content


async def test_redoc_finds_its_logo_here_not_on_its_makers_site(
    client: httpx.AsyncClient,
) -> None:
    script = (await client.get("/redoc/redoc.standalone.js")).content
    assert b"cdn.redoc.ly" not in script
    # The build asks for the logo at the page's own path.
    assert b'window.location.pathname+"/logo-mini.svg"' in script
    logo = await client.get("/redoc/logo-mini.svg")
    assert logo.status_code == 200
    assert logo.headers["content-type"].startswith("image/svg+xml")


async def test_the_licences_of_the_served_ui_code_are_served_beside_it(
    client: httpx.AsyncClient,
) -> None:
    swagger = await client.get("/docs/LICENSE")
    assert swagger.status_code == 200 and "Apache License" in swagger.text
    redoc = await client.get("/redoc/redoc.standalone.js.LICENSE.txt")
    assert redoc.status_code == 200 and "ReDoc" in redoc.text and "MIT" in redoc.text


async def test_no_oauth2_redirect_page_is_served_for_bearer_tokens(
    client: httpx.AsyncClient,
) -> None:
    assert "oauth2RedirectUrl" not in (await client.get("/docs")).text
    assert (await client.get("/docs/oauth2-redirect")).status_code == 404
