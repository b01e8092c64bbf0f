"""The undo window and scheduled posts: a publish held (`hold_seconds`) or scheduled
(`publish_at`) is answered 202 with the entry `scheduled`, private until it falls due; then
this process's scheduler publishes it once, as who scheduled it. Undone in time, it goes back
to where it came from and nothing was logged. Who may hold, reschedule and undo, and every
refusal writing nothing. On SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.config import Settings
from app.models import AuditRecord, Entry, EntryRevision
from tests.support.errors import UNCHECKED, assert_error
from tests.support.factories import ADMIN, ADMIN_TOKEN, SLUG, publish_entry, read_log
from tests.support.people import add_person
from tests.support.waiting import eventually

BLOG = f"/api/v1/blogs/{SLUG}"
ENTRIES = f"{BLOG}/entries"
WAIT_SECONDS = 15


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Sweeps often, so that what these tests wait for comes soon.
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,
        schedule_sweep_seconds=0.2,
        schedule_lease_seconds=2,
    )


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def in_a(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


async def audit_actions(client: httpx.AsyncClient) -> list[dict]:
    items = (await client.get(f"{BLOG}/audit", headers=ADMIN)).json()["items"]
    return [item for item in reversed(items) if item["action"].startswith("entry.")]


async def test_a_held_publish_is_private_until_due_then_published_once_as_who_held_it(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    eddie = await add_person(app, "Eddie Grant", role="editor")
    asked = datetime.now(UTC)
    response = await client.post(
        ENTRIES, json={"headline": "Polls close", "hold_seconds": 1}, headers=eddie.headers
    )
    assert response.status_code == 202, response.text
    held = response.json()
    assert held["status"] == "scheduled"
    due = moment(held["publish_at"])
    assert asked + timedelta(seconds=1) <= due <= datetime.now(UTC) + timedelta(seconds=1)
    path = f"{ENTRIES}/{held['id']}"
    # Private while it waits: members see it, with its time; nobody else, and no log.
    assert (await client.get(path)).status_code == 404
    assert (await client.get(path, headers=eddie.headers)).json()["publish_at"] == held[
        "publish_at"
    ]
    waiting = (await client.get(f"{ENTRIES}?status=scheduled", headers=eddie.headers)).json()
    assert [entry["id"] for entry in waiting["items"]] == [held["id"]]
    assert (await client.get(ENTRIES)).json()["items"] == []

    log = await eventually(lambda: read_log(client, SLUG), WAIT_SECONDS, "the publish")
    published_at = datetime.now(UTC)
    assert [(event["seq"], event["type"]) for event in log] == [(1, "entry.created")]
    event = log[0]["entry"]
    assert event["id"] == held["id"] and event["status"] == "published"
    assert "publish_at" not in event
    assert due <= moment(event["published_at"]) <= published_at
    # Once: another turn of the scheduler, and an undo, change nothing.
    await app.state.services.scheduler.turn()
    assert_error(await client.post(f"{path}/cancel-publish", headers=eddie.headers), 409,
                 "already_published")  # fmt: skip
    assert len(await read_log(client, SLUG)) == 1
    assert (await client.get(path)).json()["version"] == held["version"] + 1

    scheduled, published = await audit_actions(client)
    assert scheduled["action"] == "entry.scheduled" and scheduled["seq"] is None
    assert scheduled["details"]["hold_seconds"] == 1
    assert (published["action"], published["seq"], published["via"]) == (
        "entry.published", 1, "scheduler",
    )  # fmt: skip
    for record in (scheduled, published):
        assert (record["actor_user_id"], record["actor_token_id"]) == (
            eddie.user_id, eddie.token_id,
        )  # fmt: skip
    revisions = (await client.get(f"{path}/revisions", headers=ADMIN)).json()["items"]
    assert [(r["status"], r["changed_by"]) for r in revisions] == [
        ("published", "Eddie Grant"), ("scheduled", "Eddie Grant"),
    ]  # fmt: skip


async def test_an_undo_within_the_hold_takes_the_entry_back_and_nothing_is_ever_logged(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    held = await client.post(ENTRIES, json={"headline": "Wrong count", "hold_seconds": 1},
                             headers=ADMIN)  # fmt: skip
    assert held.status_code == 202, held.text
    path = f"{ENTRIES}/{held.json()['id']}"
    undone = await client.post(f"{path}/cancel-publish", headers=ADMIN)
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "draft" and "publish_at" not in undone.json()
    assert undone.headers["etag"] == f'"entry-{held.json()["id"]}-v2"'
    # Past the time it would have gone out, the scheduler still finds nothing to publish.
    due = moment(held.json()["publish_at"])
    await eventually(lambda: datetime.now(UTC) > due, WAIT_SECONDS, "the due time to pass")
    await app.state.services.scheduler.turn()
    assert await read_log(client, SLUG) == []
    assert (await client.get(f"/api/v1/blogs/{SLUG}")).json()["head_seq"] == 0
    assert (await client.get(path, headers=ADMIN)).json()["status"] == "draft"
    assert_error(await client.post(f"{path}/cancel-publish", headers=ADMIN), 409, "not_scheduled")
    assert [record["action"] for record in await audit_actions(client)] == [
        "entry.scheduled", "entry.schedule_cancelled",
    ]  # fmt: skip


async def test_an_approval_held_then_undone_goes_back_to_the_review_queue(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    cora = await add_person(app, "Cora Lind", role="contributor")
    eddie = await add_person(app, "Eddie Grant", role="editor")
    entry = await publish_entry(client, headers=cora.headers, headline="Turnout",
                                status="submitted")  # fmt: skip
    path = f"{ENTRIES}/{entry['id']}"
    approved = await client.patch(
        path, json={"status": "published", "hold_seconds": 30}, headers=eddie.headers
    )
    assert approved.status_code == 202, approved.text
    assert approved.json()["status"] == "scheduled"
    # The writer may undo it as well as an editor; another contributor may not.
    other = await add_person(app, "Olga Berg", role="contributor")
    assert_error(await client.post(f"{path}/cancel-publish", headers=other.headers), 403,
                 "forbidden")  # fmt: skip
    undone = await client.post(f"{path}/cancel-publish", headers=cora.headers)
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "submitted"
    queue = (await client.get(f"{ENTRIES}?status=submitted", headers=eddie.headers)).json()
    assert [item["id"] for item in queue["items"]] == [entry["id"]]
    assert await read_log(client, SLUG) == []


async def test_a_scheduled_post_is_rescheduled_published_now_or_taken_back_by_an_editor(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    draft = await publish_entry(client, headline="Results at ten", status="draft")
    path = f"{ENTRIES}/{draft['id']}"
    first = in_a(timedelta(hours=2))
    scheduled = await client.patch(path, json={"status": "published", "publish_at": first},
                                   headers=ADMIN)  # fmt: skip
    assert scheduled.status_code == 202, scheduled.text
    assert moment(scheduled.json()["publish_at"]) == moment(first)
    later = in_a(timedelta(hours=3))
    moved = await client.patch(path, json={"publish_at": later}, headers=ADMIN)
    assert moved.status_code == 202, moved.text
    assert moment(moved.json()["publish_at"]) == moment(later)
    # An edit while it waits keeps it waiting, with the new text.
    edited = await client.patch(path, json={"body": "<p>At ten sharp</p>"}, headers=ADMIN)
    assert edited.status_code == 200 and edited.json()["status"] == "scheduled"
    assert await read_log(client, SLUG) == []
    # Published now, without waiting: logged once, with the text it had.
    now = await client.patch(path, json={"status": "published"}, headers=ADMIN)
    assert now.status_code == 200 and now.json()["status"] == "published"
    assert "publish_at" not in now.json()
    log = await read_log(client, SLUG)
    assert [(e["type"], e["entry"]["body"]) for e in log] == [
        ("entry.created", "<p>At ten sharp</p>")
    ]
    await app.state.services.scheduler.turn()
    assert len(await read_log(client, SLUG)) == 1
    # Another, scheduled and then taken back to draft.
    other = await client.post(ENTRIES, json={"headline": "Later", "publish_at": first},
                              headers=ADMIN)  # fmt: skip
    assert other.status_code == 202, other.text
    back = await client.patch(f"{ENTRIES}/{other.json()['id']}", json={"status": "draft"},
                              headers=ADMIN)  # fmt: skip
    assert back.status_code == 200 and back.json()["status"] == "draft"
    assert [record["action"] for record in await audit_actions(client)] == [
        "entry.drafted",
        "entry.scheduled",
        "entry.rescheduled",
        "entry.edited",
        "entry.published",
        "entry.scheduled",
        "entry.schedule_cancelled",
    ]


async def test_who_may_publish_may_hold_or_schedule_and_reschedule(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    cora = await add_person(app, "Cora Lind", role="contributor")
    body = {"headline": "Turnout", "hold_seconds": 10}
    assert_error(await client.post(ENTRIES, json=body, headers=cora.headers), 403, "forbidden")
    draft = await publish_entry(client, headers=cora.headers, headline="Mine", status="draft")
    path = f"{ENTRIES}/{draft['id']}"
    schedule = {"status": "published", "publish_at": in_a(timedelta(hours=1))}
    assert_error(await client.patch(path, json=schedule, headers=cora.headers), 403, "forbidden")
    # An editor schedules the contributor's draft: its writer may not change what goes out.
    assert (await client.patch(path, json=schedule, headers=ADMIN)).status_code == 202
    for change in ({"publish_at": in_a(timedelta(hours=2))}, {"body": "<p>unreviewed</p>"}):
        assert_error(await client.patch(path, json=change, headers=cora.headers), 403,
                     "forbidden")  # fmt: skip
    owner = await add_person(app, "Olga Berg", role="owner")
    allowed = await client.patch(
        f"{BLOG}/settings", json={"contributors_may_publish": True}, headers=owner.headers
    )
    assert allowed.status_code == 200
    held = await client.post(ENTRIES, json=body, headers=cora.headers)
    assert held.status_code == 202, held.text
    moved = await client.patch(f"{ENTRIES}/{held.json()['id']}",
                               json={"publish_at": in_a(timedelta(hours=2))},
                               headers=cora.headers)  # fmt: skip
    assert moved.status_code == 202, moved.text


BAD = [
    ({"publish_at": "2024-11-05T20:00:00Z"}, {"publish_at"}),
    ({"publish_at": "2099-11-05T20:00:00Z"}, {"publish_at"}),
    ({"publish_at": "tonight"}, UNCHECKED),
    ({"hold_seconds": 61}, UNCHECKED),
    ({"hold_seconds": -1}, UNCHECKED),
    ({"hold_seconds": 2.5}, UNCHECKED),
    ({"hold_seconds": "10"}, UNCHECKED),
    ({"hold_seconds": 10, "publish_at": "NEXT_HOUR"}, UNCHECKED),
    ({"hold_seconds": 10, "status": "draft"}, UNCHECKED),
    ({"publish_at": "NEXT_HOUR", "status": "submitted"}, UNCHECKED),
    ({"hold_seconds": 10, "pinned": True}, UNCHECKED),
    ({"hold_seconds": 10, "published_at": "2024-11-05T20:00:00Z"}, UNCHECKED),
]


async def test_a_bad_hold_or_schedule_is_refused_with_422_writing_nothing(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    draft = await publish_entry(client, headline="Draft", status="draft")
    before = await stored_state(app)
    for bad, fields in BAD:
        body = {
            name: in_a(timedelta(hours=1)) if value == "NEXT_HOUR" else value
            for name, value in bad.items()
        }
        created = await client.post(ENTRIES, json={"headline": "Turnout", **body}, headers=ADMIN)
        assert_error(created, 422, "invalid_input", fields)
        edit = {"status": "published", **body} if "status" not in body else body
        edited = await client.patch(f"{ENTRIES}/{draft['id']}", json=edit, headers=ADMIN)
        assert_error(edited, 422, "invalid_input", fields)
    assert await stored_state(app) == before


async def test_holding_what_cannot_be_held_is_409_writing_nothing(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    published = await publish_entry(client, headline="Out already")
    draft = await publish_entry(client, headline="Draft", status="draft")
    before = await stored_state(app)
    hold = {"hold_seconds": 10}
    assert_error(await client.patch(f"{ENTRIES}/{published['id']}", json=hold, headers=ADMIN),
                 409, "already_published")  # fmt: skip
    # A draft is held with "status": "published"; a new time alone is for scheduled entries.
    assert_error(await client.patch(f"{ENTRIES}/{draft['id']}", json=hold, headers=ADMIN),
                 409, "not_scheduled")  # fmt: skip
    for entry in (published, draft):
        cancel = await client.post(f"{ENTRIES}/{entry['id']}/cancel-publish", headers=ADMIN)
        assert cancel.status_code == 409
    assert_error(await client.post(f"{ENTRIES}/999/cancel-publish", headers=ADMIN), 404,
                 "not_found")  # fmt: skip
    assert_error(await client.post(f"{ENTRIES}/{draft['id']}/cancel-publish"), 401,
                 "unauthorised")  # fmt: skip
    assert await stored_state(app) == before


async def test_a_refused_undo_writes_nothing_and_the_publish_still_goes_out(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    cora = await add_person(app, "Cora Lind", role="contributor")
    held = await client.post(ENTRIES, json={"headline": "Turnout", "hold_seconds": 1},
                             headers=ADMIN)  # fmt: skip
    path = f"{ENTRIES}/{held.json()['id']}"
    before = await stored_state(app)
    assert_error(await client.post(f"{path}/cancel-publish", headers=cora.headers), 403,
                 "forbidden")  # fmt: skip
    stale = {"If-Match": '"entry-1-v9"'}
    assert (await client.post(f"{path}/cancel-publish", headers=ADMIN | stale)).status_code == 412
    assert await stored_state(app) == before
    log = await eventually(lambda: read_log(client, SLUG), WAIT_SECONDS, "the publish")
    assert [event["entry"]["id"] for event in log] == [held.json()["id"]]


async def stored_state(app: FastAPI) -> tuple:
    """Entries as stored (with their schedules), revisions and audit records."""
    async with app.state.services.database.read_session() as session:
        entries = (
            await session.execute(
                select(Entry.id, Entry.status, Entry.version, Entry.publish_at).order_by(Entry.id)
            )
        ).all()
        revisions = await session.scalar(select(func.count(EntryRevision.id)))
        audits = await session.scalar(select(func.count(AuditRecord.id)))
    return entries, revisions, audits
