"""The index of blogs at `/` (and `/blogs`): live blogs first, then ended ones, as HTML that
needs no JavaScript, cached and revalidated like the other pages. On SQLite and PostgreSQL."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import html5lib
import httpx

from app.models import utc_now
from app.pages import ENDED_BLOGS_PAGE
from tests.support.factories import ADMIN, create_blog, publish_entry


def parse_strictly(html: str):
    """The parsed page; raises on any HTML parse error."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)


def listed(html: str, section: str) -> list[str]:
    """The slugs a section of the index lists (`live` or `ended`), in order."""
    document = parse_strictly(html)
    lists = document.findall(f".//ul[@data-index-{section}]")
    return [item.get("id").removeprefix("blog-") for ul in lists for item in ul.findall("li")]


async def end(client: httpx.AsyncClient, slug: str) -> None:
    response = await client.patch(f"/api/v1/blogs/{slug}", json={"status": "ended"}, headers=ADMIN)
    assert response.status_code == 200, response.text


async def index(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    response = await client.get("/", headers=headers)
    assert response.status_code in (200, 304), response.text
    return response


async def test_live_blogs_come_first_then_ended_ones_each_by_their_last_update(
    client: httpx.AsyncClient,
) -> None:
    for slug in ("budget-day", "storm-watch", "cup-final", "city-vote"):
        await create_blog(client, slug, slug.replace("-", " ").title())
    await end(client, "cup-final")
    await end(client, "city-vote")
    # An update moves a blog up its section: an entry in a live one, a correction in an ended one.
    await publish_entry(client, "budget-day", body="<p>The speech begins.</p>")
    await client.patch("/api/v1/blogs/cup-final", json={"title": "Cup final"}, headers=ADMIN)

    html = (await index(client)).text
    assert listed(html, "live") == ["budget-day", "storm-watch"]
    assert listed(html, "ended") == ["cup-final", "city-vote"]
    assert html.index("Live now") < html.index("Ended")
    assert "data-index-older" not in html


async def test_each_blog_shows_its_title_summary_status_last_update_and_links(
    client: httpx.AsyncClient,
) -> None:
    await create_blog(
        client,
        "vote-night",
        "Vote night",
        timezone="America/New_York",
        summary="<p>Results <strong>as they come in</strong>.</p>",
    )
    before = utc_now().replace(microsecond=0)
    await publish_entry(client, "vote-night", body="<p>Polls close.</p>")
    await create_blog(client, "old-count", "The old count", status="ended", timezone="Asia/Tokyo")

    response = await index(client)
    assert response.headers["content-type"].startswith("text/html")
    document = parse_strictly(response.text)
    [live] = document.findall(".//li[@id='blog-vote-night']")
    [title] = live.findall(".//h3/a")
    assert title.text == "Vote night" and title.get("href") == "/blogs/vote-night"
    assert "".join(live.find(".//p[@class='listing__summary']").itertext()) == (
        "Results as they come in."
    )
    assert live.find(".//span[@class='badge badge--live']").text == "Live"
    # The last update: the entry's moment, shown in the blog's zone, in UTC for machines.
    [time] = live.findall(".//time")
    moment = datetime.fromisoformat(time.get("datetime"))
    assert time.get("datetime").endswith("Z") and before <= moment <= utc_now()
    local = moment.astimezone(ZoneInfo("America/New_York"))
    assert time.text.endswith(f"{local:%M %p %Z}") and local.tzname() in ("EST", "EDT")
    links = {a.text: a.get("href") for a in live.findall(".//p[@class='listing__feeds']/a")}
    assert links == {
        "Atom": "/blogs/vote-night/feed.atom",
        "JSON Feed": "/blogs/vote-night/feed.json",
    }
    for href in (title.get("href"), *links.values()):
        assert (await client.get(href)).status_code == 200, href

    [ended] = document.findall(".//li[@id='blog-old-count']")
    assert ended.find(".//span[@class='badge badge--ended']").text == "Ended"
    assert ended.find(".//time").text.endswith("JST")
    assert ended.find(".//p[@class='listing__summary']") is None  # it has none


async def test_a_title_or_summary_with_markup_is_shown_as_text(client: httpx.AsyncClient) -> None:
    await create_blog(
        client,
        "xss-test",
        '<script>alert("title")</script><img src=x onerror=alert(1)>',
        summary='<p>Fine</p><script>alert("summary")</script>',
    )
    html = (await index(client)).text
    parse_strictly(html)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in html
    assert "alert(&#34;summary&#34;)" not in html  # the sanitiser dropped it from the summary


async def test_drafts_never_show_and_leave_the_index_as_it_was(
    client: httpx.AsyncClient,
) -> None:
    await create_blog(client, "quiet-desk", "Quiet desk")
    first = await index(client)
    draft = await publish_entry(
        client, "quiet-desk", headline="Embargoed until noon", body="<p>Secret.</p>", status="draft"
    )
    assert draft["status"] == "draft"
    again = await index(client, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    html = (await index(client)).text
    assert "Embargoed" not in html and "Secret." not in html
    assert html == first.text  # not even its time


async def test_the_etag_changes_with_any_blog_and_is_current_otherwise(
    client: httpx.AsyncClient,
) -> None:
    await create_blog(client, "one-blog", "One")
    await create_blog(client, "two-blog", "Two")
    seen = [(await index(client)).headers["etag"]]

    async def etag_changed_from_last() -> str:
        response = await index(client, **{"If-None-Match": seen[-1]})
        assert response.status_code == 200, "the index did not change"
        assert response.headers["etag"] not in seen
        unchanged = await index(client, **{"If-None-Match": response.headers["etag"]})
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert unchanged.headers["etag"] == response.headers["etag"]
        seen.append(response.headers["etag"])
        return response.text

    # Nothing changed: 304, and it costs no rendering.
    assert (await index(client, **{"If-None-Match": seen[-1]})).status_code == 304
    await publish_entry(client, "one-blog", body="<p>In the first blog.</p>")
    await etag_changed_from_last()
    await publish_entry(client, "two-blog", body="<p>In the second blog.</p>")
    await etag_changed_from_last()
    await client.patch("/api/v1/blogs/one-blog", json={"title": "One, renamed"}, headers=ADMIN)
    assert "One, renamed" in await etag_changed_from_last()
    await create_blog(client, "three-blog", "Three")
    assert "Three" in await etag_changed_from_last()

    # Cached as a live blog's page is: it changes whenever any live blog does.
    page = await client.get("/blogs/one-blog")
    assert (await index(client)).headers["cache-control"] == page.headers["cache-control"]


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    await create_blog(client, "head-check", "Head check")
    got = await index(client)
    head = await client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == got.headers["etag"]
    assert head.headers["content-type"] == got.headers["content-type"]
    current = await client.head("/", headers={"If-None-Match": got.headers["etag"]})
    assert current.status_code == 304


async def test_an_empty_installation_says_there_are_no_blogs_yet_and_how_to_make_one(
    client: httpx.AsyncClient,
) -> None:
    response = await index(client)
    document = parse_strictly(response.text)
    assert document.find(".//h2").text == "No blogs yet"
    assert "<code>bulletin demo</code>" in response.text
    assert "<code>POST /api/v1/blogs</code>" in response.text
    assert 'href="/docs"' in response.text
    assert "etag" in response.headers
    assert (await index(client, **{"If-None-Match": response.headers["etag"]})).status_code == 304


async def test_older_ended_blogs_are_a_page_away_and_each_is_listed_once(
    client: httpx.AsyncClient,
) -> None:
    await create_blog(client, "still-live", "Still live")
    slugs = [f"ended-{n:02d}" for n in range(ENDED_BLOGS_PAGE + 5)]
    for slug in slugs:
        await create_blog(client, slug, slug, status="ended")
    newest_first = slugs[::-1]

    first = (await index(client)).text
    assert listed(first, "live") == ["still-live"]
    assert listed(first, "ended") == newest_first[:ENDED_BLOGS_PAGE]
    [older] = re.findall(r'href="([^"]+)" rel="next" data-index-older', first)
    assert older.startswith("/?before=")

    second = await client.get(older)
    assert second.status_code == 200
    assert listed(second.text, "ended") == newest_first[ENDED_BLOGS_PAGE:]
    assert listed(second.text, "live") == []  # live blogs lead the first page only
    assert "data-index-older" not in second.text
    assert 'href="/">Back to the latest blogs' in second.text
    assert second.headers["etag"] != (await index(client)).headers["etag"]

    broken = await client.get("/?before=not-a-cursor")
    assert broken.status_code == 400
    assert "That page link is not valid." in broken.text


async def test_blogs_is_a_relative_permanent_redirect_to_the_index(
    client: httpx.AsyncClient,
) -> None:
    for method in ("GET", "HEAD"):
        response = await client.request(
            method, "/blogs", headers={"Host": "attacker.example"}, follow_redirects=False
        )
        assert response.status_code == 308
        assert response.headers["location"] == "/"
        assert "attacker" not in str(response.headers)
    with_query = await client.get("/blogs?before=123_4")
    assert with_query.status_code == 308
    assert with_query.headers["location"] == "/?before=123_4"
    followed = await client.get("/blogs", follow_redirects=True)
    assert followed.status_code == 200 and "No blogs yet" in followed.text
