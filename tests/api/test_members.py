"""Members of a blog and who am I: owners give and take roles; a token acts as its user,
narrowed to some blogs and a maximum role, never above its user."""

import httpx
from fastapi import FastAPI

from tests.support.databases import stored_rows
from tests.support.errors import assert_error
from tests.support.factories import ADMIN, ADMIN_TOKEN, create_blog
from tests.support.people import add_person

MEMBERS = "/api/v1/blogs/vote-night/members"
ENTRIES = "/api/v1/blogs/vote-night/entries"
ME = "/api/v1/me"


async def test_an_owner_adds_changes_and_removes_a_member_whose_token_follows_at_once(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    owner = await add_person(app, "Olu Bello", role="owner")
    sam = await add_person(app, "Sam Vale")
    path = f"{MEMBERS}/{sam.user_id}"
    draft = {"headline": "Turnout", "status": "draft"}
    assert_error(await client.post(ENTRIES, json=draft, headers=sam.headers), 403, "forbidden")

    added = await client.put(path, json={"role": "contributor"}, headers=owner.headers)
    assert added.status_code == 201, added.text
    member = added.json()
    assert (member["user_id"], member["name"], member["role"]) == (
        sam.user_id,
        "Sam Vale",
        "contributor",
    )
    assert (await client.post(ENTRIES, json=draft, headers=sam.headers)).status_code == 201
    publish = {"headline": "Live"}
    assert_error(await client.post(ENTRIES, json=publish, headers=sam.headers), 403, "forbidden")

    changed = await client.put(path, json={"role": "editor"}, headers=owner.headers)
    assert (changed.status_code, changed.json()["role"]) == (200, "editor")
    assert (await client.post(ENTRIES, json=publish, headers=sam.headers)).status_code == 201
    assert (await client.get(path, headers=owner.headers)).json()["role"] == "editor"
    listed = (await client.get(MEMBERS, headers=owner.headers)).json()
    assert [(m["name"], m["role"]) for m in listed] == [
        ("Olu Bello", "owner"),
        ("Sam Vale", "editor"),
    ]

    assert (await client.delete(path, headers=owner.headers)).status_code == 204
    assert_error(await client.get(path, headers=owner.headers), 404, "not_found")
    assert_error(await client.post(ENTRIES, json=draft, headers=sam.headers), 403, "forbidden")
    assert_error(await client.delete(path, headers=owner.headers), 404, "not_found")


async def test_members_of_an_unknown_user_or_with_an_unknown_role_are_refused(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    sam = await add_person(app, "Sam Vale")
    before = await stored_rows(app.state.services.database)
    missing = await client.put(f"{MEMBERS}/4242", json={"role": "editor"}, headers=ADMIN)
    assert_error(missing, 404, "not_found")
    for body in ({"role": "admin"}, {"role": "editor", "since": "now"}, {}):
        response = await client.put(f"{MEMBERS}/{sam.user_id}", json=body, headers=ADMIN)
        assert response.status_code == 422, response.text
    assert await stored_rows(app.state.services.database) == before


async def test_me_says_who_a_user_is_and_its_role_on_each_of_its_blogs(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    await create_blog(client, "count-day", "Count day")
    await create_blog(client, "elsewhere", "Elsewhere")
    sam = await add_person(app, "Sam Vale", role="editor")
    await client.put(
        f"/api/v1/blogs/count-day/members/{sam.user_id}", json={"role": "owner"}, headers=ADMIN
    )
    me = (await client.get(ME, headers=sam.headers)).json()
    assert me["user"]["name"] == "Sam Vale" and me["user"]["login"] == "sam@news.test"
    assert me["token"]["id"] == sam.token_id and me["token"]["scope"] == "user"
    assert (me["admin"], me["every_blog_role"]) == (False, None)
    assert me["blogs"] == [
        {"slug": "count-day", "title": "Count day", "role": "owner"},
        {"slug": "vote-night", "title": "Vote night", "role": "editor"},
    ]
    assert "password" not in str(me) and "argon2" not in str(me)


async def test_me_for_legacy_tokens_and_without_one(
    client: httpx.AsyncClient, publish_headers: dict[str, str]
) -> None:
    admin = (await client.get(ME, headers=ADMIN)).json()
    assert (admin["user"], admin["admin"], admin["every_blog_role"]) == (None, True, "owner")
    assert admin["token"]["scope"] == "admin"
    publish = (await client.get(ME, headers=publish_headers)).json()
    assert (publish["admin"], publish["every_blog_role"], publish["blogs"]) == (False, "editor", [])
    assert_error(await client.get(ME), 401, "unauthorised")
    assert ADMIN_TOKEN not in str(admin)


async def test_a_token_narrowed_to_a_blog_and_a_role_never_acts_above_either(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    await create_blog(client, "count-day", "Count day")
    sam = await add_person(app, "Sam Vale", role="owner")
    await client.put(
        f"/api/v1/blogs/count-day/members/{sam.user_id}", json={"role": "owner"}, headers=ADMIN
    )
    created = await client.post(
        "/api/v1/tokens",
        json={
            "name": "phone",
            "user_id": sam.user_id,
            "blogs": ["vote-night"],
            "max_role": "contributor",
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    token = created.json()
    assert (token["user_id"], token["blogs"], token["max_role"]) == (
        sam.user_id, ["vote-night"], "contributor",
    )  # fmt: skip
    phone = {"Authorization": f"Bearer {token['secret']}"}
    me = (await client.get(ME, headers=phone)).json()
    assert me["blogs"] == [{"slug": "vote-night", "title": "Vote night", "role": "contributor"}]
    draft = {"headline": "From the field", "status": "submitted"}
    assert (await client.post(ENTRIES, json=draft, headers=phone)).status_code == 201
    assert_error(
        await client.post(ENTRIES, json={"headline": "Live"}, headers=phone), 403, "forbidden"
    )
    other = await client.post("/api/v1/blogs/count-day/entries", json=draft, headers=phone)
    assert_error(other, 403, "forbidden")
    # Its user's own token still acts as the owner it is.
    assert (await client.get(f"{MEMBERS}", headers=sam.headers)).status_code == 200
    assert_error(await client.get(MEMBERS, headers=phone), 403, "forbidden")


async def test_a_narrowed_admin_token_is_not_an_admin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    created = await client.post(
        "/api/v1/tokens",
        json={"name": "desk", "scope": "admin", "max_role": "editor"},
        headers=ADMIN,
    )
    desk = {"Authorization": f"Bearer {created.json()['secret']}"}
    me = (await client.get(ME, headers=desk)).json()
    assert (me["admin"], me["every_blog_role"]) == (False, "editor")
    refused = await client.post("/api/v1/blogs", json={"slug": "b", "title": "B"}, headers=desk)
    assert_error(refused, 403, "forbidden")


async def test_a_token_for_an_unknown_user_or_blog_is_refused_and_nothing_is_stored(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    sam = await add_person(app, "Sam Vale")
    before = await stored_rows(app.state.services.database)
    for body, field in [
        ({"name": "x", "user_id": 4242}, "user_id"),
        ({"name": "x", "user_id": sam.user_id, "blogs": ["no-such-blog"]}, "blogs"),
    ]:
        response = await client.post("/api/v1/tokens", json=body, headers=ADMIN)
        assert set(assert_error(response, 422, "invalid_input", {field})["fields"]) == {field}
    both = {"name": "x", "user_id": sam.user_id, "scope": "admin"}
    assert (await client.post("/api/v1/tokens", json=both, headers=ADMIN)).status_code == 422
    assert await stored_rows(app.state.services.database) == before


async def test_an_admin_users_token_counts_as_a_live_admin_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The environment admin token can be revoked once an admin user has a token."""
    tokens = (await client.get("/api/v1/tokens", headers=ADMIN)).json()
    [environment] = [t for t in tokens if t["scope"] == "admin"]
    refused = await client.delete(f"/api/v1/tokens/{environment['id']}", headers=ADMIN)
    assert_error(refused, 409, "last_admin_token")
    ada = await add_person(app, "Ada Admin", admin=True)
    revoked = await client.delete(f"/api/v1/tokens/{environment['id']}", headers=ada.headers)
    assert revoked.status_code == 200, revoked.text
    last = await client.delete(f"/api/v1/tokens/{ada.token_id}", headers=ada.headers)
    assert_error(last, 409, "last_admin_token")
