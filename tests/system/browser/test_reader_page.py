"""The reader page in a real browser: live updates applied in place, in order, exactly once."""

import re
import secrets
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from app.pages import KEY_EVENTS_SHOWN
from tests.system.browser.conftest import Bulletin, screenshot, server_process

ENTRY = "article[data-entry-id]"


def new_blog(bulletin: Bulletin, **fields) -> str:
    slug = f"page-{secrets.token_hex(4)}"
    bulletin.create_blog(slug, timezone="America/New_York", **fields)
    return slug


# Records the public events of the page's client from the moment the page starts it.
WATCH_LIVE = """
window.liveEvents = [];
Object.defineProperty(window, "bulletinPage", { configurable: true, set(live) {
  for (const type of ["state", "connecting", "event"]) {
    live.addEventListener(type, (e) => liveEvents.push([type, e.detail]));
  }
  Object.defineProperty(window, "bulletinPage", { value: live, writable: true });
} });
"""


def open_live(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()


def flow_ids(page: Page) -> list[int]:
    return [
        int(i)
        for i in page.locator(f"[data-bulletin-entries] {ENTRY}").evaluate_all(
            "els => els.map(el => el.dataset.entryId)"
        )
    ]


def key_event_line(page: Page, entry: dict) -> Locator:
    return page.locator(f'[data-bulletin-key-events] li[data-entry-id="{entry["id"]}"]')


def test_the_page_is_complete_without_javascript(browser: Browser, bulletin: Bulletin) -> None:
    slug = new_blog(bulletin)
    entry = bulletin.publish(slug, headline="Readable without scripts")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{bulletin.url}/blogs/{slug}")
    expect(page.locator(f"#entry-{entry['id']} .entry__headline")).to_have_text(
        "Readable without scripts"
    )
    expect(page.locator("[data-bulletin-state]")).to_be_hidden()
    context.close()


def test_a_published_entry_appears_on_an_open_page_without_a_reload(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    older = bulletin.publish(slug, headline="First")
    open_live(page, f"{bulletin.url}/blogs/{slug}")
    page.evaluate("window.sameDocument = true")
    expect(page.locator("[data-bulletin-state]")).to_have_text("Live")

    entry = bulletin.publish(slug, headline="Second, live", authors=[{"name": "Rui Sato"}])

    article = page.locator(f"#entry-{entry['id']}")
    expect(article.locator(".entry__headline")).to_have_text("Second, live")
    expect(article.locator("[data-ago]")).to_have_text("just now")
    assert flow_ids(page) == [entry["id"], older["id"]]
    assert page.evaluate("window.sameDocument") is True


def test_edits_pins_key_events_and_deletes_are_applied_in_place(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    first = bulletin.publish(slug, headline="Count begins")
    second = bulletin.publish(slug, headline="Turnout high")
    open_live(page, f"{bulletin.url}/blogs/{slug}")

    bulletin.edit(slug, first["id"], headline="Count begins in the east", key_event=True)
    expect(page.locator(f"#entry-{first['id']} .entry__headline")).to_have_text(
        "Count begins in the east"
    )
    assert flow_ids(page) == [second["id"], first["id"]]
    key_events = page.locator("[data-bulletin-key-events] li")
    expect(key_events).to_have_count(1)
    expect(key_events.locator("a")).to_have_attribute(
        "href", f"{bulletin.url}/blogs/{slug}/entries/{first['id']}"
    )
    expect(key_events).to_contain_text("Count begins in the east")

    bulletin.edit(slug, first["id"], pinned=True)
    expect(page.locator(f"[data-bulletin-pinned] #entry-{first['id']}")).to_be_visible()
    assert flow_ids(page) == [second["id"]]

    bulletin.edit(slug, second["id"], pinned=True)  # moves the pin: the first goes back
    expect(page.locator(f"[data-bulletin-pinned] #entry-{second['id']}")).to_be_visible()
    expect(page.locator(f"[data-bulletin-entries] #entry-{first['id']}")).to_be_visible()
    expect(page.locator(ENTRY)).to_have_count(2)

    bulletin.delete(slug, first["id"])
    expect(page.locator(f"#entry-{first['id']}")).to_have_count(0)
    expect(key_events).to_have_count(0)
    expect(page.locator(".key-events")).to_be_hidden()

    bulletin.api.patch(f"/blogs/{slug}", json={"status": "ended", "title": "Count over"})
    expect(page.locator("[data-bulletin-status]")).to_have_text("Coverage ended")
    expect(page.locator("h1")).to_have_text("Count over")


def test_moving_the_pin_returns_the_entry_pinned_before_as_the_server_now_renders_it(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    first = bulletin.publish(slug, headline="Pinned first", pinned=True)
    second = bulletin.publish(slug, headline="Pinned next")
    page.add_init_script(WATCH_LIVE)
    open_live(page, f"{bulletin.url}/blogs/{slug}")

    bulletin.edit(slug, second["id"], pinned=True)

    expect(page.locator(f"[data-bulletin-pinned] #entry-{second['id']}")).to_be_visible()
    returned = page.locator(f"[data-bulletin-entries] #entry-{first['id']}")
    expect(returned).to_be_visible()
    # The publisher unpins the first before it pins the second: the page applies both.
    applied = page.evaluate(
        "liveEvents.filter(([kind]) => kind === 'event').map(([, e]) => [e.type, e.entry.id])"
    )
    assert applied == [["entry.unpinned", first["id"]], ["entry.pinned", second["id"]]]
    # What came back is the entry.unpinned rendering, not the old article stripped of its flag.
    unpinned = bulletin.api.get(f"/blogs/{slug}/entries/{first['id']}").json()
    expect(returned).to_have_attribute("data-version", str(unpinned["version"]))
    expect(returned).not_to_have_class(re.compile(r"entry--pinned"))
    expect(returned.locator(".entry__flag--pinned")).to_have_count(0)
    expect(page.locator("[data-bulletin-pinned] article")).to_have_count(1)
    assert flow_ids(page) == [first["id"]]


def test_a_key_event_published_live_is_listed_as_a_fresh_page_lists_it(
    browser: Browser, page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    open_live(page, f"{bulletin.url}/blogs/{slug}")
    body = "<p>" + "Counting goes on through the night in every ward. " * 4 + "</p>"
    entry = bulletin.publish(slug, body=body, key_event=True)
    line = key_event_line(page, entry)
    expect(line).to_contain_text("Counting goes on")
    shown_live = line.evaluate("el => el.outerHTML")

    # The server's own rendering, in a browser with no cache and no script of its own.
    context = browser.new_context(java_script_enabled=False)
    fresh = context.new_page()
    fresh.goto(f"{bulletin.url}/blogs/{slug}")
    assert key_event_line(fresh, entry).evaluate("el => el.outerHTML") == shown_live
    context.close()


def test_the_key_events_list_keeps_as_many_as_the_server_lists_newest_first(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    # All in one second: the list orders them as the page does, by time and then by id.
    moment = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()
    oldest, *_ = [
        bulletin.publish(slug, headline=f"Key event {n}", key_event=True, published_at=moment)
        for n in range(KEY_EVENTS_SHOWN)
    ]
    open_live(page, f"{bulletin.url}/blogs/{slug}")
    lines = page.locator("[data-bulletin-key-events] li")
    expect(lines).to_have_count(KEY_EVENTS_SHOWN)

    newest = bulletin.publish(slug, headline="Key event, live", key_event=True, published_at=moment)

    expect(lines.first).to_have_attribute("data-entry-id", str(newest["id"]))
    expect(lines).to_have_count(KEY_EVENTS_SHOWN)
    expect(key_event_line(page, oldest)).to_have_count(0)


def test_a_reader_who_scrolled_down_stays_put_and_gets_a_new_updates_button(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    for number in range(12):
        bulletin.publish(slug, headline=f"Update {number}", body="<p>" + "Text. " * 60 + "</p>")
    open_live(page, f"{bulletin.url}/blogs/{slug}")
    reading_id = page.locator(ENTRY).nth(6).get_attribute("data-entry-id")
    reading = page.locator(f"#entry-{reading_id}")  # by id: positions shift as entries arrive
    reading.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 200)")
    top_before = reading.bounding_box()["y"]
    title = page.title()

    fresh = [bulletin.publish(slug, headline=f"Breaking {n}") for n in range(2)]

    button = page.locator("[data-bulletin-new]")
    expect(button).to_have_text("2 new updates")
    expect(page).to_have_title(f"(2) {title}")
    assert reading.bounding_box()["y"] == pytest.approx(top_before, abs=1)
    expect(page.locator(f"#entry-{fresh[0]['id']}")).to_have_count(0)

    # One of the waiting entries is pinned: it goes to the top now, the other still waits.
    bulletin.edit(slug, fresh[0]["id"], pinned=True)
    expect(page.locator(f"[data-bulletin-pinned] #entry-{fresh[0]['id']}")).to_have_count(1)
    expect(button).to_have_text("1 new update")
    assert reading.bounding_box()["y"] == pytest.approx(top_before, abs=1)

    button.click()
    expect(button).to_be_hidden()
    expect(page).to_have_title(title)
    assert flow_ids(page)[0] == fresh[1]["id"]
    assert fresh[0]["id"] not in flow_ids(page)
    expect(page.locator(f"#entry-{fresh[1]['id']}")).to_be_in_viewport()


def test_the_page_catches_up_after_a_server_restart_without_duplicates(
    page: Page, bulletin: Bulletin, tmp_path: Path
) -> None:
    # The page's own server shares the database with `bulletin`, which keeps publishing.
    readers_server = server_process(tmp_path, bulletin.process.env["BULLETIN_DATABASE_URL"])
    readers_server.start()
    try:
        slug = new_blog(bulletin)
        before = bulletin.publish(slug, headline="Before the restart")
        open_live(page, f"{readers_server.http}/blogs/{slug}")

        readers_server.stop()
        expect(page.locator("[data-bulletin-state]")).to_have_text("Reconnecting…")
        meanwhile = [bulletin.publish(slug, headline=f"While down {n}") for n in range(3)]
        bulletin.edit(slug, before["id"], headline="Before the restart, edited")
        bulletin.delete(slug, meanwhile[0]["id"])
        readers_server.start()

        # The page retries on its back-off, which has grown while the server was down: up to
        # 30 s between tries (bulletin.js), so it may take that long to notice the server is back.
        expect(page.locator("[data-bulletin-state]")).to_have_text("Live", timeout=40_000)
        expect(page.locator(f"#entry-{meanwhile[2]['id']}")).to_be_visible()
        expect(page.locator(f"#entry-{before['id']} .entry__headline")).to_have_text(
            "Before the restart, edited"
        )
        expect(page.locator(f"#entry-{meanwhile[0]['id']}")).to_have_count(0)
        assert flow_ids(page) == [meanwhile[2]["id"], meanwhile[1]["id"], before["id"]]
    finally:
        readers_server.stop()


def test_the_page_falls_back_to_server_sent_events_when_websockets_are_blocked(
    page: Page, bulletin: Bulletin
) -> None:
    # A proxy that accepts the upgrade and then drops the connection at once.
    page.route_web_socket(re.compile(r"/ws(\?|$)"), lambda socket: socket.close())
    page.add_init_script(WATCH_LIVE)
    slug = new_blog(bulletin)
    page.goto(f"{bulletin.url}/blogs/{slug}")
    page.wait_for_function(
        # A function, not an expression: Playwright polls an expression with eval, which the
        # page's Content-Security-Policy forbids.
        "() => liveEvents.some(([, e]) => e.newState === 'connected' && e.transport === 'sse')",
        timeout=20_000,
    )
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()

    entry = bulletin.publish(slug, headline="Over SSE")
    expect(page.locator(f"#entry-{entry['id']} .entry__headline")).to_have_text("Over SSE")
    expect(page.locator(ENTRY)).to_have_count(1)


@pytest.mark.parametrize(
    ("name", "viewport"),
    [("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})],
)
def test_the_page_fits_desktop_and_phone_screens(
    browser: Browser, bulletin: Bulletin, name: str, viewport: dict
) -> None:
    slug = new_blog(bulletin, summary="<p>A sample blog for screenshots.</p>", topics=["Demo"])
    bulletin.publish(slug, headline="Pinned guide", pinned=True)
    bulletin.publish(
        slug,
        headline="A photo from the count",
        media=[
            {
                "kind": "image",
                "url": f"{bulletin.url}/static/demo/harbour.svg",
                "caption": "Counting at the town hall.",
                "credit": "Illustration: Bulletin demo",
                "alt": "A harbour",
            }
        ],
        key_event=True,
        authors=[{"name": "Ada Reyes", "role": "at the count"}],
    )
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    open_live(page, f"{bulletin.url}/blogs/{slug}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, f"reader-page-{name}")
    context.close()


COME_BACK = {
    # The browser fires `online` when the network returns.
    "online": lambda page: (page.context.set_offline(True), page.context.set_offline(False)),
    # Headless Chromium never hides a tab: tell the page it was hidden and is visible again.
    "visible": lambda page: page.evaluate(
        """() => { Object.defineProperty(document, "hidden", { value: false });
                   document.dispatchEvent(new Event("visibilitychange")); }"""
    ),
}


@pytest.mark.parametrize("how", list(COME_BACK))
def test_coming_back_reconnects_at_once_instead_of_waiting_out_the_back_off(
    page: Page, bulletin: Bulletin, tmp_path: Path, how: str
) -> None:
    readers_server = server_process(tmp_path, bulletin.process.env["BULLETIN_DATABASE_URL"])
    readers_server.start()
    # No jitter: each back-off is its full length, so the wait it skips is known.
    page.add_init_script("Math.random = () => 1")
    try:
        slug = new_blog(bulletin)
        open_live(page, f"{readers_server.http}/blogs/{slug}")
        page.evaluate(
            """() => { const live = window.bulletinPage;
                 window.nextTry = null;
                 live.addEventListener("connecting", (e) => {
                   window.nextTry = Date.now() + e.detail.delay;
                 });
                 live.addEventListener("state", (e) => {
                   if (e.detail.newState === "connected") window.connectedAt = Date.now();
                 }); }"""
        )
        readers_server.stop()
        # Until the back-off has grown: the next try is more than 12 s away, longer than the
        # server takes to start on a busy machine.
        page.wait_for_function("() => window.nextTry - Date.now() > 12000", timeout=40_000)
        scheduled = page.evaluate("window.nextTry")
        readers_server.start()
        entry = bulletin.publish(slug, headline="Back online")
        COME_BACK[how](page)
        expect(page.locator(f"#entry-{entry['id']}")).to_be_visible()
        assert page.evaluate("window.connectedAt") < scheduled
    finally:
        readers_server.stop()


def test_a_page_ahead_of_a_restored_database_reloads_and_goes_on_live(
    page: Page, bulletin: Bulletin, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    slug = new_blog(bulletin)
    kept = bulletin.publish(slug, headline="Kept in the backup")
    source = bulletin.process.env["BULLETIN_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(source) as live_db, sqlite3.connect(backup) as copy:
        live_db.backup(copy)
    readers_server = server_process(tmp_path, bulletin.process.env["BULLETIN_DATABASE_URL"])
    readers_server.start()
    try:
        open_live(page, f"{readers_server.http}/blogs/{slug}")
        lost = bulletin.publish(slug, headline="Lost with the restore")
        expect(page.locator(f"#entry-{lost['id']}")).to_be_visible()
        # The database is restored from the backup: its log ends before what the page has.
        readers_server.stop()
        readers_server.env["BULLETIN_DATABASE_URL"] = f"sqlite+aiosqlite:///{backup}"
        readers_server.start()
        # The page retries on its grown back-off (up to 30 s, bulletin.js), then reloads.
        expect(page.locator(f"#entry-{lost['id']}")).to_have_count(0, timeout=40_000)
        expect(page.locator(f"#entry-{kept['id']}")).to_be_visible()
        expect(page.locator("[data-bulletin-state]")).to_have_text("Live")
    finally:
        readers_server.stop()


def test_a_page_that_stays_ahead_of_the_log_reloads_only_once(
    page: Page, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    bulletin.publish(slug, headline="Only entry")
    loads: list[str] = []
    page.on("load", lambda loaded: loads.append(loaded.url))
    # As if a cache kept serving a page rendered before the database was restored.
    page.add_init_script(
        """new MutationObserver(() => {
             const live = document.querySelector("[data-bulletin-seq]");
             if (live) live.dataset.bulletinSeq = "999";
           }).observe(document, { childList: true, subtree: true });"""
    )
    page.goto(f"{bulletin.url}/blogs/{slug}")
    expect(page.locator("[data-bulletin-state]")).to_have_text("Reload the page")
    assert len(loads) == 2
