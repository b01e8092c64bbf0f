"""The newsroom page in Chromium: people sign in, a contributor submits, an editor reviews live,
edits are safe from silent overwrites, photos go up, and nothing typed is lost."""

import asyncio
import os
import re
import secrets
import subprocess
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

from tests.support.databases import database_on_same_server, execute, postgres_admin_url
from tests.support.servers import BULLETIN
from tests.system.browser.conftest import NETWORK_NOISE, Bulletin, screenshot, server_process

PASSWORD = "a long newsroom password"
DESKTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
MEDIA_URL = re.compile(r"/media/[0-9a-f]+\.jpg$")


@dataclass(frozen=True)
class Person:
    user_id: int
    name: str
    login: str


@dataclass(frozen=True)
class Desk:
    bulletin: Bulletin
    editor: Person
    second_editor: Person
    contributor: Person


@contextmanager
def serving_desk(directory: Path, database_url: str | None = None) -> Iterator[Desk]:
    """A server with an editor, a second editor and a contributor."""
    process = server_process(directory, database_url)
    # Every sign-in here comes from 127.0.0.1: the per-address limit would stop the module.
    process.env["BULLETIN_SIGN_IN_LIMIT_PER_ADDRESS"] = "1000/15 minutes"
    process.start()
    bulletin = Bulletin(process)
    try:
        people = []
        for name in ("Ana Reyes", "Ben Ortiz", "Carl Moss"):
            login = f"{name.split()[0].lower()}@news.test"
            answer = bulletin.api.post(
                "/users", json={"name": name, "login": login, "password": PASSWORD}
            )
            assert answer.status_code == 201, answer.text
            people.append(Person(answer.json()["id"], name, login))
        yield Desk(bulletin, *people)
    finally:
        bulletin.api.close()
        process.stop()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One server on SQLite for the module."""
    with serving_desk(tmp_path_factory.mktemp("newsroom")) as served:
        yield served


def in_a_thread(work: Coroutine[Any, Any, None]) -> None:
    # Playwright's sync API holds this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result()


@pytest.fixture(scope="module")
def postgres_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One server on a fresh, migrated PostgreSQL database for the module."""
    admin_url = postgres_admin_url()
    name = f"bulletin_newsroom_{secrets.token_hex(4)}"
    try:
        in_a_thread(execute(admin_url, f"CREATE DATABASE {name}"))
    except OSError as error:
        if os.environ.get("BULLETIN_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL is required: {error}")
        pytest.skip(f"no PostgreSQL: {error}")
    url = database_on_same_server(admin_url, name)
    try:
        subprocess.run(
            [str(BULLETIN), "migrate"],
            env={**os.environ, "BULLETIN_DATABASE_URL": url},
            check=True,
            capture_output=True,
        )
        with serving_desk(tmp_path_factory.mktemp("newsroom-postgres"), url) as served:
            yield served
    finally:
        in_a_thread(execute(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_desk(request: pytest.FixtureRequest) -> Desk:
    """The module's server on each database, for the flows that matter most."""
    return request.getfixturevalue("desk" if request.param == "sqlite" else "postgres_desk")


def new_blog(desk: Desk, *, title: str = "Vote night, live") -> str:
    slug = f"desk-{secrets.token_hex(4)}"
    desk.bulletin.create_blog(slug, title=title)
    for person, role in (
        (desk.editor, "editor"),
        (desk.second_editor, "editor"),
        (desk.contributor, "contributor"),
    ):
        answer = desk.bulletin.api.put(
            f"/blogs/{slug}/members/{person.user_id}", json={"role": role}
        )
        assert answer.status_code == 201, answer.text
    return slug


@contextmanager
def browser_page(browser: Browser, viewport: dict[str, int] = DESKTOP) -> Iterator[Page]:
    """A page in a browser context of its own (its own cookies: another person's browser);
    any script error on it fails the test."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not any(noise in message.text for noise in NETWORK_NOISE):
            errors.append(message.text)

    page.on("console", on_console)
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors


def sign_in(
    page: Page, desk: Desk, person: Person, slug: str, *, undo_seconds: int | None = 0
) -> None:
    """Sign in to the newsroom on `slug`; publishes go out at once unless `undo_seconds`
    says otherwise (None: the page's own setting, 10 s unless changed)."""
    page.goto(f"{desk.bulletin.url}/newsroom?blog={slug}")
    page.fill("#login", person.login)
    page.fill("#password", PASSWORD)
    page.click('[data-form="sign-in"] button[type="submit"]')
    expect(page.locator("[data-user-name]")).to_have_text(person.name)
    expect(page.locator("[data-live]")).to_have_text("Live")
    if undo_seconds is not None:
        set_undo_window(page, undo_seconds)


def set_undo_window(page: Page, seconds: int) -> None:
    """The undo window as the editor types it (kept for the next visit); also where it is
    not shown (a contributor who may not publish)."""
    page.evaluate(
        """(seconds) => {
          const input = document.querySelector("[data-hold-seconds]");
          input.value = String(seconds);
          input.dispatchEvent(new Event("input"));
        }""",
        seconds,
    )


def write(page: Page, headline: str, text: str) -> None:
    page.fill("#headline", headline)
    page.click("[data-editor]")
    page.keyboard.type(text)


def entries(desk: Desk, slug: str, status: str = "published") -> list[dict]:
    answer = desk.bulletin.api.get(f"/blogs/{slug}/entries", params={"status": status})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_a_contributor_submits_and_an_editor_approves_live_for_readers(
    any_desk: Desk, browser: Browser
) -> None:
    desk = any_desk
    slug = new_blog(desk)
    with (
        browser_page(browser) as contributor,
        browser_page(browser) as editor,
        browser_page(browser) as reader,
    ):
        sign_in(editor, desk, desk.editor, slug)
        expect(editor.locator("[data-queue-empty]")).to_be_visible()
        sign_in(contributor, desk, desk.contributor, slug)
        reader.goto(f"{desk.bulletin.url}/blogs/{slug}")
        expect(reader.locator('[data-bulletin-state="connected"]')).to_be_visible()

        # The contributor may not publish here: the button says what it does, and where.
        primary = contributor.locator("[data-primary]")
        expect(primary).to_have_text("Submit for review")
        expect(contributor.locator("[data-posting-to]")).to_have_text("Vote night, live")
        expect(contributor.locator("#byline")).to_have_value("Carl Moss")
        write(contributor, "Turnout passes 60%", "Officials say turnout is ")
        contributor.click('[data-format="bold"]')
        contributor.keyboard.type("the highest since 1998")
        contributor.click('[data-format="bold"]')
        contributor.keyboard.type(".")
        contributor.keyboard.press("Enter")
        contributor.click('[data-format="bullets"]')
        contributor.keyboard.type("North: 64%")
        contributor.keyboard.press("Enter")
        contributor.keyboard.type("South: 58%")
        # Formatted as readers will see it, with no markup on show.
        expect(contributor.locator("[data-editor] b")).to_have_text("the highest since 1998")
        expect(contributor.locator("[data-editor] ul li")).to_have_count(2)
        expect(contributor.locator("[data-editor]")).not_to_contain_text("<")
        screenshot(contributor, "newsroom-composer-desktop")
        primary.click()
        expect(contributor.locator('[data-feedback="entry"]')).to_have_text("Submitted for review.")
        [submitted] = entries(desk, slug, "submitted")
        assert submitted["authors"] == [{"name": "Carl Moss", "role": None, "url": None}]
        assert "<b>the highest since 1998</b>" in submitted["body"]
        assert "<ul><li>North: 64%</li><li>South: 58%</li></ul>" in submitted["body"]
        mine = contributor.locator(f'[data-entries] [data-entry-id="{submitted["id"]}"]')
        expect(mine.locator(".badge--submitted")).to_have_text("Submitted")
        # The byline stays for the next entry.
        expect(contributor.locator("#byline")).to_have_value("Carl Moss")

        # It reaches the editor's queue live, with who wrote it and when.
        queued = editor.locator(f'[data-queue-list] [data-entry-id="{submitted["id"]}"]')
        expect(queued.locator(".entry-item__title")).to_have_text("Turnout passes 60%")
        expect(queued.locator(".entry-item__meta")).to_contain_text("Carl Moss")
        expect(editor.locator("[data-queue-count]")).to_have_text("1")
        # On a laptop the editor's Publish is in view without scrolling.
        box = editor.locator("[data-primary]").bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= DESKTOP["height"], box
        screenshot(editor, "newsroom-review-queue-desktop")
        editor.set_viewport_size(PHONE)
        queued.scroll_into_view_if_needed()
        screenshot(editor, "newsroom-review-queue-phone")
        editor.set_viewport_size(DESKTOP)
        assert reader.locator(f"#entry-{submitted['id']}").count() == 0

        queued.locator('button:has-text("Approve")').click()
        expect(editor.locator('[data-feedback="entry"]')).to_contain_text("Approved and published")
        expect(editor.locator("[data-queue-empty]")).to_be_visible()
        article = reader.locator(f"#entry-{submitted['id']}")
        expect(article.locator(".entry__headline")).to_have_text("Turnout passes 60%")
        expect(article.locator(".entry__body b")).to_have_text("the highest since 1998")
        expect(article.locator(".entry__body li")).to_have_count(2)
        # The writer sees it go out, live.
        expect(mine.locator(".badge--published")).to_have_text("Published")


def test_a_returned_entry_reaches_the_contributor_live_with_the_note(
    any_desk: Desk, browser: Browser
) -> None:
    desk = any_desk
    slug = new_blog(desk)
    with browser_page(browser) as contributor, browser_page(browser) as editor:
        sign_in(contributor, desk, desk.contributor, slug)
        sign_in(editor, desk, desk.editor, slug)
        write(contributor, "Count delayed in the east", "Ballot boxes are late.")
        contributor.keyboard.press("Control+Enter")  # the shortcut submits, for a contributor
        expect(contributor.locator('[data-feedback="entry"]')).to_have_text("Submitted for review.")
        [submitted] = entries(desk, slug, "submitted")

        queued = editor.locator(f'[data-queue-list] [data-entry-id="{submitted["id"]}"]')
        queued.locator('button:has-text("Return with note")').click()
        queued.locator('button:has-text("Send back")').click()
        expect(queued.locator(".feedback")).to_have_text(
            "Not returned: write a note for the writer first."
        )
        queued.locator("textarea").fill("Who says so? Name the source.")
        queued.locator('button:has-text("Send back")').click()
        expect(editor.locator('[data-feedback="entry"]')).to_have_text(
            "Returned to the writer with your note."
        )

        mine = contributor.locator(f'[data-entries] [data-entry-id="{submitted["id"]}"]')
        expect(mine.locator(".badge--returned")).to_have_text("Returned")
        expect(mine.locator(".review-note")).to_have_text("Returned: Who says so? Name the source.")
        contributor.click('[data-filter="returned"]')
        expect(contributor.locator("[data-entries] li")).to_have_count(1)

        # Editing it shows it formatted, with the note; resubmitting sends it back to the queue.
        mine.locator('button:has-text("Edit")').click()
        expect(contributor.locator("[data-review-note]")).to_contain_text("Name the source.")
        expect(contributor.locator("[data-editor] p")).to_have_text("Ballot boxes are late.")
        contributor.click("[data-editor]")
        contributor.keyboard.press("End")
        contributor.keyboard.type(" The electoral commission said so at 22:10.")
        contributor.click("[data-primary]")
        expect(contributor.locator('[data-feedback="entry"]')).to_have_text("Submitted for review.")
        expect(queued.locator(".entry-item__title")).to_have_text("Count delayed in the east")
        [again] = entries(desk, slug, "submitted")
        assert "electoral commission" in again["body"]


def test_a_contributor_publishes_directly_where_the_blog_allows_it(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    answer = desk.bulletin.api.patch(
        f"/blogs/{slug}/settings", json={"contributors_may_publish": True}
    )
    assert answer.status_code == 200, answer.text
    with browser_page(browser) as contributor:
        sign_in(contributor, desk, desk.contributor, slug)
        expect(contributor.locator("[data-primary]")).to_have_text("Publish")
        expect(contributor.locator("[data-queue]")).to_be_hidden()
        write(contributor, "Small desk, no queue", "Straight out.")
        contributor.click("[data-primary]")
        expect(contributor.locator('[data-feedback="entry"]')).to_have_text("Published.")
        assert [entry["headline"] for entry in entries(desk, slug)] == ["Small desk, no queue"]


def test_a_contributor_withdraws_a_submission_and_editors_see_it_leave_the_queue(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as contributor, browser_page(browser) as editor:
        sign_in(contributor, desk, desk.contributor, slug)
        sign_in(editor, desk, desk.editor, slug)
        write(contributor, "Exit poll", "Not yet confirmed.")
        contributor.click("[data-primary]")
        expect(contributor.locator('[data-feedback="entry"]')).to_have_text("Submitted for review.")
        expect(editor.locator("[data-queue-count]")).to_have_text("1")
        [submitted] = entries(desk, slug, "submitted")
        mine = contributor.locator(f'[data-entries] [data-entry-id="{submitted["id"]}"]')
        mine.locator('button:has-text("Withdraw")').click()
        expect(mine.locator(".feedback")).to_have_text(
            "Withdrawn: it is a draft again, out of the review queue."
        )
        expect(mine.locator(".badge--draft")).to_have_text("Draft")
        expect(editor.locator("[data-queue-count]")).to_have_text("0")
        assert entries(desk, slug, "submitted") == []


def test_two_editors_on_one_entry_see_a_conflict_instead_of_a_silent_overwrite(
    any_desk: Desk, browser: Browser
) -> None:
    desk = any_desk
    slug = new_blog(desk)
    entry = desk.bulletin.publish(slug, headline="Polls close", body="<p>Doors shut at ten.</p>")
    with browser_page(browser) as first, browser_page(browser) as second:
        sign_in(first, desk, desk.editor, slug)
        sign_in(second, desk, desk.second_editor, slug)
        for page in (first, second):
            page.locator(
                f'[data-entries] [data-entry-id="{entry["id"]}"] button:has-text("Edit")'
            ).click()
            expect(page.locator("[data-editor] p")).to_have_text("Doors shut at ten.")
        first.fill("#headline", "Polls close across the country")
        first.click("[data-primary]")
        expect(first.locator('[data-feedback="entry"]')).to_have_text("Saved; readers see it now.")

        second.fill("#headline", "Polls have closed")
        second.click("[data-primary]")
        conflict = second.locator("[data-conflict]")
        expect(conflict).to_be_visible()
        expect(second.locator('[data-feedback="entry"]')).to_contain_text(
            "Not saved: someone else changed this entry meanwhile"
        )
        expect(second.locator("[data-conflict-who]")).to_contain_text("Ana Reyes")
        expect(second.locator("[data-theirs-headline]")).to_have_text(
            "Polls close across the country"
        )
        expect(second.locator("[data-yours-headline]")).to_have_text("Polls have closed")
        # Nothing was overwritten.
        [now] = entries(desk, slug)
        assert now["headline"] == "Polls close across the country"
        screenshot(second, "newsroom-conflict-desktop")
        second.set_viewport_size(PHONE)
        conflict.scroll_into_view_if_needed()
        screenshot(second, "newsroom-conflict-phone")
        second.set_viewport_size(DESKTOP)

        # Overwriting is a choice, confirmed, and sent with the new version's tag.
        second.once("dialog", lambda dialog: dialog.accept())
        second.click('[data-conflict-choice="overwrite"]')
        expect(conflict).to_be_hidden()
        expect(second.locator('[data-feedback="entry"]')).to_have_text("Saved; readers see it now.")
        [now] = entries(desk, slug)
        assert now["headline"] == "Polls have closed"
        assert now["version"] == 3


def test_a_photo_chosen_in_the_file_input_reaches_the_public_page(
    browser: Browser, desk: Desk, tmp_path: Path
) -> None:
    slug = new_blog(desk)
    photo = tmp_path / "IMG_0042.jpg"
    Image.new("RGB", (1200, 800), (200, 80, 30)).save(photo, "JPEG", quality=90)
    with browser_page(browser) as editor, browser_page(browser) as reader:
        sign_in(editor, desk, desk.editor, slug)
        reader.goto(f"{desk.bulletin.url}/blogs/{slug}")
        expect(reader.locator('[data-bulletin-state="connected"]')).to_be_visible()
        editor.click("[data-photo-panel] summary")
        file_input = editor.locator("[data-photo-file]")
        assert file_input.get_attribute("accept") == "image/*"
        # A file that only claims to be a photo is refused beside the picker, in words.
        not_a_photo = tmp_path / "notes.jpg"
        not_a_photo.write_text("Turnout figures, to be checked.")
        file_input.set_input_files(not_a_photo)
        expect(editor.locator('[data-feedback="photo"]')).to_have_text(
            "Not uploaded: that file is not a photo Bulletin can read "
            "(JPEG, PNG, WebP, HEIC or GIF)."
        )
        file_input.set_input_files(photo)
        expect(editor.locator('[data-feedback="photo"]')).to_contain_text("Photo uploaded")
        expect(editor.locator("[data-photo-image]")).to_have_attribute("src", MEDIA_URL)
        editor.fill("#photo-alt", "A queue outside a school gym")
        editor.fill("#photo-caption", "Voters in Leith")
        editor.fill("#photo-credit", "Photo: Ana Reyes")
        editor.fill("#headline", "Queues in Leith")
        editor.locator("#photo-alt").focus()
        # A focused field is scrolled clear of the action bar that stays at the bottom.
        field, bar = (
            editor.locator(selector).bounding_box()
            for selector in ("#photo-alt", ".composer__actions")
        )
        assert field is not None and bar is not None
        assert field["y"] + field["height"] <= bar["y"], (field, bar)
        screenshot(editor, "newsroom-photo-desktop")
        editor.set_viewport_size(PHONE)
        editor.locator("#headline").focus()
        editor.locator("#photo-alt").focus()
        field, bar = (
            editor.locator(selector).bounding_box()
            for selector in ("#photo-alt", ".composer__actions")
        )
        assert field is not None and bar is not None
        assert field["y"] + field["height"] <= bar["y"], (field, bar)
        measured = editor.evaluate(OVERFLOWING)
        assert measured["scroll"] <= PHONE["width"] and measured["wide"] == [], measured
        screenshot(editor, "newsroom-photo-phone")
        editor.set_viewport_size(DESKTOP)
        editor.click("[data-primary]")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Published.")
        [entry] = entries(desk, slug)
        [media] = entry["media"]
        assert media["media_id"] and media["alt"] == "A queue outside a school gym"
        figure = reader.locator(f"#entry-{entry['id']} figure")
        expect(figure.locator("img")).to_have_attribute("alt", "A queue outside a school gym")
        expect(figure.locator("figcaption")).to_contain_text("Voters in Leith")
        loaded = figure.locator("img").evaluate(
            "img => img.decode().then(() => img.naturalWidth, () => 0)"
        )
        assert loaded > 0


def test_a_photo_dropped_on_the_composer_is_uploaded_and_used(
    browser: Browser, desk: Desk, tmp_path: Path
) -> None:
    slug = new_blog(desk)
    photo = tmp_path / "drop.png"
    Image.new("RGB", (800, 1000), (30, 90, 160)).save(photo, "PNG")
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        editor.click("[data-photo-panel] summary")
        editor.evaluate(
            """bytes => {
              const data = new DataTransfer();
              data.items.add(new File([new Uint8Array(bytes)], "drop.png", {type: "image/png"}));
              document.querySelector("[data-drop]").dispatchEvent(
                new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
            }""",
            list(photo.read_bytes()),
        )
        expect(editor.locator('[data-feedback="photo"]')).to_contain_text("Photo uploaded")
        editor.fill("#photo-alt", "The count hall from above")
        editor.locator("#photo-alt").press("Control+Enter")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Published.")
        [entry] = entries(desk, slug)
        [media] = entry["media"]
        assert media["media_id"] and (media["width"], media["height"]) == (800, 1000)


WORD_PASTE = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><style>p.MsoNormal {}</style>'
    '</head><body><p class="MsoNormal" style="margin:0"><span style="font-weight:bold">Breaking'
    '</span>: <span style="font-style:italic">polls</span> close <font color="red">now</font>'
    "<o:p></o:p></p><table><tr><td>Seats</td></tr></table><script>alert(1)</script>"
    '<p><a href="javascript:alert(1)">bad</a> <a href="https://example.org/results">results</a>'
    '</p><img src="https://tracker.example/x.gif"></body></html>'
)


def test_pasting_from_a_word_processor_keeps_only_what_the_sanitiser_allows(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        editor.fill("#headline", "Pasted")
        editor.click("[data-editor]")
        editor.evaluate(
            """html => {
              const data = new DataTransfer();
              data.setData("text/html", html);
              data.setData("text/plain", "Breaking: polls close now");
              document.querySelector("[data-editor]").dispatchEvent(
                new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
            }""",
            WORD_PASTE,
        )
        body = editor.locator("[data-editor]")
        expect(body.locator("b")).to_have_text("Breaking")
        expect(body.locator("i")).to_have_text("polls")
        expect(body.locator('a[href="https://example.org/results"]')).to_have_text("results")
        for dropped in ("span", "font", "table", "script", "img", "style", "[style]", "[class]"):
            assert body.locator(dropped).count() == 0, dropped
        assert body.locator("a").count() == 1
        editor.click("[data-primary]")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Published.")
        [entry] = entries(desk, slug)
        assert "<b>Breaking</b>" in entry["body"] and "<i>polls</i>" in entry["body"]
        assert "Seats" in entry["body"] and "alert" not in entry["body"]


def test_unsent_text_survives_a_reload_and_ctrl_enter_publishes(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        write(editor, "Recount ordered", "The returning officer ")
        editor.click('[data-format="italic"]')
        editor.keyboard.type("has just")
        editor.click('[data-format="italic"]')
        editor.keyboard.type(" ordered a recount.")
        editor.reload()
        expect(editor.locator("[data-live]")).to_have_text("Live")
        expect(editor.locator("#headline")).to_have_value("Recount ordered")
        expect(editor.locator("[data-editor] i")).to_have_text("has just")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Your unsent text is back.")
        assert entries(desk, slug) == []

        editor.locator("#headline").press("Control+Enter")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Published.")
        [entry] = entries(desk, slug)
        assert entry["body"] == "<p>The returning officer <i>has just</i> ordered a recount.</p>"
        assert entry["authors"][0]["name"] == "Ana Reyes"
        kept = f"bulletin.newsroom.unsent.user-{desk.editor.user_id}.{slug}"
        assert editor.evaluate("key => localStorage.getItem(key)", kept) is None
        expect(editor.locator("#headline")).to_have_value("")


def test_a_refused_publish_is_explained_beside_the_button_and_the_text_is_kept(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        feedback = editor.locator('[data-feedback="entry"]')
        editor.click("[data-primary]")
        expect(feedback).to_have_text(
            "Not published: write a headline or some text, or add a photo, first."
        )
        expect(feedback).to_have_attribute("data-kind", "error")
        assert "Value error" not in feedback.inner_text()
        near(editor, "[data-primary]", '[data-feedback="entry"]')

        # The session ends (signed out elsewhere, say): the text stays, and says so.
        write(editor, "Result declared", "A majority of 212.")
        editor.context.clear_cookies()
        editor.click("[data-primary]")
        expect(feedback).to_have_text(
            "Not published: your session ended — sign in again; your text is kept."
        )
        near(editor, "[data-primary]", '[data-feedback="entry"]')
        expect(editor.locator("[data-sign-in]")).to_be_visible()
        assert entries(desk, slug) == []
        editor.fill("#password", PASSWORD)
        editor.click('[data-form="sign-in"] button[type="submit"]')
        expect(feedback).to_have_text("Signed in again; your text is still here.")
        expect(editor.locator("#headline")).to_have_value("Result declared")
        editor.click("[data-primary]")
        expect(feedback).to_have_text("Published.")
        assert [entry["headline"] for entry in entries(desk, slug)] == ["Result declared"]


def test_text_sent_into_a_lost_connection_is_kept_and_sent_once_when_back(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        # The answer is lost on the way back: the entry may or may not have been made.
        lost = {"answers": 0}

        def lose_the_answer(route: Route) -> None:
            if route.request.method != "POST" or lost["answers"]:
                route.fallback()
                return
            lost["answers"] += 1
            route.fetch()  # the server makes it...
            route.abort("internetdisconnected")  # ...and the desk never hears

        editor.route(f"**/api/v1/blogs/{slug}/entries", lose_the_answer)
        write(editor, "Polling station flooded", "Voting moves to the church hall.")
        editor.click("[data-primary]")
        feedback = editor.locator('[data-feedback="entry"]')
        expect(feedback).to_have_text(
            "Not published: no connection to the server — check the network and try again; "
            "your text is kept."
        )
        editor.reload()
        expect(editor.locator("#headline")).to_have_value("Polling station flooded")
        editor.click("[data-primary]")
        expect(feedback).to_have_text("Published.")
        # The same Idempotency-Key went with both tries: one entry, not two.
        assert [entry["headline"] for entry in entries(desk, slug)] == ["Polling station flooded"]


def test_a_mistyped_token_is_refused_before_it_is_kept(browser: Browser, desk: Desk) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as page:
        page.goto(f"{desk.bulletin.url}/newsroom?blog={slug}")
        page.click(".token-option summary")
        page.fill("#token", "not-a-real-token")
        page.click('[data-form="token"] button[type="submit"]')
        expect(page.locator('[data-feedback="token"]')).to_have_text(
            "Not used: this token is unknown or revoked."
        )
        assert page.evaluate("sessionStorage.getItem('bulletin.token')") is None
        expect(page.locator("[data-sign-in]")).to_be_visible()


def test_merging_by_hand_starts_from_their_version_and_keeps_both_changes(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    entry = desk.bulletin.publish(slug, headline="Turnout", body="<p>Turnout is 61%.</p>")
    with browser_page(browser) as second:
        sign_in(second, desk, desk.second_editor, slug)
        item = second.locator(f'[data-entries] [data-entry-id="{entry["id"]}"]')
        item.locator('button:has-text("Edit")').click()
        expect(second.locator("[data-editor] p")).to_have_text("Turnout is 61%.")
        desk.bulletin.edit(slug, entry["id"], headline="Turnout: 61%, a record")
        second.click("[data-editor]")
        second.keyboard.press("End")
        second.keyboard.type(" Queues remain in the north.")
        second.click("[data-primary]")
        expect(second.locator("[data-conflict]")).to_be_visible()
        second.click('[data-conflict-choice="merge"]')
        expect(second.locator("#headline")).to_have_value("Turnout: 61%, a record")
        expect(second.locator("[data-yours-body]")).to_contain_text("Queues remain")
        second.click("[data-editor]")
        second.keyboard.press("Control+End")
        second.keyboard.type(" Queues remain in the north.")
        second.click("[data-primary]")
        expect(second.locator('[data-feedback="entry"]')).to_have_text("Saved; readers see it now.")
        [now] = entries(desk, slug)
        assert now["headline"] == "Turnout: 61%, a record"
        assert now["body"] == "<p>Turnout is 61%. Queues remain in the north.</p>"


def test_a_proxy_error_page_is_explained_in_words(browser: Browser, desk: Desk) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        editor.route(
            f"**/api/v1/blogs/{slug}/entries",
            lambda route: (
                route.fulfill(status=502, content_type="text/html", body="<h1>502 Bad Gateway</h1>")
                if route.request.method == "POST"
                else route.fallback()
            ),
        )
        write(editor, "Through a broken proxy", "Still here.")
        editor.click("[data-primary]")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text(
            "Not published: the server answered 502 Bad Gateway; try again in a moment; "
            "your text is kept."
        )


def test_unpin_delete_and_the_end_of_coverage_each_ask_first(browser: Browser, desk: Desk) -> None:
    slug = new_blog(desk)
    pinned = desk.bulletin.publish(slug, headline="Live: results as they come", pinned=True)
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        item = editor.locator(f'[data-entries] [data-entry-id="{pinned["id"]}"]')
        expect(item.locator(".badge--pinned")).to_have_text("Pinned")
        assert "📌" not in editor.content()

        editor.once("dialog", lambda dialog: dialog.dismiss())
        item.locator('button:has-text("Unpin")').click()
        assert entries(desk, slug)[0]["pinned"] is True
        editor.once("dialog", lambda dialog: dialog.accept())
        item.locator('button:has-text("Unpin")').click()
        expect(item.locator(".feedback")).to_have_text("Unpinned.")
        assert entries(desk, slug)[0]["pinned"] is False

        editor.once("dialog", lambda dialog: dialog.dismiss())
        item.locator('button:has-text("Delete")').click()
        assert len(entries(desk, slug)) == 1
        editor.once("dialog", lambda dialog: dialog.accept())
        item.locator('button:has-text("Delete")').click()
        expect(item).to_have_count(0)
        assert entries(desk, slug) == []

        editor.once("dialog", lambda dialog: dialog.accept())
        editor.click("[data-coverage]")
        expect(editor.locator('[data-feedback="coverage"]')).to_have_text("Coverage ended.")
        assert desk.bulletin.api.get(f"/blogs/{slug}").json()["status"] == "ended"
        editor.once("dialog", lambda dialog: dialog.accept())
        editor.click("[data-coverage]")
        expect(editor.locator('[data-feedback="coverage"]')).to_have_text("Coverage reopened.")
        assert desk.bulletin.api.get(f"/blogs/{slug}").json()["status"] == "live"


OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const node of document.querySelectorAll("body *")) {
    const box = node.getBoundingClientRect();
    if (box.width && (box.right > width + 0.5 || box.left < -0.5)) {
      wide.push(node.outerHTML.slice(0, 80));
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, wide};
}"""

SMALL_TARGETS = """() => {
  const small = [];
  const targets = 'button, a[href], select, summary, input:not([type="checkbox"]):not(.file-input),'
    + ' label.check, label.file-button, [contenteditable="true"]';
  for (const node of document.querySelectorAll(targets)) {
    const box = node.getBoundingClientRect();
    if (!box.width) continue;  // not shown
    if (box.width < 44 || box.height < 44) {
      small.push([node.outerHTML.slice(0, 60), box.width, box.height]);
    }
  }
  return small;
}"""


@pytest.mark.parametrize("width", [360, 390])
def test_on_a_phone_nothing_is_wider_than_the_screen_and_targets_are_44_px(
    browser: Browser, desk: Desk, width: int
) -> None:
    slug = new_blog(desk, title="Vote night in the Highlands and Islands, live from every count")
    desk.bulletin.publish(slug, headline="A very long headline " * 8, key_event=True, pinned=True)
    with browser_page(browser, {"width": width, "height": 844}) as editor:
        sign_in(editor, desk, desk.editor, slug)
        editor.click("[data-photo-panel] summary")
        write(editor, "From the field", "https://example.org/" + "a" * 120)
        expect(editor.locator("[data-entries] li")).to_have_count(1)
        measured = editor.evaluate(OVERFLOWING)
        assert measured["scroll"] <= width and measured["wide"] == [], measured
        assert editor.evaluate(SMALL_TARGETS) == []
        # The action bar stays on screen at the bottom while the form goes on below.
        box = editor.locator("[data-primary]").bounding_box()
        assert box is not None and box["y"] + box["height"] <= 844, box
        if width == 390:
            editor.evaluate("window.scrollTo(0, 0)")
            screenshot(editor, "newsroom-composer-phone")


def near(page: Page, action: str, feedback: str) -> None:
    """The feedback is shown beside the button that caused it, not far up the page."""
    button = page.locator(action).bounding_box()
    said = page.locator(feedback).bounding_box()
    assert button is not None and said is not None
    assert abs(said["y"] - (button["y"] + button["height"])) < 60, (button, said)


def test_tags_typed_in_the_composer_are_published_and_edited(browser: Browser, desk: Desk) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        write(editor, "The court rules", "The judges have decided.")
        editor.fill("#tags", "Supreme Court, results")
        editor.click("[data-primary]")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Published.")
        [entry] = entries(desk, slug)
        assert entry["tags"] == ["supreme-court", "results"]
        expect(editor.locator("#tags")).to_have_value("")

        editor.locator(
            f'[data-entries] [data-entry-id="{entry["id"]}"] button:has-text("Edit")'
        ).click()
        expect(editor.locator("#tags")).to_have_value("supreme-court, results")
        editor.fill("#tags", "supreme-court")
        editor.click("[data-primary]")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Saved; readers see it now.")
        [edited] = entries(desk, slug)
        assert edited["tags"] == ["supreme-court"]
