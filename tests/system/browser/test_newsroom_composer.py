"""The composer's controls in Chromium, each as a reporter uses it: the byline that stays with
its writer, links, quotes and numbered lists from the editor's buttons, Cmd+Enter, the entry
list's times, bylines, badges and filters, the last-used blog, and feedback that screen
readers announce."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.system.browser.test_newsroom import (
    PASSWORD,
    Desk,
    browser_page,
    entries,
    new_blog,
    serving_desk,
    set_undo_window,
    sign_in,
    write,
)

RESULTS = "https://example.org/results"


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One server on SQLite for the module (both databases: tests/api/ and test_newsroom)."""
    with serving_desk(tmp_path_factory.mktemp("newsroom-composer")) as served:
        yield served


def sign_out(page: Page) -> None:
    """Sign out, and wait for the page to load again signed out."""
    with page.expect_navigation():
        page.click("[data-sign-out]")
    expect(page.locator("[data-sign-in]")).to_be_visible()


def entry_item(page: Page, entry_id: int):
    return page.locator(f'[data-entries] [data-entry-id="{entry_id}"]')


def test_the_byline_and_unsent_text_are_the_writers_own_not_the_shared_desks(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    other = desk.bulletin.publish(
        slug, headline="Turnout", authors=[{"name": "Wire desk", "role": "agency"}]
    )
    with browser_page(browser) as page:
        sign_in(page, desk, desk.editor, slug)
        # By default: the user's name, and no role until one is typed.
        expect(page.locator("#byline")).to_have_value("Ana Reyes")
        expect(page.locator("#byline-role")).to_have_value("")
        page.fill("#byline-role", "Political editor")
        write(page, "Polls close", "Counting starts at ten.")
        page.click("[data-primary]")
        expect(page.locator('[data-feedback="entry"]')).to_have_text("Published.")
        mine = next(e for e in entries(desk, slug) if e["headline"] == "Polls close")
        assert mine["authors"] == [{"name": "Ana Reyes", "role": "Political editor", "url": None}]

        # Editing someone else's entry shows their byline; leaving it brings back one's own.
        entry_item(page, other["id"]).locator('button:has-text("Edit")').click()
        expect(page.locator("#byline")).to_have_value("Wire desk")
        page.click("[data-cancel]")
        expect(page.locator("#byline")).to_have_value("Ana Reyes")
        expect(page.locator("#byline-role")).to_have_value("Political editor")

        page.reload()
        expect(page.locator("[data-live]")).to_have_text("Live")
        expect(page.locator("#byline-role")).to_have_value("Political editor")

        # The next reporter at the same desk starts from their own name, with none of the
        # text the last one left unsent: it waits for its writer.
        write(page, "Recount in Leith", "Not yet confirmed.")
        sign_out(page)
        sign_in(page, desk, desk.second_editor, slug)
        expect(page.locator("#byline")).to_have_value("Ben Ortiz")
        expect(page.locator("#byline-role")).to_have_value("")
        expect(page.locator("#headline")).to_have_value("")
        expect(page.locator("[data-editor]")).not_to_contain_text("Not yet confirmed")
        sign_out(page)
        sign_in(page, desk, desk.editor, slug)
        expect(page.locator("#byline-role")).to_have_value("Political editor")
        expect(page.locator("#headline")).to_have_value("Recount in Leith")
        expect(page.locator('[data-feedback="entry"]')).to_have_text("Your unsent text is back.")


def select_back(page: Page, characters: int) -> None:
    for _ in range(characters):
        page.keyboard.press("Shift+ArrowLeft")


def test_a_link_a_numbered_list_and_a_quote_from_the_buttons_reach_readers_as_safe_html(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor, browser_page(browser) as reader:
        sign_in(editor, desk, desk.editor, slug)
        reader.goto(f"{desk.bulletin.url}/blogs/{slug}")
        expect(reader.locator('[data-bulletin-state="connected"]')).to_be_visible()
        write(editor, "The first results", "See the results")
        select_back(editor, len("results"))
        editor.click('[data-format="link"]')
        # A script address is not a link: it is refused in words, the selection kept.
        editor.fill("#link-url", "javascript:alert(1)")
        editor.locator("#link-url").press("Enter")
        expect(editor.locator('[data-feedback="link"]')).to_have_text(
            "Not linked: a link address starts with https:// (or mailto:)."
        )
        assert editor.locator("[data-editor] a").count() == 0
        # An address typed as people say it ("example.org/…") is an https one.
        editor.fill("#link-url", RESULTS.removeprefix("https://"))
        editor.locator("#link-url").press("Enter")
        expect(editor.locator("[data-link-form]")).to_be_hidden()
        expect(editor.locator(f'[data-editor] a[href="{RESULTS}"]')).to_have_text("results")
        expect(editor.locator('[data-format="link"]')).to_have_attribute("aria-pressed", "true")

        editor.keyboard.press("End")
        editor.keyboard.press("Enter")
        editor.click('[data-format="numbers"]')
        expect(editor.locator('[data-format="numbers"]')).to_have_attribute("aria-pressed", "true")
        editor.keyboard.type("Leith: declared")
        editor.keyboard.press("Enter")
        editor.keyboard.type("Portobello: counting")
        editor.keyboard.press("Enter")
        editor.keyboard.press("Enter")  # an empty item ends the list
        editor.click('[data-format="quote"]')
        editor.keyboard.type("It is too close to call.")
        expect(editor.locator("[data-editor] ol li")).to_have_count(2)
        expect(editor.locator("[data-editor] blockquote")).to_contain_text("too close to call")
        expect(editor.locator("[data-editor]")).not_to_contain_text("<")
        editor.click("[data-primary]")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Published.")

        [entry] = entries(desk, slug)
        assert "<ol><li>Leith: declared</li><li>Portobello: counting</li></ol>" in entry["body"]
        assert re.search(r"<blockquote>(<p>)?It is too close to call\.", entry["body"])
        assert re.search(rf'<a href="{RESULTS}"[^>]*>results</a>', entry["body"])
        assert "javascript" not in entry["body"]
        body = reader.locator(f"#entry-{entry['id']} .entry__body")
        expect(body.locator(f'a[href="{RESULTS}"]')).to_have_text("results")
        expect(body.locator("ol li")).to_have_count(2)
        expect(body.locator("blockquote")).to_contain_text("It is too close to call.")


MAC = "Object.defineProperty(Navigator.prototype, 'platform', {get: () => 'MacIntel'})"


def test_cmd_enter_publishes_as_ctrl_enter_does_and_a_mac_is_told_so(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        expect(editor.locator(".shortcut")).to_have_text("Ctrl+Enter publishes")
        editor.context.add_init_script(MAC)  # what a Mac's browser says it runs on
        editor.reload()
        expect(editor.locator("[data-live]")).to_have_text("Live")
        expect(editor.locator(".shortcut")).to_have_text("Cmd+Enter publishes")
        write(editor, "Recount in the east", "Requested by two candidates.")
        editor.keyboard.press("Meta+Enter")  # Cmd+Enter on a Mac, from inside the text
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Published.")
        assert [e["headline"] for e in entries(desk, slug)] == ["Recount in the east"]
        expect(editor.locator("#headline")).to_have_value("")


def test_the_list_shows_each_entrys_time_byline_and_states_and_every_filter_works(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    api = desk.bulletin.api
    path = f"/blogs/{slug}/entries"

    def made(headline: str, author: str, **fields) -> dict:
        answer = api.post(
            path, json={"headline": headline, "authors": [{"name": author}], **fields}
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    draft = made("Turnout in the north", "Dee Park", status="draft")
    submitted = made("Exit poll", "Eli Stone", status="submitted")
    returned = made("A recount?", "Fay Lund", status="submitted")
    answer = api.patch(
        f"{path}/{returned['id']}", json={"status": "returned", "review_note": "Source?"}
    )
    assert answer.status_code == 200, answer.text
    published = made("Polls close", "Gil Ames")
    key = made("First seat declared", "Hal Rowe", key_event=True)
    pinned = made("Live: every result", "Ida Moss", pinned=True)
    ids = {
        name: e["id"]
        for name, e in {
            "draft": draft,
            "submitted": submitted,
            "returned": returned,
            "published": published,
            "key": key,
            "pinned": pinned,
        }.items()
    }
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        expect(editor.locator("[data-entries] li")).to_have_count(6)
        badges = {
            "draft": ("Dee Park", ["Draft"]),
            "submitted": ("Eli Stone", ["Submitted"]),
            "returned": ("Fay Lund", ["Returned"]),
            "published": ("Gil Ames", ["Published"]),
            "key": ("Hal Rowe", ["Published", "Key event"]),
            "pinned": ("Ida Moss", ["Published", "Pinned"]),
        }
        stored = {e["id"]: e for status in ("draft", "submitted", "returned", "published")
                  for e in entries(desk, slug, status)}  # fmt: skip
        for name, (author, shown) in badges.items():
            item = entry_item(editor, ids[name])
            meta = item.locator(".entry-item__meta")
            expect(meta).to_contain_text(author)
            expect(meta.locator(".badge")).to_have_text(shown)
            time = meta.locator("time")
            expect(time).to_have_text(re.compile(r"^\d{1,2}:\d{2}( [AP]M)?$"))
            entry = stored[ids[name]]
            when = entry["published_at"] if entry["status"] == "published" else entry["updated_at"]
            assert time.get_attribute("datetime") == when
        expect(entry_item(editor, ids["returned"]).locator(".review-note")).to_have_text(
            "Returned: Source?"
        )

        shown_by = {
            "all": set(ids.values()),
            "published": {ids["published"], ids["key"], ids["pinned"]},
            "draft": {ids["draft"]},
            "submitted": {ids["submitted"]},
            "returned": {ids["returned"]},
            "key": {ids["key"]},
            "pinned": {ids["pinned"]},
        }
        for name in ("published", "draft", "submitted", "returned", "key", "pinned", "all"):
            editor.click(f'[data-filter="{name}"]')
            expect(editor.locator(f'[data-filter="{name}"]')).to_have_attribute(
                "aria-pressed", "true"
            )
            listed = editor.locator("[data-entries] li")
            expect(listed).to_have_count(len(shown_by[name]))
            got = {
                int(i) for i in listed.evaluate_all("nodes => nodes.map(n => n.dataset.entryId)")
            }
            assert got == shown_by[name], name

        # A filter stays as chosen while the list changes live.
        editor.click('[data-filter="key"]')
        late = made("Second seat declared", "Hal Rowe", key_event=True)
        expect(entry_item(editor, late["id"])).to_be_visible()
        made("Queues at the school", "Gil Ames")
        expect(editor.locator("[data-entries] li")).to_have_count(2)


def test_the_newsroom_opens_on_the_last_blog_used_without_asking(
    browser: Browser, desk: Desk
) -> None:
    first = new_blog(desk, title="Vote night, live")
    second = new_blog(desk, title="Count day, live")
    with browser_page(browser) as page:
        sign_in(page, desk, desk.editor, first)
        expect(page.locator("[data-posting-to]")).to_have_text("Vote night, live")
        page.select_option("[data-blogs]", second)
        expect(page.locator("[data-posting-to]")).to_have_text("Count day, live")
        page.goto(f"{desk.bulletin.url}/newsroom")
        expect(page.locator("[data-live]")).to_have_text("Live")
        expect(page.locator("[data-blogs]")).to_have_value(second)
        expect(page.locator("[data-posting-to]")).to_have_text("Count day, live")
        write(page, "Counting resumes", "At nine.")
        page.click("[data-primary]")
        expect(page.locator('[data-feedback="entry"]')).to_have_text("Published.")
        assert [e["headline"] for e in entries(desk, second)] == ["Counting resumes"]
        assert entries(desk, first) == []


def test_feedback_is_a_live_region_screen_readers_announce(browser: Browser, desk: Desk) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as page:
        page.goto(f"{desk.bulletin.url}/newsroom?blog={slug}")
        sign_in_feedback = page.locator('[data-feedback="sign-in"]')
        page.fill("#login", desk.editor.login)
        page.fill("#password", "not the password")
        page.click('[data-form="sign-in"] button[type="submit"]')
        expect(sign_in_feedback).not_to_be_empty()
        # Exposed to assistive technology as a status message, read out politely.
        expect(
            page.get_by_role("status").filter(has_text=sign_in_feedback.inner_text())
        ).to_be_visible()
        page.fill("#password", PASSWORD)
        page.click('[data-form="sign-in"] button[type="submit"]')
        expect(page.locator("[data-live]")).to_have_text("Live")
        set_undo_window(page, 0)

        for where in ("entry", "photo", "coverage", "schedule", "conflict"):
            region = page.locator(f'[data-feedback="{where}"]')
            expect(region).to_have_attribute("role", "status")
            expect(region).to_have_attribute("aria-live", "polite")
        page.click("[data-primary]")
        refused = page.get_by_role("status").filter(
            has_text="Not published: write a headline or some text, or add a photo, first."
        )
        expect(refused).to_be_visible()
        expect(refused).to_have_attribute("data-feedback", "entry")
        write(page, "Polls close", "At ten.")
        page.click("[data-primary]")
        expect(page.get_by_role("status").filter(has_text="Published.")).to_be_visible()
        [entry] = entries(desk, slug)
        entry_item(page, entry["id"]).locator('button:has-text("Pin")').click()
        said = entry_item(page, entry["id"]).get_by_role("status")
        expect(said).to_have_text("Pinned on top.")
        expect(said).to_have_attribute("aria-live", "polite")
