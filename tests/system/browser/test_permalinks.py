"""Permalinks and sharing in a real browser: a permalink shows its entry, old anchors find
theirs, key events on the page scroll instead of loading, and Share copies the permalink."""

import secrets
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, Page, expect

from app.pages import PAGE_SIZE
from tests.system.browser.conftest import Bulletin

START = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def blog_with_entries(bulletin: Bulletin, count: int) -> tuple[str, list[dict]]:
    slug = f"links-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    entries = [
        bulletin.publish(
            slug,
            headline=f"Update {n}",
            key_event=n in (1, count - 2),
            published_at=(START + timedelta(minutes=n)).isoformat(),
        )
        for n in range(count)
    ]
    return slug, entries


def test_a_permalink_scrolls_to_its_entry_and_an_old_anchor_finds_its_page(
    bulletin: Bulletin, page: Page
) -> None:
    slug, entries = blog_with_entries(bulletin, PAGE_SIZE + 4)
    old = entries[2]
    page.goto(f"{bulletin.url}/blogs/{slug}/entries/{old['id']}")
    article = page.locator(f"#entry-{old['id']}")
    expect(article).to_be_in_viewport()
    expect(article).to_have_class("entry entry--linked")
    assert page.title() == f"Update 2 - {slug}"

    # A link saved before the entry moved off the first page: the client finds its page.
    page.goto(f"{bulletin.url}/blogs/{slug}#entry-{old['id']}")
    page.wait_for_url(f"{bulletin.url}/blogs/{slug}/entries/{old['id']}")
    expect(page.locator(f"#entry-{old['id']}")).to_be_in_viewport()


def test_a_key_event_on_the_page_scrolls_there_without_loading_a_page(
    bulletin: Bulletin, page: Page
) -> None:
    slug, entries = blog_with_entries(bulletin, 12)
    page.goto(f"{bulletin.url}/blogs/{slug}")
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
    page.evaluate("window.sameDocument = true")
    target = entries[1]
    page.locator(f'[data-bulletin-key-events] li[data-entry-id="{target["id"]}"] a').click()
    expect(page.locator(f"#entry-{target['id']}")).to_be_in_viewport()
    assert page.evaluate("window.sameDocument") is True  # no navigation happened
    assert page.url.endswith(f"/blogs/{slug}#entry-{target['id']}")


def test_share_copies_the_permalink_of_an_entry_also_of_one_that_arrived_live(
    bulletin: Bulletin, browser: Browser
) -> None:
    slug, _ = blog_with_entries(bulletin, 1)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=bulletin.url)
    try:
        page = context.new_page()
        page.goto(f"{bulletin.url}/blogs/{slug}")
        expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
        live = bulletin.publish(slug, headline="Arrived live")
        article = page.locator(f"#entry-{live['id']}")
        expect(article).to_be_visible()
        share = article.locator("[data-bulletin-share]")
        expect(share).to_be_visible()
        assert share.bounding_box()["height"] >= 44  # a thumb's target on a phone
        # Chromium on Linux has no Web Share sheet: the copy-link path.
        assert page.evaluate("typeof navigator.share") == "undefined"
        share.click()
        expect(share).to_have_text("Link copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == f"{bulletin.url}/blogs/{slug}/entries/{live['id']}"
    finally:
        context.close()


def test_without_javascript_share_buttons_stay_hidden_and_links_still_work(
    bulletin: Bulletin, browser: Browser
) -> None:
    slug, entries = blog_with_entries(bulletin, 3)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{bulletin.url}/blogs/{slug}")
        expect(page.locator("[data-bulletin-share]").first).to_be_hidden()
        page.locator(f"#entry-{entries[0]['id']} .entry__time").click()
        page.wait_for_url(f"{bulletin.url}/blogs/{slug}/entries/{entries[0]['id']}")
        expect(page.locator(f"#entry-{entries[0]['id']}")).to_be_visible()
    finally:
        context.close()
