import httpx
from fastapi import FastAPI

from app.config import Settings
from tests.support.clients import asgi_client
from tests.support.factories import ADMIN, ADMIN_TOKEN
from tests.support.servers import running_app

TOKENS = "/api/v1/tokens"


async def test_admin_creates_a_token_whose_secret_is_shown_once(client: httpx.AsyncClient) -> None:
    response = await client.post(
        TOKENS, json={"name": "wire desk", "scope": "publish"}, headers=ADMIN
    )
    assert response.status_code == 201
    created = response.json()
    assert created["secret"].startswith("bltn_")
    assert created["secret"].startswith(created["prefix"])
    listed = (await client.get(TOKENS, headers=ADMIN)).json()
    assert [t["name"] for t in listed if t["id"] == created["id"]] == ["wire desk"]
    assert all("secret" not in token for token in listed)
    assert created["secret"] not in str(listed)


async def test_a_new_publish_token_can_post_entries_but_not_create_blogs(
    client: httpx.AsyncClient, blog: dict
) -> None:
    created = (
        await client.post(TOKENS, json={"name": "app", "scope": "publish"}, headers=ADMIN)
    ).json()
    headers = {"Authorization": f"Bearer {created['secret']}"}
    entry = await client.post(
        "/api/v1/blogs/vote-night/entries", json={"body": "x"}, headers=headers
    )
    assert entry.status_code == 201
    new_blog = await client.post("/api/v1/blogs", json={"slug": "b", "title": "B"}, headers=headers)
    assert new_blog.status_code == 403
    assert (await client.get(TOKENS, headers=headers)).status_code == 403


async def test_a_revoked_token_stops_working_at_once(client: httpx.AsyncClient, blog: dict) -> None:
    created = (
        await client.post(TOKENS, json={"name": "old", "scope": "publish"}, headers=ADMIN)
    ).json()
    revoked = await client.delete(f"{TOKENS}/{created['id']}", headers=ADMIN)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = await client.post(
        "/api/v1/blogs/vote-night/entries",
        json={"body": "x"},
        headers={"Authorization": f"Bearer {created['secret']}"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorised"


async def test_changing_the_environment_admin_token_retires_the_old_one(
    app: FastAPI, database_url: str
) -> None:
    replacement = "bltn_rotated-admin-token-abcdefghijklmnop"
    rotated = Settings(database_url=database_url, admin_token=replacement)
    async with running_app(rotated) as application, asgi_client(application) as client:
        old = await client.get(TOKENS, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        new = await client.get(TOKENS, headers={"Authorization": f"Bearer {replacement}"})
    assert old.status_code == 401
    assert new.status_code == 200
