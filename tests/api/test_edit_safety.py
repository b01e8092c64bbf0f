"""Two editors on one entry at 2 a.m.: If-Match and 412 instead of a silent overwrite, and
every version kept, compared and restorable (on SQLite and PostgreSQL)."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.support.errors import assert_error
from tests.support.factories import ADMIN, read_log
from tests.support.newsroom import NoteCollector, watch_newsroom
from tests.support.people import Person, add_person
from tests.support.waiting import eventually

ENTRIES = "/api/v1/blogs/vote-night/entries"


@pytest.fixture
async def ana(app: FastAPI, blog: dict) -> Person:
    return await add_person(app, "Ana Reyes", role="editor")


@pytest.fixture
async def ben(app: FastAPI, blog: dict) -> Person:
    return await add_person(app, "Ben Osei", role="editor")


async def publish(client: httpx.AsyncClient, who: Person, **fields) -> httpx.Response:
    body = {"headline": "Turnout high", "body": "<p>Queues at every station.</p>", **fields}
    response = await client.post(ENTRIES, json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return response


async def table_counts(app: FastAPI) -> tuple:
    from sqlalchemy import func

    from app.models import AuditRecord, Entry, EntryRevision, Event

    async with app.state.services.database.read_session() as session:
        return tuple(
            [
                await session.scalar(select(func.count()).select_from(table))
                for table in (Entry, Event, EntryRevision, AuditRecord)
            ]
        )


# --- conflicts --------------------------------------------------------------------


async def test_every_answer_of_an_entry_carries_the_etag_of_its_version(
    client: httpx.AsyncClient, ana: Person
) -> None:
    created = await publish(client, ana)
    entry = created.json()
    assert created.headers["ETag"] == f'"entry-{entry["id"]}-v1"'

    read = await client.get(f"{ENTRIES}/{entry['id']}", headers=ana.headers)
    assert read.headers["ETag"] == f'"entry-{entry["id"]}-v1"'

    edited = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"headline": "Turnout at 71%"}, headers=ana.headers
    )
    assert edited.json()["version"] == 2
    assert edited.headers["ETag"] == f'"entry-{entry["id"]}-v2"'


async def test_the_second_of_two_editors_gets_412_naming_who_changed_it_and_nothing_is_written(
    client: httpx.AsyncClient, app: FastAPI, ana: Person, ben: Person
) -> None:
    entry = (await publish(client, ana)).json()
    url = f"{ENTRIES}/{entry['id']}"
    # Both open the entry at version 1.
    tag = (await client.get(url, headers=ana.headers)).headers["ETag"]
    assert (await client.get(url, headers=ben.headers)).headers["ETag"] == tag

    first = await client.patch(
        url, json={"headline": "Turnout at 71%"}, headers={**ana.headers, "If-Match": tag}
    )
    assert first.status_code == 200
    log = await read_log(client, "vote-night")
    counts = await table_counts(app)

    second = await client.patch(
        url, json={"headline": "Turnout at 69%"}, headers={**ben.headers, "If-Match": tag}
    )

    assert second.status_code == 412
    error = second.json()["error"]
    assert error["code"] == "precondition_failed"
    assert "Ana Reyes" in error["message"] and "version 2" in error["message"]
    assert error["current"]["version"] == 2
    assert error["current"]["etag"] == first.headers["ETag"]
    assert error["current"]["changed_by"] == "Ana Reyes"
    assert error["current"]["entry"]["headline"] == "Turnout at 71%"
    assert await read_log(client, "vote-night") == log
    assert await table_counts(app) == counts
    assert (await client.get(url)).json()["headline"] == "Turnout at 71%"

    # Knowingly, with the current tag, the second editor's change goes through.
    third = await client.patch(
        url,
        json={"headline": "Turnout at 69%"},
        headers={**ben.headers, "If-Match": error["current"]["etag"]},
    )
    assert third.status_code == 200 and third.json()["version"] == 3


async def test_a_delete_with_an_old_etag_is_412_and_the_entry_stays(
    client: httpx.AsyncClient, app: FastAPI, ana: Person, ben: Person
) -> None:
    created = await publish(client, ana)
    url = f"{ENTRIES}/{created.json()['id']}"
    await client.patch(url, json={"key_event": True}, headers=ana.headers)
    log = await read_log(client, "vote-night")
    counts = await table_counts(app)

    refused = await client.delete(url, headers={**ben.headers, "If-Match": created.headers["ETag"]})
    assert refused.status_code == 412
    assert refused.json()["error"]["current"]["changed_by"] == "Ana Reyes"
    malformed = await client.delete(url, headers={**ben.headers, "If-Match": "entry-1-v2"})
    assert_error(malformed, 400, "invalid_if_match")
    assert await read_log(client, "vote-night") == log
    assert await table_counts(app) == counts
    assert (await client.get(url)).status_code == 200

    current = refused.json()["error"]["current"]["etag"]
    assert (
        await client.delete(url, headers={**ben.headers, "If-Match": current})
    ).status_code == 204
    assert (await client.get(url)).status_code == 404


@pytest.mark.parametrize(
    ("if_match", "outcome"),
    [
        ("*", 200),  # any version: the entry exists
        ('"entry-{id}-v1", "entry-{id}-v9"', 200),  # one of the list
        ('W/"entry-{id}-v1"', 412),  # a weak tag never matches If-Match
        ('"entry-999-v1"', 412),  # another entry's tag
        ("entry-{id}-v1", 400),  # not quoted: not an entity tag
        ('"entry-{id}-v1" "x"', 400),
    ],
)
async def test_if_match_forms(
    client: httpx.AsyncClient, app: FastAPI, ana: Person, if_match: str, outcome: int
) -> None:
    entry = (await publish(client, ana)).json()
    counts = await table_counts(app)
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}",
        json={"headline": "Changed"},
        headers={**ana.headers, "If-Match": if_match.format(id=entry["id"])},
    )
    assert response.status_code == outcome, response.text
    if outcome == 400:
        assert_error(response, 400, "invalid_if_match")
    if outcome != 200:
        assert await table_counts(app) == counts


async def test_tools_that_send_no_if_match_keep_last_write_wins(
    client: httpx.AsyncClient, ana: Person, ben: Person
) -> None:
    entry = (await publish(client, ana)).json()
    url = f"{ENTRIES}/{entry['id']}"
    await client.patch(url, json={"headline": "One"}, headers=ana.headers)
    response = await client.patch(url, json={"headline": "Two"}, headers=ben.headers)
    assert response.status_code == 200 and response.json()["headline"] == "Two"


async def test_a_blog_answers_its_version_and_refuses_a_stale_change_with_412(
    client: httpx.AsyncClient, app: FastAPI, blog: dict
) -> None:
    url = "/api/v1/blogs/vote-night"
    owner = await add_person(app, "Dee Ames", role="owner")
    read = await client.get(url, headers=ADMIN)
    assert read.headers["ETag"] == '"blog-v1"' and read.json()["version"] == 1
    assert not (await client.get(url)).headers["ETag"].startswith('"blog-')  # public: cache tag

    changed = await client.patch(
        url, json={"title": "Vote night, live"}, headers={**owner.headers, "If-Match": '"blog-v1"'}
    )
    assert changed.status_code == 200 and changed.headers["ETag"] == '"blog-v2"'
    log = await read_log(client, "vote-night")
    counts = await table_counts(app)

    stale = await client.patch(
        url, json={"title": "Election night"}, headers={**ADMIN, "If-Match": '"blog-v1"'}
    )
    assert stale.status_code == 412
    error = stale.json()["error"]
    assert "Dee Ames" in error["message"] and "version 2" in error["message"]
    assert error["current"]["changed_by"] == "Dee Ames"
    assert error["current"]["etag"] == '"blog-v2"'
    assert error["current"]["blog"]["title"] == "Vote night, live"
    assert await read_log(client, "vote-night") == log
    assert await table_counts(app) == counts
    # A new entry is not a change to the blog: its tag stays.
    await client.post(ENTRIES, json={"body": "<p>Polls open.</p>"}, headers=ADMIN)
    assert (await client.get(url, headers=ADMIN)).headers["ETag"] == '"blog-v2"'


# --- revisions ------------------------------------------------------------------


async def test_every_change_keeps_a_revision_with_who_and_when_even_after_delete(
    client: httpx.AsyncClient, ana: Person, ben: Person
) -> None:
    entry = (await publish(client, ana, headline="Turnout high")).json()
    url = f"{ENTRIES}/{entry['id']}"
    await client.patch(url, json={"headline": "Turnout at 71%"}, headers=ben.headers)
    await client.patch(
        url,
        json={"body": "<p>Queues at every station.</p><p>Polls close at 10pm.</p>"},
        headers=ana.headers,
    )
    await client.delete(url, headers=ben.headers)

    revisions = await client.get(f"{url}/revisions", headers=ana.headers)
    assert revisions.status_code == 200
    items = revisions.json()["items"]
    assert [(r["version"], r["changed_by"], r["status"]) for r in items] == [
        (4, "Ben Osei", "deleted"),
        (3, "Ana Reyes", "published"),
        (2, "Ben Osei", "published"),
        (1, "Ana Reyes", "published"),
    ]
    assert items[-1]["headline"] == "Turnout high"  # what was first published, still readable
    one = await client.get(f"{url}/revisions/2", headers=ana.headers)
    assert one.json()["headline"] == "Turnout at 71%"

    diff = (await client.get(f"{url}/revisions/3/diff", headers=ana.headers)).json()
    assert diff["from_version"] == 2 and diff["to_version"] == 3
    assert set(diff["changes"]) == {"body"}
    assert "+Polls close at 10pm." in diff["text_diff"]
    diff = (await client.get(f"{url}/revisions/3/diff?against=1", headers=ana.headers)).json()
    assert set(diff["changes"]) == {"headline", "body"}
    assert "-Turnout high" in diff["headline_diff"] and "+Turnout at 71%" in diff["headline_diff"]


async def test_restoring_a_revision_is_a_new_version_logged_and_live_like_any_edit(
    client: httpx.AsyncClient, ana: Person, ben: Person
) -> None:
    entry = (await publish(client, ana, headline="Turnout high", key_event=True)).json()
    url = f"{ENTRIES}/{entry['id']}"
    await client.patch(
        url, json={"headline": "Turnuot hgih", "key_event": False}, headers=ben.headers
    )

    restored = await client.post(
        f"{url}/revisions/1/restore",
        headers={**ana.headers, "If-Match": f'"entry-{entry["id"]}-v2"'},
    )
    assert restored.status_code == 200, restored.text
    assert restored.headers["ETag"] == f'"entry-{entry["id"]}-v3"'
    assert (restored.json()["headline"], restored.json()["key_event"]) == ("Turnout high", True)
    last = (await read_log(client, "vote-night"))[-1]
    assert last["type"] == "entry.updated" and last["entry"]["headline"] == "Turnout high"
    items = (await client.get(f"{url}/revisions", headers=ana.headers)).json()["items"]
    assert [(r["version"], r["changed_by"]) for r in items][:1] == [(3, "Ana Reyes")]

    stale = await client.post(
        f"{url}/revisions/2/restore",
        headers={**ana.headers, "If-Match": f'"entry-{entry["id"]}-v2"'},
    )
    assert stale.status_code == 412


async def test_revisions_are_an_editors_and_name_only_their_own_entry(
    client: httpx.AsyncClient, app: FastAPI, ana: Person
) -> None:
    first = (await publish(client, ana)).json()
    second = (await publish(client, ana, headline="Another")).json()
    contributor = await add_person(app, "Cy Dunn", role="contributor")
    counts = await table_counts(app)

    for path, method in [
        (f"{ENTRIES}/{first['id']}/revisions", "GET"),
        (f"{ENTRIES}/{first['id']}/revisions/1/restore", "POST"),
    ]:
        refused = await client.request(method, path, headers=contributor.headers)
        assert_error(refused, 403, "forbidden")
        assert "editor" in refused.json()["error"]["message"]
        assert (await client.request(method, path)).status_code == 401

    assert await table_counts(app) == counts

    # The second entry has versions 2 and 3; the first has only its first: restoring the
    # first's version 3 names the second's revision, which is no revision of the first.
    for headline in ("Another, edited", "Another, edited again"):
        await client.patch(
            f"{ENTRIES}/{second['id']}", json={"headline": headline}, headers=ana.headers
        )
    await client.post(
        "/api/v1/blogs", json={"slug": "storm-watch", "title": "Storm watch"}, headers=ADMIN
    )
    counts = await table_counts(app)
    other = await client.post(f"{ENTRIES}/{first['id']}/revisions/3/restore", headers=ana.headers)
    assert_error(other, 404, "not_found")
    assert (await client.get(f"{ENTRIES}/{first['id']}")).json()["headline"] == "Turnout high"
    # Nor is an entry of this blog one of another blog's.
    foreign = await client.post(
        f"/api/v1/blogs/storm-watch/entries/{second['id']}/revisions/1/restore", headers=ADMIN
    )
    assert_error(foreign, 404, "not_found")
    elsewhere = await client.get(
        f"/api/v1/blogs/vote-night/entries/{second['id'] + 100}/revisions", headers=ana.headers
    )
    assert elsewhere.status_code == 404
    assert await table_counts(app) == counts


async def test_a_deleted_entry_is_read_not_restored(
    client: httpx.AsyncClient, app: FastAPI, ana: Person
) -> None:
    entry = (await publish(client, ana)).json()
    url = f"{ENTRIES}/{entry['id']}"
    await client.delete(url, headers=ana.headers)
    counts = await table_counts(app)
    refused = await client.post(f"{url}/revisions/1/restore", headers=ana.headers)
    assert_error(refused, 409, "conflict")
    assert await table_counts(app) == counts


# --- a scheduled publish whose scheduler may no longer publish ----------------------


@pytest.mark.parametrize("loses", ["disabled", "role"])
async def test_a_hold_whose_editor_is_disabled_or_demoted_before_it_is_due_goes_back_unpublished(
    app: FastAPI, client: httpx.AsyncClient, blog: dict, ana: Person, loses: str
) -> None:
    newsroom = NoteCollector()
    await watch_newsroom(app, newsroom)
    # Long enough that the change of role lands first on a busy machine (it was 1 s, and a
    # PostgreSQL run published before the demotion was in).
    held = await client.post(
        ENTRIES, json={"headline": "Wrong count", "hold_seconds": 4}, headers=ana.headers
    )
    assert held.status_code == 202, held.text
    url = f"{ENTRIES}/{held.json()['id']}"
    if loses == "disabled":
        changed = await client.patch(
            f"/api/v1/users/{ana.user_id}", json={"disabled": True}, headers=ADMIN
        )
        assert changed.status_code == 200, changed.text
    else:
        demoted = await client.put(
            f"/api/v1/blogs/vote-night/members/{ana.user_id}",
            json={"role": "contributor"},
            headers=ADMIN,
        )
        assert demoted.status_code == 200, demoted.text

    # Past its time the scheduler takes it back instead of publishing it: nothing sent.
    entry = await eventually(
        lambda: client.get(url, headers=ADMIN), 15, "the held entry to go back",
        holds=lambda answer: answer.json()["status"] != "scheduled",
    )  # fmt: skip
    assert entry.json()["status"] == "draft" and "publish_at" not in entry.json()
    await app.state.services.scheduler.turn()
    assert await read_log(client, "vote-night") == []
    assert (await client.get(ENTRIES)).json()["items"] == []

    records = (await client.get("/api/v1/blogs/vote-night/audit", headers=ADMIN)).json()
    [dropped] = [r for r in records["items"] if r["action"] == "entry.schedule_dropped"]
    assert dropped["details"]["status"] == {"from": "scheduled", "to": "draft"}
    reason = dropped["details"]["reason"]
    assert reason.startswith("Not published: who scheduled it")
    notes = await eventually(
        lambda: newsroom.notes("entry.scheduled", "entry.draft_saved", "entry.published"),
        5,
        "the newsroom's note",
        holds=lambda notes: len(notes) == 2,
    )
    assert [note["type"] for note in notes] == ["entry.scheduled", "entry.draft_saved"]
    assert notes[1]["previous_status"] == "scheduled" and notes[1]["reason"] == reason
    assert "reason" not in notes[0]
