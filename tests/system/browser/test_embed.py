"""The embed snippet and the ES module on a page served from another origin."""

import functools
import http.server
import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from app.realtime.codes import CloseCode
from tests.system.browser.conftest import Bulletin, screenshot


@pytest.fixture
def partner_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """Another origin: a plain static web server on its own port, as a partner's site."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # "localhost" and 127.0.0.1 are different origins even on the same port.
    yield tmp_path, f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_embed_snippet_renders_a_live_blog_inside_another_sites_page(
    page: Page, bulletin: Bulletin, partner_site: tuple[Path, str]
) -> None:
    directory, origin = partner_site
    slug = f"embed-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    first = bulletin.publish(slug, headline="Seen on a partner site", key_event=True)
    (directory / "article.html").write_text(
        "<!doctype html><html><head><title>Partner article</title></head><body>"
        "<h1>Our own story</h1>"
        f'<div data-bulletin-blog="{slug}" data-bulletin-max-entries="3"></div>'
        f'<script src="{bulletin.url}/static/bulletin.js" async></script>'
        "</body></html>"
    )
    page.goto(f"{origin}/article.html")
    embed = page.locator(f'[data-bulletin-blog="{slug}"]').first
    expect(embed.locator(f"#entry-{first['id']} .entry__headline")).to_have_text(
        "Seen on a partner site"
    )
    expect(embed.locator('[data-bulletin-state="connected"]')).to_be_visible()

    later = [bulletin.publish(slug, headline=f"Later {n}") for n in range(4)]
    expect(embed.locator(f"#entry-{later[-1]['id']}")).to_be_visible()
    # The partner's page keeps its own title; the embed keeps only the newest three.
    assert page.title() == "Partner article"
    expect(embed.locator("[data-bulletin-entries] article")).to_have_count(3)
    older = embed.locator("[data-bulletin-older]")
    expect(older).to_be_visible()
    href = older.get_attribute("href")
    assert href.startswith(f"{bulletin.url}/blogs/{slug}?before=")
    # The key event is no longer on the page: its link leads to the page that has it.
    key_link = embed.locator("[data-bulletin-key-events] a")
    expect(key_link).to_have_attribute("href", re.compile(rf"\?before=.+#entry-{first['id']}$"))
    # Editing it keeps that way to it.
    bulletin.edit(slug, first["id"], headline="Seen on a partner site, corrected")
    expect(key_link).to_contain_text("corrected")
    expect(key_link).to_have_attribute("href", re.compile(rf"\?before=.+#entry-{first['id']}$"))
    key_href = key_link.get_attribute("href")
    page.goto(href)
    expect(page.locator(f"#entry-{later[0]['id']}")).to_be_visible()
    page.goto(key_href)
    expect(page.locator(f"#entry-{first['id']}")).to_be_in_viewport()


def test_the_client_works_as_an_es_module_from_another_origin(
    page: Page, bulletin: Bulletin, partner_site: tuple[Path, str]
) -> None:
    directory, origin = partner_site
    slug = f"module-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    (directory / "app.html").write_text(
        "<!doctype html><html><head><title>Partner app</title></head><body>"
        '<script type="module">'
        f'import {{ Bulletin }} from "{bulletin.url}/static/bulletin.mjs";'
        "window.received = [];"
        f'window.live = Bulletin.connect({{ url: "{bulletin.url}", blog: "{slug}",'
        " onEvent: (event) => window.received.push(event) });"
        "</script></body></html>"
    )
    page.goto(f"{origin}/app.html")
    # The hello carries the head: from then on every event reaches this client.
    page.wait_for_function("window.live && window.live.seq !== null")
    entry = bulletin.publish(slug, headline="To a custom client")
    page.wait_for_function("window.received.length === 1")
    event = page.evaluate("window.received[0]")
    assert event["type"] == "entry.created"
    assert event["entry"]["id"] == entry["id"]
    assert f'id="entry-{entry["id"]}"' in event["html"]
    page.evaluate("window.live.close()")
    assert page.evaluate("window.live.state") == "disconnected"


CLIENTS_THAT_STOP = """
import { Bulletin } from "BASE/static/bulletin.mjs";
window.states = {};
window.asked = [];
const follow = (name, options) => {
  states[name] = [];
  const live = Bulletin.connect(Object.assign({ url: "BASE" }, options));
  live.addEventListener("state", (e) => states[name].push(e.detail));
  return live;
};
// Over SSE, which cannot say why it failed, a client asks the log (through its own fetch).
const fetch = (url, init) => (asked.push(url), window.fetch(url, init));
follow("missing", { blog: "no-such-blog", transports: ["sse"], fetch });
follow("ahead", { blog: "SLUG", since: 999, transports: ["sse"], fetch });
window.live = follow("live", { blog: "SLUG" });
"""


def test_a_custom_client_is_told_why_it_stops(
    page: Page, bulletin: Bulletin, partner_site: tuple[Path, str]
) -> None:
    directory, origin = partner_site
    slug = f"module-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    script = CLIENTS_THAT_STOP.replace("BASE", bulletin.url).replace("SLUG", slug)
    (directory / "stops.html").write_text(
        "<!doctype html><html><head><title>Partner app</title></head><body>"
        f'<script type="module">{script}</script></body></html>'
    )
    page.goto(f"{origin}/stops.html")

    def last_state(name: str, state: str) -> dict:
        page.wait_for_function(f"states.{name}.at(-1)?.newState === '{state}'")
        return page.evaluate(f"states.{name}.at(-1)")

    missing, ahead = last_state("missing", "disconnected"), last_state("ahead", "disconnected")
    assert missing["code"] == CloseCode.BLOG_NOT_FOUND
    assert ahead["code"] == CloseCode.RESET
    blogs = f"{bulletin.url}/api/v1/blogs"
    probes = [
        f"{blogs}/no-such-blog/events?limit=1&since=0",
        f"{blogs}/{slug}/events?limit=1&since=999",
    ]
    assert sorted(page.evaluate("asked")) == sorted(probes)  # once each

    assert last_state("live", "connected")["transport"] == "websocket"
    page.evaluate("window.live.close()")
    closed = last_state("live", "disconnected")
    assert (closed["code"], closed["reason"]) == (1000, "closed")


def test_an_embed_ahead_of_a_restored_log_refetches_once_and_then_stops(
    page: Page, bulletin: Bulletin, partner_site: tuple[Path, str]
) -> None:
    directory, origin = partner_site
    slug = f"reset-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    bulletin.publish(slug, headline="Only entry")
    (directory / "reset.html").write_text(
        "<!doctype html><html><head><title>Partner</title></head><body>"
        f'<div data-bulletin-blog="{slug}"></div>'
        f'<script src="{bulletin.url}/static/bulletin.js" async></script></body></html>'
    )
    fetches: list[str] = []
    page.on(
        "request",
        lambda request: fetches.append(request.url) if request.url.endswith("/embed") else None,
    )
    # As if every copy of the fragment came from before the database was restored.
    page.add_init_script(
        """const realFetch = window.fetch;
           window.fetch = (url, options) => realFetch(url, options).then((response) => {
             if (!String(url).endsWith("/embed")) return response;
             return response.text().then((html) => new Response(
               html.replace(/data-bulletin-seq="\\d+"/, 'data-bulletin-seq="999"'),
               { status: response.status, headers: response.headers }));
           });"""
    )
    page.goto(f"{origin}/reset.html")
    expect(page.locator("[data-bulletin-state]")).to_have_text("Reload the page")
    assert len(fetches) == 2


PHONE = {"width": 390, "height": 844}


def test_on_a_phone_wide_partner_page_without_our_styles_the_embed_fits_with_one_status(
    page: Page, bulletin: Bulletin, partner_site: tuple[Path, str]
) -> None:
    directory, origin = partner_site
    slug = f"partner-{secrets.token_hex(4)}"
    bulletin.create_blog(slug)
    Image.new("RGB", (1200, 800), "steelblue").save(directory / "wide.png")
    photo = bulletin.publish(
        slug,
        headline="The harbour at dawn",
        media=[{"kind": "image", "url": f"{origin}/wide.png", "alt": "Boats in the harbour"}],
    )
    # The partner's own styles, and not bulletin.css: only what the fragments bring.
    (directory / "story.html").write_text(
        "<!doctype html><html><head><title>Partner story</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body { margin: 0 12px; font-family: sans-serif; }</style></head><body>"
        "<h1>Our story</h1>"
        f'<div data-bulletin-blog="{slug}"></div>'
        f'<div data-bulletin-blog="{slug}" data-bulletin-mode="card"></div>'
        f'<script src="{bulletin.url}/static/bulletin.js" async></script>'
        "</body></html>"
    )
    page.set_viewport_size(PHONE)
    page.goto(f"{origin}/story.html")
    embed, card = page.locator(".bulletin-embed"), page.locator(".bulletin-card")
    expect(embed.locator('[data-bulletin-state="connected"]')).to_be_visible()
    expect(card.locator('[data-bulletin-state="connected"]')).to_be_visible()
    image = embed.locator(f"#entry-{photo['id']} img")
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") == 1200

    # One status word each, not the badge's "Live" and the connection's "Live" side by side.
    assert embed.locator(".live__bar").inner_text().split() == ["Live"]
    assert card.locator(".bulletin-card__title").inner_text().split()[-1:] == ["Live"]
    assert "Live Live" not in card.locator(".bulletin-card__title").inner_text()
    # Nothing wider than the phone: the photo shrinks to the column.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert image.bounding_box()["width"] <= PHONE["width"] - 24
    screenshot(page, "embed-partner-phone")
