"""A correction on an open page: the entry is replaced in place with its "Updated" time and
its note, and a reader further down keeps the same text in view, whether the browser keeps
the place itself (scroll anchoring) or bulletin.js has to (browsers without it)."""

import secrets

import pytest
from playwright.sync_api import Page, expect

from tests.system.browser.conftest import Bulletin

ENTRY = "article[data-entry-id]"
# A browser without scroll anchoring: the client must keep the reader's place itself.
NO_NATIVE_ANCHORING = """
const supports = CSS.supports.bind(CSS);
CSS.supports = (name, value) => name === "overflow-anchor" ? false : supports(name, value);
document.addEventListener("DOMContentLoaded", () => {
  document.documentElement.style.overflowAnchor = "none";
});
"""


@pytest.mark.parametrize("anchoring", ["native", "bulletin.js"])
def test_a_correction_above_the_reader_is_shown_in_place_without_moving_what_they_read(
    page: Page, bulletin: Bulletin, anchoring: str
) -> None:
    if anchoring == "bulletin.js":
        page.add_init_script(NO_NATIVE_ANCHORING)
    slug = f"corr-{secrets.token_hex(4)}"
    bulletin.create_blog(slug, timezone="America/New_York")
    entries = [
        bulletin.publish(slug, headline=f"Update {n}", body="<p>" + "Text. " * 60 + "</p>")
        for n in range(12)
    ]
    page.goto(f"{bulletin.url}/blogs/{slug}")
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
    native = page.evaluate("getComputedStyle(document.documentElement).overflowAnchor")
    assert native == ("auto" if anchoring == "native" else "none")

    # Reading the middle of the page; an entry well above the viewport gets corrected.
    reading = page.locator(f"#entry-{entries[5]['id']}")
    reading.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 200)")
    corrected = page.locator(f"#entry-{entries[9]['id']}")
    assert corrected.bounding_box()["y"] + corrected.bounding_box()["height"] < 0
    top_before = reading.bounding_box()["y"]
    height_before = corrected.bounding_box()["height"]

    bulletin.edit(
        slug,
        entries[9]["id"],
        body="<p>" + "Corrected text. " * 120 + "</p>",
        correction="An earlier version gave the wrong count.",
    )

    expect(corrected.locator(".entry__correction")).to_contain_text(
        "Correction: An earlier version gave the wrong count."
    )
    expect(corrected.locator(".entry__updated time")).to_have_count(1)
    assert corrected.bounding_box()["height"] > height_before + 100
    assert reading.bounding_box()["y"] == pytest.approx(top_before, abs=1)
    assert page.locator(ENTRY).count() == 12
