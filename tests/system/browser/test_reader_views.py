"""The reader page's views kept live in Chromium (oldest first, one tag), "N reading now",
and the live card on another site's page."""

import contextlib
import json
import re
import secrets
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Locator, Page, expect
from websockets.sync.client import connect

from app.pages import PAGE_SIZE
from tests.support.waiting import eventually_blocking
from tests.system.browser.conftest import Bulletin, screenshot
from tests.system.browser.test_embed import partner_site  # noqa: F401 (a fixture)
from tests.system.browser.test_reader_page import flow_ids, new_blog, open_live

CARD_LINES = "[data-bulletin-key-events] li"


def test_oldest_first_a_new_entry_joins_the_end_and_edits_stay_in_place(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    first, second = (bulletin.publish(slug, headline=f"Question {n}") for n in (1, 2))
    open_live(page, f"{bulletin.url}/blogs/{slug}?order=oldest")
    assert flow_ids(page) == [first["id"], second["id"]]

    third = bulletin.publish(slug, headline="Question 3")
    expect(page.locator(f"#entry-{third['id']}")).to_be_visible()
    assert flow_ids(page) == [first["id"], second["id"], third["id"]]
    bulletin.edit(slug, first["id"], headline="Question 1, answered")
    expect(page.locator(f"#entry-{first['id']} .entry__headline")).to_have_text(
        "Question 1, answered"
    )
    assert flow_ids(page) == [first["id"], second["id"], third["id"]]
    bulletin.delete(slug, second["id"])
    expect(page.locator(f"#entry-{second['id']}")).to_have_count(0)
    assert flow_ids(page) == [first["id"], third["id"]]
    expect(page.locator("[data-bulletin-new]")).to_be_hidden()


def test_oldest_first_on_an_earlier_page_new_entries_are_counted_and_lead_to_the_newest(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    early = [bulletin.publish(slug, headline=f"Answer {n}") for n in range(PAGE_SIZE + 1)]
    open_live(page, f"{bulletin.url}/blogs/{slug}?order=oldest")
    assert flow_ids(page) == [entry["id"] for entry in early[:PAGE_SIZE]]
    expect(page.locator("[data-bulletin-older]")).to_have_text("Later updates")

    newest = bulletin.publish(slug, headline="Answer, just in")
    button = page.locator("[data-bulletin-new]")
    expect(button).to_have_text("1 new update")
    assert flow_ids(page) == [entry["id"] for entry in early[:PAGE_SIZE]]
    button.click()
    expect(page).to_have_url(f"{bulletin.url}/blogs/{slug}?")
    assert flow_ids(page)[0] == newest["id"]


def test_under_a_tag_only_its_entries_arrive_and_one_edited_out_of_it_leaves(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    court = bulletin.publish(slug, headline="The court sits", tags=["courts"])
    bulletin.publish(slug, headline="Rain all day", tags=["weather"])
    open_live(page, f"{bulletin.url}/blogs/{slug}?tag=courts")
    assert flow_ids(page) == [court["id"]]
    expect(page.locator('.view__tags a[aria-current="page"]')).to_contain_text("courts")

    elsewhere = bulletin.publish(slug, headline="Sun at last", tags=["weather"])
    ruling = bulletin.publish(slug, headline="The ruling", tags=["Courts", "results"])
    expect(page.locator(f"#entry-{ruling['id']}")).to_be_visible()
    assert flow_ids(page) == [ruling["id"], court["id"]]
    expect(page.locator(f"#entry-{elsewhere['id']}")).to_have_count(0)
    # The bar counts the whole blog, and this view's tag stays the current one.
    current = page.locator('.view__tags a[aria-current="page"]')
    expect(current.locator(".view__count")).to_have_text("2")
    expect(current).to_contain_text("courts")
    expect(page.locator("[data-bulletin-tags] a", has_text="All")).to_contain_text("4")

    bulletin.edit(slug, court["id"], tags=["weather"])
    expect(page.locator(f"#entry-{court['id']}")).to_have_count(0)
    bulletin.edit(slug, elsewhere["id"], tags=["weather", "courts"])
    expect(page.locator(f"#entry-{elsewhere['id']}")).to_be_visible()
    assert flow_ids(page) == [ruling["id"], elsewhere["id"]]
    screenshot(page, "reader-tag-filter-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "reader-tag-filter-phone")


def filter_bar(page: Page) -> list[tuple[str, int]]:
    """The filter bar as a reader sees it: (link's words, count) in order."""
    items = page.locator("[data-bulletin-tags] a").evaluate_all(
        """links => links.map(link => [
             link.firstChild.textContent.trim(),
             Number(link.querySelector(".view__count").textContent)])"""
    )
    return [(words, count) for words, count in items]


def test_the_filter_bars_counts_follow_new_edited_and_deleted_entries_without_a_reload(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    ruling = bulletin.publish(slug, headline="The ruling", tags=["courts"])
    bulletin.publish(slug, headline="Rain all day", tags=["weather"])
    open_live(page, f"{bulletin.url}/blogs/{slug}")
    assert filter_bar(page) == [("All", 2), ("courts", 1), ("weather", 1)]
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    appeal = bulletin.publish(slug, headline="The appeal", tags=["courts", "results"])
    expect(page.locator("[data-bulletin-tags] a")).to_have_count(4)
    assert filter_bar(page) == [("All", 3), ("courts", 2), ("results", 1), ("weather", 1)]
    # The new tag's link is the page's own kind: that tag's view, and not the current one.
    results = page.locator("[data-bulletin-tags] a", has_text="results")
    expect(results).to_have_attribute("href", f"{bulletin.url}/blogs/{slug}?tag=results")
    expect(results).not_to_have_attribute("aria-current", "page")

    bulletin.edit(slug, ruling["id"], tags=["weather"])
    expect(page.locator("[data-bulletin-tags] a", has_text="weather")).to_contain_text("2")
    assert filter_bar(page) == [("All", 3), ("weather", 2), ("courts", 1), ("results", 1)]
    bulletin.delete(slug, appeal["id"])
    expect(page.locator("[data-bulletin-tags] a")).to_have_count(2)
    assert filter_bar(page) == [("All", 2), ("weather", 2)]
    assert page.evaluate("window.loadedOnce") is True
    expect(page.locator('.view__tags a[aria-current="page"]')).to_have_text(re.compile("^All"))
    screenshot(page, "reader-tag-counts-live")


def test_the_page_shows_a_rounded_count_of_its_readers_when_the_blog_shows_it(
    browser: Browser, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin, show_readers_count=True)
    stream = f"{bulletin.url.replace('http', 'ws')}/api/v1/blogs/{slug}/ws"
    with contextlib.ExitStack() as streams:
        for _ in range(12):
            socket = streams.enter_context(connect(stream))
            assert json.loads(socket.recv(timeout=10))["type"] == "hello"
        count_url = f"{bulletin.url}/blogs/{slug}/reading-now"
        eventually_blocking(
            lambda: httpx.get(count_url).json()["reading_now"] == 12,
            20,
            "the 12 readers to be reported",
        )
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{bulletin.url}/blogs/{slug}")
        # This page's own stream counts too, once its process has reported it.
        expect(page.locator("[data-bulletin-reading]")).to_have_text(
            re.compile(r"^1[23] reading now$")
        )
        context.close()


def line_ids(card: Locator) -> list[int]:
    return [
        int(i)
        for i in card.locator(CARD_LINES).evaluate_all("ls => ls.map(l => l.dataset.entryId)")
    ]


def test_the_live_card_on_another_site_keeps_the_newest_five_headlines(
    page: Page,
    bulletin: Bulletin,
    partner_site: tuple[Path, str],  # noqa: F811
) -> None:
    directory, origin = partner_site
    slug = f"card-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    entries = [bulletin.publish(slug, headline=f"Headline {n}") for n in range(6)]
    (directory / "front.html").write_text(
        "<!doctype html><html><head><title>Front page</title></head><body>"
        "<h1>Today</h1>"
        f'<div data-bulletin-blog="{slug}" data-bulletin-mode="card"></div>'
        f'<script src="{bulletin.url}/static/bulletin.js" async></script>'
        "</body></html>"
    )
    page.goto(f"{origin}/front.html")
    card = page.locator(f'[data-bulletin-blog="{slug}"]').first
    lines = card.locator(CARD_LINES)
    expect(lines).to_have_count(5)
    expect(card.locator('[data-bulletin-state="connected"]')).to_be_visible()
    expect(lines.first).to_contain_text("Headline 5")
    expect(lines.first.locator("a")).to_have_attribute(
        "href", f"{bulletin.url}/blogs/{slug}/entries/{entries[5]['id']}"
    )

    newest = bulletin.publish(slug, headline="Breaking: the result")
    expect(lines.first).to_contain_text("Breaking: the result")
    expect(lines).to_have_count(5)
    expect(card.locator(f'li[data-entry-id="{entries[1]["id"]}"]')).to_have_count(0)
    bulletin.edit(slug, newest["id"], headline="Breaking: the final result")
    expect(lines.first).to_contain_text("Breaking: the final result")
    bulletin.delete(slug, newest["id"])
    expect(card.locator(f'li[data-entry-id="{newest["id"]}"]')).to_have_count(0)
    # The card keeps five: the one the deletion uncovered comes back, and it stays live.
    expect(lines).to_have_count(5)
    assert line_ids(card) == [entry["id"] for entry in reversed(entries[1:])]
    expect(card.locator('[data-bulletin-state="connected"]')).to_be_visible()
    later = bulletin.publish(slug, headline="After the deletion")
    expect(lines.first).to_contain_text("After the deletion")
    assert line_ids(card) == [later["id"], *(entry["id"] for entry in reversed(entries[2:]))]
    assert page.title() == "Front page"
    # Nothing but the lines shows: no entries, no "new updates" button.
    expect(card.locator("article")).to_have_count(0)
    expect(card.locator("[data-bulletin-new]")).to_be_hidden()
    screenshot(page, "live-card-partner")
