"""Catch-up since the last visit, in a real browser: the page says exactly how many updates
and key events came while the reader was away, marks them and links to the first missed."""

import secrets

from playwright.sync_api import Browser, expect

from tests.system.browser.conftest import Bulletin, screenshot


def test_a_returning_reader_is_told_exactly_what_it_missed(
    bulletin: Bulletin, browser: Browser
) -> None:
    slug = f"catch-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    read = [bulletin.publish(slug, headline=f"Read {n}") for n in range(3)]
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(f"{bulletin.url}/blogs/{slug}")
        expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
        # One more arrives live while the reader is here: seen too.
        live = bulletin.publish(slug, headline="Seen live")
        expect(page.locator(f"#entry-{live['id']}")).to_be_visible()
        expect(page.locator("[data-bulletin-catch-up]")).to_have_count(0)  # nothing missed yet
        page.close()
        # The browser is closed before anything else is published: a page still open, even for
        # a moment, would rightly count what it received as seen.
        state = context.storage_state()
        context.close()

        # Away: 14 updates, 3 of them key events; one edit to a seen entry is not "new", and
        # one of the missed ones is deleted again before the reader returns.
        missed = [
            bulletin.publish(slug, headline=f"Missed {n}", key_event=n in (2, 7, 11))
            for n in range(15)
        ]
        bulletin.edit(slug, read[0]["id"], headline="Read 0, corrected")
        bulletin.delete(slug, missed[5]["id"])
        missed.remove(missed[5])

        # The browser comes back later: its storage kept, its copy of the page expired (a
        # page cached by the browser a few seconds ago would rightly show no catch-up).
        context = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=state)
        page = context.new_page()
        page.goto(f"{bulletin.url}/blogs/{slug}")
        note = page.locator("[data-bulletin-catch-up]")
        expect(note).to_contain_text("14 updates since")
        expect(note).to_contain_text("3 key events")
        unseen = page.locator(".entry--unseen")
        expect(unseen).to_have_count(14)
        marked = unseen.evaluate_all("els => els.map(el => Number(el.dataset.entryId))")
        assert sorted(marked) == sorted(entry["id"] for entry in missed)
        for entry in [*read, live]:
            expect(page.locator(f"#entry-{entry['id']}")).not_to_have_class("entry--unseen")
        screenshot(page, "catch-up-phone")
        note.locator("a").click()
        expect(page.locator(f"#entry-{missed[0]['id']}")).to_be_in_viewport()

        # Seen now: a reload has nothing to catch up on.
        page.reload()
        expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
        expect(page.locator("[data-bulletin-catch-up]")).to_have_count(0)
    finally:
        context.close()
