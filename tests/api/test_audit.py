"""The audit log: every change records its actor (user and token), address, time, action
and the fields changed; owners read their blog's, admins everything; no actor ever
reaches a public payload, feed or page."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.config import Settings
from app.models import Event
from tests.support.clients import asgi_client
from tests.support.errors import assert_error
from tests.support.factories import (
    ADMIN,
    create_blog,
    publish_entry,
    webhook_settings,
)
from tests.support.people import Person, add_person
from tests.support.webhook_receiver import new_signing_secret

BLOG = "/api/v1/blogs/vote-night"
ENTRIES = f"{BLOG}/entries"
AUDIT = f"{BLOG}/audit"
ADDRESS = "198.51.100.23"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return webhook_settings(database_url)  # webhooks are among the actions


@pytest.fixture
async def remote(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from ADDRESS."""
    async with asgi_client(app, host=ADDRESS) as client:
        yield client


async def records(client: httpx.AsyncClient, path: str = AUDIT, **params) -> list[dict]:
    response = await client.get(path, params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def actions(items: list[dict]) -> list[str]:
    return [item["action"] for item in reversed(items)]


async def test_a_review_is_recorded_with_each_actor_its_token_and_address(
    app: FastAPI, client: httpx.AsyncClient, remote: httpx.AsyncClient, blog: dict
) -> None:
    cora = await add_person(app, "Cora Lind", role="contributor")
    eddie = await add_person(app, "Eddie Grant", role="editor")
    entry = await publish_entry(remote, headers=cora.headers, headline="Turnout", status="draft")
    path = f"{ENTRIES}/{entry['id']}"
    steps: list[tuple[Person, dict]] = [
        (cora, {"status": "submitted"}),
        (eddie, {"status": "returned", "review_note": "Source?"}),
        (cora, {"status": "submitted", "headline": "Turnout, says the office"}),
        (eddie, {"status": "published"}),
        (eddie, {"pinned": True}),
        (eddie, {"body": "<p>71%</p>"}),
    ]
    for who, body in steps:
        response = await remote.patch(path, json=body, headers=who.headers)
        assert response.status_code == 200, response.text
    assert (await remote.delete(path, headers=eddie.headers)).status_code == 204

    items = await records(client)
    assert actions(items) == [
        "blog.created",
        "member.added",  # Cora and Eddie, made members by the test (as "system")
        "member.added",
        "entry.drafted",
        "entry.submitted",
        "entry.returned",
        "entry.submitted",
        "entry.approved",
        "entry.pinned",
        "entry.edited",
        "entry.deleted",
    ]
    by_action = {item["action"]: item for item in reversed(items)}  # the newest of each
    submitted, returned = by_action["entry.submitted"], by_action["entry.returned"]
    assert (submitted["actor_user_id"], submitted["actor_token_id"]) == (
        cora.user_id, cora.token_id,
    )  # fmt: skip
    assert (returned["actor_user_id"], returned["actor_token_id"]) == (
        eddie.user_id, eddie.token_id,
    )  # fmt: skip
    changes = [item for item in items if item["action"].startswith("entry.")]
    assert all(item["address"] == ADDRESS and item["via"] == "token" for item in changes)
    assert all(item["blog"] == "vote-night" for item in items)
    assert returned["details"]["review_note"] == "Source?"
    assert returned["details"]["status"] == {"from": "submitted", "to": "returned"}
    assert "headline" in submitted["details"]["fields"]
    approved = by_action["entry.approved"]
    assert (approved["entry_id"], approved["seq"]) == (entry["id"], 1)
    assert by_action["entry.edited"]["details"]["fields"] == ["body_html"]
    assert "71%" not in json.dumps(items)  # fields are named, never their text
    assert items[0]["at"] >= items[-1]["at"]


async def test_a_direct_publish_and_an_unpin_are_recorded_with_actor_token_and_address(
    app: FastAPI, client: httpx.AsyncClient, remote: httpx.AsyncClient, blog: dict
) -> None:
    eddie = await add_person(app, "Eddie Grant", role="editor")
    entry = await publish_entry(remote, headers=eddie.headers, headline="Polls close", pinned=True)
    path = f"{ENTRIES}/{entry['id']}"
    unpinned = await remote.patch(path, json={"pinned": False}, headers=eddie.headers)
    assert unpinned.status_code == 200, unpinned.text

    items = await records(client)
    assert actions(items)[-2:] == ["entry.published", "entry.unpinned"]
    published, unpin = items[1], items[0]
    for record in (published, unpin):
        assert (record["actor_user_id"], record["actor_token_id"]) == (
            eddie.user_id, eddie.token_id,
        )  # fmt: skip
        assert (record["address"], record["via"]) == (ADDRESS, "token")
        assert (record["blog"], record["entry_id"]) == ("vote-night", entry["id"])
    # Each points at the change-log event readers received for it.
    assert (published["seq"], unpin["seq"]) == (1, 2)
    assert published["details"] == {"status": "published", "pinned": True}
    log = (await client.get(f"{BLOG}/events?since=0")).json()["items"]
    assert [event["type"] for event in log] == ["entry.created", "entry.unpinned"]


async def test_members_webhooks_tokens_users_and_blog_changes_are_recorded(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    secret = new_signing_secret()
    sam = await add_person(app, "Sam Vale")
    member = f"{BLOG}/members/{sam.user_id}"
    calls = [
        ("PUT", member, {"role": "contributor"}),
        ("PUT", member, {"role": "editor"}),
        ("DELETE", member, None),
        ("POST", f"{BLOG}/webhooks", {"url": "http://127.0.0.1:9/in", "secret": secret}),
        ("PATCH", BLOG, {"title": "Vote night, all night"}),
        ("PATCH", BLOG, {"status": "ended"}),
        ("PATCH", BLOG, {"status": "live"}),
        ("PATCH", f"{BLOG}/settings", {"contributors_may_publish": True}),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=ADMIN)
        assert response.status_code < 300, response.text
    hook = (await client.get(f"{BLOG}/webhooks", headers=ADMIN)).json()[0]
    new_secret = new_signing_secret()
    hook_path = f"{BLOG}/webhooks/{hook['id']}"
    await client.patch(hook_path, json={"secret": new_secret, "active": False}, headers=ADMIN)
    await client.delete(hook_path, headers=ADMIN)
    items = await records(client)
    assert actions(items)[1:] == [
        "member.added",
        "member.changed",
        "member.removed",
        "webhook.created",
        "blog.updated",
        "blog.ended",
        "blog.reopened",
        "blog.settings_changed",
        "webhook.updated",
        "webhook.deleted",
    ]
    by_action = {item["action"]: item for item in items}
    assert by_action["member.changed"]["details"] == {
        "user_id": sam.user_id, "role": {"from": "contributor", "to": "editor"},
    }  # fmt: skip
    assert by_action["webhook.updated"]["details"]["fields"] == ["active", "secret"]
    assert by_action["blog.updated"]["details"]["fields"] == ["title"]
    assert by_action["blog.settings_changed"]["details"]["contributors_may_publish"] == {
        "from": False, "to": True,
    }  # fmt: skip
    assert secret not in json.dumps(items) and new_secret not in json.dumps(items)
    environment = items[0]["actor_token_id"]
    assert environment is not None and all(i["actor_user_id"] is None for i in items)

    # Token and user changes belong to no blog: the admins' audit has them.
    created = await client.post(
        "/api/v1/tokens", json={"name": "wire", "user_id": sam.user_id}, headers=ADMIN
    )
    await client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=ADMIN)
    password = "a brand new passphrase"
    await client.patch(
        f"/api/v1/users/{sam.user_id}", json={"password": password, "admin": True}, headers=ADMIN
    )
    everything = await records(client, "/api/v1/audit")
    assert actions(everything)[-3:] == ["token.created", "token.revoked", "user.updated"]
    user_change = everything[0]
    assert user_change["details"]["fields"] == ["admin", "password"]
    assert user_change["details"]["admin"] == {"from": False, "to": True}
    assert user_change["blog"] is None
    assert password not in json.dumps(everything)
    assert everything[1]["details"]["token_id"] == created.json()["id"]
    assert created.json()["secret"] not in json.dumps(everything)


async def test_the_audit_is_paged_newest_first_with_cursors(
    client: httpx.AsyncClient, blog: dict
) -> None:
    for number in range(5):
        await publish_entry(client, headline=f"Update {number}")
    first = (await client.get(AUDIT, params={"limit": 4}, headers=ADMIN)).json()
    second = (
        await client.get(AUDIT, params={"limit": 4, "before": first["next_cursor"]}, headers=ADMIN)
    ).json()
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 6
    assert second["next_cursor"] is None
    refused = await client.get(AUDIT, params={"before": "yesterday"}, headers=ADMIN)
    assert_error(refused, 400, "invalid_cursor")


async def test_owners_read_their_blogs_audit_and_only_admins_everything(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    await create_blog(client, "count-day", "Count day")
    owner = await add_person(app, "Olu Bello", role="owner")
    editor = await add_person(app, "Eddie Grant", role="editor")
    assert {i["blog"] for i in await records(client)} == {"vote-night"}
    own = await client.get(AUDIT, headers=owner.headers)
    assert own.status_code == 200 and {i["blog"] for i in own.json()["items"]} == {"vote-night"}
    assert_error(await client.get(AUDIT, headers=editor.headers), 403, "forbidden")
    other = await client.get("/api/v1/blogs/count-day/audit", headers=owner.headers)
    assert_error(other, 403, "forbidden")
    assert_error(await client.get("/api/v1/audit", headers=owner.headers), 403, "forbidden")
    assert_error(await client.get(AUDIT), 401, "unauthorised")


async def test_each_change_log_row_keeps_its_actor_which_no_public_answer_shows(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    eddie = await add_person(app, "Eddie Grant", role="editor")
    entry = await publish_entry(client, headers=eddie.headers, headline="Polls close")
    await client.patch(f"{ENTRIES}/{entry['id']}", json={"headline": "Polls closed"}, headers=ADMIN)
    async with app.state.services.database.read_session() as session:
        rows = (await session.execute(select(Event).order_by(Event.seq))).scalars().all()
    assert (rows[0].actor_user_id, rows[0].actor_token_id) == (eddie.user_id, eddie.token_id)
    assert rows[1].actor_user_id is None and rows[1].actor_token_id is not None

    public = [
        (await client.get(f"{BLOG}/events?since=0")).text,
        (await client.get(ENTRIES)).text,
        (await client.get(f"{ENTRIES}/{entry['id']}")).text,
        (await client.get("/blogs/vote-night/feed.json")).text,
        (await client.get("/blogs/vote-night/feed.atom")).text,
        (await client.get("/blogs/vote-night")).text,
        (await client.get(BLOG)).text,
    ]
    for body in public:
        for marker in ("actor", "user_id", "created_by", "token_id", eddie.login, "review_note"):
            assert marker not in body
    for event in (await client.get(f"{BLOG}/events?since=0")).json()["items"]:
        # What readers may see of an edit (its "Updated" time, corrections) and nothing else.
        assert set(event["entry"]) - {"modified_at", "correction", "corrections"} == {
            "id", "blog", "headline", "body", "authors", "media", "key_event", "pinned",
            "status", "published_at", "created_at", "updated_at", "version",
        }  # fmt: skip
