"""Embeds in Chromium: the reader page makes no request to any origin but Bulletin's until the
reader clicks "Load content from {provider}"; the click frames the provider's player from its
allow-listed origin (answered here, locally: there is no internet), under the page's CSP; a
provider the reader chose to always load is loaded at once for the rest of the session.

Every request of the browser context is intercepted: Bulletin's own go through, the
allow-listed frame origins get a stand-in player, anything else is aborted and counted."""

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect

from tests.support.oembed_provider import OembedProvider, resolving_environment, running_provider
from tests.system.browser.conftest import Bulletin, server_process
from tests.system.browser.test_csp import Watched

VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
POST = "https://x.com/electiondesk/status/1790000000000000001"
PLAYERS = {"https://www.youtube-nocookie.com", "https://platform.twitter.com"}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="module")
def oembed() -> Iterator[OembedProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
def bulletin(
    tmp_path_factory: pytest.TempPathFactory, oembed: OembedProvider
) -> Iterator[Bulletin]:
    directory = tmp_path_factory.mktemp("embeds")
    process = server_process(directory)
    process.env |= resolving_environment(oembed, directory)
    process.start()
    served = Bulletin(process)
    yield served
    served.api.close()
    process.stop()


class Network:
    """Every request the context makes, by origin; stand-in players for the frame origins."""

    def __init__(self, page: Page, own: str) -> None:
        self.own = own
        self.seen: list[str] = []
        page.context.route("**/*", self._route)
        page.context.on("request", self._request)
        page.on("websocket", lambda socket: self.seen.append(socket.url))

    def _request(self, request: Request) -> None:
        self.seen.append(request.url)

    def _route(self, route: Route) -> None:
        found = origin(route.request.url)
        if found == self.own:
            route.continue_()
        elif found in PLAYERS:
            route.fulfill(status=200, content_type="text/html", body="<p>The player</p>")
        else:
            route.abort()

    def origins(self) -> set[str]:
        return {origin(url.replace("ws://", "http://", 1)) for url in self.seen}


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert not watched.errors, watched.errors


def open_page(watched: Watched, bulletin: Bulletin, slug: str) -> tuple[Page, Network]:
    page = watched.page
    network = Network(page, bulletin.url)
    page.goto(f"{bulletin.url}/blogs/{slug}")
    expect(page.locator("[data-bulletin-state]")).to_have_attribute(
        "data-bulletin-state", "connected"
    )
    return page, network


def test_the_page_asks_no_other_origin_until_the_reader_clicks(
    watched: Watched, bulletin: Bulletin
) -> None:
    slug = "embeds-gate"
    bulletin.create_blog(slug)
    entry = bulletin.publish(slug, headline="Polls close", media=[{"kind": "embed", "url": VIDEO}])
    assert entry["media"][0]["embed"]["resolved"] is True
    bulletin.publish(slug, headline="Turnout", media=[{"kind": "embed", "url": POST}])
    page, network = open_page(watched, bulletin, slug)
    video = page.locator('[data-embed-provider="youtube"]')
    video.scroll_into_view_if_needed()
    thumbnail = video.locator("img")
    expect(thumbnail).to_have_js_property("complete", True)
    assert thumbnail.evaluate("img => img.naturalWidth") > 0  # our own rendition, loaded
    button = video.get_by_role("button", name="Load content from YouTube")
    expect(button).to_be_visible()
    page.get_by_role("button", name="Load content from X").scroll_into_view_if_needed()

    assert network.origins() == {bulletin.url}, network.seen

    with page.expect_request(lambda r: origin(r.url) == "https://www.youtube-nocookie.com") as sent:
        button.click()
    assert sent.value.url == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
    assert sent.value.frame.parent_frame == page.main_frame
    frame = video.locator("iframe")
    expect(frame).to_have_attribute(
        "sandbox", "allow-scripts allow-same-origin allow-popups allow-presentation"
    )
    expect(page.frame_locator('[data-embed-provider="youtube"] iframe').locator("p")).to_have_text(
        "The player"
    )
    # The other provider's card is still only a card, and the page's CSP allowed the frame.
    assert network.origins() == {bulletin.url, "https://www.youtube-nocookie.com"}
    assert page.locator('[data-embed-provider="x"] iframe').count() == 0
    assert watched.violations == []


def test_a_provider_chosen_to_always_load_loads_at_once_for_the_session(
    watched: Watched, bulletin: Bulletin
) -> None:
    slug = "embeds-always"
    bulletin.create_blog(slug)
    bulletin.publish(slug, headline="Turnout", media=[{"kind": "embed", "url": POST}])
    bulletin.publish(slug, headline="Polls close", media=[{"kind": "embed", "url": VIDEO}])
    page, network = open_page(watched, bulletin, slug)
    post = page.locator('[data-embed-provider="x"]')
    post.get_by_label("Always load X").check()
    post.get_by_role("button", name="Load content from X").click()
    expect(post.locator("iframe")).to_have_count(1)

    # A live entry from the same provider loads at once; another provider's still waits.
    page.evaluate("window.scrollTo(0, 0)")  # at the top, live entries go straight in
    bulletin.publish(slug, headline="More", media=[{"kind": "embed", "url": POST + "2"}])
    expect(page.locator('[data-embed-provider="x"] iframe')).to_have_count(2)
    page.reload()
    expect(page.locator('[data-embed-provider="x"] iframe')).to_have_count(2)
    expect(page.locator('[data-embed-provider="youtube"] iframe')).to_have_count(0)
    expect(page.get_by_role("button", name="Load content from YouTube")).to_be_visible()
    assert "https://www.youtube-nocookie.com" not in network.origins()
    assert watched.violations == []


def test_without_javascript_the_card_and_its_link_are_all_there_is(
    browser: Browser, bulletin: Bulletin
) -> None:
    slug = "embeds-nojs"
    bulletin.create_blog(slug)
    bulletin.publish(slug, headline="Polls close", media=[{"kind": "embed", "url": VIDEO}])
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    network = Network(page, bulletin.url)
    page.goto(f"{bulletin.url}/blogs/{slug}")
    card = page.locator('[data-embed-provider="youtube"]')
    expect(card.get_by_role("link", name="View on YouTube")).to_have_attribute("href", VIDEO)
    expect(card.get_by_text("Polls close across the state")).to_be_visible()
    expect(card.get_by_role("button")).to_be_hidden()
    assert card.locator("iframe").count() == 0  # only inside its inert template
    assert network.origins() == {bulletin.url}
    context.close()


def test_a_portrait_photo_is_shown_whole(page: Page, bulletin: Bulletin) -> None:
    from tests.media.photos import phone_jpeg

    slug = "portrait-photo"
    bulletin.create_blog(slug)
    upload = bulletin.api.post(
        f"/blogs/{slug}/media",
        files={"file": ("tall.jpg", phone_jpeg((900, 1600)), "image/jpeg")},
    )
    assert upload.status_code == 201, upload.text
    photo = upload.json()
    bulletin.publish(
        slug, headline="Queue", media=[{"kind": "image", "media_id": photo["id"], "alt": "A queue"}]
    )
    page.goto(f"{bulletin.url}/blogs/{slug}")
    image = page.locator(".entry__photo img")
    expect(image).to_have_js_property("complete", True)
    shown = image.evaluate(
        """img => { const box = img.getBoundingClientRect();
          return { width: box.width, height: box.height,
                   naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight }; }"""
    )
    assert shown["naturalWidth"] > 0
    intrinsic = shown["naturalWidth"] / shown["naturalHeight"]
    assert abs(intrinsic - 900 / 1600) < 0.01
    assert abs(shown["width"] / shown["height"] - intrinsic) < 0.01, shown
    assert shown["height"] > shown["width"]
