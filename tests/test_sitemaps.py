"""robots.txt, the sitemap and the Google News sitemap: valid against their schemas, public
entries only, kept until something changes, and revalidated like every public read."""

from datetime import timedelta
from pathlib import Path

import httpx
from lxml import etree

from app.models import utc_now
from tests.support.factories import ADMIN, create_blog
from tests.test_pages import post

BASE = "http://127.0.0.1:8000"
TESTS = Path(__file__).resolve().parent
NS = {
    "s": "http://www.sitemaps.org/schemas/sitemap/0.9",
    "news": "http://www.google.com/schemas/sitemap-news/0.9",
}


def schema() -> etree.XMLSchema:
    """The sitemap 0.9 schema with the Google News extension beside it."""
    both = f"""<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">
      <xsd:import namespace="{NS["s"]}" schemaLocation="{(TESTS / "sitemap-0.9.xsd").as_uri()}"/>
      <xsd:import namespace="{NS["news"]}"
                  schemaLocation="{(TESTS / "news-sitemap-0.9.xsd").as_uri()}"/>
    </xsd:schema>"""
    return etree.XMLSchema(etree.fromstring(both.encode()))


def valid(body: bytes) -> etree._Element:
    document = etree.fromstring(body)
    checker = schema()
    assert checker.validate(document), checker.error_log
    return document


def locations(document: etree._Element) -> list[str]:
    return [str(loc) for loc in document.xpath("//s:url/s:loc/text()", namespaces=NS)]


async def test_robots_txt_names_both_sitemaps_and_keeps_crawlers_off_the_api(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[0] == "User-agent: *"
    assert "Disallow: /api/" in lines and "Disallow: /newsroom" in lines
    assert f"Sitemap: {BASE}/sitemap.xml" in lines
    assert f"Sitemap: {BASE}/news-sitemap.xml" in lines


async def test_the_sitemap_lists_every_blog_and_every_public_permalink(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await create_blog(client, "storm-desk", "Storm desk")
    first = await post(client, publish_headers, headline="Polls open")
    latest = await post(client, publish_headers, headline="Turnout & queues")
    draft = await post(client, publish_headers, headline="Unchecked", status="draft")
    gone = await post(client, publish_headers, headline="Wrong")
    await client.delete(f"/api/v1/blogs/vote-night/entries/{gone['id']}", headers=ADMIN)

    response = await client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    document = valid(response.content)
    found = locations(document)
    assert set(found[:2]) == {f"{BASE}/blogs/vote-night", f"{BASE}/blogs/storm-desk"}
    assert found[2:] == [
        f"{BASE}/blogs/vote-night/entries/{latest['id']}",
        f"{BASE}/blogs/vote-night/entries/{first['id']}",
    ]
    assert not any(str(draft["id"]) == url.rsplit("/", 1)[-1] for url in found[2:])
    modified = document.xpath("//s:url/s:lastmod/text()", namespaces=NS)
    assert len(modified) == len(found) and all(m.endswith("Z") for m in modified)


async def test_the_news_sitemap_holds_the_last_two_days_only(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    now = utc_now()
    await post(
        client,
        publish_headers,
        headline="Old news",
        published_at=(now - timedelta(days=3)).isoformat(),
    )
    yesterday = await post(
        client,
        publish_headers,
        body="<p>A count that needs <b>no</b> headline.</p>",
        published_at=(now - timedelta(days=1)).isoformat(),
    )
    fresh = await post(client, publish_headers, headline="Results <soon>")
    await post(client, publish_headers, headline="Held back", status="draft")

    response = await client.get("/news-sitemap.xml")
    assert response.status_code == 200
    document = valid(response.content)
    assert locations(document) == [
        f"{BASE}/blogs/vote-night/entries/{fresh['id']}",
        f"{BASE}/blogs/vote-night/entries/{yesterday['id']}",
    ]
    titles = document.xpath("//news:news/news:title/text()", namespaces=NS)
    assert titles == ["Results <soon>", "A count that needs no headline."]
    names = set(document.xpath("//news:publication/news:name/text()", namespaces=NS))
    languages = set(document.xpath("//news:publication/news:language/text()", namespaces=NS))
    assert (names, languages) == ({"Bulletin"}, {"en"})


async def test_sitemaps_are_kept_until_a_change_and_answer_304_meanwhile(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str], statements: list[str]
) -> None:
    await post(client, publish_headers, headline="First")
    for path in ("/sitemap.xml", "/news-sitemap.xml"):
        first = await client.get(path)
        assert first.headers["cache-control"].startswith("public, max-age=")
        etag = first.headers["etag"]
        assert (await client.get(path, headers={"If-None-Match": etag})).status_code == 304
        statements.clear()
        again = await client.get(path)
        # The same body from memory: the list of blogs is read, the entries are not.
        assert again.content == first.content and again.headers["etag"] == etag
        assert not any("FROM entries" in statement for statement in statements)
        head = await client.head(path)
        assert head.status_code == 200 and head.content == b""

    before = {
        path: (await client.get(path)).headers["etag"]
        for path in ("/sitemap.xml", "/news-sitemap.xml")
    }
    entry = await post(client, publish_headers, headline="Second")
    for path, etag in before.items():
        changed = await client.get(path, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and f"/entries/{entry['id']}<" in changed.text


async def test_a_noindex_blog_gets_a_robots_meta_and_leaves_both_sitemaps(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await create_blog(client, "storm-desk", "Storm desk")
    kept = await post(client, publish_headers, headline="Indexed")
    hidden = await client.post(
        "/api/v1/blogs/storm-desk/entries", json={"headline": "Not indexed"}, headers=ADMIN
    )
    page_etag = (await client.get("/blogs/storm-desk")).headers["etag"]
    changed = await client.patch("/api/v1/blogs/storm-desk", json={"noindex": True}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["noindex"] is True

    # The page's cached copy is stale at once: the change is in the blog's log.
    page = await client.get("/blogs/storm-desk", headers={"If-None-Match": page_etag})
    assert page.status_code == 200 and '<meta name="robots" content="noindex">' in page.text
    permalink = await client.get(f"/blogs/storm-desk/entries/{hidden.json()['id']}")
    assert '<meta name="robots" content="noindex">' in permalink.text
    assert 'name="robots"' not in (await client.get("/blogs/vote-night")).text
    for path in ("/sitemap.xml", "/news-sitemap.xml"):
        found = locations(valid((await client.get(path)).content))
        assert f"{BASE}/blogs/vote-night/entries/{kept['id']}" in found
        assert not any("/blogs/storm-desk" in url for url in found), path

    await client.patch("/api/v1/blogs/storm-desk", json={"noindex": False}, headers=ADMIN)
    assert f"{BASE}/blogs/storm-desk" in locations(
        valid((await client.get("/sitemap.xml")).content)
    )
