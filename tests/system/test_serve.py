"""`bulletin serve`: the real server process, as a deployment starts it."""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.databases import fresh_database
from tests.support.servers import ServerProcess

API_PATHS = {
    "/api/v1/blogs",
    "/api/v1/blogs/{slug}",
    "/api/v1/blogs/{slug}/entries",
    "/api/v1/blogs/{slug}/entries/{entry_id}",
    "/api/v1/blogs/{slug}/events",
    "/api/v1/tokens",
}
HEALTH_PATHS = {"/healthz", "/readyz", "/metrics"}
ERROR_SCHEMA = "#/components/schemas/ErrorPublic"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running `bulletin serve` on a fresh SQLite file it migrates itself, started from
    another directory; it counts as started once /healthz answers."""
    directory = tmp_path_factory.mktemp("serve")
    environment = {
        "BULLETIN_DATABASE_URL": f"sqlite:///{directory / 'bulletin.db'}",
        "BULLETIN_MIGRATE_ON_START": "1",
    }
    server = ServerProcess(
        environment, directory / "server.log", ready_path="/healthz", cwd=directory
    )
    with server:
        yield server.http


@pytest.fixture(scope="module")
def openapi(base_url: str) -> dict:
    response = httpx.get(f"{base_url}/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_readyz_is_ready_once_the_server_answers(base_url: str) -> None:
    response = httpx.get(f"{base_url}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_serve_migrates_the_database_on_start(base_url: str) -> None:
    response = httpx.get(f"{base_url}/api/v1/blogs")
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


def test_docs_page_is_html(base_url: str) -> None:
    response = httpx.get(f"{base_url}/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


def test_openapi_lists_every_api_resource(openapi: dict) -> None:
    assert set(openapi["paths"]) >= API_PATHS | HEALTH_PATHS


def _operations(openapi: dict) -> Iterator[tuple[str, str, dict]]:
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def _error_schema(response: dict) -> str | None:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def test_every_api_operation_documents_its_errors_with_the_error_schema(openapi: dict) -> None:
    undocumented = [
        f"{method} {path}"
        for path, method, operation in _operations(openapi)
        if path not in HEALTH_PATHS
        and not any(
            status.startswith("4") and _error_schema(response) == ERROR_SCHEMA
            for status, response in operation["responses"].items()
        )
    ]
    assert undocumented == []


def test_every_documented_client_error_uses_the_error_schema(openapi: dict) -> None:
    mismatched = [
        f"{method} {path} {status}"
        for path, method, operation in _operations(openapi)
        for status, response in operation["responses"].items()
        if status.startswith("4") and _error_schema(response) != ERROR_SCHEMA
    ]
    assert mismatched == []


def test_serve_believes_forwarded_addresses_only_from_the_configured_proxies(
    request: pytest.FixtureRequest, tmp_path: Path, serve: Callable[..., ServerProcess]
) -> None:
    env = {
        "BULLETIN_DATABASE_URL": fresh_database("sqlite", request, tmp_path),
        "BULLETIN_RATE_LIMIT_READS": "2/minute",
        # Not this test's address: its X-Forwarded-For headers must be ignored.
        "BULLETIN_FORWARDED_ALLOW_IPS": "192.0.2.1",
    }
    server = serve(env)
    statuses = [
        httpx.get(
            f"{server.http}/api/v1/blogs", headers={"X-Forwarded-For": f"198.51.100.{n}"}
        ).status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]
