"""`If-None-Match: *` is current only when there is a representation (RFC 9110 13.1.2):
an entry that does not exist, or that the public cannot see, is 404 (security review I3)."""

import httpx

from tests.support.factories import ADMIN

ENTRIES = "/api/v1/blogs/vote-night/entries"
ANY = {"If-None-Match": "*"}


async def test_any_for_an_entry_that_does_not_exist_is_not_found(
    client: httpx.AsyncClient, blog: dict
) -> None:
    response = await client.get(f"{ENTRIES}/999", headers=ANY)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    # Asked again (the read cache may remember answers by URL): still 404.
    assert (await client.get(f"{ENTRIES}/999", headers=ANY)).status_code == 404


async def test_any_for_a_draft_or_a_deleted_entry_is_not_found(
    client: httpx.AsyncClient, blog: dict
) -> None:
    draft = await client.post(
        ENTRIES, json={"body": "<p>Not yet</p>", "status": "draft"}, headers=ADMIN
    )
    gone = await client.post(ENTRIES, json={"body": "<p>Soon gone</p>"}, headers=ADMIN)
    assert draft.status_code == gone.status_code == 201
    assert (await client.delete(f"{ENTRIES}/{gone.json()['id']}", headers=ADMIN)).status_code == 204
    for entry in (draft.json(), gone.json()):
        assert (await client.get(f"{ENTRIES}/{entry['id']}", headers=ANY)).status_code == 404


async def test_any_for_an_entry_that_exists_is_not_modified(
    client: httpx.AsyncClient, blog: dict
) -> None:
    entry = (await client.post(ENTRIES, json={"body": "<p>Here</p>"}, headers=ADMIN)).json()
    response = await client.get(f"{ENTRIES}/{entry['id']}", headers=ANY)
    assert response.status_code == 304
    assert response.content == b""
    assert "etag" in response.headers
    # And then from the read cache, before routing: still 304, and a plain GET gets the entry.
    assert (await client.get(f"{ENTRIES}/{entry['id']}", headers=ANY)).status_code == 304
    again = await client.get(f"{ENTRIES}/{entry['id']}")
    assert again.status_code == 200
    assert again.json()["id"] == entry["id"]


async def test_any_for_a_page_of_a_blog_that_does_not_exist_is_not_found(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/blogs/no-such-blog", headers=ANY)).status_code == 404
    assert (await client.get("/api/v1/blogs/no-such-blog/entries", headers=ANY)).status_code == 404
