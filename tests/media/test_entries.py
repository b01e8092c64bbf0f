"""Entries that name uploaded photos by `media_id`: the entry's JSON, its live event's `html`
and the reader page show the renditions; outside URLs keep working; the blog's alt-text
policy is applied when an image is published."""

import re

import httpx
import pytest
from fastapi import FastAPI
from html5lib import HTMLParser

from tests.media.photos import phone_jpeg
from tests.support.errors import assert_error
from tests.support.factories import ADMIN, SLUG, create_blog, publish_entry, read_log
from tests.support.people import add_person

MEDIA = f"/api/v1/blogs/{SLUG}/media"
ENTRIES = f"/api/v1/blogs/{SLUG}/entries"
PAGE = f"/blogs/{SLUG}"
BASE = "http://127.0.0.1:8000"


async def upload(
    client: httpx.AsyncClient, size: tuple[int, int] = (2000, 1500), slug: str = SLUG
) -> dict:
    response = await client.post(
        f"/api/v1/blogs/{slug}/media",
        files={"file": ("photo.jpg", phone_jpeg(size), "image/jpeg")},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    return response.json()


def photo_item(photo: dict, **fields: str) -> dict:
    return {
        "kind": "image",
        "media_id": photo["id"],
        "alt": "Queues at the polling station",
        **fields,
    }


async def test_an_entry_naming_an_upload_carries_its_renditions_in_its_json(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    photo = await upload(client)
    entry = await publish_entry(
        client,
        headers=publish_headers,
        headline="Queues",
        media=[photo_item(photo, caption="Hill Road", credit="Sam Vale")],
    )

    [item] = entry["media"]
    assert item["media_id"] == photo["id"]
    assert (item["width"], item["height"], item["placeholder"]) == (
        2000,
        1500,
        photo["placeholder"],
    )
    assert item["renditions"] == photo["renditions"]
    assert item["url"] == photo["url"]  # feeds and structured data use the largest JPEG
    assert (item["caption"], item["credit"], item["alt"]) == (
        "Hill Road",
        "Sam Vale",
        photo_item(photo)["alt"],
    )
    read = (await client.get(f"{ENTRIES}/{entry['id']}")).json()
    assert read["media"] == entry["media"]
    [event] = await read_log(client, SLUG)
    assert event["entry"]["media"] == entry["media"]


async def test_media_by_outside_url_keeps_working_and_shows_no_upload_fields(
    client: httpx.AsyncClient, blog: dict
) -> None:
    outside = {"kind": "image", "url": "https://photos.example.com/harbour.jpg", "alt": "A harbour"}
    entry = await publish_entry(client, media=[outside])

    assert entry["media"] == [{**outside, "caption": "", "credit": ""}]
    page = (await client.get(PAGE)).text
    assert '<img src="https://photos.example.com/harbour.jpg" alt="A harbour"' in page


def pictures(markup: str) -> list:
    """The <picture> elements of some markup, parsed as a browser would."""
    document = HTMLParser(namespaceHTMLElements=False).parse(markup)
    return document.findall(".//picture")


async def test_the_page_and_the_live_event_show_a_picture_with_webp_and_jpeg_sources(
    client: httpx.AsyncClient, blog: dict
) -> None:
    photo = await upload(client)
    await publish_entry(client, media=[photo_item(photo)])
    await publish_entry(client, headline="A later update on top")
    photo_event = (await read_log(client, SLUG))[0]
    page = (await client.get(PAGE)).text

    # Below the first screen: the page shows exactly what the live event carries.
    assert photo_event["html"] in page
    [picture] = pictures(photo_event["html"])
    source, image = picture.find("source"), picture.find("img")
    webp = [r for r in photo["renditions"] if r["format"] == "webp"]
    jpeg = [r for r in photo["renditions"] if r["format"] == "jpeg"]
    assert source.get("type") == "image/webp"
    assert source.get("srcset") == ", ".join(f"{BASE}{r['url']} {r['width']}w" for r in webp)
    assert image.get("srcset") == ", ".join(f"{BASE}{r['url']} {r['width']}w" for r in jpeg)
    assert image.get("src") == BASE + photo["url"]
    assert source.get("sizes") == image.get("sizes") and "40rem" in image.get("sizes")
    assert (image.get("width"), image.get("height")) == ("2000", "1500")
    assert image.get("alt") == "Queues at the polling station"
    assert image.get("loading") == "lazy" and image.get("decoding") == "async"
    # The dominant colour behind it until it loads (an SVG fill: no inline styles on pages).
    assert f'fill="{photo["placeholder"]}"' in photo_event["html"]
    assert 'viewBox="0 0 2000 1500"' in photo_event["html"]
    assert "style=" not in photo_event["html"]


async def test_the_first_screen_photo_loads_at_once_and_is_otherwise_the_event_html(
    client: httpx.AsyncClient, blog: dict
) -> None:
    first, second = await upload(client), await upload(client, (1600, 1200))
    await publish_entry(client, media=[photo_item(first), photo_item(second)])
    [event] = await read_log(client, SLUG)
    page = (await client.get(PAGE)).text

    # The page shows the first entry's day divider, which the event's copy has hidden.
    shown = event["html"].replace("data-bulletin-day hidden", "data-bulletin-day")
    eager = shown.replace(
        'alt="Queues at the polling station" loading="lazy"',
        'alt="Queues at the polling station" fetchpriority="high"',
        1,
    )
    assert eager != shown and eager in page
    [top, below] = pictures(page)
    assert top.find("img").get("loading") is None and top.find("img").get("fetchpriority") == "high"
    assert below.find("img").get("loading") == "lazy"
    # An older page has no first screen of the live blog: everything there loads lazily.
    older = (await client.get(f"{PAGE}?before=9999999999999999_1")).text
    assert 'fetchpriority="high"' not in older


async def test_a_portrait_photo_is_laid_out_whole_not_cropped(
    client: httpx.AsyncClient, blog: dict
) -> None:
    portrait = await upload(client, (1200, 1800))
    await publish_entry(client, media=[photo_item(portrait)])
    [event] = await read_log(client, SLUG)

    assert 'class="entry__photo entry__photo--portrait"' in event["html"]
    assert 'width="1200" height="1800"' in event["html"]
    css = (await client.get("/static/bulletin.css")).text
    photo_rules = " ".join(re.findall(r"\.entry__(?:photo|placeholder)[^{]*\{[^}]*\}", css))
    assert "object-fit" not in photo_rules and "aspect-ratio" not in photo_rules
    # Photos by URL keep a fixed box, but show the whole photo in it.
    assert "object-fit: cover" not in css


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"kind": "image", "media_id": 999}, "media.0.media_id"),
        ({"kind": "video", "media_id": 1}, "media.0"),
        ({"kind": "image", "media_id": 1, "url": "https://photos.example.com/a.jpg"}, "media.0"),
        ({"kind": "image"}, "media.0"),
        ({"kind": "image", "media_id": "1"}, "media.0.media_id"),
        ({"kind": "image", "media_id": True}, "media.0.media_id"),
        ({"kind": "image", "media_id": 0}, "media.0.media_id"),
    ],
    ids=["unknown id", "not an image", "both", "neither", "id as text", "id as boolean", "zero"],
)
async def test_an_entry_naming_media_wrongly_is_refused_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, blog: dict, item: dict, field: str
) -> None:
    await upload(client)  # id 1 exists, on this blog
    response = await client.post(ENTRIES, json={"media": [item]}, headers=ADMIN)

    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["fields"]
    assert await read_log(client, SLUG) == []


async def test_a_photo_uploaded_to_another_blog_cannot_be_used(
    client: httpx.AsyncClient, blog: dict
) -> None:
    await create_blog(client, "count-day", "Count day")
    theirs = await upload(client, slug="count-day")
    response = await client.post(ENTRIES, json={"media": [photo_item(theirs)]}, headers=ADMIN)

    assert response.status_code == 422
    assert "no photo" in response.json()["error"]["fields"]["media.0.media_id"]


async def test_an_edit_can_swap_in_an_uploaded_photo(client: httpx.AsyncClient, blog: dict) -> None:
    entry = await publish_entry(client, headline="Queues")
    photo = await upload(client)
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"media": [photo_item(photo)]}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    assert response.json()["media"][0]["renditions"] == photo["renditions"]
    updated = (await read_log(client, SLUG))[-1]
    assert updated["type"] == "entry.updated" and "<picture>" in updated["html"]


# --- the alt-text policy ----------------------------------------------------------------


async def strict_blog(client: httpx.AsyncClient) -> dict:
    return await create_blog(client, require_alt_text=True)


async def test_a_blog_that_requires_alt_text_refuses_an_image_without_it_naming_the_field(
    client: httpx.AsyncClient, publish_headers: dict[str, str]
) -> None:
    blog = await strict_blog(client)
    assert blog["require_alt_text"] is True
    photo = await upload(client)
    outside = {"kind": "image", "url": "https://photos.example.com/a.jpg", "alt": "  "}

    response = await client.post(
        ENTRIES,
        json={
            "media": [
                photo_item(photo, alt=""),
                outside,
                {"kind": "video", "url": "https://v.example.com/a.mp4"},
            ]
        },
        headers=publish_headers,
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "alt_text_required"
    assert "requires alt text" in error["message"]
    assert set(error["fields"]) == {"media.0.alt", "media.1.alt"}  # images only
    assert await read_log(client, SLUG) == []
    with_alt = await publish_entry(client, headers=publish_headers, media=[photo_item(photo)])
    assert with_alt["status"] == "published"


async def test_a_draft_may_lack_alt_text_until_it_is_published(client: httpx.AsyncClient) -> None:
    await strict_blog(client)
    photo = await upload(client)
    draft = await publish_entry(client, status="draft", media=[photo_item(photo, alt="")])

    refused = await client.patch(
        f"{ENTRIES}/{draft['id']}", json={"status": "published"}, headers=ADMIN
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == {
        "media.0.alt": refused.json()["error"]["fields"]["media.0.alt"]
    }
    assert await read_log(client, SLUG) == []

    fixed = await client.patch(
        f"{ENTRIES}/{draft['id']}",
        json={"status": "published", "media": [photo_item(photo)]},
        headers=ADMIN,
    )
    assert fixed.status_code == 200, fixed.text
    assert [event["type"] for event in await read_log(client, SLUG)] == ["entry.created"]


async def test_an_editor_turns_the_policy_on_and_off_per_blog(
    client: httpx.AsyncClient, app: FastAPI, blog: dict
) -> None:
    editor = await add_person(app, "Ines Vidal", role="editor")
    contributor = await add_person(app, "Cy Dunn", role="contributor")
    photo = await upload(client)
    assert blog["require_alt_text"] is False
    await publish_entry(client, media=[photo_item(photo, alt="")])  # allowed by default

    policy = f"/api/v1/blogs/{SLUG}"
    refused = await client.patch(
        policy, json={"require_alt_text": True}, headers=contributor.headers
    )
    assert_error(refused, 403, "forbidden")
    assert "editor" in refused.json()["error"]["message"]
    # The policy is the desk's; the blog's other settings stay the owner's.
    mixed = {"require_alt_text": True, "title": "Renamed"}
    assert (await client.patch(policy, json=mixed, headers=editor.headers)).status_code == 403
    assert (await client.get(policy)).json()["require_alt_text"] is False

    on = await client.patch(policy, json={"require_alt_text": True}, headers=editor.headers)
    assert on.status_code == 200 and on.json()["require_alt_text"] is True
    refused = await client.post(
        ENTRIES, json={"media": [photo_item(photo, alt="")]}, headers=editor.headers
    )
    assert refused.status_code == 422
    assert "alt" in refused.json()["error"]["message"].lower()

    off = await client.patch(policy, json={"require_alt_text": False}, headers=editor.headers)
    assert off.json()["require_alt_text"] is False
    assert (
        await client.post(ENTRIES, json={"media": [photo_item(photo, alt="")]}, headers=ADMIN)
    ).status_code == 201


async def test_restoring_a_revision_brings_its_uploaded_photo_back(
    client: httpx.AsyncClient, blog: dict
) -> None:
    photo = await upload(client)
    entry = await publish_entry(client, headline="Queues", media=[photo_item(photo)])
    url = f"{ENTRIES}/{entry['id']}"
    edited = await client.patch(url, json={"media": []}, headers=ADMIN)
    assert edited.json()["media"] == []

    restored = await client.post(f"{url}/revisions/1/restore", headers=ADMIN)

    assert restored.status_code == 200, restored.text
    [item] = restored.json()["media"]
    assert (item["media_id"], item["renditions"]) == (photo["id"], photo["renditions"])
