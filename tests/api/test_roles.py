"""Every role and every action, on both databases: what is allowed succeeds, and what is
not is a 403 naming the missing role that writes nothing (every table reads the same).

The roles: a user with no role on the blog, a contributor, an editor, an owner, an admin
user, and a legacy `publish` token (an editor on every blog). The newsroom: the blog
vote-night with a published entry, and a draft and a submission of another contributor.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from app.people.roles import Principal
from app.schemas import EntryCreate
from tests.support.databases import stored_rows
from tests.support.errors import assert_error
from tests.support.factories import create_blog, publish_entry
from tests.support.people import Person, add_person

BLOG = "/api/v1/blogs/vote-night"
ENTRIES = f"{BLOG}/entries"


@dataclass
class Newsroom:
    app: FastAPI
    client: httpx.AsyncClient
    actor: Person | None  # None: the legacy publish token
    headers: dict[str, str]
    published: int
    others_draft: int
    others_submission: int
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


async def edit_own_draft(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{await desk.own_entry('draft')}", {"headline": "Better"}


async def submit_own_draft(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{await desk.own_entry('draft')}", {"status": "submitted"}


async def withdraw_own_submission(desk: Newsroom) -> Request:
    return "PATCH", f"{ENTRIES}/{await desk.own_entry('submitted')}", {"status": "draft"}


async def delete_own_draft(desk: Newsroom) -> Request:
    return "DELETE", f"{ENTRIES}/{await desk.own_entry('draft')}", None


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


async def retitle_blog(desk: Newsroom) -> Request:
    return "PATCH", BLOG, {"title": "Vote night, all night"}


async def let_contributors_publish(desk: Newsroom) -> Request:
    return "PATCH", f"{BLOG}/settings", {"contributors_may_publish": True}


async def add_member(desk: Newsroom) -> Request:
    return "PUT", f"{BLOG}/members/{desk.outsider.user_id}", {"role": "contributor"}


async def list_webhooks(desk: Newsroom) -> Request:
    return "GET", f"{BLOG}/webhooks", None


async def read_audit(desk: Newsroom) -> Request:
    return "GET", f"{BLOG}/audit", None


async def create_blog_action(desk: Newsroom) -> Request:
    return "POST", "/api/v1/blogs", {"slug": "count-day", "title": "Count day"}


async def create_token(desk: Newsroom) -> Request:
    return "POST", "/api/v1/tokens", {"name": "wire", "scope": "publish"}


async def create_user(desk: Newsroom) -> Request:
    body = {"name": "Nia Obi", "login": "nia@news.test", "password": "a long passphrase"}
    return "POST", "/api/v1/users", body


ROLES = ["nobody", "contributor", "editor", "owner", "admin", "publish"]
# Action: (the role it needs, the roles that may do it). Actions on the actor's own
# entries are not asked of the legacy token, which has no user and so owns none. A user
# with no role on the blog is told of the contributor role for any change of an entry:
# the entry is not looked at for it (see the test below).
ACTIONS: dict[Action, tuple[str, set[str]]] = {
    write_draft: ("contributor", {"contributor", "editor", "owner", "admin", "publish"}),
    submit_entry: ("contributor", {"contributor", "editor", "owner", "admin", "publish"}),
    publish: ("editor", {"editor", "owner", "admin", "publish"}),
    pin: ("editor", {"editor", "owner", "admin", "publish"}),
    edit_own_draft: ("contributor", {"contributor", "editor", "owner", "admin"}),
    submit_own_draft: ("contributor", {"contributor", "editor", "owner", "admin"}),
    withdraw_own_submission: ("contributor", {"contributor", "editor", "owner", "admin"}),
    delete_own_draft: ("contributor", {"contributor", "editor", "owner", "admin"}),
    edit_others_draft: ("editor", {"editor", "owner", "admin", "publish"}),
    delete_others_draft: ("editor", {"editor", "owner", "admin", "publish"}),
    edit_published: ("editor", {"editor", "owner", "admin", "publish"}),
    delete_published: ("editor", {"editor", "owner", "admin", "publish"}),
    approve: ("editor", {"editor", "owner", "admin", "publish"}),
    return_submission: ("editor", {"editor", "owner", "admin", "publish"}),
    read_queue: ("contributor", {"contributor", "editor", "owner", "admin", "publish"}),
    end_coverage: ("editor", {"editor", "owner", "admin", "publish"}),
    retitle_blog: ("owner", {"owner", "admin"}),
    let_contributors_publish: ("owner", {"owner", "admin"}),
    add_member: ("owner", {"owner", "admin"}),
    list_webhooks: ("owner", {"owner", "admin"}),
    read_audit: ("owner", {"owner", "admin"}),
    create_blog_action: ("admin", {"admin"}),
    create_token: ("admin", {"admin"}),
    create_user: ("admin", {"admin"}),
}
OWN_ENTRY_ACTIONS = {edit_own_draft, submit_own_draft, withdraw_own_submission, delete_own_draft}
CASES = [
    pytest.param(action, role, role in allowed, needed, id=f"{role}-{action.__name__}")
    for action, (needed, allowed) in ACTIONS.items()
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
        app, client, actor, headers, published["id"], draft["id"], submission["id"], outsider
    )


@pytest.mark.parametrize(("action", "role", "allowed", "needed"), CASES)
async def test_each_role_may_do_what_its_role_allows_and_nothing_more(
    newsroom: Newsroom, action: Action, role: str, allowed: bool, needed: str
) -> None:
    method, path, body = await action(newsroom)
    before = await stored_rows(newsroom.app.state.services.database)
    response = await newsroom.client.request(method, path, json=body, headers=newsroom.headers)
    if allowed:
        assert response.status_code in (200, 201, 204), response.text
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
