"""HTTP caching of every public read: validators from the head seq, 304s, cache policy."""

import email.utils
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update

from app.models import Blog, Event
from app.schemas import EntryCreate
from tests.support.factories import ADMIN, SLUG, create_blog, publish_entry

# Every public read; {entry} is the blog's first entry.
READS = [
    "/api/v1/blogs",
    f"/api/v1/blogs/{SLUG}",
    f"/api/v1/blogs/{SLUG}/entries",
    f"/api/v1/blogs/{SLUG}/entries/{{entry}}",
    f"/api/v1/blogs/{SLUG}/events?since=0",
    f"/blogs/{SLUG}/feed.atom",
    f"/blogs/{SLUG}/feed.json",
]
BLOG_READS = READS[1:]
LIVE_POLICY = "public, max-age=5, stale-while-revalidate=30, stale-if-error=86400"
ENDED_POLICY = "public, max-age=3600, stale-while-revalidate=86400, stale-if-error=86400"


@pytest.fixture
async def entry(client: httpx.AsyncClient, blog: dict, publish_headers: dict) -> dict:
    return await publish_entry(
        client, headers=publish_headers, headline="Polls close", body="<p>Counting starts.</p>"
    )


def _url(path: str, entry: dict) -> str:
    return path.format(entry=entry["id"])


async def _get(client: httpx.AsyncClient, url: str, **headers: str) -> httpx.Response:
    response = await client.get(url, headers=headers)
    assert response.status_code in (200, 304), response.text
    return response


async def _change(
    client: httpx.AsyncClient, publish_headers: dict, kind: str, entry: dict, victim: dict
) -> None:
    """Publish a new entry, edit `entry`, or delete `victim`."""
    entries = f"/api/v1/blogs/{SLUG}/entries"
    if kind == "publish":
        await publish_entry(client, headers=publish_headers, body="<p>More.</p>")
    elif kind == "edit":
        response = await client.patch(
            f"{entries}/{entry['id']}", json={"headline": "Polls closed"}, headers=publish_headers
        )
        assert response.status_code == 200, response.text
    else:
        response = await client.delete(f"{entries}/{victim['id']}", headers=publish_headers)
        assert response.status_code == 204, response.text


async def _age_the_log(app: FastAPI, moment: datetime) -> None:
    """Date the blogs and their log back to `moment`, as if written then."""
    async with app.state.services.database.write_session() as session:
        await session.execute(update(Blog).values(created_at=moment))
        await session.execute(update(Event).values(created_at=moment))


@pytest.mark.parametrize("path", READS)
async def test_every_public_read_sends_a_strong_etag_and_answers_if_none_match_with_304(
    client: httpx.AsyncClient, entry: dict, path: str
) -> None:
    first = await _get(client, _url(path, entry))
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong: no W/
    assert first.headers["cache-control"] == LIVE_POLICY

    again = await _get(client, _url(path, entry), **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == LIVE_POLICY


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("change", ["publish", "edit", "delete"])
async def test_after_a_change_the_old_etag_gets_200_with_the_new_body(
    client: httpx.AsyncClient, entry: dict, publish_headers: dict, path: str, change: str
) -> None:
    victim = await publish_entry(client, headers=publish_headers, body="<p>Wrong ward.</p>")
    before = await _get(client, _url(path, entry))
    await _change(client, publish_headers, change, entry, victim)

    after = await _get(client, _url(path, entry), **{"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    if change == "edit" or "{entry}" not in path:  # one entry's body moves only with its edit
        assert after.content != before.content
    assert after.content == (await client.get(_url(path, entry))).content
    current = await _get(client, _url(path, entry), **{"If-None-Match": after.headers["etag"]})
    assert current.status_code == 304


@pytest.mark.parametrize("path", BLOG_READS)
async def test_a_304_for_a_live_blog_is_answered_from_memory_without_a_query(
    client: httpx.AsyncClient, entry: dict, path: str, statements: list[str]
) -> None:
    first = await _get(client, _url(path, entry))
    statements.clear()
    again = await _get(client, _url(path, entry), **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert statements == []


@pytest.mark.parametrize("path", BLOG_READS)
async def test_a_304_for_an_ended_blog_reads_only_the_blogs_row(
    client: httpx.AsyncClient, entry: dict, path: str, statements: list[str]
) -> None:
    response = await client.patch(f"/api/v1/blogs/{SLUG}", json={"status": "ended"}, headers=ADMIN)
    assert response.status_code == 200
    first = await _get(client, _url(path, entry))
    assert first.headers["cache-control"] == ENDED_POLICY
    statements.clear()
    again = await _get(client, _url(path, entry), **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1 and "FROM blogs" in queries[0]
    assert not any("entries" in s or "events" in s for s in statements)


async def test_a_304_for_the_list_of_blogs_reads_no_entries(
    client: httpx.AsyncClient, entry: dict, statements: list[str]
) -> None:
    first = await _get(client, "/api/v1/blogs")
    statements.clear()
    again = await _get(client, "/api/v1/blogs", **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert statements and not any("entries" in s for s in statements)


async def test_the_list_etag_changes_with_a_new_blog_and_with_a_change_to_any_blog(
    client: httpx.AsyncClient, entry: dict, publish_headers: dict
) -> None:
    etags = [(await _get(client, "/api/v1/blogs")).headers["etag"]]
    await create_blog(client, "count", "The count")
    etags.append((await _get(client, "/api/v1/blogs")).headers["etag"])
    await _change(client, publish_headers, "edit", entry, entry)
    etags.append((await _get(client, "/api/v1/blogs")).headers["etag"])
    assert len(set(etags)) == 3


@pytest.mark.parametrize("path", BLOG_READS)
async def test_a_change_to_the_blog_itself_changes_every_etag(
    client: httpx.AsyncClient, entry: dict, path: str
) -> None:
    before = await _get(client, _url(path, entry))
    response = await client.patch(
        f"/api/v1/blogs/{SLUG}", json={"title": "Vote night!"}, headers=ADMIN
    )
    assert response.status_code == 200
    after = await _get(client, _url(path, entry), **{"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        ("{etag}", 304),
        ("W/{etag}", 304),
        ('"other", {etag}', 304),
        ("*", 304),
        ('"other"', 200),
        ("not an entity tag", 200),
        ("", 200),
    ],
)
async def test_if_none_match_is_compared_weakly_and_may_list_several_tags(
    client: httpx.AsyncClient, entry: dict, if_none_match: str, status: int
) -> None:
    url = f"/blogs/{SLUG}/feed.json"
    etag = (await _get(client, url)).headers["etag"]
    response = await _get(client, url, **{"If-None-Match": if_none_match.format(etag=etag)})
    assert response.status_code == status


@pytest.mark.parametrize("path", READS)
async def test_last_modified_is_sent_and_if_modified_since_is_answered_with_304(
    app: FastAPI, client: httpx.AsyncClient, entry: dict, path: str
) -> None:
    an_hour_ago = datetime.now(UTC).replace(microsecond=500_000) - timedelta(hours=1)
    await _age_the_log(app, an_hour_ago)

    first = await _get(client, _url(path, entry))
    last_modified = first.headers["last-modified"]
    # The end of the second in which the change was logged.
    expected = an_hour_ago.replace(microsecond=0) + timedelta(seconds=1)
    assert email.utils.parsedate_to_datetime(last_modified) == expected

    same = await _get(client, _url(path, entry), **{"If-Modified-Since": last_modified})
    assert same.status_code == 304
    assert "last-modified" not in same.headers and same.headers["etag"] == first.headers["etag"]
    earlier = email.utils.format_datetime(expected - timedelta(seconds=1), usegmt=True)
    older = await _get(client, _url(path, entry), **{"If-Modified-Since": earlier})
    assert older.status_code == 200


@pytest.mark.parametrize(
    "if_modified_since",
    [
        "not a date",
        email.utils.format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True),
    ],
    # Named, not by value: the tests each xdist process collects must be the same.
    ids=["malformed", "tomorrow"],
)
async def test_an_if_modified_since_that_is_malformed_or_in_the_future_is_ignored(
    app: FastAPI, client: httpx.AsyncClient, entry: dict, if_modified_since: str
) -> None:
    await _age_the_log(app, datetime.now(UTC) - timedelta(hours=1))
    response = await _get(
        client, f"/blogs/{SLUG}/feed.atom", **{"If-Modified-Since": if_modified_since}
    )
    assert response.status_code == 200


async def test_if_none_match_decides_over_if_modified_since(
    app: FastAPI, client: httpx.AsyncClient, entry: dict
) -> None:
    await _age_the_log(app, datetime.now(UTC) - timedelta(hours=1))
    first = await _get(client, f"/blogs/{SLUG}/feed.atom")
    response = await _get(
        client,
        f"/blogs/{SLUG}/feed.atom",
        **{"If-None-Match": '"other"', "If-Modified-Since": first.headers["last-modified"]},
    )
    assert response.status_code == 200


async def test_a_fresh_change_sends_no_last_modified_and_believes_no_date_after_it(
    app: FastAPI, client: httpx.AsyncClient, entry: dict
) -> None:
    # The change was logged a second and a half ago: its second is over, the margin is not.
    await _age_the_log(app, datetime.now(UTC) - timedelta(milliseconds=1500))
    url = f"/blogs/{SLUG}/feed.atom"

    first = await _get(client, url)
    assert "last-modified" not in first.headers and first.headers["etag"]
    # A date from the client's own clock, after the change's second: it may predate a
    # change still being committed, so it proves nothing.
    now = email.utils.format_datetime(datetime.now(UTC), usegmt=True)
    again = await _get(client, url, **{"If-Modified-Since": now})
    assert again.status_code == 200


async def test_etags_depend_on_the_blog_and_the_variant_never_on_the_client(
    client: httpx.AsyncClient, entry: dict
) -> None:
    one = await client.get(
        f"/blogs/{SLUG}/feed.json", headers={"User-Agent": "reader-a", "Cookie": "id=1"}
    )
    two = await client.get(
        f"/blogs/{SLUG}/feed.json",
        headers={"User-Agent": "reader-b", "Accept-Language": "cy", "X-Forwarded-For": "10.1.1.1"},
    )
    assert one.headers["etag"] == two.headers["etag"] and one.content == two.content
    variants = [
        f"/blogs/{SLUG}/feed.json",
        f"/blogs/{SLUG}/feed.atom",
        f"/api/v1/blogs/{SLUG}/entries",
        f"/api/v1/blogs/{SLUG}/entries?limit=5",
        f"/api/v1/blogs/{SLUG}/entries?key_events=true",
        f"/api/v1/blogs/{SLUG}/events?since=0",
        f"/api/v1/blogs/{SLUG}/events?since=1",
    ]
    etags = {(await _get(client, url)).headers["etag"] for url in variants}
    assert len(etags) == len(variants)


async def test_answers_that_may_show_drafts_are_private_and_not_stored(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict
) -> None:
    response = await client.post(
        f"/api/v1/blogs/{SLUG}/entries",
        json={"headline": "Embargoed", "status": "draft"},
        headers=publish_headers,
    )
    draft = response.json()
    for url in (
        f"/api/v1/blogs/{SLUG}/entries?status=draft",
        f"/api/v1/blogs/{SLUG}/entries/{draft['id']}",
    ):
        response = await client.get(url, headers=publish_headers)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "private, no-store"
        assert "last-modified" not in response.headers
        # No cache validator; an entry carries its version, for If-Match (edit safety).
        assert response.headers.get("etag") in (None, f'"entry-{draft["id"]}-v1"')
        assert "Embargoed" in response.text
    public = await client.get(f"/api/v1/blogs/{SLUG}/entries/{draft['id']}")
    assert public.status_code == 404


async def test_refusals_of_public_reads_are_not_stored_by_a_shared_cache(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict
) -> None:
    # Without Cache-Control a shared cache keeps a 404 for minutes (Varnish's default: 2):
    # a draft's URL would stay 404 after it is published, a new blog's before it is made.
    draft = (
        await client.post(
            f"/api/v1/blogs/{SLUG}/entries",
            json={"body": "<p>Soon.</p>", "status": "draft"},
            headers=publish_headers,
        )
    ).json()
    for url in (
        f"/api/v1/blogs/{SLUG}/entries/{draft['id']}",
        "/api/v1/blogs/not-yet",
        "/blogs/not-yet/feed.atom",
        f"/api/v1/blogs/{SLUG}/events?since=x",
    ):
        response = await client.get(url)
        assert response.status_code in (404, 400, 422), response.text
        assert response.headers["cache-control"] == "no-store", url


async def test_entry_reads_vary_on_authorization(client: httpx.AsyncClient, entry: dict) -> None:
    for url in (f"/api/v1/blogs/{SLUG}/entries", f"/api/v1/blogs/{SLUG}/entries/{entry['id']}"):
        assert "Authorization" in (await _get(client, url)).headers["vary"]


async def test_a_conditional_read_of_an_unknown_blog_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/blogs/nobody/feed.atom", headers={"If-None-Match": "*"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("feed", ["feed.atom", "feed.json"])
async def test_a_feed_is_built_once_per_change_and_then_served_from_memory(
    client: httpx.AsyncClient, entry: dict, publish_headers: dict, feed: str, statements: list[str]
) -> None:
    url = f"/blogs/{SLUG}/{feed}"
    first = await _get(client, url)
    statements.clear()
    again = await _get(client, url)
    assert statements == []
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert again.headers["content-type"] == first.headers["content-type"]

    await _change(client, publish_headers, "edit", entry, entry)
    changed = await _get(client, url)
    assert changed.headers["etag"] != first.headers["etag"]
    assert b"Polls closed" in changed.content


async def test_a_request_with_a_token_is_never_answered_from_memory(
    client: httpx.AsyncClient, entry: dict, publish_headers: dict
) -> None:
    url = f"/api/v1/blogs/{SLUG}/entries/{entry['id']}"
    public = await _get(client, url)
    with_token = await client.get(
        url, headers={**publish_headers, "If-None-Match": public.headers["etag"]}
    )
    assert with_token.status_code == 200
    assert with_token.headers["cache-control"] == "private, no-store"
    unknown = await client.get(
        url, headers={"Authorization": "Bearer nope", "If-None-Match": public.headers["etag"]}
    )
    assert unknown.status_code == 401


@pytest.mark.parametrize("feed", ["feed.atom", "feed.json"])
async def test_a_repeated_head_of_a_feed_is_answered_from_memory_without_a_query(
    client: httpx.AsyncClient, entry: dict, feed: str, statements: list[str]
) -> None:
    url = f"/blogs/{SLUG}/{feed}"
    first = await client.head(url)
    assert first.status_code == 200
    statements.clear()

    again = await client.head(url)
    current = await client.head(url, headers={"If-None-Match": first.headers["etag"]})
    get = await client.get(url)

    assert statements == []
    assert again.status_code == 200 and again.content == b""
    for name in ("etag", "content-type", "content-length", "cache-control"):
        assert again.headers[name] == first.headers[name] == get.headers[name]
    assert int(again.headers["content-length"]) == len(get.content)
    assert current.status_code == 304


async def test_a_read_without_head_refuses_head_even_once_its_get_is_remembered(
    client: httpx.AsyncClient, entry: dict
) -> None:
    url = f"/api/v1/blogs/{SLUG}/entries"
    await _get(client, url)
    await _get(client, url)
    assert (await client.head(url)).status_code == 405


@pytest.mark.parametrize("feed", ["feed.atom", "feed.json"])
async def test_head_of_a_feed_has_the_headers_of_its_get(
    client: httpx.AsyncClient, entry: dict, feed: str
) -> None:
    url = f"/blogs/{SLUG}/{feed}"
    get = await _get(client, url)
    head = await client.head(url)
    assert head.status_code == 200
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-type"] == get.headers["content-type"]
    again = await client.head(url, headers={"If-None-Match": get.headers["etag"]})
    assert again.status_code == 304


async def test_a_popular_feed_keeps_its_body_while_one_off_query_strings_come_and_go(
    app: FastAPI, client: httpx.AsyncClient, entry: dict, statements: list[str]
) -> None:
    url = f"/blogs/{SLUG}/feed.json"
    popular = await _get(client, url)
    await _get(client, url)
    # More one-off URLs than the process keeps bodies for.
    for number in range(140):
        await _get(client, f"{url}?x={number}")
    statements.clear()

    again = await _get(client, url)
    assert statements == []
    assert again.content == popular.content


@pytest.mark.parametrize("status", ["live", "ended"])
async def test_a_blog_made_again_under_the_same_slug_at_the_same_seq_gets_new_etags(
    app: FastAPI, client: httpx.AsyncClient, entry: dict, publish_headers: dict, status: str
) -> None:
    async def end_if_asked() -> None:
        if status == "ended":
            response = await client.patch(
                f"/api/v1/blogs/{SLUG}", json={"status": "ended"}, headers=ADMIN
            )
            assert response.status_code == 200

    url = f"/blogs/{SLUG}/feed.atom"
    await end_if_asked()
    old = await _get(client, url)
    await _get(client, url)
    # The blog is deleted and made again (or a different database restored) while the
    # process runs: same slug, same head seq, another blog.
    async with app.state.services.database.write_session() as session:
        await session.execute(delete(Blog).where(Blog.slug == SLUG))
    await create_blog(client)
    await publish_entry(client, headers=publish_headers, body="<p>Another night.</p>")
    await end_if_asked()
    # The hub follows the blog now under that slug, as it does once it loads the slug again.
    app.state.services.hub.unfollow(SLUG)
    if status == "live":
        await app.state.services.hub.follow(SLUG)

    again = await _get(client, url, **{"If-None-Match": old.headers["etag"]})
    assert again.status_code == 200
    assert again.headers["etag"] != old.headers["etag"]
    assert again.headers["etag"].rsplit("-", 1)[1] == old.headers["etag"].rsplit("-", 1)[1]
    assert b"Another night" in again.content


@pytest.mark.parametrize("path", BLOG_READS)
async def test_a_read_right_after_a_publish_is_never_answered_from_the_memory_before_it(
    app: FastAPI, client: httpx.AsyncClient, entry: dict, publish_headers: dict, path: str
) -> None:
    url = _url(path, entry)
    await _get(client, url)
    old = await _get(client, url)  # asked twice: popular, answered from memory from now on
    await publish_entry(client, headers=publish_headers, body="<p>Turnout at 61%.</p>")

    again = await _get(client, url, **{"If-None-Match": old.headers["etag"]})

    assert again.status_code == 200
    old_seq = int(old.headers["etag"].strip('"').rsplit("-", 1)[1])
    assert again.headers["etag"].strip('"').rsplit("-", 1)[1] == str(old_seq + 1)


async def test_the_hubs_position_moves_before_the_publishing_call_returns(
    app: FastAPI, client: httpx.AsyncClient, entry: dict
) -> None:
    services = app.state.services
    await _get(client, f"/blogs/{SLUG}/feed.atom")  # the hub follows the live blog now
    before = services.hub.position(SLUG)
    assert before is not None

    await services.publisher.create_entry(SLUG, EntryCreate(body="<p>Exit polls.</p>"))
    # No await since: the fan-out has not run, yet the position already names the new seq.
    after = services.hub.position(SLUG)

    assert after == replace(before, seq=before.seq + 1)
