"""Browser hardening headers on every kind of answer (security review L3).

tests/browser/test_csp.py shows in Chromium that the pages work under these policies.
"""

import base64
import hashlib
import re
from pathlib import Path

import html5lib
import httpx
import pytest

from tests.support.databases import fresh_database
from tests.support.factories import ADMIN

SCRIPTS_ONLY_FROM_HERE = ["'self'"]


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database("sqlite", request, tmp_path)  # headers do not depend on the database


def policy(response: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy of an answer, directive by directive."""
    header = response.headers.get("content-security-policy")
    assert header is not None, f"{response.request.url} has no Content-Security-Policy"
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


def assert_common(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff", response.request.url
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


async def answers(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    entry = await client.post(
        "/api/v1/blogs/vote-night/entries", json={"body": "<p>Polls open.</p>"}, headers=ADMIN
    )
    assert entry.status_code == 201
    paths = {
        "page": "/blogs/vote-night",
        "page-404": "/blogs/no-such-blog",
        "embed": "/blogs/vote-night/embed",
        "newsroom": "/newsroom",
        "api": "/api/v1/blogs/vote-night/entries",
        "api-404": "/api/v1/blogs/no-such-blog",
        "feed": "/blogs/vote-night/feed.atom",
        "script": "/static/bulletin.js",
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/openapi.json",
        "health": "/healthz",
    }
    return {name: await client.get(path) for name, path in paths.items()}


async def test_every_answer_says_nosniff_and_a_referrer_policy(
    client: httpx.AsyncClient, blog: dict
) -> None:
    for response in (await answers(client)).values():
        assert_common(response)
    # Answers made before routing carry them as well: a refused method, a CORS preflight.
    assert_common(await client.post("/blogs/vote-night"))
    assert_common(
        await client.options(
            "/api/v1/blogs",
            headers={"Origin": "https://partner.example", "Access-Control-Request-Method": "GET"},
        )
    )


async def test_pages_run_only_this_servers_scripts(client: httpx.AsyncClient, blog: dict) -> None:
    got = await answers(client)
    for name in ("page", "page-404", "embed", "newsroom"):
        directives = policy(got[name])
        assert directives["script-src"] == SCRIPTS_ONLY_FROM_HERE, name
        assert directives["style-src"] == ["'self'"], name
        assert directives["object-src"] == ["'none'"], name
        assert directives["base-uri"] == ["'none'"], name
    page = policy(got["page"])
    # Photos and videos of entries come from wherever the newsroom links them; streams
    # and the client's probes go to this server only.
    assert "https:" in page["img-src"] and "https:" in page["media-src"]
    assert page["connect-src"] == ["'self'"]
    # Partners may frame a reader page (it holds nothing of the reader's).
    assert "frame-ancestors" not in page


async def test_the_newsroom_cannot_be_framed_and_its_preview_is_sandboxed(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/newsroom")
    directives = policy(response)
    assert directives["frame-ancestors"] == ["'none'"]
    assert response.headers["x-frame-options"] == "DENY"
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-src"] == ["'self'"]
    document = html5lib.parse(response.text, namespaceHTMLElements=False)
    [preview] = document.findall(".//iframe[@data-preview]")
    # Scripts run in it, but in an origin of its own: not this tab's sessionStorage.
    assert preview.get("sandbox") == "allow-scripts"


async def test_the_api_docs_may_run_only_this_servers_scripts_and_swagger_uis_own_start(
    client: httpx.AsyncClient,
) -> None:
    swagger_ui = await client.get("/docs")
    swagger = policy(swagger_ui)
    # The one inline script of FastAPI's Swagger UI page, by its hash: no other inline script.
    [inline] = re.findall(r"<script>(.*?)</script>", swagger_ui.text, re.S)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert swagger["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert swagger["style-src"] == ["'self'"]
    redoc = policy(await client.get("/redoc"))
    assert redoc["script-src"] == ["'self'"]
    assert redoc["style-src"] == ["'self'", "'unsafe-inline'"]  # ReDoc styles as it renders
    for directives in (swagger, redoc):
        assert directives["default-src"] == ["'none'"]
        assert directives["connect-src"] == ["'self'"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert not any("http" in source for sources in directives.values() for source in sources)


@pytest.mark.parametrize("name", ["api", "api-404", "feed", "openapi", "health"])
async def test_data_answers_run_nothing_if_a_browser_renders_them(
    client: httpx.AsyncClient, blog: dict, name: str
) -> None:
    directives = policy((await answers(client))[name])
    assert directives == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}


async def test_static_files_carry_no_policy_of_their_own(
    client: httpx.AsyncClient,
) -> None:
    # A policy on a script or a style sheet does nothing; the page's applies to it.
    response = await client.get("/static/bulletin.js")
    assert "content-security-policy" not in response.headers
    assert response.headers["content-type"].startswith("text/javascript")


async def test_answers_from_the_read_cache_carry_the_same_headers(
    client: httpx.AsyncClient, blog: dict
) -> None:
    first = await client.get("/blogs/vote-night")
    again = await client.get("/blogs/vote-night", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert_common(again)
    # A 304 updates the stored copy's headers: it must not give a page another policy.
    assert "content-security-policy" not in again.headers
    repeat = await client.get("/blogs/vote-night")
    assert repeat.headers["content-security-policy"] == first.headers["content-security-policy"]
