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
