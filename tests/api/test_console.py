"""The operator console's figures and the kill switch, through the API: who may use them,
what they answer, and that a stopped blog is served from memory without a query."""

import httpx
from fastapi import FastAPI

from app.config import Settings
from tests.support.clients import asgi_client
from tests.support.errors import assert_error
from tests.support.factories import ADMIN, SLUG, create_blog, publish_entry
from tests.support.metrics import register_webhook, running_receiver, with_webhooks
from tests.support.people import add_person
from tests.support.servers import running_app
from tests.support.waiting import eventually

CONSOLE = "/api/v1/console"
STOP = f"/api/v1/blogs/{SLUG}/streams-stop"


def figures_of(answer: httpx.Response, slug: str = SLUG) -> dict:
    assert answer.status_code == 200, answer.text
    return next(blog for blog in answer.json()["blogs"] if blog["slug"] == slug)


async def test_the_console_figures_are_for_admins_only(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await create_blog(client)
    editor = await add_person(app, "Eddie Grant", role="editor")
    assert_error(await client.get(CONSOLE), 401, "unauthorised")
    assert_error(await client.get(CONSOLE, headers=editor.headers), 403, "forbidden")
    answer = await client.get(CONSOLE, headers=ADMIN)
    assert answer.headers["cache-control"] == "private, no-store"
    assert figures_of(answer) == {
        "slug": SLUG,
        "title": "Vote night",
        "head_seq": 0,
        "readers_now": 0,
        "entries_last_5_minutes": 0,
        "entries_last_60_minutes": 0,
        "lag_events": 0,
        "webhooks": 0,
        "webhook_backlog_events": 0,
        "webhook_failures": 0,
        "streams_stopped": False,
    }


async def test_the_console_counts_recent_entries_and_leaves_out_ended_blogs(
    client: httpx.AsyncClient,
) -> None:
    await create_blog(client)
    await create_blog(client, "count-day", "Count day")
    for number in range(3):
        await publish_entry(client, body=f"<p>Update {number}</p>")
    await publish_entry(client, body="<p>Draft</p>", status="draft")
    await publish_entry(client, body="<p>Written up later</p>", published_at="2020-01-01T10:00:00Z")
    ended = await client.patch("/api/v1/blogs/count-day", json={"status": "ended"}, headers=ADMIN)
    assert ended.status_code == 200, ended.text
    answer = await client.get(CONSOLE, headers=ADMIN)
    assert [blog["slug"] for blog in answer.json()["blogs"]] == [SLUG]
    blog = figures_of(answer)
    assert (blog["entries_last_5_minutes"], blog["entries_last_60_minutes"]) == (3, 3)
    assert blog["head_seq"] == 4  # the draft is in the log of nobody's public view, not counted


async def test_an_unchanged_console_answers_304_to_its_etag(client: httpx.AsyncClient) -> None:
    await create_blog(client)
    first = await client.get(CONSOLE, headers=ADMIN)
    etag = first.headers["etag"]
    again = await client.get(CONSOLE, headers={**ADMIN, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    await publish_entry(client, body="<p>Polls close</p>")
    changed = await client.get(CONSOLE, headers={**ADMIN, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert figures_of(changed)["entries_last_5_minutes"] == 1


async def test_the_kill_switch_is_an_admins_and_is_kept_in_the_audit_log(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await create_blog(client)
    owner = await add_person(app, "Olga Berg", role="owner")
    assert_error(await client.post(STOP), 401, "unauthorised")
    assert_error(await client.post(STOP, headers=owner.headers), 403, "forbidden")
    assert_error(
        await client.post("/api/v1/blogs/no-such-blog/streams-stop", headers=ADMIN),
        404,
        "not_found",
    )
    assert figures_of(await client.get(CONSOLE, headers=ADMIN))["streams_stopped"] is False

    stopped = await client.post(STOP, headers=ADMIN)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"blog": SLUG, "streams_stopped": True}
    assert (await client.post(STOP, headers=ADMIN)).json()["streams_stopped"] is True
    assert figures_of(await client.get(CONSOLE, headers=ADMIN))["streams_stopped"] is True
    resumed = await client.delete(STOP, headers=ADMIN)
    assert resumed.json() == {"blog": SLUG, "streams_stopped": False}

    records = (await client.get(f"/api/v1/blogs/{SLUG}/audit", headers=ADMIN)).json()["items"]
    actions = [record["action"] for record in records if "streams" in record["action"]]
    # Newest first; stopping a stopped blog again is no change and no record.
    assert actions == ["blog.streams_resumed", "blog.streams_stopped"]


async def test_a_stopped_blog_is_served_from_memory_even_stale_without_a_query(
    client: httpx.AsyncClient, statements: list[str]
) -> None:
    await create_blog(client)
    await publish_entry(client, headline="Polls close", body="<p>Counting starts.</p>")
    reads = [f"/blogs/{SLUG}", f"/blogs/{SLUG}/feed.atom", f"/blogs/{SLUG}/feed.json"]
    before = {url: (await client.get(url)).text for url in reads[:2]}
    assert (await client.post(STOP, headers=ADMIN)).status_code == 200
    await publish_entry(client, headline="First results", body="<p>A late count.</p>")

    statements.clear()
    for url, body in before.items():
        answer = await client.get(url)
        assert answer.status_code == 200
        assert answer.text == body  # stale: the blog is served from memory only
        assert "First results" not in answer.text
    assert statements == []
    # Not asked for before it was stopped: built once, then from memory.
    first = await client.get(reads[2])
    assert first.status_code == 200 and "First results" in first.text
    statements.clear()
    assert (await client.get(reads[2])).text == first.text
    assert statements == []

    assert (await client.delete(STOP, headers=ADMIN)).status_code == 200
    assert "First results" in (await client.get(reads[0])).text


async def test_the_console_page_is_an_admins_and_framed_by_nobody(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await create_blog(client, title="Harbour fire")
    editor = await add_person(app, "Eddie Grant", role="editor")
    anonymous = await client.get("/console")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/newsroom"
    refused = await client.get("/console", headers=editor.headers)
    assert refused.status_code == 403 and "Admins only" in refused.text
    page = await client.get("/console", headers=ADMIN)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert f'<tr data-blog="{SLUG}">' in page.text and "Harbour fire" in page.text
    etag = (await client.get(CONSOLE, headers=ADMIN)).headers["etag"]
    assert f'data-etag="{etag}"' in page.text.replace("&#34;", '"')


async def test_the_console_shows_a_failing_webhook_s_backlog_and_failures(
    settings: Settings,
) -> None:
    receiver = running_receiver({attempt: 503 for attempt in range(1, 1000)})
    try:
        async with running_app(with_webhooks(settings)) as app, asgi_client(app) as client:
            await create_blog(client)
            await register_webhook(client, SLUG, receiver)
            for number in range(3):
                await publish_entry(client, body=f"<p>Update {number}</p>")

            async def figures() -> dict:
                return figures_of(await client.get(CONSOLE, headers=ADMIN))

            blog = await eventually(
                figures, 10, "a failed attempt counted", holds=lambda b: b["webhook_failures"] >= 1
            )
            assert (blog["webhooks"], blog["webhook_backlog_events"]) == (1, 3)
    finally:
        receiver.stop()
