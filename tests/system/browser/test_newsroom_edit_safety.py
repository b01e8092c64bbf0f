"""Edit safety in the newsroom page, in Chromium: who is editing an entry and taking it over,
the undo window (undone: nothing sent; elapsed: readers get it), scheduled posts in the
blog's time zone, corrections against minor fixes, and no typing lost while an entry loads."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.system.browser.test_newsroom import (
    Desk,
    browser_page,
    entries,
    new_blog,
    serving_desk,
    sign_in,
    write,
)

NEW_YORK = ZoneInfo("America/New_York")
# A held or scheduled publish goes out within the scheduler's timer; the page then hears it.
OUT_MS = 15_000


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One server on SQLite for the module (PostgreSQL: tests/api/ and tests/system/)."""
    with serving_desk(tmp_path_factory.mktemp("newsroom-edit-safety")) as served:
        yield served


def item(page: Page, entry_id: int, where: str = "[data-entries]"):
    return page.locator(f'{where} [data-entry-id="{entry_id}"]')


def edit(page: Page, entry_id: int) -> None:
    item(page, entry_id).locator('button:has-text("Edit")').click()
    expect(page.locator("[data-cancel]")).to_be_visible()


def public_log(desk: Desk, slug: str) -> list[dict]:
    answer = desk.bulletin.api.get(f"/blogs/{slug}/events", params={"since": 0})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def open_reader(page: Page, desk: Desk, slug: str) -> None:
    page.goto(f"{desk.bulletin.url}/blogs/{slug}")
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()


def test_two_editors_see_who_is_editing_and_one_takes_over_knowingly(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    entry = desk.bulletin.publish(slug, headline="Polls close", body="<p>Doors shut at ten.</p>")
    with browser_page(browser) as ana, browser_page(browser) as ben:
        sign_in(ana, desk, desk.editor, slug)
        sign_in(ben, desk, desk.second_editor, slug)
        on_bens_list = item(ben, entry["id"]).locator("[data-editing]")
        on_anas_list = item(ana, entry["id"]).locator("[data-editing]")

        # Opening the entry shows Ana on it; stopping takes her name away at once.
        edit(ana, entry["id"])
        expect(on_bens_list).to_have_text("Ana Reyes is editing")
        ana.click("[data-cancel]")
        expect(on_bens_list).to_have_count(0)

        edit(ana, entry["id"])
        expect(on_bens_list).to_have_text("Ana Reyes is editing")
        edit(ben, entry["id"])
        expect(ben.locator("[data-presence-text]")).to_contain_text(
            "Ana Reyes is editing this entry"
        )
        # Taking over is a choice, confirmed; Ana is told, and her page stops renewing.
        ben.once("dialog", lambda dialog: dialog.accept())
        ben.click("[data-take-over]")
        expect(ben.locator("[data-presence]")).to_be_hidden()
        expect(ana.locator("[data-presence-text]")).to_contain_text(
            "Ben Ortiz took over editing this entry"
        )
        expect(on_anas_list).to_have_text("Ben Ortiz is editing")
        [flag] = desk.bulletin.api.get(f"/blogs/{slug}/editing").json()["items"]
        assert flag["editor"]["name"] == "Ben Ortiz"

        # Saving releases the flag.
        ben.fill("#headline", "Polls have closed")
        ben.click("[data-primary]")
        expect(ben.locator('[data-feedback="entry"]')).to_have_text("Saved; readers see it now.")
        expect(on_anas_list).to_have_count(0)
        expect(ana.locator("[data-presence]")).to_be_hidden()

        # So does leaving the page.
        edit(ben, entry["id"])
        expect(on_anas_list).to_have_text("Ben Ortiz is editing")
        ben.goto("about:blank")
        expect(on_anas_list).to_have_count(0)
        assert desk.bulletin.api.get(f"/blogs/{slug}/editing").json()["items"] == []


def test_typing_renews_the_editing_flag_about_every_ten_seconds_not_at_each_key(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    entry = desk.bulletin.publish(slug, headline="Polls close", body="<p>Doors shut at ten.</p>")

    def is_flag_put(request) -> bool:
        return request.method == "PUT" and request.url.endswith(f"/entries/{entry['id']}/editing")

    with browser_page(browser) as ana:
        ana.clock.install()  # the page's clock, moved on below; time still flows
        sign_in(ana, desk, desk.editor, slug)
        puts: list[str] = []
        ana.on("request", lambda request: is_flag_put(request) and puts.append(request.url))
        with ana.expect_response(lambda response: is_flag_put(response.request)):
            edit(ana, entry["id"])
        [taken] = desk.bulletin.api.get(f"/blogs/{slug}/editing").json()["items"]

        ana.locator("#headline").press_sequentially(" tonight")  # within ten seconds: no renewal
        ana.clock.fast_forward("00:11")
        with ana.expect_response(lambda response: is_flag_put(response.request)):
            ana.locator("#headline").press_sequentially("!")
        # Requests are seen in the order they were sent: a renewal at each key would be here.
        assert len(puts) == 2
        expect(ana.locator("[data-presence]")).to_be_hidden()
        [renewed] = desk.bulletin.api.get(f"/blogs/{slug}/editing").json()["items"]
        assert renewed["editor"]["expires_at"] > taken["editor"]["expires_at"]
        assert renewed["editor"]["name"] == "Ana Reyes"


def test_a_held_publish_undone_sends_nothing_and_comes_back_to_the_composer_as_a_draft(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor, browser_page(browser) as reader:
        sign_in(editor, desk, desk.editor, slug, undo_seconds=None)
        open_reader(reader, desk, slug)
        # The newsroom's own default.
        expect(editor.locator("[data-hold-seconds]")).to_have_value("10")
        write(editor, "Wrong count in the north", "The count stands at 4,120.")
        editor.click("[data-primary]")
        countdown = editor.locator("[data-holds] [data-countdown]")
        expect(countdown).to_contain_text("Goes out in")
        expect(countdown).to_contain_text("Wrong count in the north")
        expect(editor.locator("#headline")).to_have_value("")

        editor.click('[data-holds] button:has-text("Undo")')
        expect(editor.locator("[data-holds]")).to_be_hidden()
        expect(editor.locator('[data-feedback="entry"]')).to_contain_text(
            "Undone: nothing was sent"
        )
        expect(editor.locator("[data-entry-title]")).to_contain_text("(draft)")
        expect(editor.locator("#headline")).to_have_value("Wrong count in the north")
        expect(editor.locator("[data-editor]")).to_contain_text("The count stands at 4,120.")
        [draft] = entries(desk, slug, "draft")
        assert draft["headline"] == "Wrong count in the north"
        assert entries(desk, slug, "scheduled") == []

        # Nothing reached the log or the page: the next entry is the first either sees.
        desk.bulletin.publish(slug, headline="Turnout at 61%")
        expect(reader.locator("article[data-entry-id]")).to_have_count(1)
        expect(reader.locator("article[data-entry-id]")).to_contain_text("Turnout at 61%")
        assert [event["type"] for event in public_log(desk, slug)] == ["entry.created"]
        assert entries(desk, slug, "draft")[0]["status"] == "draft"


def test_when_the_undo_window_ends_readers_get_the_entry(browser: Browser, desk: Desk) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor, browser_page(browser) as reader:
        sign_in(editor, desk, desk.editor, slug, undo_seconds=None)
        # The editor's own setting is remembered on this browser.
        editor.fill("[data-hold-seconds]", "2")
        editor.reload()
        expect(editor.locator("[data-live]")).to_have_text("Live")
        expect(editor.locator("[data-hold-seconds]")).to_have_value("2")
        open_reader(reader, desk, slug)

        write(editor, "Results in the south", "All twelve seats declared.")
        editor.click("[data-primary]")
        expect(editor.locator("[data-holds] [data-countdown]")).to_contain_text(
            "Results in the south"
        )
        expect(reader.get_by_role("heading", name="Results in the south")).to_be_visible(
            timeout=OUT_MS
        )
        expect(editor.locator("[data-holds]")).to_be_hidden()
        expect(editor.locator('[data-feedback="entry"]')).to_have_text(
            "Published: Results in the south."
        )
        assert [event["type"] for event in public_log(desk, slug)] == ["entry.created"]


def wall(moment: datetime) -> str:
    """A time as the page's datetime-local input takes it, in the blog's zone."""
    return moment.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_scheduled_entry_goes_out_at_its_time_and_refused_times_are_explained(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    answer = desk.bulletin.api.patch(f"/blogs/{slug}", json={"timezone": "America/New_York"})
    assert answer.status_code == 200, answer.text
    with browser_page(browser) as editor, browser_page(browser) as reader:
        sign_in(editor, desk, desk.editor, slug)
        open_reader(reader, desk, slug)
        write(editor, "Count resumes at dawn", "Officials return at six.")
        editor.click("[data-schedule-open]")
        expect(editor.locator("[data-schedule-zone]")).to_contain_text("America/New_York")
        feedback = editor.locator('[data-feedback="schedule"]')

        # Refused times are explained beside the control, and nothing is written.
        now = datetime.now(NEW_YORK)
        for moment, said in (
            (now - timedelta(hours=1), "that time has passed"),
            (now + timedelta(days=370), "more than a year ahead"),
        ):
            editor.fill("[data-publish-at]", wall(moment))
            editor.click("[data-schedule-send]")
            expect(feedback).to_contain_text(said)
        assert entries(desk, slug, "scheduled") == [] and entries(desk, slug, "draft") == []

        due = (datetime.now(NEW_YORK) + timedelta(seconds=5)).replace(microsecond=0)
        editor.fill("[data-publish-at]", wall(due))
        editor.click("[data-schedule-send]")
        expect(editor.locator('[data-feedback="entry"]')).to_contain_text("Scheduled at")
        listed = editor.locator("[data-scheduled-list] li")
        expect(listed).to_have_count(1)
        expect(listed).to_contain_text("Count resumes at dawn")
        [waiting] = entries(desk, slug, "scheduled")
        # The wall-clock time in the blog's zone, sent as the moment it names.
        assert datetime.fromisoformat(waiting["publish_at"]) == due
        assert listed.locator("time").get_attribute("datetime") == waiting["publish_at"]

        expect(reader.get_by_role("heading", name="Count resumes at dawn")).to_be_visible(
            timeout=OUT_MS
        )
        expect(editor.locator("[data-scheduled]")).to_be_hidden()
        [published] = entries(desk, slug)
        assert datetime.fromisoformat(published["published_at"]) >= due

        # A schedule is cancelled from its list: back to draft, nothing sent.
        write(editor, "Recount at noon", "If it is asked for.")
        editor.click("[data-schedule-open]")
        editor.fill("[data-publish-at]", wall(datetime.now(NEW_YORK) + timedelta(hours=3)))
        editor.click("[data-schedule-send]")
        expect(listed).to_contain_text("Recount at noon")
        listed.locator('button:has-text("Cancel")').click()
        expect(editor.locator("[data-scheduled]")).to_be_hidden()
        assert [e["headline"] for e in entries(desk, slug, "draft")] == ["Recount at noon"]
        # The blog's zone change, then the one entry that went out.
        assert [event["type"] for event in public_log(desk, slug)] == [
            "blog.updated",
            "entry.created",
        ]


def test_a_correction_shows_its_note_to_readers_and_a_minor_fix_no_label(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    wrong = desk.bulletin.publish(slug, headline="Turnout 71%", body="<p>Up on 2022.</p>")
    typo = desk.bulletin.publish(slug, headline="Polls clsoe", body="<p>At ten.</p>")
    with browser_page(browser) as editor, browser_page(browser) as reader:
        sign_in(editor, desk, desk.editor, slug)
        open_reader(reader, desk, slug)

        edit(editor, wrong["id"])
        editor.fill("#headline", "Turnout 61%")
        editor.check('[name="change_kind"][value="correction"]')
        editor.click("[data-primary]")
        # A correction needs its note: nothing is sent without one.
        expect(editor.locator('[data-feedback="entry"]')).to_contain_text(
            "write the correction note readers will see"
        )
        assert entries(desk, slug)[1]["version"] == 1
        editor.fill("#correction-note", "An earlier version gave turnout as 71%.")
        editor.click("[data-primary]")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Saved; readers see it now.")
        corrected = reader.locator(f"#entry-{wrong['id']}")
        expect(corrected.locator(".entry__correction")).to_contain_text(
            "Correction: An earlier version gave turnout as 71%."
        )
        expect(corrected.locator(".entry__updated")).to_have_count(1)

        edit(editor, typo["id"])
        # Each edit starts as a plain update, with no note left from the last.
        expect(editor.locator('[name="change_kind"][value="update"]')).to_be_checked()
        expect(editor.locator("#correction-note")).to_be_hidden()
        editor.fill("#headline", "Polls close")
        editor.check('[name="change_kind"][value="minor"]')
        editor.click("[data-primary]")
        fixed = reader.locator(f"#entry-{typo['id']}")
        expect(fixed.locator(".entry__headline")).to_have_text("Polls close")
        expect(fixed.locator(".entry__updated")).to_have_count(0)
        expect(fixed.locator(".entry__correction")).to_have_count(0)
        [now_typo, now_wrong] = entries(desk, slug)
        assert "modified_at" not in now_typo and now_wrong["correction"]["note"].startswith("An")


def test_nothing_can_be_typed_into_the_composer_until_the_entry_to_edit_has_arrived(
    browser: Browser, desk: Desk
) -> None:
    slug = new_blog(desk)
    entry = desk.bulletin.publish(slug, headline="Polls close", body="<p>Doors shut.</p>")
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        held: list[Route] = []

        def hold_the_read(route: Route) -> None:
            if route.request.method == "GET":
                held.append(route)
            else:
                route.continue_()

        editor.route(f"**/api/v1/blogs/{slug}/entries/{entry['id']}", hold_the_read)
        item(editor, entry["id"]).locator('button:has-text("Edit")').click()
        expect(editor.locator('[data-form="entry"]')).to_have_attribute("aria-busy", "true")
        assert editor.locator('[data-form="entry"]').evaluate("form => form.inert")
        assert len(held) == 1
        # Keys pressed meanwhile go nowhere, rather than into text about to be replaced.
        editor.keyboard.type("lost words")
        held[0].continue_()
        expect(editor.locator("#headline")).to_have_value("Polls close")
        expect(editor.locator('[data-form="entry"]')).to_have_attribute("aria-busy", "false")
        assert not editor.locator('[data-form="entry"]').evaluate("form => form.inert")
        expect(editor.locator("[data-editor]")).to_have_text("Doors shut.")
