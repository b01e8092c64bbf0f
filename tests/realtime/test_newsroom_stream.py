"""The newsroom stream: a blog's members see private changes (drafts, submissions, returns)
arrive live, contributors their own only, over SSE signed in with the session cookie or a
token; anonymous readers and non-members are refused; and no private change ever reaches a
public reader, the change log, a feed, the page or a webhook. On both databases, both
WebSocket edges, and across processes on Redis and on PostgreSQL's LISTEN/NOTIFY."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from websockets.asyncio.client import connect

from app.config import Settings
from app.models import SignInSession
from tests.support.clients import asgi_client, next_message
from tests.support.databases import STACKS, broker_url, fresh_database
from tests.support.errors import assert_error
from tests.support.factories import ADMIN, ADMIN_TOKEN, SECRET_KEY, SLUG, create_blog, publish_entry
from tests.support.people import add_person
from tests.support.servers import EDGES, LiveServer, live_server
from tests.support.sessions import SseStream, ago, set_session_times, sign_in, sse_stream
from tests.support.webhook_receiver import Receiver

ENTRIES = f"/api/v1/blogs/{SLUG}/entries"
SECRETS = ["Casualty figure unconfirmed", "Embargoed until ten", "Source not checked"]
NOTE = "Who told us this?"
CHECK_SECONDS = 0.2


@pytest.fixture
def stack_settings(stack_settings: Settings) -> Settings:
    """The stack's settings, with webhooks on and streams that check on themselves often."""
    return stack_settings.model_copy(
        update={
            "secret_key": SecretStr(SECRET_KEY),
            "webhook_allow_private_targets": True,
            "webhook_poll_seconds": 0.2,
            "heartbeat_seconds": CHECK_SECONDS,
        }
    )


def newsroom_url(server: LiveServer, slug: str = SLUG) -> str:
    return f"{server.http}/api/v1/blogs/{slug}/newsroom/sse"


def assert_public(text: str) -> None:
    for secret in [*SECRETS, NOTE]:
        assert secret not in text


async def next_note(stream: SseStream) -> dict:
    """The next message of a newsroom stream, which must be a private one (no `id:`)."""
    message = await stream.next()
    assert message.event.startswith("entry.") and message.id is None, message
    assert message.data["type"] == message.event
    return message.data


async def test_an_editor_sees_a_submission_arrive_live_and_no_public_reader_ever_does(
    server: LiveServer, receiver: Receiver, secret: str
) -> None:
    client = server.client
    await create_blog(client)
    hook = await client.post(
        f"/api/v1/blogs/{SLUG}/webhooks",
        json={"url": receiver.url, "secret": secret},
        headers=ADMIN,
    )
    assert hook.status_code == 201, hook.text
    cora = await add_person(server.app, "Cora Lind", role="contributor")
    eddie = await add_person(server.app, "Eddie Grant", role="editor")
    async with httpx.AsyncClient(base_url=server.http) as browser:
        signed = await sign_in(browser, eddie.login)
        async with (
            sse_stream(newsroom_url(server), headers=signed.cookie_header) as newsroom,
            connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as public_ws,
            sse_stream(f"{server.http}/api/v1/blogs/{SLUG}/sse") as public_sse,
        ):
            assert newsroom.status == 200, newsroom.error
            assert newsroom.headers["cache-control"] == "no-store"
            hello = await newsroom.next()
            assert (hello.event, hello.id) == ("newsroom.hello", None)
            assert hello.data == {
                "type": "newsroom.hello",
                "blog": SLUG,
                "role": "editor",
                "sees": "all",
            }
            assert (await newsroom.next()).data == {"type": "hello", "seq": 0}
            assert await next_message(public_ws) == {"type": "hello", "seq": 0}
            assert (await public_sse.next()).data == {"type": "hello", "seq": 0}

            # A contributor submits: the editor's newsroom has it at once, with its rendering.
            submitted = await publish_entry(
                client, headers=cora.headers, headline=SECRETS[0], status="submitted"
            )
            note = await next_note(newsroom)
            assert note["type"] == "entry.submitted" and note["previous_status"] is None
            assert note["entry"]["id"] == submitted["id"]
            assert note["entry"]["status"] == "submitted"
            assert SECRETS[0] in note["html"]

            # The editor's page returns it with a note: private fields travel too.
            path = f"{ENTRIES}/{submitted['id']}"
            returned = await browser.patch(
                path, json={"status": "returned", "review_note": NOTE}, headers=signed.page_headers
            )
            assert returned.status_code == 200, returned.text
            note = await next_note(newsroom)
            assert (note["type"], note["previous_status"]) == ("entry.returned", "submitted")
            assert note["entry"]["review_note"] == NOTE

            # Taken back to work on, changed, and another draft written and thrown away.
            reworked = await client.patch(
                path, json={"status": "draft", "body": f"<p>{SECRETS[1]}</p>"}, headers=cora.headers
            )
            assert reworked.status_code == 200, reworked.text
            note = await next_note(newsroom)
            assert (note["type"], note["previous_status"]) == ("entry.draft_saved", "returned")
            assert note["entry"]["version"] == reworked.json()["version"]
            scrap = await publish_entry(
                client, headers=cora.headers, headline=SECRETS[2], status="draft", key_event=True
            )
            assert (await next_note(newsroom))["type"] == "entry.draft_saved"
            deleted = await client.delete(f"{ENTRIES}/{scrap['id']}", headers=cora.headers)
            assert deleted.status_code == 204
            note = await next_note(newsroom)
            assert note["type"] == "entry.discarded" and "html" not in note
            assert note["entry"] == {
                "id": scrap["id"],
                "blog": SLUG,
                "status": "deleted",
                "deleted_at": note["entry"]["deleted_at"],
            }

            # The editor publishes: the first thing the public streams ever carry.
            marker = await browser.post(
                ENTRIES, json={"headline": "Polls close"}, headers=signed.page_headers
            )
            assert marker.status_code == 201, marker.text
            seen = await newsroom.next()
            assert (seen.event, seen.id, seen.data["entry"]["id"]) == (
                "entry.created", "1", marker.json()["id"],
            )  # fmt: skip
            first_ws = await next_message(public_ws)
            first_sse = await public_sse.next()
            assert (first_ws["seq"], first_ws["entry"]["id"]) == (1, marker.json()["id"])
            assert (first_sse.id, first_sse.data["entry"]["id"]) == ("1", marker.json()["id"])

            # More private work, then more public: still nothing private in between.
            await publish_entry(
                client, headers=cora.headers, headline=SECRETS[0], status="submitted"
            )
            assert (await next_note(newsroom))["type"] == "entry.submitted"
            await publish_entry(client, headers=eddie.headers, headline="Turnout up")
            second_ws = await next_message(public_ws)
            second_sse = await public_sse.next()
            assert (second_ws["seq"], second_sse.id) == (2, "2")
            for text in (
                json.dumps([first_ws, second_ws]),
                json.dumps([m.data for m in public_sse.messages]),
            ):
                assert_public(text)

    # The log, the feeds, the page, the lists and the webhook hold the two public entries only.
    log = (await client.get(f"/api/v1/blogs/{SLUG}/events?since=0")).json()
    assert [event["seq"] for event in log["items"]] == [1, 2] and log["head"] == 2
    for path in (
        f"/api/v1/blogs/{SLUG}/events?since=0",
        ENTRIES,
        f"/blogs/{SLUG}/feed.atom",
        f"/blogs/{SLUG}/feed.json",
        f"/blogs/{SLUG}",
    ):
        for _ in range(2):  # the second from memory, where anything kept would show
            assert_public((await client.get(path)).text)
    arrivals = await asyncio.to_thread(receiver.wait_for_accepted, 2)
    assert [arrival.seq for arrival in arrivals] == [1, 2]
    assert_public(b"".join(arrival.body for arrival in receiver.arrivals).decode())


async def test_a_contributor_sees_its_own_private_changes_and_not_another_writers(
    server: LiveServer,
) -> None:
    client = server.client
    await create_blog(client)
    cora = await add_person(server.app, "Cora Lind", role="contributor")
    dan = await add_person(server.app, "Dan Moss", role="contributor")
    eddie = await add_person(server.app, "Eddie Grant", role="editor")
    async with (
        sse_stream(newsroom_url(server), headers=cora.headers) as coras,
        sse_stream(newsroom_url(server), headers=eddie.headers) as eddies,
    ):
        hello = await coras.next()
        assert (hello.data["role"], hello.data["sees"]) == ("contributor", "own")
        assert (await eddies.next()).data["sees"] == "all"
        await coras.next(), await eddies.next()  # the public hellos

        scoop = await publish_entry(
            client, headers=dan.headers, headline="Dan's scoop", status="submitted"
        )
        lead = await publish_entry(
            client, headers=cora.headers, headline="Cora's lead", status="submitted"
        )
        returned = await client.patch(
            f"{ENTRIES}/{scoop['id']}",
            json={"status": "returned", "review_note": NOTE},
            headers=eddie.headers,
        )
        assert returned.status_code == 200
        saved = await client.patch(
            f"{ENTRIES}/{lead['id']}", json={"status": "draft"}, headers=cora.headers
        )
        assert saved.status_code == 200

        # The editor sees all four changes; Cora her own two, and nothing of Dan's.
        seen = [await next_note(eddies) for _ in range(4)]
        assert [(n["entry"]["id"], n["type"]) for n in seen] == [
            (scoop["id"], "entry.submitted"),
            (lead["id"], "entry.submitted"),
            (scoop["id"], "entry.returned"),
            (lead["id"], "entry.draft_saved"),
        ]
        own = [await next_note(coras) for _ in range(2)]
        assert [(n["entry"]["id"], n["type"]) for n in own] == [
            (lead["id"], "entry.submitted"),
            (lead["id"], "entry.draft_saved"),
        ]
        # Both see what is public.
        await publish_entry(client, headers=eddie.headers, headline="Polls close")
        assert (await coras.next()).id == "1" and (await eddies.next()).id == "1"
        assert "Dan's scoop" not in json.dumps([m.data for m in coras.messages])
        assert NOTE not in json.dumps([m.data for m in coras.messages])


@pytest.mark.parametrize("ending", ["signed out", "user disabled", "removed from the blog"])
async def test_an_open_newsroom_stream_ends_once_its_reader_may_no_longer_read_it(
    server: LiveServer, ending: str
) -> None:
    client = server.client
    await create_blog(client)
    cora = await add_person(server.app, "Cora Lind", role="contributor")
    async with httpx.AsyncClient(base_url=server.http) as browser:
        signed = await sign_in(browser, cora.login)
        async with sse_stream(newsroom_url(server), headers=signed.cookie_header) as newsroom:
            assert (await newsroom.next()).event == "newsroom.hello"
            if ending == "signed out":
                response = await browser.delete("/api/v1/session", headers=signed.page_headers)
            elif ending == "user disabled":
                response = await client.patch(
                    f"/api/v1/users/{cora.user_id}", json={"disabled": True}, headers=ADMIN
                )
            else:
                response = await client.delete(
                    f"/api/v1/blogs/{SLUG}/members/{cora.user_id}", headers=ADMIN
                )
            assert response.is_success, response.text

            ended = await newsroom.until(lambda m: m.event == "newsroom.ended")
            assert ended.data["type"] == "newsroom.ended" and ended.data["message"]
            await asyncio.wait_for(newsroom.ended.wait(), 10)
        # Coming back is refused: the client knows to sign in again.
        async with sse_stream(newsroom_url(server), headers=signed.cookie_header) as again:
            assert again.status == (403 if ending == "removed from the blog" else 401)


async def test_an_idle_session_is_not_kept_alive_by_its_open_stream(server: LiveServer) -> None:
    await create_blog(server.client)
    cora = await add_person(server.app, "Cora Lind", role="contributor")
    async with httpx.AsyncClient(base_url=server.http) as browser:
        signed = await sign_in(browser, cora.login)
        async with sse_stream(newsroom_url(server), headers=signed.cookie_header) as newsroom:
            assert (await newsroom.next()).event == "newsroom.hello"
            # Long enough ago that a request would write it anew; the stream's checks do not.
            await set_session_times(server.app, last_seen_at=ago(100))
            for _ in range(3):  # a heartbeat each check interval, with a check between
                await newsroom.until(lambda m: m.event == "heartbeat")
            async with server.app.state.services.database.read_session() as session:
                seen = await session.scalar(select(SignInSession.last_seen_at))
            assert seen is not None and seen < ago(90)

            await set_session_times(server.app, last_seen_at=ago(13 * 3600))  # idle 12 h
            await newsroom.until(lambda m: m.event == "newsroom.ended")


async def test_the_newsroom_stream_is_refused_to_anonymous_readers_and_non_members(
    client: httpx.AsyncClient, app: FastAPI, blog: dict
) -> None:
    url = f"/api/v1/blogs/{SLUG}/newsroom/sse"
    cora = await add_person(app, "Cora Lind", role="contributor")
    outsider = await add_person(app, "Otto Weir")
    await create_blog(client, "match-day", "Match day")
    elsewhere = await add_person(app, "Elsa Ray", role="editor", blog="match-day")

    assert_error(await client.get(url), 401, "unauthorised")
    for person in (outsider, elsewhere):
        assert_error(await client.get(url, headers=person.headers), 403, "forbidden")
    unknown = {"Authorization": "Bearer bltn_no-such-token"}
    assert_error(await client.get(url, headers=unknown), 401, "unauthorised")
    # A token is never taken from the query string.
    for parameter in ("token", "access_token"):
        response = await client.get(f"{url}?{parameter}={cora.secret}")
        assert_error(response, 401, "unauthorised")
    missing = await client.get("/api/v1/blogs/no-such-blog/newsroom/sse", headers=cora.headers)
    assert_error(missing, 404, "not_found")
    assert_error(await client.get(f"{url}?since=x", headers=cora.headers), 400, "invalid_since")
    async with asgi_client(app) as browser:
        await sign_in(browser, outsider.login)
        assert_error(await browser.get(url), 403, "forbidden")
        await sign_in(browser, cora.login)
        # Read from another site's page: refused, though a read changes nothing.
        refused = await browser.get(url, headers={"Origin": "https://evil.example"})
        assert_error(refused, 403, "csrf_failed")
        await set_session_times(app, expires_at=ago(1))
        assert_error(await browser.get(url), 401, "session_ended")


# --- across processes ------------------------------------------------------------------


@pytest.fixture(params=["postgresql-redis", "postgresql-notify"])
def shared_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for two processes on one PostgreSQL and one broker."""
    database, broker = STACKS[request.param]
    database_url = fresh_database(database, request, tmp_path)
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        broker_url=broker_url(broker, database_url),
        hub_check_seconds=0.2,
        rate_limit_enabled=False,
    )


@pytest.fixture
async def two_servers(shared_settings: Settings) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    async with (
        live_server(shared_settings, EDGES["edge"]) as first,
        live_server(shared_settings, EDGES["asgi"]) as second,
    ):
        yield first, second


async def test_a_private_change_written_on_one_process_reaches_members_on_another(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    writer, other = two_servers
    await create_blog(writer.client)
    cora = await add_person(writer.app, "Cora Lind", role="contributor")
    eddie = await add_person(writer.app, "Eddie Grant", role="editor")
    # Longer than a NOTIFY carries: on PostgreSQL's broker it travels as a doorbell, and the
    # other process reads the entry itself.
    long_body = "<p>" + "Figures from the count centre. " * 400 + "</p>"
    async with (
        sse_stream(newsroom_url(other), headers=eddie.headers) as far,
        sse_stream(newsroom_url(writer), headers=eddie.headers) as near,
    ):
        for stream in (far, near):
            assert (await stream.next()).event == "newsroom.hello"
            assert (await stream.next()).event == "hello"

        first = await publish_entry(
            writer.client,
            headers=cora.headers,
            headline=SECRETS[0],
            body=long_body,
            status="submitted",
        )
        second = await publish_entry(
            writer.client, headers=cora.headers, headline=SECRETS[1], status="draft"
        )

        ids = {first["id"], second["id"]}
        far_notes = await notes_of(far, ids)
        # Between processes only each blog's public seq is ordered; private notes may cross.
        assert {(n["entry"]["id"], n["type"]) for n in far_notes} == {
            (first["id"], "entry.submitted"),
            (second["id"], "entry.draft_saved"),
        }
        long_note = next(n for n in far_notes if n["entry"]["id"] == first["id"])
        assert "Figures from the count centre." in long_note["entry"]["body"]
        assert SECRETS[0] in long_note["html"]
        # The writing process delivered its own notes at once; what came back through the
        # broker whole was dropped, and a doorbell brings the entry again as it stands.
        await notes_of(near, ids)
        await publish_entry(writer.client, headers=eddie.headers, headline="Polls close")
        assert (await near.until(lambda m: m.event == "entry.created")).id == "1"
        drafts = [m for m in near.messages if m.event == "entry.draft_saved"]
        assert len(drafts) == 1
        submissions = [m.data for m in near.messages if m.event == "entry.submitted"]
        whole = writer.app.state.services.settings.broker_url.startswith("redis")
        assert len(submissions) == 1 if whole else 1 <= len(submissions) <= 2
        assert all(n["entry"] == submissions[0]["entry"] for n in submissions)


async def notes_of(stream: SseStream, entry_ids: set[int]) -> list[dict]:
    """Private notes from the stream until it has brought one of each entry."""
    notes: list[dict] = []
    while not entry_ids <= {note["entry"]["id"] for note in notes}:
        notes.append(await next_note(stream))
    return notes
