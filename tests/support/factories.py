"""What the tests make through the API, as a newsroom tool would: blogs, entries, tokens.

`create_blog` and `publish_entry` are for an async client (an app in this process or a
served one); `Newsroom` is the same over a blocking client, for tests that drive a
`bulletin serve` process from threads or plain functions.
"""

from typing import Any

import httpx

from app.config import Settings

# The admin token every test app and server is configured with.
ADMIN_TOKEN = "bltn_test-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# BULLETIN_SECRET_KEY for the apps that keep webhook secrets.
SECRET_KEY = "k3y-for-tests-only-9f8e7d6c5b4a3210zyxw"
SLUG = "vote-night"


def created(response: httpx.Response) -> dict:
    """The body of a 201 Created; anything else fails with the response's text."""
    assert response.status_code == 201, response.text
    return response.json()


async def create_blog(
    client: httpx.AsyncClient,
    slug: str = SLUG,
    title: str = "Vote night",
    *,
    headers: dict[str, str] = ADMIN,
    **fields: Any,
) -> dict:
    """Create a blog (as an admin, unless `headers` say otherwise) and return it."""
    body = {"slug": slug, "title": title, **fields}
    return created(await client.post("/api/v1/blogs", json=body, headers=headers))


async def publish_entry(
    client: httpx.AsyncClient, slug: str = SLUG, *, headers: dict[str, str] = ADMIN, **fields: Any
) -> dict:
    """Post an entry made of exactly `fields` to a blog and return it."""
    path = f"/api/v1/blogs/{slug}/entries"
    return created(await client.post(path, json=fields, headers=headers))


async def read_log(client: httpx.AsyncClient, slug: str, since: int = 0) -> list[dict]:
    """Every event of a blog's change log after `since`, following `next_since`."""
    events: list[dict] = []
    while True:
        page = (await client.get(f"/api/v1/blogs/{slug}/events?since={since}&limit=1000")).json()
        events += page["items"]
        if page["next_since"] == page["head"]:
            return events
        since = page["next_since"]


class Newsroom:
    """Writes to one blog over a blocking client, with the admin token."""

    def __init__(self, http: httpx.Client, slug: str = SLUG) -> None:
        self.http = http
        self.slug = slug
        self.entries = f"/api/v1/blogs/{slug}/entries"

    def create_blog(self, title: str, **fields: Any) -> dict:
        body = {"slug": self.slug, "title": title, **fields}
        return created(self.http.post("/api/v1/blogs", json=body, headers=ADMIN))

    def publish(self, **fields: Any) -> dict:
        return created(self.http.post(self.entries, json=fields, headers=ADMIN))

    def edit(self, entry_id: int, **fields: Any) -> dict:
        response = self.http.patch(f"{self.entries}/{entry_id}", json=fields, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.json()

    def delete(self, entry_id: int) -> None:
        response = self.http.delete(f"{self.entries}/{entry_id}", headers=ADMIN)
        assert response.status_code == 204, response.text

    def published_entries(self) -> dict[int, dict]:
        """Every published entry by id, read page by page."""
        entries: dict[int, dict] = {}
        cursor: str | None = None
        while True:
            params = {"limit": 100, **({"before": cursor} if cursor else {})}
            page = self.http.get(self.entries, params=params).json()
            entries.update({entry["id"]: entry for entry in page["items"]})
            if page["next_cursor"] is None:
                return entries
            cursor = page["next_cursor"]


def webhook_settings(database_url: str) -> Settings:
    """The suite's settings for an app that keeps webhooks: a key for their secrets, and
    receivers on the loopback allowed (no rate limits, as for every app of the suite)."""
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        webhook_allow_private_targets=True,
        rate_limit_enabled=False,
    )
