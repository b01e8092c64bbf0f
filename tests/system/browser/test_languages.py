"""A blog's language in Chromium: an Arabic page mirrored at desktop and phone sizes, a
French page's times and words, and day dividers as entries of a new day arrive."""

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.factories import ADMIN_TOKEN
from tests.system.browser.conftest import Bulletin, screenshot
from tests.system.browser.test_accessibility import (  # noqa: F401 (axe_script: a fixture)
    audit,
    axe_script,
    described,
)
from tests.system.browser.test_newsroom import browser_page
from tests.system.browser.test_reader_page import open_live

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def blog_in(bulletin: Bulletin, language: str, time_zone: str) -> str:
    slug = f"lang-{secrets.token_hex(4)}"
    bulletin.create_blog(slug, title=slug, timezone=time_zone)
    answer = bulletin.api.patch(f"/blogs/{slug}", json={"language": language})
    assert answer.status_code == 200, answer.text
    return slug


# Elements reaching past the viewport's sides, and the page's own horizontal overflow.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const outside = [...document.querySelectorAll("body *")].filter((el) => {
    const box = el.getBoundingClientRect();
    return box.width && (box.left < -0.5 || box.right > width + 0.5);
  }).map((el) => el.outerHTML.slice(0, 80));
  return { scroll: document.documentElement.scrollWidth, width, outside };
}"""

# Where a box's right edge sits against the content column's, and where a text in it ends
# against its own element's right (content) edge: both at the right when the page mirrors.
ALIGNMENT = """([boxSelector, textSelector]) => {
  const contentRight = (el) => {
    const style = getComputedStyle(el);
    return el.getBoundingClientRect().right - parseFloat(style.paddingRight)
      - parseFloat(style.borderRightWidth);
  };
  const box = document.querySelector(boxSelector);
  const element = document.querySelector(textSelector);
  const text = document.createRange();
  text.selectNodeContents(element);
  return {
    columnRight: contentRight(document.querySelector("main.blog")),
    boxRight: box.getBoundingClientRect().right,
    textRight: text.getBoundingClientRect().right,
    elementRight: contentRight(element),
    direction: getComputedStyle(element).direction,
    textAlign: getComputedStyle(element).textAlign,
  };
}"""


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_an_arabic_blogs_page_is_mirrored_and_fits_the_screen(
    browser: Browser,
    bulletin: Bulletin,
    size: str,
    axe_script: Path,  # noqa: F811
) -> None:
    slug = blog_in(bulletin, "ar", "Asia/Riyadh")
    bulletin.api.patch(
        f"/blogs/{slug}",
        json={"title": "ليلة الانتخابات مباشرة", "summary": "<p>النتائج لحظة بلحظة.</p>"},
    )
    for number, headline in enumerate(["إغلاق مراكز الاقتراع", "بدء فرز الأصوات", "أولى النتائج"]):
        bulletin.publish(
            slug,
            headline=headline,
            body=f"<p>أعلنت اللجنة أن نسبة المشاركة بلغت {40 + number} بالمئة حتى الآن.</p>",
            key_event=True,
            authors=[{"name": "ليلى حسن"}],
        )
    with browser_page(browser, DESKTOP if size == "desktop" else PHONE) as page:
        open_live(page, f"{bulletin.url}/blogs/{slug}")
        root = page.locator("html")
        expect(root).to_have_attribute("lang", "ar")
        expect(root).to_have_attribute("dir", "rtl")
        expect(page.locator(".key-events__title")).to_have_text("أبرز الأحداث")
        expect(page.locator("[data-bulletin-status]")).to_have_text("مباشر")
        expect(page.locator(".entry__share").first).to_have_text("مشاركة")
        expect(page.locator(".entry__share").first).to_have_accessible_name("مشاركة: أولى النتائج")
        expect(page.locator("[data-ago]").first).to_contain_text("الآن")

        overflow = page.evaluate(OVERFLOW)
        assert overflow["scroll"] <= overflow["width"], overflow
        assert overflow["outside"] == [], overflow
        for part in (
            (".key-events", ".key-events__list li"),
            ("[data-bulletin-entries]", "[data-bulletin-entries] .entry__headline"),
        ):
            placed = page.evaluate(ALIGNMENT, part)
            assert placed["direction"] == "rtl", (part, placed)
            assert placed["textAlign"] in {"start", "right"}, (part, placed)
            assert abs(placed["boxRight"] - placed["columnRight"]) <= 1, (part, placed)
            assert abs(placed["textRight"] - placed["elementRight"]) <= 1, (part, placed)
        screenshot(page, f"languages-arabic-{size}")
        results = audit(page, axe_script)
        assert results["passes"], "axe-core checked nothing"
        assert not results["violations"], described(results["violations"])


def test_a_french_blogs_page_says_its_times_and_words_in_french(
    page: Page, bulletin: Bulletin
) -> None:
    slug = blog_in(bulletin, "fr", "Europe/Paris")
    entry = bulletin.publish(
        slug,
        headline="Fermeture des bureaux de vote",
        body="<p>Le dépouillement commence.</p>",
        key_event=True,
        published_at="2026-12-02T18:11:00Z",
    )
    open_live(page, f"{bulletin.url}/blogs/{slug}")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    time = page.locator(f"#entry-{entry['id']} .entry__time time")
    expect(time).to_have_text("19:11")
    expect(time).to_have_attribute("title", "mercredi 2 décembre 2026, 19:11 CET")
    expect(page.locator(".key-events__list time")).to_have_text("19:11")
    expect(page.locator(".key-events__title")).to_have_text("Moments clés")
    expect(page.locator("[data-bulletin-state]")).to_have_text("En direct")
    expect(page.locator(".entry__share")).to_have_text("Partager")
    expect(page.locator(".entry__share")).to_have_accessible_name(
        "Partager : Fermeture des bureaux de vote"
    )
    screenshot(page, "languages-french")


def shown_days(page: Page) -> list[str]:
    return page.locator("[data-bulletin-entries] article").evaluate_all(
        """els => els.map((el) => el.querySelector("[data-bulletin-day]").hidden
             ? "" : el.dataset.day)"""
    )


def test_a_day_divider_starts_each_local_day_on_the_page_and_as_entries_arrive(
    page: Page, bulletin: Bulletin
) -> None:
    slug = blog_in(bulletin, "en-GB", "UTC")
    now = datetime.now(UTC)
    yesterday = (now - timedelta(days=1)).date().isoformat()
    today = now.date().isoformat()
    for hours in (26, 25):  # two entries yesterday (or before): one divider above them
        bulletin.publish(
            slug,
            body=f"<p>Earlier, {hours} hours ago.</p>",
            published_at=(now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    open_live(page, f"{bulletin.url}/blogs/{slug}")
    days = shown_days(page)
    assert days[0] != "" and days[1] == "" and days[0] <= yesterday, days

    first_today = bulletin.publish(slug, body="<p>The first of today.</p>")
    expect(page.locator(f"#entry-{first_today['id']} [data-bulletin-day]")).to_be_visible()
    assert shown_days(page) == [today, days[0], ""]
    second_today = bulletin.publish(slug, body="<p>The second of today.</p>")
    expect(page.locator(f"#entry-{second_today['id']}")).to_be_visible()
    expect(page.locator(f"#entry-{first_today['id']} [data-bulletin-day]")).to_be_hidden()
    assert shown_days(page) == [today, "", days[0], ""]
    screenshot(page, "languages-day-dividers")


def test_the_newsroom_sets_a_blogs_language_and_its_preview_turns_right_to_left(
    page: Page, bulletin: Bulletin
) -> None:
    slug = f"lang-{secrets.token_hex(4)}"
    bulletin.create_blog(slug, title=slug)
    bulletin.publish(slug, headline="Polls open")
    page.goto(f"{bulletin.url}/newsroom?blog={slug}")
    page.click(".token-option summary")
    page.fill("#token", ADMIN_TOKEN)
    page.click('[data-form="token"] button[type="submit"]')
    expect(page.locator("[data-live]")).to_have_text("Live")
    language = page.locator("[data-blog-language]")
    expect(language).to_have_value("en")
    page.click("[data-preview-panel] summary")
    preview = page.frame_locator("[data-preview]")
    expect(preview.locator("html")).to_have_attribute("dir", "ltr")

    language.fill("xx")
    page.click('[data-form="language"] button[type="submit"]')
    expect(page.locator('[data-feedback="language"]')).to_contain_text("Not changed")
    assert bulletin.api.get(f"/blogs/{slug}").json()["language"] == "en"

    language.fill("ar")
    page.click('[data-form="language"] button[type="submit"]')
    expect(page.locator('[data-feedback="language"]')).to_have_text("The reader page is now in ar.")
    expect(preview.locator("html")).to_have_attribute("dir", "rtl")
    expect(preview.locator("html")).to_have_attribute("lang", "ar")
    expect(preview.locator(".entry__share")).to_have_text("مشاركة")
    assert bulletin.api.get(f"/blogs/{slug}").json()["language"] == "ar"
