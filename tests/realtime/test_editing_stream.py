"""Who is editing, live: every member's newsroom stream (a contributor's too) is told when an
editor takes an entry's flag, when another takes it over, when it is released or saved, and
when it lapses unrenewed; no public stream, log or feed ever is. On both stacks and both
edges, and across two processes on one PostgreSQL and Redis."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from app.config import Settings
from tests.support.clients import next_message
from tests.support.databases import STACKS, broker_url, fresh_database
from tests.support.factories import ADMIN_TOKEN, SLUG, create_blog, publish_entry, read_log
from tests.support.people import add_person
from tests.support.servers import EDGES, LiveServer, live_server
from tests.support.sessions import SseStream, sign_in, sse_stream

ENTRIES = f"/api/v1/blogs/{SLUG}/entries"


def newsroom_url(server: LiveServer) -> str:
    return f"{server.http}/api/v1/blogs/{SLUG}/newsroom/sse"


async def next_editing(stream: SseStream) -> dict:
    """The next `entry.editing` note of a newsroom stream (no `id:`: not a public event)."""
    message = await stream.until(lambda m: m.event == "entry.editing")
    assert message.id is None and message.data["type"] == "entry.editing"
    return message.data


async def test_members_see_who_takes_takes_over_and_releases_an_entry_and_the_public_never_do(
    server: LiveServer,
) -> None:
    client = server.client
    await create_blog(client)
    ana = await add_person(server.app, "Ana Ruiz", role="editor")
    ben = await add_person(server.app, "Ben Okafor", role="editor")
    cora = await add_person(server.app, "Cora Lind", role="contributor")
    entry = await publish_entry(client, headline="Polls close")
    flag = f"{ENTRIES}/{entry['id']}/editing"
    async with httpx.AsyncClient(base_url=server.http) as browser:
        signed = await sign_in(browser, ben.login)
        async with (
            sse_stream(newsroom_url(server), headers=signed.cookie_header) as bens,
            sse_stream(newsroom_url(server), headers=cora.headers) as coras,
            connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws") as public_ws,
            sse_stream(f"{server.http}/api/v1/blogs/{SLUG}/sse") as public_sse,
        ):
            for stream in (bens, coras):
                assert (await stream.next()).event == "newsroom.hello"
            assert (await public_sse.next()).data["type"] == "hello"
            assert (await next_message(public_ws))["type"] == "hello"

            taken = await client.put(flag, headers=ana.headers)
            assert taken.status_code == 200, taken.text
            for stream in (bens, coras):
                note = await next_editing(stream)
                assert note == {
                    "type": "entry.editing",
                    "blog": SLUG,
                    "entry_id": entry["id"],
                    "editor": taken.json()["editor"],
                    "expires_at": taken.json()["editor"]["expires_at"],
                }
            # A renewal says nothing new; Ben's page takes it over, signed in.
            assert (await client.put(flag, headers=ana.headers)).status_code == 200
            over = await browser.put(flag, json={"take_over": True}, headers=signed.page_headers)
            assert over.status_code == 200, over.text
            note = await next_editing(coras)
            assert (note["editor"]["name"], note["editor"]["user_id"]) == (
                "Ben Okafor",
                ben.user_id,
            )
            assert (await next_editing(bens))["editor"]["user_id"] == ben.user_id

            # Ben saves: released, and then the edit itself arrives on every stream.
            saved = await browser.patch(
                f"{ENTRIES}/{entry['id']}",
                json={"headline": "Polls have closed"},
                headers=signed.page_headers,
            )
            assert saved.status_code == 200, saved.text
            released = await next_editing(coras)
            assert (released["editor"], released["expires_at"]) == (None, None)
            assert (await next_editing(bens))["editor"] is None

            # Ana takes it again and leaves.
            await client.put(flag, headers=ana.headers)
            assert (await next_editing(bens))["editor"]["name"] == "Ana Ruiz"
            assert (await client.delete(flag, headers=ana.headers)).status_code == 204
            assert (await next_editing(bens))["editor"] is None

            # The public streams carried the two public events and nothing of who edits.
            await publish_entry(client, headline="Marker")
            seen = [await next_message(public_ws) for _ in range(2)]
            assert [m["type"] for m in seen] == ["entry.updated", "entry.created"]
            assert (await public_sse.until(lambda m: m.id == "3")).event == "entry.created"
            public_pages = [
                await client.get(f"/blogs/{SLUG}{path}")
                for path in ("/feed.atom", "/feed.json", "")
            ]
            assert all(page.status_code == 200 for page in public_pages)
            for text in (
                repr(seen),
                repr([m.data for m in public_sse.messages]),
                repr(await read_log(client, SLUG)),
                *(page.text for page in public_pages),
            ):
                assert "Ana Ruiz" not in text and "Ben Okafor" not in text
                assert "entry.editing" not in text


async def test_a_flag_nobody_renews_lapses_and_members_are_told(stack_settings: Settings) -> None:
    lapsing = stack_settings.model_copy(update={"editing_seconds": 0.6})
    async with live_server(lapsing) as server:
        await lapse(server)


async def lapse(server: LiveServer) -> None:
    client = server.client
    await create_blog(client)
    ana = await add_person(server.app, "Ana Ruiz", role="editor")
    entry = await publish_entry(client, headline="Polls close")
    async with sse_stream(newsroom_url(server), headers=ana.headers) as newsroom:
        assert (await newsroom.next()).event == "newsroom.hello"
        taken = await client.put(f"{ENTRIES}/{entry['id']}/editing", headers=ana.headers)
        assert taken.status_code == 200
        assert (await next_editing(newsroom))["editor"]["user_id"] == ana.user_id
        # No request: the sweep notices the lapse and says so.
        lapsed = await next_editing(newsroom)
        assert (lapsed["entry_id"], lapsed["editor"], lapsed["expires_at"]) == (
            entry["id"],
            None,
            None,
        )
        listed = await client.get(f"/api/v1/blogs/{SLUG}/editing", headers=ana.headers)
        assert listed.json() == {"items": []}


# --- across processes ------------------------------------------------------------------


@pytest.fixture
def shared_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for two processes on one PostgreSQL and one Redis."""
    database, broker = STACKS["postgresql-redis"]
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
    settings = shared_settings
    async with (
        live_server(settings, EDGES["edge"]) as first,
        live_server(settings, EDGES["asgi"]) as second,
    ):
        yield first, second


async def test_a_flag_taken_on_one_process_is_seen_and_refused_on_another(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    near, far = two_servers
    await create_blog(near.client)
    ana = await add_person(near.app, "Ana Ruiz", role="editor")
    ben = await add_person(near.app, "Ben Okafor", role="editor")
    entry = await publish_entry(near.client, headline="Polls close")
    flag = f"{ENTRIES}/{entry['id']}/editing"
    async with sse_stream(newsroom_url(far), headers=ben.headers) as bens:
        assert (await bens.next()).event == "newsroom.hello"
        taken = await near.client.put(flag, headers=ana.headers)
        assert taken.status_code == 200
        assert (await next_editing(bens))["editor"] == taken.json()["editor"]
        # The other process knows the holder too: the flag lives in the database.
        refused = await far.client.put(flag, headers=ben.headers)
        assert refused.status_code == 409
        assert refused.json()["error"]["editor"]["name"] == "Ana Ruiz"
        assert (await near.client.delete(flag, headers=ana.headers)).status_code == 204
        assert (await next_editing(bens))["editor"] is None
