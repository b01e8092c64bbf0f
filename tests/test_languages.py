"""A blog's language: its page's words from the catalogues, its direction, its times."""

import json
import re
from pathlib import Path

import html5lib
import httpx
import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from app.i18n.languages import Languages
from tests.support.factories import ADMIN, publish_entry

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = sorted((ROOT / "web" / "messages").glob("*.po"))
PAGE = "/blogs/vote-night"


def used_messages() -> set[str]:
    """Every msgid in the templates and the scripts' word table, as `make messages` finds them."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "plural_words": (1, 2)}
    found = extract_from_dir(ROOT, method_map, options_map, keywords=keywords)
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def test_english_arabic_and_french_are_shipped() -> None:
    assert [path.stem for path in CATALOGUES] == ["ar", "en", "fr"]


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda path: path.stem)
def test_every_catalogue_has_every_message_the_page_uses(path: Path) -> None:
    used = used_messages()
    assert {"Key events", "Show all %(num)s", "%(num)s new updates", "Share: %(title)s"} <= {
        *used,
        "%(num)s new updates",
    }
    with path.open("rb") as po_file:
        catalogue = read_po(po_file)
    assert (
        used
        - {message.id if isinstance(message.id, str) else message.id[0] for message in catalogue}
        == set()
    )
    if path.stem == "en":
        return  # the templates' own language
    untranslated = [
        message.id
        for message in catalogue
        if message.id
        and (
            message.fuzzy
            or not all(message.string if isinstance(message.string, tuple) else [message.string])
        )
    ]
    assert untranslated == []


def test_arabic_has_its_six_plural_forms() -> None:
    arabic = Languages().get("ar")
    said = {
        count: arabic.ngettext("%(num)s new update", "%(num)s new updates", count)
        for count in (0, 1, 2, 3, 11, 100)
    }
    assert len(set(said.values())) == 6
    assert said[2] == "تحديثان جديدان"
    # The browser chooses among them by CLDR's categories, which Babel names alike.
    words = arabic.plural_words("%(num)s new update", "%(num)s new updates")
    assert sorted(words) == ["few", "many", "one", "other", "two", "zero"]
    assert words["few"] == said[3]


def page_root(html: str) -> dict[str, str]:
    match = re.search(r"<html ([^>]*)>", html)
    assert match
    return dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))


async def set_language(client: httpx.AsyncClient, language: str, **fields: object) -> None:
    response = await client.patch(
        "/api/v1/blogs/vote-night", json={"language": language, **fields}, headers=ADMIN
    )
    assert response.status_code == 200, response.text


async def test_an_arabic_blogs_page_is_right_to_left_in_arabic_words(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await set_language(client, "ar")
    await publish_entry(
        client,
        headers=publish_headers,
        headline="إغلاق مراكز الاقتراع",
        body="<p>بدأ العد.</p>",
        key_event=True,
    )
    html = (await client.get(PAGE)).text
    html5lib.HTMLParser(strict=True).parse(html)
    assert page_root(html) == {"lang": "ar", "dir": "rtl"}
    assert "أبرز الأحداث" in html  # "Key events"
    assert 'aria-label="مشاركة: إغلاق مراكز الاقتراع"' in html  # "Share: …"
    words = json.loads(re.search(r"data-bulletin-words='([^']*)'", html).group(1))
    assert words["live"] == "مباشر"
    assert sorted(words["new"]) == ["few", "many", "one", "other", "two", "zero"]
    for fragment in ("embed", "card"):
        part = (await client.get(f"{PAGE}/{fragment}")).text
        assert re.search(r'<div class="bulletin-\w+" lang="ar" dir="rtl"', part), part[:200]
        assert "مباشر" in part


async def test_a_french_blogs_page_shows_its_times_and_words_in_french(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await set_language(client, "fr", timezone="Europe/Paris")
    await publish_entry(
        client,
        headers=publish_headers,
        headline="Fermeture des bureaux de vote",
        key_event=True,
        published_at="2026-12-02T18:11:00Z",
    )
    html = (await client.get(PAGE)).text
    assert page_root(html) == {"lang": "fr", "dir": "ltr"}
    entry_time = (
        '<time datetime="2026-12-02T18:11:00Z" title="mercredi 2 décembre 2026, 19:11 CET">'
        "19:11</time>"
    )
    assert html.count(entry_time) == 2  # the entry, and its key-events line
    assert "Moments clés" in html and "Partager" in html and "En direct" in html
    assert "Key events" not in html


async def test_a_day_divider_starts_each_local_day_of_the_page(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await set_language(client, "en-GB", timezone="Europe/London")
    moments = [
        "2026-12-01T21:00:00Z",
        "2026-12-01T23:30:00Z",
        "2026-12-02T00:10:00Z",
        "2026-12-02T09:00:00Z",
    ]
    ids = [
        (
            await publish_entry(
                client, headers=publish_headers, body=f"<p>{n}</p>", published_at=moment
            )
        )["id"]
        for n, moment in enumerate(moments)
    ]
    html = (await client.get(PAGE)).text
    shown = {
        int(entry_id): day
        for entry_id, day in re.findall(
            r'data-entry-id="(\d+)"[^>]*>\s*'
            r'<p class="entry__day" data-bulletin-day><time datetime="([\d-]+)">',
            html,
        )
    }
    # Newest first: 2 December heads the page, 1 December starts at its latest entry.
    assert shown == {ids[3]: "2026-12-02", ids[1]: "2026-12-01"}
    assert "Wednesday, 2 December 2026" in html and "Tuesday, 1 December 2026" in html
    assert html.count("data-bulletin-day hidden") == 2
