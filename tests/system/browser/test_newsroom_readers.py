"""The newsroom shows how many read the blog now, and on how many open pages each published
entry has arrived."""

import contextlib
import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect
from websockets.sync.client import connect

from tests.support.waiting import eventually_blocking
from tests.system.browser.conftest import screenshot
from tests.system.browser.test_newsroom import Desk, browser_page, new_blog, serving_desk, sign_in

# The newsroom asks every 5 s; a report between processes may add a period.
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    with serving_desk(tmp_path_factory.mktemp("newsroom-readers")) as served:
        yield served


def test_the_desk_sees_readers_now_and_each_entrys_receipt(desk: Desk, browser: Browser) -> None:
    slug = new_blog(desk)
    with browser_page(browser) as editor, browser_page(browser) as reader:
        sign_in(editor, desk, desk.editor, slug)
        readers = editor.locator("[data-readers]")
        expect(readers).to_have_text("0 reading now (peak 0 today)", timeout=WAIT_MS)
        reader.goto(f"{desk.bulletin.url}/blogs/{slug}")
        expect(reader.locator('[data-bulletin-state="connected"]')).to_be_visible()
        # The desk's own stream is a member's, not a reader's: only the page counts.
        expect(readers).to_have_text("1 reading now (peak 1 today)", timeout=WAIT_MS)

        entry = desk.bulletin.publish(slug, headline="Polls close at 10pm")
        expect(reader.get_by_role("heading", name="Polls close at 10pm")).to_be_visible()
        item = editor.locator(f'[data-entries] [data-entry-id="{entry["id"]}"]')
        expect(item.locator("[data-receipt]")).to_have_text(
            "Published on 1 of 1 open pages", timeout=WAIT_MS
        )
        screenshot(editor, "newsroom-readers")

        reader.close()
        expect(readers).to_have_text("0 reading now (peak 1 today)", timeout=WAIT_MS)


def test_an_owner_switches_the_readers_count_on_and_off_and_open_pages_follow(
    desk: Desk, browser: Browser
) -> None:
    slug = new_blog(desk)
    owner = desk.second_editor  # an editor on the desk, this blog's owner
    answer = desk.bulletin.api.put(f"/blogs/{slug}/members/{owner.user_id}", json={"role": "owner"})
    assert answer.status_code in (200, 201), answer.text
    stream = f"{desk.bulletin.url.replace('http', 'ws')}/api/v1/blogs/{slug}/ws"
    with contextlib.ExitStack() as streams:
        # Enough readers for a count to be shown (fewer than ten are told nothing).
        for _ in range(12):
            socket = streams.enter_context(connect(stream))
            assert json.loads(socket.recv(timeout=10))["type"] == "hello"
        readers_url = f"/blogs/{slug}/readers"
        eventually_blocking(
            lambda: desk.bulletin.api.get(readers_url).json()["now"] == 12,
            20,
            "the 12 readers to be counted",
        )
        with (
            browser_page(browser) as editor_page,
            browser_page(browser) as owner_page,
            browser_page(browser) as reader,
        ):
            reader.goto(f"{desk.bulletin.url}/blogs/{slug}")
            expect(reader.locator('[data-bulletin-state="connected"]')).to_be_visible()
            reader.evaluate("window.loadedOnce = true")  # gone if the page reloads
            count = reader.locator("[data-bulletin-reading]")
            expect(count).to_have_count(0)

            # An editor may end coverage, not change the blog's settings: no switch.
            sign_in(editor_page, desk, desk.editor, slug)
            expect(editor_page.locator("[data-coverage]")).to_be_visible()
            expect(editor_page.locator("[data-show-readers-count]")).to_be_hidden()

            sign_in(owner_page, desk, owner, slug)
            switch = owner_page.get_by_label("Show readers “N reading now”")
            expect(switch).to_be_visible()
            expect(switch).not_to_be_checked()
            switch.check()
            expect(owner_page.locator('[data-feedback="reader-settings"]')).to_have_text(
                "Readers now see how many read with them."
            )
            assert desk.bulletin.api.get(f"/blogs/{slug}").json()["show_readers_count"] is True
            # The open page counts its own stream too, once its process has reported it.
            expect(count).to_have_text(re.compile(r"^1[23] reading now$"), timeout=WAIT_MS)
            screenshot(owner_page, "newsroom-reader-settings")

            switch.uncheck()
            expect(owner_page.locator('[data-feedback="reader-settings"]')).to_have_text(
                "Readers no longer see how many read with them."
            )
            expect(count).to_be_hidden()
            assert reader.evaluate("window.loadedOnce") is True
            assert desk.bulletin.api.get(f"/blogs/{slug}").json()["show_readers_count"] is False
