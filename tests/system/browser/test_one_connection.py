"""One connection per browser: the tabs of one browser share one WebSocket (reader.js), stay
in step with the log through publishes, and hand the connection over when its tab closes."""

import json
import re
import secrets

from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.support.waiting import eventually_blocking
from tests.system.browser.conftest import Bulletin, screenshot

ENTRY = "[data-bulletin-entries] article[data-entry-id]"
# Web Locks taken away, as in a browser without them: each tab connects by itself.
WITHOUT_LOCKS = "Object.defineProperty(Navigator.prototype, 'locks', { value: undefined });"


def new_blog(bulletin: Bulletin) -> str:
    slug = f"desk-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    return slug


def open_connections(bulletin: Bulletin) -> int:
    """The WebSocket streams the server holds open now, however many blogs each follows."""
    metrics = bulletin.api.get(f"{bulletin.url}/metrics").text
    # By form: plain frames, or deflated ones for the browsers that offer permessage-deflate.
    counts = re.findall(r'^bulletin_readers\{form="websocket_\w+"\} (\S+)$', metrics, re.M)
    return sum(int(float(count)) for count in counts)


def blog_streams(bulletin: Bulletin, slug: str) -> int:
    """The streams that follow the blog on the server (each blog of a shared stream counts)."""
    metrics = bulletin.api.get(f"{bulletin.url}/metrics").text
    match = re.search(rf'^bulletin_blog_readers\{{blog="{slug}"\}} (\S+)$', metrics, re.M)
    return int(float(match.group(1))) if match else 0


def wait_for_connections(bulletin: Bulletin, count: int) -> None:
    eventually_blocking(
        lambda: open_connections(bulletin) == count, 10, f"the server to hold {count} streams"
    )


def entry_ids(page: Page) -> list[int]:
    return page.locator(ENTRY).evaluate_all("els => els.map(el => Number(el.dataset.entryId))")


def log_ids(bulletin: Bulletin, slug: str) -> list[int]:
    """The blog's entries as the API lists them, newest first, as the page shows them."""
    return [entry["id"] for entry in bulletin.api.get(f"/blogs/{slug}/entries").json()["items"]]


def in_step(bulletin: Bulletin, tabs: dict[str, list[Page]]) -> None:
    """Every tab shows exactly its blog's entries, each once, in the API's order."""
    for slug, pages in tabs.items():
        expected = log_ids(bulletin, slug)
        for page in pages:
            expect(page.locator(ENTRY)).to_have_count(len(expected))
            assert entry_ids(page) == expected


def open_tab(page: Page, bulletin: Bulletin, slug: str) -> Page:
    page.goto(f"{bulletin.url}/blogs/{slug}")
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
    return page


def test_five_tabs_of_two_blogs_share_one_websocket_and_hand_it_over_without_a_gap(
    browser: Browser, bulletin: Bulletin
) -> None:
    results, weather = new_blog(bulletin), new_blog(bulletin)
    bulletin.publish(results, body="<p>Polls open in the first ward.</p>")
    context = browser.new_context()
    opened: list[tuple[Page, WebSocket]] = []
    subscribed: list[str] = []  # what the holder's tab sent on the stream

    def new_tab(slug: str) -> Page:
        page = context.new_page()

        def on_socket(socket: WebSocket) -> None:
            opened.append((page, socket))
            socket.on("framesent", lambda payload: subscribed.append(json.loads(payload)))

        page.on("websocket", on_socket)
        return open_tab(page, bulletin, slug)

    try:
        holder = new_tab(results)
        tabs = {
            results: [holder, new_tab(results), new_tab(results)],
            weather: [new_tab(weather), new_tab(weather)],
        }
        wait_for_connections(bulletin, 1)
        assert [page for page, _socket in opened] == [holder]
        # A tab that opens at the head its browser's stream has reached costs it no replay:
        # one subscription per blog, however many tabs follow it.
        assert [message["subscribe"] for message in subscribed] == [results, weather]
        for number in range(3):
            bulletin.publish(results, body=f"<p>Ward {number} declares.</p>")
            bulletin.publish(weather, body=f"<p>Rain band {number} moves east.</p>")
        in_step(bulletin, tabs)

        # The holder's tab closes while the desk keeps publishing.
        holder.close()
        for number in range(3):
            bulletin.publish(results, body=f"<p>Recount in ward {number}.</p>")
            bulletin.publish(weather, body=f"<p>Flood warning {number} issued.</p>")
        tabs[results].remove(holder)
        in_step(bulletin, tabs)
        assert len(opened) == 2 and opened[1][0] is not holder
        wait_for_connections(bulletin, 1)
        bulletin.publish(weather, body="<p>Skies clear over the coast.</p>")
        in_step(bulletin, tabs)
        screenshot(tabs[weather][1], "one-connection-after-handover")

        # The last tabs of a blog close: the shared stream stops following it, and goes on.
        for page in tabs.pop(weather):
            page.close()
        eventually_blocking(
            lambda: blog_streams(bulletin, weather) == 0, 10, "the stream to leave the blog"
        )
        assert open_connections(bulletin) == 1 and blog_streams(bulletin, results) == 1
        bulletin.publish(results, body="<p>The count ends.</p>")
        in_step(bulletin, tabs)
    finally:
        context.close()


def test_without_web_locks_each_tab_holds_its_own_connection(
    browser: Browser, bulletin: Bulletin
) -> None:
    slug = new_blog(bulletin)
    context = browser.new_context()
    context.add_init_script(WITHOUT_LOCKS)
    try:
        tabs = {slug: [open_tab(context.new_page(), bulletin, slug) for _ in range(2)]}
        wait_for_connections(bulletin, 2)
        bulletin.publish(slug, body="<p>Each tab hears this by itself.</p>")
        in_step(bulletin, tabs)
    finally:
        context.close()
