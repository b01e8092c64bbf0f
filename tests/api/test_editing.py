"""Who is editing: a member takes an entry's editing flag, renews it, releases it (or saves),
another is refused with who holds it unless taking it over, and a flag nobody renews lapses.
On SQLite and PostgreSQL; refusals write nothing. (The notes on the newsroom stream:
tests/realtime/test_editing_stream.py.)"""

import json
from datetime import datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from app.models import EditingFlag, utc_now
from tests.support.errors import assert_error
from tests.support.factories import ADMIN, SLUG, create_blog, publish_entry, read_log
from tests.support.newsroom import NoteCollector, watch_newsroom
from tests.support.people import Person, add_person
from tests.support.waiting import eventually

ENTRIES = f"/api/v1/blogs/{SLUG}/entries"
LIST = f"/api/v1/blogs/{SLUG}/editing"


def editing(entry_id: int) -> str:
    return f"{ENTRIES}/{entry_id}/editing"


async def flag_count(app: FastAPI) -> int:
    async with app.state.services.database.read_session() as session:
        return await session.scalar(select(func.count()).select_from(EditingFlag)) or 0


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def people(app: FastAPI) -> tuple[Person, Person, Person]:
    ana = await add_person(app, "Ana Ruiz", role="editor")
    ben = await add_person(app, "Ben Okafor", role="editor")
    cora = await add_person(app, "Cora Lind", role="contributor")
    return ana, ben, cora


async def test_an_editor_takes_renews_and_releases_an_entrys_flag(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create_blog(client)
    ana, _ben, _cora = await people(app)
    entry = await publish_entry(client, headline="Polls close")

    before = utc_now()
    taken = await client.put(editing(entry["id"]), headers=ana.headers)
    assert taken.status_code == 200, taken.text
    assert taken.headers["cache-control"] == "no-store"
    body = taken.json()
    assert body["entry_id"] == entry["id"]
    editor = body["editor"]
    assert (editor["user_id"], editor["name"]) == (ana.user_id, "Ana Ruiz")
    since, expires = moment(editor["since"]), moment(editor["expires_at"])
    assert before <= since and timedelta(seconds=29) < expires - since <= timedelta(seconds=30)

    # Renewed while typing: the same holder, since unchanged, the lapse moved on.
    renewed = await client.put(editing(entry["id"]), json={"take_over": False}, headers=ana.headers)
    assert renewed.status_code == 200, renewed.text
    again = renewed.json()["editor"]
    assert again["since"] == editor["since"]
    assert moment(again["expires_at"]) >= expires

    listed = await client.get(LIST, headers=ana.headers)
    assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
    assert listed.json() == {"items": [{"entry_id": entry["id"], "editor": again}]}

    released = await client.delete(editing(entry["id"]), headers=ana.headers)
    assert released.status_code == 204
    assert (await client.get(LIST, headers=ana.headers)).json() == {"items": []}
    # Releasing what one does not hold is no error.
    assert (await client.delete(editing(entry["id"]), headers=ana.headers)).status_code == 204
    assert await flag_count(app) == 0


async def test_another_editor_is_told_who_holds_the_flag_and_may_take_it_over(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create_blog(client)
    ana, ben, _cora = await people(app)
    entry = await publish_entry(client, headline="Polls close")
    held = (await client.put(editing(entry["id"]), headers=ana.headers)).json()["editor"]

    refused = await client.put(editing(entry["id"]), headers=ben.headers)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "being_edited" and "Ana Ruiz" in error["message"]
    assert error["editor"] == held
    # Nothing changed: Ana still holds it.
    assert (await client.get(LIST, headers=ben.headers)).json()["items"][0]["editor"] == held
    # Ben's release does not drop Ana's flag.
    assert (await client.delete(editing(entry["id"]), headers=ben.headers)).status_code == 204
    assert (await client.get(LIST, headers=ben.headers)).json()["items"][0]["editor"] == held

    taken = await client.put(editing(entry["id"]), json={"take_over": True}, headers=ben.headers)
    assert taken.status_code == 200, taken.text
    assert taken.json()["editor"]["user_id"] == ben.user_id
    # Now Ana is the one refused.
    ana_again = await client.put(editing(entry["id"]), headers=ana.headers)
    assert ana_again.status_code == 409
    assert ana_again.json()["error"]["editor"]["name"] == "Ben Okafor"


async def test_saving_the_entry_releases_the_savers_flag_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create_blog(client)
    ana, ben, _cora = await people(app)
    first = await publish_entry(client, headline="Polls close")
    second = await publish_entry(client, headline="Turnout")
    assert (await client.put(editing(first["id"]), headers=ana.headers)).status_code == 200
    assert (await client.put(editing(second["id"]), headers=ana.headers)).status_code == 200

    # Someone else's save leaves Ana's flag alone.
    saved = await client.patch(f"{ENTRIES}/{first['id']}", json={"headline": "x"}, headers=ADMIN)
    assert saved.status_code == 200
    assert await flag_count(app) == 2
    saved = await client.patch(
        f"{ENTRIES}/{first['id']}", json={"headline": "Polls have closed"}, headers=ana.headers
    )
    assert saved.status_code == 200, saved.text
    items = (await client.get(LIST, headers=ben.headers)).json()["items"]
    assert [item["entry_id"] for item in items] == [second["id"]]


async def test_a_flag_nobody_renews_lapses_and_is_swept(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create_blog(client)
    ana, ben, _cora = await people(app)
    entry = await publish_entry(client, headline="Polls close")
    await client.put(editing(entry["id"]), headers=ana.headers)
    presence = app.state.services.presence

    assert await presence.sweep() == 0
    assert await presence.sweep(now=utc_now() + timedelta(seconds=31)) == 1
    assert (await client.get(LIST, headers=ana.headers)).json() == {"items": []}
    # Gone: anyone may take it now, without taking over.
    assert (await client.put(editing(entry["id"]), headers=ben.headers)).status_code == 200


async def test_a_contributor_flags_only_the_entries_it_may_edit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create_blog(client)
    _ana, _ben, cora = await people(app)
    dan = await add_person(app, "Dan Moss", role="contributor")
    own = await publish_entry(client, headers=cora.headers, headline="Mine", status="draft")
    dans = await publish_entry(client, headers=dan.headers, headline="Dan's", status="draft")
    published = await publish_entry(client, headline="Polls close")

    assert (await client.put(editing(own["id"]), headers=cora.headers)).status_code == 200
    for other in (dans, published):
        assert_error(await client.put(editing(other["id"]), headers=cora.headers), 403, "forbidden")
    # A contributor sees the blog's live flags (the newsroom shows them to every member).
    assert len((await client.get(LIST, headers=cora.headers)).json()["items"]) == 1
    assert await flag_count(app) == 1


async def test_who_may_not_edit_here_is_refused_and_nothing_is_written(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create_blog(client)
    await create_blog(client, "other-night", "Other night")
    outsider = await add_person(app, "Olga Berg", role="editor", blog="other-night")
    entry = await publish_entry(client, headline="Polls close")
    _token, legacy = await app.state.services.tokens.create("desk", "publish")

    assert_error(await client.put(editing(entry["id"])), 401, "unauthorised")
    assert_error(await client.get(LIST), 401, "unauthorised")
    assert_error(await client.put(editing(entry["id"]), headers=outsider.headers), 403, "forbidden")
    assert_error(await client.get(LIST, headers=outsider.headers), 403, "forbidden")
    assert_error(
        await client.delete(editing(entry["id"]), headers=outsider.headers), 403, "forbidden"
    )
    # A token of no user has nobody to show.
    no_user = {"Authorization": f"Bearer {legacy}"}
    assert_error(await client.put(editing(entry["id"]), headers=no_user), 403, "forbidden")
    assert await flag_count(app) == 0

    assert_error(
        await client.put(editing(entry["id"]), json={"take_over": "yes"}, headers=ADMIN),
        422,
        "invalid_input",
        fields={"take_over"},
    )
    assert_error(await client.put(editing(9999), headers=ADMIN), 404, "not_found")
    assert await flag_count(app) == 0


async def test_deleting_an_entry_removes_its_flag_at_once_and_tells_the_newsroom(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create_blog(client)
    ana, ben, _cora = await people(app)
    kept = await publish_entry(client, headline="Turnout")
    entries = [await publish_entry(client, headline="Polls close"), kept]
    draft = await client.post(
        ENTRIES, json={"headline": "Count begins", "status": "draft"}, headers=ana.headers
    )
    entries.insert(1, draft.json())
    for entry in entries:
        assert (await client.put(editing(entry["id"]), headers=ana.headers)).status_code == 200
    newsroom = NoteCollector()
    await watch_newsroom(app, newsroom)

    # A published entry and a draft, deleted by another editor while Ana holds their flags.
    for entry in entries[:2]:
        deleted = await client.delete(f"{ENTRIES}/{entry['id']}", headers=ben.headers)
        assert deleted.status_code == 204, deleted.text
    listed = (await client.get(LIST, headers=ben.headers)).json()["items"]
    assert [item["entry_id"] for item in listed] == [kept["id"]]
    assert await flag_count(app) == 1
    gone = await eventually(
        lambda: newsroom.notes("entry.editing"), 5, "the flags' release notes",
        holds=lambda notes: len(notes) == 2,
    )  # fmt: skip
    assert [(note["entry_id"], note["editor"]) for note in gone] == [
        (entries[0]["id"], None), (entries[1]["id"], None),
    ]  # fmt: skip
    # The public log has the tombstone (and its redaction) only: presence never enters it.
    log = await read_log(client, SLUG)
    assert [event["type"] for event in log][-2:] == ["entry.deleted", "entry.redacted"]
    assert all("editor" not in json.dumps(event) for event in log)
