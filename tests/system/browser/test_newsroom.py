"""The newsroom page: a reporter publishes, edits and deletes, and the reader page follows."""

import secrets

from playwright.sync_api import Page, expect

from tests.support.factories import ADMIN_TOKEN
from tests.system.browser.conftest import Bulletin, screenshot


def test_a_reporter_publishes_edits_and_deletes_from_the_newsroom_page(
    page: Page, bulletin: Bulletin
) -> None:
    slug = f"desk-{secrets.token_hex(4)}"
    bulletin.create_blog(slug, title="Desk test")
    page.goto(f"{bulletin.url}/newsroom?blog={slug}")
    page.fill("#token", ADMIN_TOKEN)
    page.click('[data-form="token"] button[type="submit"]')
    expect(page.locator("[data-notice]")).to_have_text("Token saved for this tab.")
    expect(page.locator("#blog")).to_have_value(slug)
    reader = page.frame_locator("[data-preview]")
    expect(reader.locator('[data-bulletin-state="connected"]')).to_be_visible()

    page.fill("#headline", "Polls open")
    page.fill("#body", "Doors opened at seven.\n\nQueues are short.")
    page.fill("#photo-url", f"{bulletin.url}/static/demo/harbour.svg")
    page.fill("#photo-caption", "The first voters")
    page.fill("#photo-credit", "Photo: Desk")
    page.fill("#authors", "Ada Reyes, at the polling station")
    page.check('input[name="key_event"]')
    page.click("[data-submit]")
    expect(page.locator("[data-notice]")).to_contain_text("published")

    article = reader.locator("[data-bulletin-entries] article").first
    expect(article.locator(".entry__headline")).to_have_text("Polls open")
    expect(article.locator(".entry__body p")).to_have_count(2)
    expect(article.locator("figcaption")).to_contain_text("The first voters")
    expect(article.locator(".entry__byline")).to_contain_text("Ada Reyes")
    expect(reader.locator("[data-bulletin-key-events] li")).to_contain_text("Polls open")
    [entry] = bulletin.api.get(f"/blogs/{slug}/entries").json()["items"]
    assert entry["key_event"] is True
    assert entry["authors"] == [
        {"name": "Ada Reyes", "role": "at the polling station", "url": None}
    ]
    screenshot(page, "newsroom")

    page.click('[data-entries] li button:has-text("Edit")')
    page.fill("#headline", "Polls open across the city")
    page.click("[data-submit]")
    expect(article.locator(".entry__headline")).to_have_text("Polls open across the city")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click('[data-entries] li button:has-text("Delete")')
    expect(reader.locator(f"#entry-{entry['id']}")).to_have_count(0)
    expect(page.locator("[data-entries] li")).to_have_count(0)
    assert bulletin.api.get(f"/blogs/{slug}/entries").json()["items"] == []


def test_the_newsroom_page_explains_a_refused_request(page: Page, bulletin: Bulletin) -> None:
    slug = f"desk-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    page.goto(f"{bulletin.url}/newsroom?blog={slug}")
    page.fill("#token", "not-a-real-token")
    page.click('[data-form="token"] button[type="submit"]')
    page.fill("#headline", "Will not publish")
    page.click("[data-submit]")
    notice = page.locator("[data-notice]")
    expect(notice).to_contain_text("unknown or revoked")
    expect(notice).to_have_attribute("data-kind", "error")
    assert bulletin.api.get(f"/blogs/{slug}/entries").json()["items"] == []


def test_the_newsroom_page_explains_an_error_page_from_a_proxy(
    page: Page, bulletin: Bulletin
) -> None:
    slug = f"desk-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    page.goto(f"{bulletin.url}/newsroom?blog={slug}")
    page.fill("#token", ADMIN_TOKEN)
    page.click('[data-form="token"] button[type="submit"]')
    # A proxy between the desk and the server fails with its own HTML page.
    page.route(
        f"**/api/v1/blogs/{slug}/entries",
        lambda route: (
            route.fulfill(
                status=502, content_type="text/html", body="<html><h1>502 Bad Gateway</h1></html>"
            )
            if route.request.method == "POST"
            else route.fallback()
        ),
    )
    page.fill("#headline", "Through a broken proxy")
    page.click("[data-submit]")
    notice = page.locator("[data-notice]")
    expect(notice).to_have_text("The server answered 502 Bad Gateway; try again in a moment.")
    expect(notice).to_have_attribute("data-kind", "error")


def test_editing_in_the_newsroom_keeps_what_the_form_cannot_show(
    page: Page, bulletin: Bulletin
) -> None:
    slug = f"desk-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    media = [
        {
            "kind": "image",
            "url": "https://images.example.org/a.jpg",
            "caption": "A",
            "credit": "B",
            "alt": "C",
        },
        {
            "kind": "video",
            "url": "https://video.example.org/v.mp4",
            "caption": "",
            "credit": "",
            "alt": "",
        },
        {
            "kind": "embed",
            "url": "https://social.example.org/p/1",
            "caption": "",
            "credit": "",
            "alt": "",
        },
    ]
    authors = [{"name": "Ada Reyes", "role": "Editor", "url": "https://news.example.org/ada"}]
    entry = bulletin.publish(slug, headline="Before", media=media, authors=authors)
    page.goto(f"{bulletin.url}/newsroom?blog={slug}")
    page.fill("#token", ADMIN_TOKEN)
    page.click('[data-form="token"] button[type="submit"]')
    page.click('[data-entries] li button:has-text("Edit")')
    page.fill("#headline", "After")
    page.click("[data-submit]")
    expect(page.locator("[data-notice]")).to_have_text(f"Entry {entry['id']} updated.")
    edited = bulletin.api.get(f"/blogs/{slug}/entries/{entry['id']}").json()
    assert edited["headline"] == "After"
    assert edited["media"] == media
    assert edited["authors"] == authors
