"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), whole from here.

FastAPI's own pages load Swagger UI, ReDoc, a favicon and Google Fonts from the internet: on
a newsroom's internal network, or a laptop on a train, `/docs` is a blank page. These are the
same pages, made by FastAPI's helpers as its guide to self-hosting them describes, with every
asset served by Bulletin: the dist files of Swagger UI and ReDoc (and FastAPI's favicon) come,
with their licences, from the `fastapi-standalone-docs` package. Only its files are used: its
`StandaloneDocs` replaces FastAPI's helpers in FastAPI's own module, for every app.

Each UI's files are served below its page (`/docs/swagger-ui-bundle.js`, `/redoc/...`): the
ReDoc build looks for its logo at the page's path plus `/logo-mini.svg`.

The pages do not depend on the request (no root path, no host), so they are built once, and
the hash of the one inline script FastAPI's Swagger UI page has is known in advance: the
page's Content-Security-Policy (app/main.py) allows that script and no other.
"""

import base64
import hashlib
import re

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

# Folders of the package that ships the assets (it has no type information to import).
ASSETS_PACKAGE = "fastapi_standalone_docs"
OPENAPI_URL = "/openapi.json"
SWAGGER_UI_PATH = "/docs"
REDOC_PATH = "/redoc"
FAVICON_URL = f"{SWAGGER_UI_PATH}/fastapi/favicon.png"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)

router = APIRouter(include_in_schema=False)


def _body(response: HTMLResponse) -> bytes:
    return bytes(response.body)


SWAGGER_UI_PAGE = _body(
    get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title="Bulletin - Swagger UI",
        swagger_js_url=f"{SWAGGER_UI_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI_PATH}/swagger-ui.css",
        swagger_favicon_url=FAVICON_URL,
        # Tokens are bearer tokens: no OAuth2 flow, so no redirect page to serve.
        oauth2_redirect_url=None,
    )
)
REDOC_PAGE = _body(
    get_redoc_html(
        openapi_url=OPENAPI_URL,
        title="Bulletin - ReDoc",
        redoc_js_url=f"{REDOC_PATH}/redoc.standalone.js",
        redoc_favicon_url=FAVICON_URL,
        with_google_fonts=False,
    )
)


def inline_script_sources(page: bytes) -> str:
    """CSP sources (`'sha256-...'`) for exactly the inline scripts of `page`."""
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )


SWAGGER_UI_SCRIPTS = inline_script_sources(SWAGGER_UI_PAGE)


@router.get(SWAGGER_UI_PATH)
async def read_swagger_ui() -> HTMLResponse:
    """Swagger UI over /openapi.json, every asset from this server."""
    return HTMLResponse(SWAGGER_UI_PAGE)


@router.get(REDOC_PATH)
async def read_redoc() -> HTMLResponse:
    """ReDoc over /openapi.json, every asset from this server."""
    return HTMLResponse(REDOC_PAGE)


def install_docs(app: FastAPI) -> None:
    """The two pages and their assets; the app is made with `docs_url=None, redoc_url=None`."""
    app.include_router(router)
    # The favicon's folder first: the Swagger UI folder's mount would take its path too.
    app.mount(f"{SWAGGER_UI_PATH}/fastapi", _assets("static/fastapi"))
    app.mount(SWAGGER_UI_PATH, _assets("static/swagger"))
    app.mount(REDOC_PATH, _assets("static/redoc"))


def _assets(folder: str) -> StaticFiles:
    return StaticFiles(packages=[(ASSETS_PACKAGE, folder)])
