"""The reader page shows one status: the badge without JavaScript, the connection's state
with it while the blog is live, and "Coverage ended" alone once it ends."""

import secrets

from playwright.sync_api import Browser, Page, expect

from tests.system.browser.conftest import Bulletin


def visible_statuses(page: Page) -> list[str]:
    return page.locator(".live__bar > *").evaluate_all(
        "els => els.filter(el => el.checkVisibility()).map(el => el.textContent.trim())"
    )


def test_one_status_shows_live_then_ended(bulletin: Bulletin, page: Page) -> None:
    slug = f"status-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    page.goto(f"{bulletin.url}/blogs/{slug}")
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
    assert visible_statuses(page) == ["Live"]
    assert page.locator('[data-bulletin-state="connected"]').is_visible()  # the "●" one

    assert bulletin.api.patch(f"/blogs/{slug}", json={"status": "ended"}).status_code == 200
    expect(page.locator('[data-bulletin-status="ended"]')).to_be_visible()
    assert visible_statuses(page) == ["Coverage ended"]


def test_without_javascript_the_badge_is_the_status(bulletin: Bulletin, browser: Browser) -> None:
    slug = f"status-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{bulletin.url}/blogs/{slug}")
        assert visible_statuses(page) == ["Live"]
        assert page.locator('[data-bulletin-status="live"]').is_visible()
    finally:
        context.close()


def shown_key_events(page: Page) -> int:
    return page.locator("[data-bulletin-key-events] li").evaluate_all(
        "els => els.filter(el => el.checkVisibility()).length"
    )


def test_key_events_fold_to_the_newest_five_behind_show_all(bulletin: Bulletin, page: Page) -> None:
    slug = f"keys-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    for n in range(8):
        bulletin.publish(slug, headline=f"Key {n}", key_event=True)
    page.goto(f"{bulletin.url}/blogs/{slug}")
    toggle = page.locator("[data-bulletin-key-toggle]")
    expect(toggle).to_have_text("Show all 8")
    assert shown_key_events(page) == 5
    first_entry = page.locator("[data-bulletin-entries] article").first
    folded_at = first_entry.bounding_box()["y"]

    # One more arrives live while folded: still five shown, the count moves.
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
    bulletin.publish(slug, headline="Key 8", key_event=True)
    expect(toggle).to_have_text("Show all 9")
    assert shown_key_events(page) == 5
    assert page.locator("[data-bulletin-key-events] li").first.text_content().endswith("Key 8")

    toggle.click()
    expect(toggle).to_have_text("Show fewer")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    assert shown_key_events(page) == 9
    toggle.click()
    assert shown_key_events(page) == 5
    # Folded from the first paint: the entries start where they started.
    assert first_entry.bounding_box()["y"] == folded_at


def test_without_javascript_every_key_event_shows(bulletin: Bulletin, browser: Browser) -> None:
    slug = f"keys-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    for n in range(7):
        bulletin.publish(slug, headline=f"Key {n}", key_event=True)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{bulletin.url}/blogs/{slug}")
        assert shown_key_events(page) == 7
        expect(page.locator("[data-bulletin-key-toggle]")).to_be_hidden()
    finally:
        context.close()
