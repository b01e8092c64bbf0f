"""The newsroom shows how many read the blog now, and on how many open pages each published
entry has arrived."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

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
