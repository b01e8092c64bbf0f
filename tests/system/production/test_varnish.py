"""Bulletin behind a shared cache: Varnish with its built-in VCL and only the backend
address (`varnishd -b`), caching by Bulletin's own Cache-Control and ETag.

The origin's requests are counted from its own access log (one line per request it
answered); Varnish's counters are read as a cross-check.
"""

import asyncio
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app import migrating
from app.caching.validators import LIVE_CACHE_CONTROL
from tests.support.factories import ADMIN, create_blog, publish_entry
from tests.support.fleet import plain_get
from tests.support.proxies import Varnish
from tests.support.servers import ServerProcess, log_tail, serve_environment
from tests.support.waiting import eventually

MAX_AGE = int(re.search(r"max-age=(\d+)", LIVE_CACHE_CONTROL).group(1))  # type: ignore[union-attr]
SWR = int(re.search(r"stale-while-revalidate=(\d+)", LIVE_CACHE_CONTROL).group(1))  # type: ignore[union-attr]
HUB_CHECK_SECONDS = 2.0
# The quiet phase: four max-age windows, long enough to see Varnish refresh each URL
# again and again, short enough for the suite (the 30 s would add 10 s, not insight).
QUIET_SECONDS = 20
POLLERS = 1000
# Each poller asks every POLL_SECONDS (a feed reader's pace is minutes; this is brisk).
POLL_SECONDS = 10
WAIT_SECONDS = 30
PASSWORD = "a long password for the shared cache test"


@dataclass
class Shop:
    varnish: Varnish
    origin: ServerProcess
    # A second process on the same database, not behind the cache: a change published
    # through it reaches the origin by the origin's periodic check of the log.
    other: ServerProcess


@pytest.fixture(scope="module")
def shop(empty_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    migrating.upgrade(empty_database)
    directory = tmp_path_factory.mktemp("varnish-stack")
    env = serve_environment(
        empty_database,
        hub_check_seconds=str(HUB_CHECK_SECONDS),
        # Varnish connects from 127.0.0.1 and sends X-Forwarded-For.
        forwarded_allow_ips="127.0.0.1",
        log_level="info",  # the access log counts the origin's requests
    )
    origin = ServerProcess(env, directory / "origin.log")
    other = ServerProcess(env, directory / "other.log")
    varnish = Varnish(directory / "varnish", origin.address)
    try:
        origin.start()
        other.start()
        varnish.start()
        yield Shop(varnish, origin, other)
    finally:
        varnish.stop()
        for process in (origin, other):
            process.stop()
            print(f"--- {process.log_path.name} (tail) ---\n{log_tail(process.log_path, 2000)}")
        print(f"--- varnishd (tail) ---\n{log_tail(varnish.log, 2000)}")


class AccessLog:
    """The origin's requests, read from its access log from a mark on."""

    LINE = re.compile(r'"(GET|HEAD|POST|PATCH|PUT|DELETE) (\S+) HTTP/1\.1" (\d+)')

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mark = path.stat().st_size

    def requests(self) -> list[tuple[str, str, int]]:
        with self.path.open("rb") as log:
            log.seek(self.mark)
            text = log.read().decode(errors="replace")
        return [(m[1], m[2], int(m[3])) for m in self.LINE.finditer(text)]

    def count(self, url: str) -> int:
        return sum(1 for _method, path, _status in self.requests() if path == url)


def cache_client(shop: Shop) -> httpx.AsyncClient:
    # A connection per request: Varnish closes idle ones after 5 s (timeout_idle), and a
    # pooled connection closed just as it is reused would fail a request.
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=shop.varnish.http, timeout=10, limits=limits)


def blog_urls(slug: str) -> list[str]:
    """The public reads a CDN carries: the reader page, both feeds, the log, the API."""
    return [
        f"/blogs/{slug}",
        f"/blogs/{slug}/feed.atom",
        f"/blogs/{slug}/feed.json",
        f"/api/v1/blogs/{slug}/events?since=0",
        f"/api/v1/blogs/{slug}/entries",
        f"/api/v1/blogs/{slug}",
    ]


async def origin_setup(shop: Shop, slug: str, entries: int = 1) -> None:
    async with httpx.AsyncClient(base_url=shop.origin.http, headers=ADMIN, timeout=10) as client:
        await create_blog(client, slug, slug.title())
        for number in range(entries):
            await publish_entry(client, slug, body=f"<p>Before {number}</p>")


async def test_a_thousand_pollers_cost_the_origin_one_request_per_max_age_per_url(
    shop: Shop,
) -> None:
    slug = "quiet"
    await origin_setup(shop, slug, entries=3)
    urls = blog_urls(slug)
    feed = urls[1]
    others = [url for url in urls if url != feed]
    async with cache_client(shop) as client:
        for url in urls:  # each URL in the cache once, as it would be before the quiet hour
            assert (await client.get(url)).status_code == 200
        log = AccessLog(shop.origin.log_path)
        before = shop.varnish.counters()
        answers: list[int] = []

        async def poller(url: str) -> None:
            # Pollers are not in step: each has its own phase within the poll interval.
            phase = random.uniform(0, POLL_SECONDS)
            for poll in range(QUIET_SECONDS // POLL_SECONDS):
                delay = started + phase + poll * POLL_SECONDS - time.monotonic()
                await asyncio.sleep(max(0, delay))  # the poller's pace, not a synchronisation
                answers.append((await plain_get(shop.varnish.http, url))[0])

        # Most pollers read the feed; a few hundred read the other public URLs.
        targets = [feed] * POLLERS + [url for url in others for _ in range(50)]
        started = time.monotonic()
        await asyncio.gather(*(poller(url) for url in targets))
        elapsed = time.monotonic() - started
        origin = {url: log.count(url) for url in urls}
        after = shop.varnish.counters()

    assert set(answers) == {200}, sorted(set(answers))
    assert len(answers) == len(targets) * (QUIET_SECONDS // POLL_SECONDS)
    # After each max-age, the first request past it is answered from the stale copy while
    # Varnish asks the origin once (stale-while-revalidate, coalesced): one per window.
    allowed = int(elapsed // MAX_AGE) + 1
    assert all(count <= allowed for count in origin.values()), (origin, allowed)
    assert origin[feed] >= 2, "the cache never asked again: max-age was not honoured"
    # Varnish's own count agrees (a refresh may be under way at either end of the window).
    backend = after["MAIN.backend_req"] - before["MAIN.backend_req"]
    assert abs(backend - sum(origin.values())) <= len(urls), (backend, origin)
    feed_polls = POLLERS * (QUIET_SECONDS // POLL_SECONDS)
    print(
        f"quiet {elapsed:.1f} s: {len(answers)} reads through Varnish, {sum(origin.values())} "
        f"at the origin ({len(answers) / sum(origin.values()):.0f}:1); the feed: "
        f"{feed_polls} polls, {origin[feed]} at the origin; per URL {origin}; Varnish "
        f"backend requests {backend}"
    )


async def test_a_change_through_another_process_shows_through_the_cache_within_max_age_and_a_check(
    shop: Shop,
) -> None:
    slug = "changing"
    await origin_setup(shop, slug)
    urls = blog_urls(slug)[:5]  # the blog's own row does not show entries
    async with cache_client(shop) as client:
        for url in urls:
            assert "Before 0" in (await client.get(url)).text
        async with httpx.AsyncClient(base_url=shop.other.http, headers=ADMIN) as other:
            await publish_entry(other, slug, body="<p>Breaking</p>")
        published = time.monotonic()

        async def shows(url: str) -> float:
            async def showing() -> bool:
                return b"Breaking" in (await plain_get(shop.varnish.http, url))[2]

            await eventually(showing, MAX_AGE + HUB_CHECK_SECONDS + 5, f"{url} to show it")
            return time.monotonic() - published

        took = dict(zip(urls, await asyncio.gather(*(shows(url) for url in urls)), strict=True))

    print(f"the change showed through the cache after {took}")
    # The origin learns of it within one check; the cached copy is at most max-age old.
    assert max(took.values()) <= MAX_AGE + HUB_CHECK_SECONDS + 0.5, took


async def test_drafts_read_with_a_token_or_a_cookie_never_reach_an_anonymous_reader(
    shop: Shop,
) -> None:
    slug = "embargo"
    await origin_setup(shop, slug)
    async with cache_client(shop) as client:
        draft = (
            await client.post(
                f"/api/v1/blogs/{slug}/entries",
                json={"body": "<p>Embargoed</p>", "status": "draft"},
                headers=ADMIN,
            )
        ).json()
        entry_url = f"/api/v1/blogs/{slug}/entries/{draft['id']}"
        drafts_url = f"/api/v1/blogs/{slug}/entries?status=draft"
        user = await client.post(
            "/api/v1/users",
            json={"name": "Ed Itor", "login": "ed@news.test", "password": PASSWORD, "admin": True},
            headers=ADMIN,
        )
        assert user.status_code == 201, user.text
        signed_in = await client.post(
            "/api/v1/session", json={"login": "ed@news.test", "password": PASSWORD}
        )
        assert signed_in.status_code == 201, signed_in.text
        cookie = {"Cookie": f"bulletin_session={signed_in.cookies['bulletin_session']}"}
        client.cookies.clear()

        with_token = [await client.get(url, headers=ADMIN) for url in (entry_url, drafts_url)]
        with_cookie = [await client.get(url, headers=cookie) for url in (entry_url, drafts_url)]
        anonymous = [await client.get(url) for url in (entry_url, drafts_url)]
        # Published: the URL that was 404 shows it at once, not a 404 kept by the cache.
        published = await client.patch(entry_url, json={"status": "published"}, headers=ADMIN)
        assert published.status_code == 200, published.text
        now_public = await client.get(entry_url)

    for answer in with_token + with_cookie:
        assert answer.status_code == 200, answer.text
        assert "Embargoed" in answer.text
    # The entry is not found; the list of drafts asks who is asking.
    assert [answer.status_code for answer in anonymous] == [404, 401]
    assert all("Embargoed" not in answer.text for answer in anonymous)
    assert now_public.status_code == 200, now_public.text
    assert "Embargoed" in now_public.text


async def test_the_last_answer_is_served_while_the_origin_is_stopped(shop: Shop) -> None:
    slug = "outage"
    await origin_setup(shop, slug)
    url = f"/blogs/{slug}/feed.atom"
    async with cache_client(shop) as client:
        last = await client.get(url)
        assert last.status_code == 200
        await asyncio.to_thread(shop.origin.stop)
        try:
            # Past max-age, with the origin away: Varnish serves its stale copy.
            stale = await eventually(
                lambda: client.get(url),
                MAX_AGE + 5,
                "an answer older than max-age",
                holds=lambda answer: int(answer.headers.get("age", 0)) > MAX_AGE,
                interval=0.25,
            )
        finally:
            await asyncio.to_thread(shop.origin.start)
    assert stale.status_code == 200
    assert stale.content == last.content
    assert stale.headers["etag"] == last.headers["etag"]


async def test_head_and_get_do_not_poison_each_other(shop: Shop) -> None:
    slug = "heads"
    await origin_setup(shop, slug)
    async with cache_client(shop) as client:
        # A query string the app ignores makes each URL new to the cache.
        for path in (f"/blogs/{slug}/feed.json", f"/blogs/{slug}"):
            head_first = await client.head(f"{path}?variant=head-first")
            get_after = await client.get(f"{path}?variant=head-first")
            get_first = await client.get(f"{path}?variant=get-first")
            head_after = await client.head(f"{path}?variant=get-first")

            assert head_first.status_code == get_after.status_code == 200
            assert head_first.content == b"" and len(get_after.content) > 0
            assert int(head_first.headers["content-length"]) == len(get_after.content)
            assert get_after.content == get_first.content
            assert head_after.status_code == 200 and head_after.content == b""
            assert head_after.headers["etag"] == get_first.headers["etag"]
            assert head_after.headers["content-type"] == get_first.headers["content-type"]
