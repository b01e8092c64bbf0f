"""A photo from the field in the newsroom page, in Chromium: pasted into the text, uploaded
with its progress shown, previewed as readers will see it (whole, not cropped), taken with
the phone's camera, and refused in words where the blog requires alt text."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.system.browser.test_newsroom import (
    PHONE,
    Desk,
    browser_page,
    entries,
    new_blog,
    serving_desk,
    sign_in,
)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One server on SQLite for the module (uploads on both databases: tests/media/)."""
    with serving_desk(tmp_path_factory.mktemp("newsroom-photos")) as served:
        yield served


def noisy_jpeg(path: Path, size: tuple[int, int]) -> Path:
    """A photo that does not compress away: large enough for an upload to take a while."""
    Image.effect_noise(size, 80).convert("RGB").save(path, "JPEG", quality=95)
    return path


def open_photo_panel(page: Page) -> None:
    page.click("[data-photo-panel] summary")


def test_a_photo_pasted_into_the_text_goes_up_as_the_entrys_photo(
    browser: Browser, desk: Desk, tmp_path: Path
) -> None:
    slug = new_blog(desk)
    photo = tmp_path / "pasted.png"
    Image.new("RGB", (900, 600), (40, 120, 60)).save(photo, "PNG")
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        editor.locator("[data-editor]").click()
        editor.keyboard.type("The count hall at midnight.")
        editor.evaluate(
            """bytes => {
              const data = new DataTransfer();
              data.items.add(new File([new Uint8Array(bytes)], "pasted.png", {type: "image/png"}));
              document.querySelector("[data-editor]").dispatchEvent(
                new ClipboardEvent(
                  "paste", {clipboardData: data, bubbles: true, cancelable: true}));
            }""",
            list(photo.read_bytes()),
        )
        expect(editor.locator('[data-feedback="photo"]')).to_contain_text("Photo uploaded")
        expect(editor.locator("[data-photo-preview]")).to_be_visible()
        # Into the entry's photo, not into the text.
        assert editor.locator("[data-editor] img").count() == 0
        expect(editor.locator("[data-editor]")).to_have_text("The count hall at midnight.")
        editor.fill("#photo-alt", "Counting staff at long tables")
        editor.click("[data-primary]")
        expect(editor.locator('[data-feedback="entry"]')).to_have_text("Published.")
        [entry] = entries(desk, slug)
        [media] = entry["media"]
        assert media["media_id"] and (media["width"], media["height"]) == (900, 600)
        assert "<img" not in entry["body"]


def test_the_upload_shows_its_progress_and_the_preview_is_the_whole_photo(
    browser: Browser, desk: Desk, tmp_path: Path
) -> None:
    slug = new_blog(desk)
    photo = noisy_jpeg(tmp_path / "IMG_0107.jpg", (1000, 1500))  # portrait
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        open_photo_panel(editor)
        # A slow line from the field: the upload takes seconds, and the bar says how far.
        network = editor.context.new_cdp_session(editor)
        network.send("Network.enable")
        network.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": photo.stat().st_size // 3,  # bytes per second
            },
        )
        progress = editor.locator("[data-photo-progress]")
        editor.locator("[data-photo-file]").set_input_files(photo)
        expect(editor.locator('[data-feedback="photo"]')).to_have_text("Uploading IMG_0107.jpg…")
        editor.wait_for_function(
            """() => {
              const bar = document.querySelector("[data-photo-progress]");
              return !bar.hidden && bar.value > 0 && bar.value < 100;
            }"""
        )
        expect(editor.locator('[data-feedback="photo"]')).to_contain_text(
            "Photo uploaded", timeout=30_000
        )
        expect(progress).to_be_hidden()
        network.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": -1,
            },
        )

        # The preview is the photo whole, as readers see it: portrait, nothing cut away.
        image = editor.locator("[data-photo-image]")
        image.evaluate("img => img.decode()")
        shown = image.evaluate(
            """img => {
              const box = img.getBoundingClientRect();
              return {box: box.width / box.height, photo: img.naturalWidth / img.naturalHeight,
                      fit: getComputedStyle(img).objectFit};
            }"""
        )
        assert shown["photo"] == pytest.approx(1000 / 1500, rel=0.01)
        assert shown["box"] == pytest.approx(shown["photo"], rel=0.03) or shown["fit"] == "contain"


def test_on_a_phone_the_camera_can_be_opened_directly(browser: Browser, desk: Desk) -> None:
    slug = new_blog(desk)
    with browser_page(browser, PHONE) as editor:
        editor.context.clear_cookies()
        sign_in(editor, desk, desk.editor, slug)
        open_photo_panel(editor)
        camera = editor.locator("[data-photo-camera]")
        assert camera.get_attribute("capture") == "environment"
        assert camera.get_attribute("accept") == "image/*"
        # Choosing from the phone's library stays possible beside it.
        assert editor.locator("[data-photo-file]").get_attribute("capture") is None


def test_where_the_blog_requires_alt_text_the_refusal_says_so_beside_the_button(
    browser: Browser, desk: Desk, tmp_path: Path
) -> None:
    slug = new_blog(desk)
    answer = desk.bulletin.api.patch(f"/blogs/{slug}", json={"require_alt_text": True})
    assert answer.status_code == 200, answer.text
    photo = tmp_path / "no-alt.jpg"
    Image.new("RGB", (800, 600), (90, 30, 30)).save(photo, "JPEG")
    with browser_page(browser) as editor:
        sign_in(editor, desk, desk.editor, slug)
        open_photo_panel(editor)
        editor.locator("[data-photo-file]").set_input_files(photo)
        expect(editor.locator('[data-feedback="photo"]')).to_contain_text("Photo uploaded")
        editor.fill("#headline", "Fire at the depot")
        editor.click("[data-primary]")
        feedback = editor.locator('[data-feedback="entry"]')
        expect(feedback).to_contain_text("Not published")
        expect(feedback).to_contain_text("alt text")
        assert entries(desk, slug) == []

        editor.fill("#photo-alt", "Smoke over the bus depot roof")
        editor.click("[data-primary]")
        expect(feedback).to_have_text("Published.")
        [entry] = entries(desk, slug)
        assert entry["media"][0]["alt"] == "Smoke over the bus depot roof"
