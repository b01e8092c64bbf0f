"""Accessibility in Chromium: axe-core finds nothing wrong with the real pages at desktop and
phone sizes; the reader page's live region says "New update: {headline}" without taking the
reader's focus; a reader who asked for reduced motion gets no animation and no smooth scroll.

axe-core is a test tool (tests/system/browser/axe/, installed by .ci/browser), never served. The
pages keep their strict Content-Security-Policy while it runs: its script is answered by a
Playwright route under the page's own origin, which `script-src 'self'` allows, so nothing in
the page is weakened for the check (an inline script tag would be refused, and
`bypass_csp` would test a page no reader gets)."""

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.media.photos import phone_jpeg
from tests.support.oembed_provider import OembedProvider, resolving_environment, running_provider
from tests.system.browser.conftest import NETWORK_NOISE, Bulletin, server_process

# The partner's site of the embed tests: a static server on another origin.
from tests.system.browser.test_embed import partner_site  # noqa: F401

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AXE_PATH = "/test-only/axe.min.js"
PASSWORD = "a long newsroom password"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


@pytest.fixture(scope="module")
def axe_script() -> Path:
    if not AXE.exists():
        if os.environ.get("BULLETIN_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"axe-core is required at {AXE} (bash .ci/browser installs it)")
        pytest.skip(f"no axe-core at {AXE}")
    return AXE


@pytest.fixture(scope="module")
def oembed() -> Iterator[OembedProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
def bulletin(
    tmp_path_factory: pytest.TempPathFactory, oembed: OembedProvider
) -> Iterator[Bulletin]:
    """A server that resolves embeds (from the local oEmbed provider) and keeps uploads."""
    directory = tmp_path_factory.mktemp("accessibility")
    process = server_process(directory)
    process.env |= resolving_environment(oembed, directory) | {
        "BULLETIN_SIGN_IN_LIMIT_PER_ADDRESS": "1000/15 minutes",
    }
    process.start()
    served = Bulletin(process)
    yield served
    served.api.close()
    process.stop()


@dataclass(frozen=True)
class Coverage:
    """A live blog with an entry of every kind, an ended one, and an editor of both."""

    slug: str
    ended_slug: str
    corrected_id: int
    deleted_id: int
    login: str


@pytest.fixture(scope="module")
def coverage(bulletin: Bulletin) -> Coverage:
    slug = f"a11y-{secrets.token_hex(4)}"
    bulletin.create_blog(
        slug,
        title="Harbour bridge reopening, live",
        summary="<p>Live coverage of the reopening of the harbour bridge after repairs.</p>",
        timezone="Europe/Lisbon",
    )
    upload = bulletin.api.post(
        f"/blogs/{slug}/media",
        files={"file": ("bridge.jpg", phone_jpeg((1200, 800)), "image/jpeg")},
    )
    assert upload.status_code == 201, upload.text
    for n in range(1, 7):
        bulletin.publish(
            slug,
            headline=f"Lane {n} open to traffic",
            body=f"<p>Engineers signed off lane {n} this morning.</p>",
            key_event=True,
        )
    bulletin.publish(
        slug,
        headline="Photo: the first cars cross",
        body="<p>The first cars crossed just after nine.</p>",
        media=[
            {
                "kind": "image",
                "media_id": upload.json()["id"],
                "alt": "A line of cars on the bridge deck under a clear sky",
                "caption": "The first cars on the reopened deck.",
                "credit": "Photo: Ines Duarte",
            }
        ],
        authors=[{"name": "Ines Duarte", "role": "on the bridge", "url": "https://example.org/id"}],
    )
    bulletin.publish(
        slug,
        headline="What the mayor said",
        body="<blockquote><p>This bridge carries the city again.</p></blockquote>"
        "<p>The mayor spoke at the south end.</p>",
    )
    bulletin.publish(
        slug, headline="The ceremony, on video", media=[{"kind": "embed", "url": VIDEO}]
    )
    corrected = bulletin.publish(
        slug,
        headline="Toll-free until Sunday",
        body="<p>The crossing is free for the first week.</p>",
    )
    bulletin.edit(
        slug,
        corrected["id"],
        body="<p>The crossing is free until Sunday.</p>",
        correction="An earlier version said the crossing was free for a week.",
    )
    bulletin.publish(
        slug,
        headline="How to get there",
        body='<p>Buses run every ten minutes; see <a href="https://example.org/buses">'
        "the timetable</a>.</p>",
        pinned=True,
    )
    bulletin.publish(slug, body="<p>A short update without a headline.</p>")
    deleted = bulletin.publish(slug, headline="Posted by mistake")
    bulletin.delete(slug, deleted["id"])

    ended_slug = f"a11y-ended-{secrets.token_hex(4)}"
    bulletin.create_blog(ended_slug, title="Bridge repairs, week one")
    bulletin.publish(ended_slug, headline="Repairs begin", key_event=True)
    bulletin.publish(ended_slug, headline="Night work ends early")
    answer = bulletin.api.patch(f"/blogs/{ended_slug}", json={"status": "ended"})
    assert answer.status_code == 200, answer.text

    login = f"editor-{secrets.token_hex(3)}@news.test"
    user = bulletin.api.post(
        "/users", json={"name": "Marta Lobo", "login": login, "password": PASSWORD}
    )
    assert user.status_code == 201, user.text
    for blog in (slug, ended_slug):
        member = bulletin.api.put(
            f"/blogs/{blog}/members/{user.json()['id']}", json={"role": "editor"}
        )
        assert member.status_code == 201, member.text
    return Coverage(slug, ended_slug, corrected["id"], deleted["id"], login)


@pytest.fixture(params=list(VIEWPORTS))
def sized_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    """A page at desktop or phone size; any script error on it fails the test."""
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not any(noise in message.text for noise in NETWORK_NOISE):
            errors.append(message.text)

    page.on("console", on_console)
    yield page
    context.close()
    assert not errors, errors


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def audit(page: Page, axe: Path) -> dict:
    """axe-core's results for the page as it is now, run under the page's own CSP."""
    url = origin_of(page.url) + AXE_PATH
    page.route(url, lambda route: route.fulfill(path=axe, content_type="text/javascript"))
    page.add_script_tag(url=url)
    return page.evaluate("() => axe.run(document)")


def described(violations: list[dict]) -> str:
    """Each violation and where it is, one line per element, for the failure message."""
    lines = []
    for violation in violations:
        lines.append(
            f"{violation['id']} ({violation['impact']}): {violation['help']}"
            f" <{violation['helpUrl']}>"
        )
        for node in violation["nodes"]:
            summary = " ".join(node["failureSummary"].split())
            lines.append(f"    {' '.join(map(str, node['target']))}: {summary}")
            lines.append(f"      {node['html'][:160]}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Site:
    """What a page opener needs: the server, its coverage, and the test's fixtures."""

    bulletin: Bulletin
    coverage: Coverage
    request: pytest.FixtureRequest

    @property
    def url(self) -> str:
        return self.bulletin.url


def signed_in(page: Page, site: Site, slug: str) -> None:
    page.goto(f"{site.url}/newsroom?blog={slug}")
    page.fill("#login", site.coverage.login)
    page.fill("#password", PASSWORD)
    page.click('[data-form="sign-in"] button[type="submit"]')
    expect(page.locator("[data-user-name]")).to_have_text("Marta Lobo")
    expect(page.locator("[data-live]")).to_have_text("Live")


def open_reader(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/blogs/{site.coverage.slug}")
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
    expect(page.locator(".entry__share").first).to_be_visible()


def open_permalink(page: Page, site: Site) -> None:
    entry = site.coverage.corrected_id
    page.goto(f"{site.url}/blogs/{site.coverage.slug}/entries/{entry}")
    expect(page.locator(f"#entry-{entry}.entry--linked")).to_be_visible()


def open_deleted(page: Page, site: Site) -> None:
    answer = page.goto(f"{site.url}/blogs/{site.coverage.slug}/entries/{site.coverage.deleted_id}")
    assert answer is not None and answer.status == 410


def open_index(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/")
    expect(page.locator(f"#blog-{site.coverage.slug}")).to_be_visible()


def open_ended(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/blogs/{site.coverage.ended_slug}")
    expect(page.locator("[data-bulletin-status]")).to_have_text("Coverage ended")


def open_embed(page: Page, site: Site) -> None:
    """The embed snippet in a partner's article on another origin (test_embed's site)."""
    directory, origin = site.request.getfixturevalue("partner_site")
    (directory / "article.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>The bridge reopens · City Courier</title></head><body><main>"
        "<h1>The bridge reopens</h1><p>Our reporters are on the bridge.</p>"
        f'<div data-bulletin-blog="{site.coverage.slug}"></div></main>'
        f'<script src="{site.url}/static/bulletin.js" async></script></body></html>'
    )
    page.goto(f"{origin}/article.html")
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()


def open_newsroom(page: Page, site: Site) -> None:
    signed_in(page, site, site.coverage.slug)
    expect(page.locator("[data-entries] li").first).to_be_visible()


def open_sign_in(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/newsroom")
    expect(page.locator("#login")).to_be_visible()


PAGES: dict[str, Callable[[Page, Site], None]] = {
    "reader page": open_reader,
    "permalink page": open_permalink,
    "deleted entry's permalink (410)": open_deleted,
    "ended blog": open_ended,
    "index of blogs": open_index,
    "embed on a partner page": open_embed,
    "newsroom, signed in": open_newsroom,
    "sign-in page": open_sign_in,
}


@pytest.mark.parametrize("name", list(PAGES))
def test_axe_finds_no_violations(
    name: str,
    sized_page: Page,
    bulletin: Bulletin,
    coverage: Coverage,
    axe_script: Path,
    request: pytest.FixtureRequest,
) -> None:
    PAGES[name](sized_page, Site(bulletin, coverage, request))
    results = audit(sized_page, axe_script)
    assert results["passes"], "axe-core checked nothing"
    assert not results["violations"], f"{name}:\n{described(results['violations'])}"


def reader_in_every_state(page: Page, site: Site) -> None:
    """A returning reader's page: the catch-up note, all key events unfolded, and the reader
    scrolled down when more arrive (the "new updates" button)."""
    slug = f"a11y-states-{secrets.token_hex(4)}"
    bulletin = site.bulletin
    bulletin.create_blog(slug, title="Flood watch, live")
    for n in range(7):
        text = "<p>" + "The river is still rising at the old mill. " * 12 + "</p>"
        bulletin.publish(slug, headline=f"Gauge reading {n + 1}", body=text, key_event=n < 6)
    bulletin.publish(slug, headline="Sandbags handed out", key_event=True)
    # This browser last showed the blog an hour ago, before the newest entry (seq 8).
    page.add_init_script(
        f"localStorage.setItem('bulletin.seen.{slug}',"
        " JSON.stringify({ seq: 7, at: Date.now() - 3600000 }))"
    )
    page.goto(f"{site.url}/blogs/{slug}")
    expect(page.locator("[data-bulletin-catch-up]")).to_contain_text("1 update since")
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
    page.click("[data-bulletin-key-toggle]")
    expect(page.locator("[data-bulletin-key-toggle]")).to_have_text("Show fewer")
    page.locator("article").last.scroll_into_view_if_needed()
    bulletin.publish(slug, headline="Road to the bridge closed")
    expect(page.locator("[data-bulletin-new]")).to_have_text("1 new update")


def newsroom_editing(page: Page, site: Site) -> None:
    """The composer editing a published entry, with its photo panel and schedule open. (The
    reader page preview stays closed: it is the reader page, audited on its own.)"""
    signed_in(page, site, site.coverage.slug)
    page.locator("[data-entries] li", has_text="Toll-free until Sunday").get_by_role(
        "button", name="Edit"
    ).click()
    expect(page.locator("[data-cancel]")).to_be_visible()
    expect(page.locator("[data-change-kind]")).to_be_visible()
    page.click("[data-photo-panel] summary")
    expect(page.locator("#photo-alt")).to_be_visible()


STATES: dict[str, Callable[[Page, Site], None]] = {
    "reader page, returning and scrolled": reader_in_every_state,
    "newsroom, editing": newsroom_editing,
}


@pytest.mark.parametrize("name", list(STATES))
def test_axe_finds_no_violations_in_the_pages_other_states(
    name: str,
    sized_page: Page,
    bulletin: Bulletin,
    coverage: Coverage,
    axe_script: Path,
    request: pytest.FixtureRequest,
) -> None:
    STATES[name](sized_page, Site(bulletin, coverage, request))
    results = audit(sized_page, axe_script)
    assert results["passes"], "axe-core checked nothing"
    assert not results["violations"], f"{name}:\n{described(results['violations'])}"


def open_live(browser: Browser, url: str, **options) -> Page:
    page = browser.new_context(viewport=VIEWPORTS["desktop"], **options).new_page()
    page.goto(url)
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
    return page


def test_each_new_entry_is_announced_by_its_headline_without_moving_focus(
    browser: Browser, bulletin: Bulletin
) -> None:
    slug = f"a11y-live-{secrets.token_hex(4)}"
    bulletin.create_blog(slug, title="Storm warning, live")
    bulletin.publish(slug, headline="Wind picks up on the coast")
    page = open_live(browser, f"{bulletin.url}/blogs/{slug}")
    # The region is in the page from the start, empty, and the entries are not a region.
    region = page.locator("[data-bulletin-announce]")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_text("")
    live_regions = page.locator("[aria-live], [role=status]")
    expect(live_regions).to_have_count(2)  # it and the connection's status
    assert page.locator("[data-bulletin-entries]").get_attribute("aria-live") is None
    page.focus(".entry__share")
    page.evaluate("window.focusedBefore = document.activeElement")

    first = bulletin.publish(
        slug,
        headline="Ferries stop for the night",
        body="<p>" + "The last crossing left at six; the port will say more at dawn. " * 5 + "</p>",
    )
    expect(page.locator(f"#entry-{first['id']}")).to_be_visible()
    expect(region).to_have_text("New update: Ferries stop for the night")

    # An entry without a headline is announced by the start of its text, cut at a word.
    second = bulletin.publish(
        slug,
        body="<p>Schools in the north will open late tomorrow, the council says, "
        "and buses will run to the winter timetable until further notice.</p>",
    )
    expect(page.locator(f"#entry-{second['id']}")).to_be_visible()
    expect(region).to_have_text(
        "New update: Schools in the north will open late tomorrow, the council says, "
        "and buses will…"
    )
    # A photo without words is announced by its caption.
    photo = bulletin.publish(
        slug,
        body="",
        media=[
            {
                "kind": "image",
                "url": "/static/demo/harbour.svg",
                "alt": "Boats tied up in the harbour",
                "caption": "The harbour at dusk, every boat tied up",
            }
        ],
    )
    expect(page.locator(f"#entry-{photo['id']}")).to_be_visible()
    expect(region).to_have_text("New update: The harbour at dusk, every boat tied up")
    # An edit is applied in place, not announced.
    bulletin.edit(slug, first["id"], headline="Ferries stop until dawn")
    expect(page.locator(f"#entry-{first['id']} .entry__headline")).to_have_text(
        "Ferries stop until dawn"
    )
    expect(region).to_contain_text("The harbour at dusk")
    assert page.evaluate("document.activeElement === window.focusedBefore")
    assert page.evaluate("document.activeElement.matches('.entry__share')")
    page.context.close()


@pytest.mark.parametrize("motion", ["reduce", "no-preference"])
def test_a_reader_who_asked_for_reduced_motion_sees_nothing_move(
    browser: Browser, bulletin: Bulletin, motion: str
) -> None:
    slug = f"a11y-motion-{secrets.token_hex(4)}"
    bulletin.create_blog(slug, title="Marathon, live")
    long_text = "<p>" + "Still running. " * 80 + "</p>"
    for n in range(3):
        bulletin.publish(slug, headline=f"Warm-up {n + 1}", body=long_text)
    start = bulletin.publish(slug, headline="Runners set off", key_event=True)
    for n in range(8):
        bulletin.publish(slug, headline=f"Mile {n + 1}", body=long_text)
    page = open_live(browser, f"{bulletin.url}/blogs/{slug}", reduced_motion=motion)

    arrived = bulletin.publish(slug, headline="Leaders reach halfway")
    new_entry = page.locator(f"#entry-{arrived['id']}.entry--new")
    expect(new_entry).to_be_visible()
    style = new_entry.evaluate(
        """el => { const s = getComputedStyle(el);
          return { animation: s.animationName, durations: [s.animationDuration,
            ...s.transitionDuration.split(", ")] }; }"""
    )
    # A key-event link scrolls to its entry: at once, or smoothly over the next frames.
    scrolled = page.evaluate(
        """(id) => {
          const before = window.scrollY;
          document.querySelector(`[data-bulletin-key-events] li[data-entry-id="${id}"] a`).click();
          return { before, after: window.scrollY,
                   top: document.getElementById(`entry-${id}`).getBoundingClientRect().top,
                   behavior: getComputedStyle(document.documentElement).scrollBehavior };
        }""",
        start["id"],
    )
    if motion == "reduce":
        assert style == {"animation": "none", "durations": ["0s", "0s"]}, style
        assert abs(scrolled["top"]) < 2, scrolled  # there already, in the same task
        assert scrolled["behavior"] == "auto"
    else:  # the same checks see the motion when it is allowed
        assert style["animation"] == "entry-arrives" and style["durations"][0] != "0s", style
        assert scrolled["after"] == scrolled["before"] and scrolled["top"] > 800, scrolled
        expect(page.locator(f"#entry-{start['id']}")).to_be_in_viewport()
    page.context.close()
