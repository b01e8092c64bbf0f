"""Every role and every action, on both databases: what is allowed succeeds, and what is
not is a 403 naming the missing role that writes nothing (every table reads the same).

The roles: a user with no role on the blog, a contributor, an editor, an owner, an admin
user, and a legacy `publish` token (an editor on every blog). The newsroom: the blog
vote-night with a published entry, and a draft and a submission of another contributor.
Each allowed action is read back as an admin to show it did what it says; each refused one
leaves every table as it was.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.people.roles import Principal
from app.schemas import EntryCreate
from tests.support.databases import stored_rows
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
WEBHOOKS = f"{BLOG}/webhooks"
HOOK_URL = "http://127.0.0.1:9/in"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return webhook_settings(database_url)  # webhooks are among the actions


@dataclass
class Newsroom:
    app: FastAPI
    client: httpx.AsyncClient
    role: str
    actor: Person | None  # None: the legacy publish token
    headers: dict[str, str]
    published: int
    others_draft: int
    others_submission: int
    contributor: Person
    outsider: Person

    async def own_entry(self, status: str) -> int:
        """An entry the actor wrote, in `status` (written as the actor, past the checks)."""
        assert self.actor is not None
        writer = Principal(via="system", user_id=self.actor.user_id, is_admin=True)
        body = EntryCreate(headline=f"Mine, {status}", status=status)
        entry, _ = await self.app.state.services.publisher.create_entry(
            "vote-night", body, actor=writer
        )
        return entry.id

    async def as_admin(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        """What the installation's admin does or sees, to set a scene or check on one."""
        return await self.client.request(method, path, json=body, headers=ADMIN)

    async def read(self, path: str) -> httpx.Response:
        return await self.as_admin("GET", path)

    async def pinned_entry(self) -> int:
        return (await publish_entry(self.client, headline="Live: every result", pinned=True))["id"]

    async def webhook(self) -> int:
        body = {"url": HOOK_URL, "secret": new_signing_secret()}
        response = await self.as_admin("POST", WEBHOOKS, body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def token(self) -> int:
        token, _secret = await self.app.state.services.tokens.create(
            "wire", user_id=self.outsider.user_id
        )
        return token.id


Request = tuple[str, str, dict | None]
Action = Callable[[Newsroom], Awaitable[Request]]


async def write_draft(desk: Newsroom) -> Request:
    return "POST", ENTRIES, {"headline": "Draft", "status": "draft"}


async def submit_entry(desk: Newsroom) -> Request:
    return "POST", ENTRIES, {"headline": "For review", "status": "submitted"}


async def publish(desk: Newsroom) -> Request:
    return "POST", ENTRIES, {"headline": "Live"}


async def pin(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{desk.published}", {"pinned": True}


async def unpin(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{await desk.pinned_entry()}", {"pinned": False}


async def edit_own_draft(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{await desk.own_entry('draft')}", {"headline": "Better"}


async def submit_own_draft(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{await desk.own_entry('draft')}", {"status": "submitted"}


async def withdraw_own_submission(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{await desk.own_entry('submitted')}", {"status": "draft"}


async def delete_own_draft(desk: Newsroom) -> Request:
    return "DELETE", f"{ENTRIES}/{await desk.own_entry('draft')}", None


async def edit_own_published(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{await desk.own_entry('published')}", {"headline": "Better"}


async def delete_own_published(desk: Newsroom) -> Request:
    return "DELETE", f"{ENTRIES}/{await desk.own_entry('published')}", None


async def edit_others_draft(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{desk.others_draft}", {"headline": "Mine now"}


async def delete_others_draft(desk: Newsroom) -> Request:
    return "DELETE", f"{ENTRIES}/{desk.others_draft}", None


async def edit_published(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{desk.published}", {"headline": "Corrected"}


async def delete_published(desk: Newsroom) -> Request:
    return "DELETE", f"{ENTRIES}/{desk.published}", None


async def approve(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{desk.others_submission}", {"status": "published"}


async def return_submission(desk: Newsroom) -> Request:
    body = {"status": "returned", "review_note": "Who is the source?"}
    return "PATCH", f"{ENTRIES}/{desk.others_submission}", body


async def read_queue(desk: Newsroom) -> Request:
    return "GET", f"{ENTRIES}?status=submitted", None


async def end_coverage(desk: Newsroom) -> Request:
    return "PATCH", BLOG, {"status": "ended"}


async def reopen_coverage(desk: Newsroom) -> Request:
    ended = await desk.as_admin("PATCH", BLOG, {"status": "ended"})
    assert ended.status_code == 200, ended.text
    return "PATCH", BLOG, {"status": "live"}


async def retitle_blog(desk: Newsroom) -> Request:
    return "PATCH", BLOG, {"title": "Vote night, all night"}


async def let_contributors_publish(desk: Newsroom) -> Request:
    return "PATCH", f"{BLOG}/settings", {"contributors_may_publish": True}


async def add_member(desk: Newsroom) -> Request:
    return "PUT", f"{BLOG}/members/{desk.outsider.user_id}", {"role": "contributor"}


async def read_member(desk: Newsroom) -> Request:
    return "GET", f"{BLOG}/members/{desk.contributor.user_id}", None


async def remove_member(desk: Newsroom) -> Request:
    return "DELETE", f"{BLOG}/members/{desk.contributor.user_id}", None


async def list_webhooks(desk: Newsroom) -> Request:
    await desk.webhook()
    return "GET", WEBHOOKS, None


async def create_webhook(desk: Newsroom) -> Request:
    return "POST", WEBHOOKS, {"url": HOOK_URL, "secret": new_signing_secret()}


async def pause_webhook(desk: Newsroom) -> Request:
    return "PATCH", f"{WEBHOOKS}/{await desk.webhook()}", {"active": False}


async def delete_webhook(desk: Newsroom) -> Request:
    return "DELETE", f"{WEBHOOKS}/{await desk.webhook()}", None


async def read_audit(desk: Newsroom) -> Request:
    return "GET", f"{BLOG}/audit", None


async def read_global_audit(desk: Newsroom) -> Request:
    return "GET", "/api/v1/audit", None


async def create_blog_action(desk: Newsroom) -> Request:
    return "POST", "/api/v1/blogs", {"slug": "count-day", "title": "Count day"}


async def create_token(desk: Newsroom) -> Request:
    return "POST", "/api/v1/tokens", {"name": "wire", "scope": "publish"}


async def revoke_token(desk: Newsroom) -> Request:
    return "DELETE", f"/api/v1/tokens/{await desk.token()}", None


async def create_user(desk: Newsroom) -> Request:
    body = {"name": "Nia Obi", "login": "nia@news.test", "password": "a long passphrase"}
    return "POST", "/api/v1/users", body


# --- what an allowed action is seen to have done, read back as an admin ---------------

Check = Callable[[Newsroom, str, httpx.Response], Awaitable[None]]


def entry_is(**fields: object) -> Check:
    """The entry the action changed (or wrote) now has these fields."""

    async def check(desk: Newsroom, path: str, response: httpx.Response) -> None:
        if response.request.method == "POST":
            path = f"{ENTRIES}/{response.json()['id']}"
        stored = (await desk.read(path)).json()
        assert {name: stored[name] for name in fields} == fields, stored

    return check


async def entry_is_gone(desk: Newsroom, path: str, response: httpx.Response) -> None:
    assert_error(await desk.read(path), 404, "not_found")


async def published_for_readers(desk: Newsroom, path: str, response: httpx.Response) -> None:
    public = (await desk.client.get(ENTRIES)).json()["items"]
    assert response.json()["id"] in [entry["id"] for entry in public]


async def queue_shows_the_submission(desk: Newsroom, path: str, response: httpx.Response) -> None:
    """Editors see every submission; a contributor only its own (here: none)."""
    expected = [] if desk.role == "contributor" else [desk.others_submission]
    assert [entry["id"] for entry in response.json()["items"]] == expected


def blog_is(path: str = BLOG, **fields: object) -> Check:
    async def check(desk: Newsroom, _path: str, response: httpx.Response) -> None:
        stored = (await desk.read(path)).json()
        assert {name: stored[name] for name in fields} == fields, stored

    return check


async def member_added(desk: Newsroom, path: str, response: httpx.Response) -> None:
    assert (await desk.read(path)).json()["role"] == "contributor"


async def member_shown(desk: Newsroom, path: str, response: httpx.Response) -> None:
    member = response.json()
    assert (member["user_id"], member["role"]) == (desk.contributor.user_id, "contributor")


async def member_removed(desk: Newsroom, path: str, response: httpx.Response) -> None:
    assert_error(await desk.read(path), 404, "not_found")


async def webhooks_listed(desk: Newsroom, path: str, response: httpx.Response) -> None:
    assert [hook["url"] for hook in response.json()] == [HOOK_URL]


async def webhook_registered(desk: Newsroom, path: str, response: httpx.Response) -> None:
    assert [hook["id"] for hook in (await desk.read(WEBHOOKS)).json()] == [response.json()["id"]]


async def webhook_paused(desk: Newsroom, path: str, response: httpx.Response) -> None:
    assert (await desk.read(path)).json()["active"] is False


async def webhook_deleted(desk: Newsroom, path: str, response: httpx.Response) -> None:
    assert_error(await desk.read(path), 404, "not_found")


def audit_has(action: str) -> Check:
    async def check(desk: Newsroom, path: str, response: httpx.Response) -> None:
        assert action in [record["action"] for record in response.json()["items"]]

    return check


async def blog_created(desk: Newsroom, path: str, response: httpx.Response) -> None:
    assert (await desk.client.get(f"{path}/count-day")).json()["title"] == "Count day"


async def token_listed(desk: Newsroom, path: str, response: httpx.Response) -> None:
    listed = {token["id"]: token for token in (await desk.read(path)).json()}
    assert listed[response.json()["id"]]["revoked_at"] is None


async def token_revoked(desk: Newsroom, path: str, response: httpx.Response) -> None:
    listed = {token["id"]: token for token in (await desk.read("/api/v1/tokens")).json()}
    assert listed[response.json()["id"]]["revoked_at"] is not None


async def user_created(desk: Newsroom, path: str, response: httpx.Response) -> None:
    assert "nia@news.test" in [user["login"] for user in (await desk.read(path)).json()]


EDITORS = {"editor", "owner", "admin", "publish"}
WRITERS = {"contributor"} | EDITORS
OWNERS = {"owner", "admin"}
ADMINS = {"admin"}
ROLES = ["nobody", "contributor", "editor", "owner", "admin", "publish"]
# Action: (the role it needs, the roles that may do it, what it is seen to have done).
# Actions on the actor's own entries are not asked of the legacy token, which has no user
# and so owns none. A user with no role on the blog is told of the contributor role for
# any change of an entry: the entry is not looked at for it (see the test below).
# A contributor changes its own entries only while they are unpublished; once out, an
# entry is an editor's to correct or take down.
ACTIONS: dict[Action, tuple[str, set[str], Check]] = {
    write_draft: ("contributor", WRITERS, entry_is(status="draft", headline="Draft")),
    submit_entry: ("contributor", WRITERS, entry_is(status="submitted")),
    publish: ("editor", EDITORS, published_for_readers),
    pin: ("editor", EDITORS, entry_is(pinned=True)),
    unpin: ("editor", EDITORS, entry_is(pinned=False)),
    edit_own_draft: ("contributor", WRITERS, entry_is(headline="Better", status="draft")),
    submit_own_draft: ("contributor", WRITERS, entry_is(status="submitted")),
    withdraw_own_submission: ("contributor", WRITERS, entry_is(status="draft")),
    delete_own_draft: ("contributor", WRITERS, entry_is_gone),
    edit_own_published: ("editor", EDITORS, entry_is(headline="Better", status="published")),
    delete_own_published: ("editor", EDITORS, entry_is_gone),
    edit_others_draft: ("editor", EDITORS, entry_is(headline="Mine now")),
    delete_others_draft: ("editor", EDITORS, entry_is_gone),
    edit_published: ("editor", EDITORS, entry_is(headline="Corrected")),
    delete_published: ("editor", EDITORS, entry_is_gone),
    approve: ("editor", EDITORS, entry_is(status="published")),
    return_submission: (
        "editor",
        EDITORS,
        entry_is(status="returned", review_note="Who is the source?"),
    ),
    read_queue: ("contributor", WRITERS, queue_shows_the_submission),
    end_coverage: ("editor", EDITORS, blog_is(status="ended")),
    reopen_coverage: ("editor", EDITORS, blog_is(status="live")),
    retitle_blog: ("owner", OWNERS, blog_is(title="Vote night, all night")),
    let_contributors_publish: (
        "owner",
        OWNERS,
        blog_is(f"{BLOG}/settings", contributors_may_publish=True),
    ),
    add_member: ("owner", OWNERS, member_added),
    read_member: ("owner", OWNERS, member_shown),
    remove_member: ("owner", OWNERS, member_removed),
    list_webhooks: ("owner", OWNERS, webhooks_listed),
    create_webhook: ("owner", OWNERS, webhook_registered),
    pause_webhook: ("owner", OWNERS, webhook_paused),
    delete_webhook: ("owner", OWNERS, webhook_deleted),
    read_audit: ("owner", OWNERS, audit_has("blog.created")),
    read_global_audit: ("admin", ADMINS, audit_has("blog.created")),
    create_blog_action: ("admin", ADMINS, blog_created),
    create_token: ("admin", ADMINS, token_listed),
    revoke_token: ("admin", ADMINS, token_revoked),
    create_user: ("admin", ADMINS, user_created),
}
OWN_ENTRY_ACTIONS = {
    edit_own_draft,
    submit_own_draft,
    withdraw_own_submission,
    delete_own_draft,
    edit_own_published,
    delete_own_published,
}
CASES = [
    pytest.param(action, role, role in allowed, needed, check, id=f"{role}-{action.__name__}")
    for action, (needed, allowed, check) in ACTIONS.items()
    for role in ROLES
    if not (role == "publish" and action in OWN_ENTRY_ACTIONS)
]


@pytest.fixture
async def newsroom(
    request: pytest.FixtureRequest,
    app: FastAPI,
    client: httpx.AsyncClient,
    publish_headers: dict[str, str],
) -> Newsroom:
    role = request.node.callspec.params["role"]
    await create_blog(client)
    cora = await add_person(app, "Cora Lind", role="contributor")
    outsider = await add_person(app, "Omar Haddad")
    published = await publish_entry(client, headline="Polls close")
    draft = await publish_entry(client, headers=cora.headers, headline="Turnout", status="draft")
    submission = await publish_entry(
        client, headers=cora.headers, headline="Exit poll", status="submitted"
    )
    actor = None
    headers = publish_headers
    if role != "publish":
        actor = await add_person(
            app,
            "Alex Actor",
            role=None if role in ("nobody", "admin") else role,
            admin=role == "admin",
        )
        headers = actor.headers
    return Newsroom(
        app,
        client,
        role,
        actor,
        headers,
        published["id"],
        draft["id"],
        submission["id"],
        cora,
        outsider,
    )


@pytest.mark.parametrize(("action", "role", "allowed", "needed", "check"), CASES)
async def test_each_role_may_do_what_its_role_allows_and_nothing_more(
    newsroom: Newsroom, action: Action, role: str, allowed: bool, needed: str, check: Check
) -> None:
    method, path, body = await action(newsroom)
    before = await stored_rows(newsroom.app.state.services.database)
    response = await newsroom.client.request(method, path, json=body, headers=newsroom.headers)
    if allowed:
        assert response.status_code in (200, 201, 204), response.text
        await check(newsroom, path, response)
        return
    error = assert_error(response, 403, "forbidden")
    if role == "nobody" and method in ("PATCH", "DELETE") and path.startswith(ENTRIES):
        needed = "contributor"
    assert f"the {needed} role" in error["message"] or f"needs an {needed}" in error["message"]
    if needed != "admin":
        assert "'vote-night'" in error["message"]
    assert await stored_rows(newsroom.app.state.services.database) == before


async def test_a_refused_entry_write_is_refused_before_the_entry_is_looked_for(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    """A user with no role on a blog learns nothing of its entries: a made-up id is refused
    exactly as a real one is."""
    outsider = await add_person(app, "Omar Haddad")
    draft = await publish_entry(client, headline="Embargoed", status="draft")
    real = await client.patch(f"{ENTRIES}/{draft['id']}", json={}, headers=outsider.headers)
    made_up = await client.patch(f"{ENTRIES}/999999", json={}, headers=outsider.headers)
    assert_error(real, 403, "forbidden")
    assert_error(made_up, 403, "forbidden")
    assert real.json() == made_up.json()


async def test_a_contributor_cannot_read_another_writers_unpublished_entry(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    cora = await add_person(app, "Cora Lind", role="contributor")
    dev = await add_person(app, "Dev Rao", role="contributor")
    draft = await publish_entry(client, headers=cora.headers, headline="Mine", status="draft")
    path = f"{ENTRIES}/{draft['id']}"
    assert (await client.get(path, headers=cora.headers)).json()["headline"] == "Mine"
    assert_error(await client.get(path, headers=dev.headers), 404, "not_found")
    assert_error(await client.patch(path, json={}, headers=dev.headers), 403, "forbidden")
