"""The operator console in Chromium: an admin watches a blog's readers and publishing
change live, stops its streams (its reader page sees the restart) and resumes them; others
are turned away."""

import secrets
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.system.browser.conftest import screenshot
from tests.system.browser.test_newsroom import (
    PASSWORD,
    PHONE,
    Desk,
    Person,
    browser_page,
    new_blog,
    serving_desk,
    sign_in,
)

# The console polls every 5 s: a change shows within one poll and a request.
POLL_WAIT_MS = 15_000


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    with serving_desk(tmp_path_factory.mktemp("console")) as served:
        yield served


def an_admin(desk: Desk) -> Person:
    login = f"ops-{secrets.token_hex(3)}@news.test"
    answer = desk.bulletin.api.post(
        "/users", json={"name": "Ola Operator", "login": login, "password": PASSWORD, "admin": True}
    )
    assert answer.status_code == 201, answer.text
    return Person(answer.json()["id"], "Ola Operator", login)


def cell(page: Page, slug: str, field: str) -> Locator:
    return page.locator(f'tr[data-blog="{slug}"] [data-field="{field}"]')


def test_an_admin_watches_a_blog_live_and_stops_and_resumes_its_streams(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk, title="Storm night, live")
    admin = an_admin(desk)
    with browser_page(browser) as console, browser_page(browser) as reader:
        sign_in(console, desk, admin, slug)
        console.goto(f"{desk.bulletin.url}/console")
        expect(cell(console, slug, "readers_now")).to_have_text("0")
        expect(cell(console, slug, "published")).to_have_text("0 / 0")

        reader.goto(f"{desk.bulletin.url}/blogs/{slug}")
        connected = reader.locator('[data-bulletin-state="connected"]')
        expect(connected).to_be_visible()
        expect(cell(console, slug, "readers_now")).to_have_text("1", timeout=POLL_WAIT_MS)
        desk.bulletin.publish(slug, headline="Winds pick up", body="<p>Gusts reach the coast.</p>")
        expect(cell(console, slug, "published")).to_have_text("1 / 1", timeout=POLL_WAIT_MS)
        expect(reader.get_by_role("heading", name="Winds pick up")).to_be_visible()
        screenshot(console, "console-desktop")

        console.once("dialog", lambda dialog: dialog.accept())
        switch = console.locator(f'tr[data-blog="{slug}"] [data-kill-switch]')
        switch.click()
        expect(switch).to_have_text("Resume streams")
        expect(console.locator(f'tr[data-blog="{slug}"]')).to_have_class("stopped")
        expect(connected).not_to_be_visible()  # the reader's stream was ended
        expect(cell(console, slug, "readers_now")).to_have_text("0", timeout=POLL_WAIT_MS)
        screenshot(console, "console-desktop-stopped")

        # Published while stopped: the reader gets it once the streams are back.
        desk.bulletin.publish(slug, headline="Power lines down", body="<p>Crews are out.</p>")
        switch.click()
        expect(switch).to_have_text("Stop streams")
        expect(reader.get_by_role("heading", name="Power lines down")).to_be_visible(
            timeout=POLL_WAIT_MS
        )
        expect(connected).to_be_visible()
        expect(reader.locator("[data-bulletin-entries] article")).to_have_count(2)

    with browser_page(browser, PHONE) as phone:
        sign_in(phone, desk, admin, slug)
        phone.goto(f"{desk.bulletin.url}/console")
        expect(cell(phone, slug, "published")).to_have_text("2 / 2")
        wider = phone.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not wider
        screenshot(phone, "console-phone")


def test_the_console_turns_away_whoever_is_not_an_admin(browser: Browser, desk: Desk) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as page:
        page.goto(f"{desk.bulletin.url}/console")
        expect(page).to_have_url(f"{desk.bulletin.url}/newsroom")  # to sign in
        sign_in(page, desk, desk.editor, slug)
        answer = page.goto(f"{desk.bulletin.url}/console")
        assert answer is not None and answer.status == 403
        expect(page.locator("h1")).to_have_text("Admins only")
