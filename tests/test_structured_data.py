"""The page's schema.org LiveBlogPosting, read back as data: every property search engines
use is there and of the right type; the masthead names the publication."""

import json
import re
from datetime import datetime

import httpx

from app.config import Settings
from tests.support.clients import asgi_client
from tests.support.factories import ADMIN, create_blog
from tests.support.servers import running_app
from tests.test_pages import post

BASE = "http://127.0.0.1:8000"


def json_ld(html: str) -> dict:
    [raw] = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    return json.loads(raw)


def moment(value: object) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    return datetime.fromisoformat(value)


async def test_the_live_blog_posting_has_every_property_and_the_right_types(
    settings: Settings,
) -> None:
    branded = settings.model_copy(
        update={"site_name": "The Harbour Courier", "site_logo_url": "/static/logo.png"}
    )
    async with running_app(branded) as app, asgi_client(app) as client:
        await create_blog(client, coverage_end="2030-03-05T00:00:00Z")
        entry = await post(
            client,
            ADMIN,
            headline="Ferries resume",
            body="<p>The first crossing left at dawn.</p>",
            authors=[{"name": "Ada Reyes"}],
            media=[{"kind": "image", "url": "/static/ferry.jpg", "alt": "A ferry"}],
        )
        html = (await client.get("/blogs/vote-night")).text
    data = json_ld(html)
    assert data["@context"] == "https://schema.org" and data["@type"] == "LiveBlogPosting"
    page = f"{BASE}/blogs/vote-night"
    assert data["url"] == page and data["mainEntityOfPage"] == {"@type": "WebPage", "@id": page}
    assert data["headline"] == "Vote night" and isinstance(data["description"], str)
    for name in ("datePublished", "dateModified", "coverageStartTime"):
        moment(data[name])
    # The planned end while live.
    assert moment(data["coverageEndTime"]) == datetime.fromisoformat("2030-03-05T00:00:00Z")
    publisher = data["publisher"]
    assert publisher == {
        "@type": "NewsMediaOrganization",
        "name": "The Harbour Courier",
        "url": f"{BASE}/",
        "logo": {"@type": "ImageObject", "url": f"{BASE}/static/logo.png"},
    }
    assert data["author"] == [publisher]
    assert data["image"] == [f"{BASE}/static/ferry.jpg"]
    [update] = data["liveBlogUpdate"]
    assert update["@type"] == "BlogPosting"
    assert update["url"] == f"{BASE}/blogs/vote-night/entries/{entry['id']}"
    assert update["headline"] == "Ferries resume"
    assert update["articleBody"] == "The first crossing left at dawn."
    assert moment(update["dateModified"]) >= moment(update["datePublished"])
    assert update["author"] == [{"@type": "Person", "name": "Ada Reyes"}]
    assert update["image"] == [f"{BASE}/static/ferry.jpg"]

    # The masthead: the publication's logo, named, linking home; og:site_name the same.
    assert (
        f'<a class="masthead__home" href="{BASE}/"><img class="masthead__logo" '
        f'src="{BASE}/static/logo.png" alt="The Harbour Courier" height="32"></a>'
    ) in html
    assert '<meta property="og:site_name" content="The Harbour Courier">' in html


async def test_without_a_logo_the_masthead_and_publisher_carry_the_name(
    client: httpx.AsyncClient, blog: dict
) -> None:
    html = (await client.get("/blogs/vote-night")).text
    assert f'<a class="masthead__home" href="{BASE}/">Bulletin</a>' in html
    data = json_ld(html)
    assert "logo" not in data["publisher"] and data["publisher"]["name"] == "Bulletin"
    assert "image" not in data  # no photo on the page: no image rather than a wrong one
