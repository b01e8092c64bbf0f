"""The pages under their Content-Security-Policy, enforced by Chromium: they work, and nothing
they do is reported as a violation (security review L3). tests/test_security_headers.py
checks the headers themselves."""

import functools
import http.server
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

from tests.support.factories import ADMIN_TOKEN
from tests.system.browser.conftest import NETWORK_NOISE, Bulletin

# In every frame, from before its first script: each violation is handed to the test.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.cspViolationSeen = true;
  window.cspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI,
    sample: e.sample, document: e.documentURI });
});
"""
PHOTO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30">'
    '<rect width="40" height="30" fill="teal"/></svg>'
)


class Watched:
    """A page, the CSP violations reported in any of its frames, and its other console errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.violations: list[dict] = []
        self.errors: list[str] = []
        page.context.expose_binding(
            "cspViolation", lambda _source, violation: self.violations.append(violation)
        )
        page.context.add_init_script(REPORT_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append({"console": message.text})
        elif message.type == "error" and not any(n in message.text for n in NETWORK_NOISE):
            self.errors.append(message.text)


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert not watched.errors, watched.errors


@pytest.fixture
def partner_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """Another origin: a plain static web server, as a partner's site."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def new_blog(bulletin: Bulletin) -> str:
    slug = f"csp-{secrets.token_hex(4)}"
    bulletin.create_blog(slug, summary="<p>Under a <strong>strict</strong> policy.</p>")
    return slug


def photo(route: Route) -> None:
    route.fulfill(status=200, content_type="image/svg+xml", body=PHOTO)


def test_the_reader_page_stays_live_under_its_policy_with_no_violation(
    watched: Watched, bulletin: Bulletin
) -> None:
    page = watched.page
    slug = new_blog(bulletin)
    page.route("https://images.example.org/**", photo)
    bulletin.publish(
        slug,
        headline="Before the page opened",
        media=[{"kind": "image", "url": f"{bulletin.url}/static/demo/harbour.svg", "alt": "Port"}],
    )
    page.goto(f"{bulletin.url}/blogs/{slug}")
    expect(page.locator('[data-bulletin-state="connected"]')).to_be_visible()
    # Live over WebSocket (its own, or the one its browser's tabs share), not SSE.
    assert page.evaluate("!window.bulletinPage.source")
    # The JSON-LD block is data: it is not a script the policy has to allow.
    assert page.locator('script[type="application/ld+json"]').count() == 1

    entry = bulletin.publish(
        slug,
        headline="Arrived live",
        key_event=True,
        media=[
            {"kind": "image", "url": "https://images.example.org/live.svg", "alt": "A photo"},
            {"kind": "video", "url": "https://video.example.org/clip.mp4"},
        ],
    )
    article = page.locator(f"#entry-{entry['id']}")
    expect(article.locator(".entry__headline")).to_have_text("Arrived live")
    # Waits are functions: Playwright polls an expression with eval, which the policy forbids.
    page.wait_for_function(
        f"() => document.querySelector('#entry-{entry['id']} img').naturalWidth === 40"
    )
    bulletin.api.patch(f"/blogs/{slug}", json={"summary": "<p>Summary <em>changed</em>.</p>"})
    expect(page.locator("[data-bulletin-summary] em")).to_have_text("changed")
    # SSE, the fallback transport, is allowed too.
    hello = page.evaluate(
        """(slug) => new Promise((resolve) => {
             const source = new EventSource("/api/v1/blogs/" + slug + "/sse");
             source.addEventListener("hello", (e) => { source.close(); resolve(e.data); });
             source.onerror = () => { source.close(); resolve("error"); };
           })""",
        slug,
    )
    assert '"type":"hello"' in hello.replace(" ", "")
    assert watched.violations == []

    # And the policy is enforced: a script that was not loaded from this server never runs.
    page.evaluate(
        """() => { const script = document.createElement("script");
                   script.textContent = "window.injected = true";
                   document.body.append(script); }"""
    )
    page.wait_for_function("() => window.cspViolationSeen")
    assert page.evaluate("window.injected") is None
    reported = []
    for _ in range(100):  # the report reaches the test as a message of its own
        reported = [v["directive"] for v in watched.violations if "directive" in v]
        if reported:
            break
        page.wait_for_timeout(20)
    assert reported == ["script-src-elem"]


def test_the_embed_works_on_a_partner_page_that_has_a_strict_policy_of_its_own(
    watched: Watched, bulletin: Bulletin, partner_site: tuple[Path, str]
) -> None:
    page = watched.page
    directory, origin = partner_site
    slug = new_blog(bulletin)
    first = bulletin.publish(slug, headline="Seen under the partner's policy", key_event=True)
    server = bulletin.url
    stream = server.replace("http://", "ws://")
    # The partner allows Bulletin's script, its embed's style sheet and its connections, and
    # no inline script or style: the embed must need none.
    partner_policy = (
        f"default-src 'self'; script-src {server}; connect-src {server} {stream}; "
        f"img-src {server}; style-src 'self' {server}"
    )
    (directory / "article.html").write_text(
        "<!doctype html><html><head><title>Partner article</title>"
        f'<meta http-equiv="Content-Security-Policy" content="{partner_policy}">'
        "</head><body><h1>Our own story</h1>"
        f'<div data-bulletin-blog="{slug}"></div>'
        f'<script src="{server}/static/bulletin.js" async></script>'
        "</body></html>"
    )
    page.goto(f"{origin}/article.html")
    embed = page.locator(f'[data-bulletin-blog="{slug}"]').first
    expect(embed.locator(f"#entry-{first['id']} .entry__headline")).to_have_text(
        "Seen under the partner's policy"
    )
    expect(embed.locator('[data-bulletin-state="connected"]')).to_be_visible()
    later = bulletin.publish(slug, headline="Live on the partner's page")
    expect(embed.locator(f"#entry-{later['id']} .entry__headline")).to_be_visible()
    bulletin.edit(slug, first["id"], headline="Corrected under the partner's policy")
    expect(embed.locator("[data-bulletin-key-events] a")).to_contain_text("Corrected")
    assert watched.violations == []


def test_the_newsroom_and_its_sandboxed_preview_work_with_no_violation(
    watched: Watched, bulletin: Bulletin
) -> None:
    page = watched.page
    slug = new_blog(bulletin)
    page.goto(f"{bulletin.url}/newsroom?blog={slug}")
    page.click(".token-option summary")
    page.fill("#token", ADMIN_TOKEN)
    page.click('[data-form="token"] button[type="submit"]')
    expect(page.locator("[data-live]")).to_have_text("Live")
    page.click("[data-preview-panel] summary")
    reader = page.frame_locator("[data-preview]")
    expect(reader.locator('[data-bulletin-state="connected"]')).to_be_visible()

    # The editor (a vendored ES module) runs under the policy too. (No undo window: at once.)
    page.fill("[data-hold-seconds]", "0")
    page.fill("#headline", "Published from the desk")
    page.click("[data-editor]")
    page.keyboard.type("Under the newsroom's policy.")
    page.click("[data-primary]")
    expect(page.locator('[data-feedback="entry"]')).to_have_text("Published.")
    article = reader.locator("[data-bulletin-entries] article").first
    expect(article.locator(".entry__headline")).to_have_text("Published from the desk")
    page.click('[data-entries] li button:has-text("Edit")')
    # Edit reads the entry afresh before the form takes it: type once it is there.
    expect(page.locator("#headline")).to_have_value("Published from the desk")
    page.fill("#headline", "Edited from the desk")
    page.click("[data-primary]")
    expect(article.locator(".entry__headline")).to_have_text("Edited from the desk")

    # The preview runs in an origin of its own: the desk's token is out of its reach.
    preview = page.locator("[data-preview]").element_handle().content_frame()
    assert preview is not None
    assert preview.evaluate("window.origin") == "null"
    assert (
        preview.evaluate(
            "(() => { try { return sessionStorage.getItem('bulletin.token'); }"
            " catch (error) { return error.name; } })()"
        )
        == "SecurityError"
    )
    assert page.evaluate("sessionStorage.getItem('bulletin.token')") == ADMIN_TOKEN
    assert watched.violations == []


def test_another_site_cannot_frame_the_newsroom_but_may_frame_a_reader_page(
    watched: Watched, bulletin: Bulletin, partner_site: tuple[Path, str]
) -> None:
    page = watched.page
    directory, origin = partner_site
    slug = new_blog(bulletin)
    (directory / "frames.html").write_text(
        "<!doctype html><html><head><title>Partner</title></head><body>"
        f'<iframe id="desk" src="{bulletin.url}/newsroom"></iframe>'
        f'<iframe id="reader" src="{bulletin.url}/blogs/{slug}"></iframe>'
        "</body></html>"
    )
    page.goto(f"{origin}/frames.html")
    desk = page.frame_locator("#desk")
    expect(
        page.frame_locator("#reader").locator('[data-bulletin-state="connected"]')
    ).to_be_visible()
    expect(desk.locator("#token")).to_have_count(0)
    refusals = [v for v in watched.violations if "frame-ancestors" in str(v)]
    assert refusals, watched.violations
    watched.violations.clear()
