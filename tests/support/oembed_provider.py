"""A real oEmbed provider for tests: an HTTP server on 127.0.0.1, in a thread, that answers
look-ups as the allow-listed providers do (per provider key, under /{key}/oembed), serves a
thumbnail JPEG, a Mastodon post page that names its oEmbed endpoint, and misbehaves on
request: slow, 500, garbage, huge, or markup with scripts.

Point Bulletin at it with `endpoints` (BULLETIN_EMBED_OEMBED_ENDPOINTS) and
BULLETIN_EMBED_ALLOW_PRIVATE_TARGETS, as the webhook tests do for their receiver.
"""

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

PROVIDERS = ("youtube", "vimeo", "x", "instagram", "tiktok", "bluesky", "mastodon", "facebook")
Mode = Literal["ok", "slow", "error", "garbage", "huge", "hostile"]
HUGE_BYTES = 4 * 1024 * 1024
THUMBNAIL_SIZE = (480, 360)
HOSTILE_HTML = (
    '<blockquote><p>Hello <a href="javascript:alert(1)">there</a>'
    '<img src=x onerror="alert(2)"></p></blockquote>'
    '<script src="https://platform.example/widgets.js"></script><script>alert(3)</script>'
)


def thumbnail_jpeg() -> bytes:
    image = Image.new("RGB", THUMBNAIL_SIZE, (200, 40, 40))
    ImageDraw.Draw(image).rectangle((100, 80, 380, 280), fill=(250, 250, 250))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


class OembedProvider:
    def __init__(self) -> None:
        self.modes: dict[str, Mode] = {}
        self.requests: list[str] = []  # path and query of every request, in order
        self.release = threading.Event()  # ends every slow answer (at stop)
        self.thumbnail = thumbnail_jpeg()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def endpoints(self) -> dict[str, str]:
        # Mastodon's endpoint is discovered from the post's page.
        return {key: f"{self.base}/{key}/oembed" for key in PROVIDERS if key != "mastodon"}

    def lookups(self, key: str) -> list[dict[str, list[str]]]:
        """The queries of the oEmbed look-ups asked of one provider."""
        with self._lock:
            seen = list(self.requests)
        return [
            parse_qs(urlsplit(path).query)
            for path in seen
            if urlsplit(path).path in (f"/{key}/oembed", "/api/oembed")
            and (key == "mastodon") == (urlsplit(path).path == "/api/oembed")
        ]

    def start(self) -> "OembedProvider":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def answer(self, key: str, url: str) -> dict[str, Any]:
        base = self.base
        answers: dict[str, dict[str, Any]] = {
            "youtube": {
                "type": "video",
                "title": "Polls close across the state",
                "author_name": "Newsroom TV",
                "author_url": "https://www.youtube.com/@newsroomtv",
                "html": '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ"></iframe>',
            },
            "x": {
                "type": "rich",
                "author_name": "Election Desk",
                "author_url": "https://twitter.com/electiondesk",
                "html": '<blockquote class="twitter-tweet"><p lang="en">Turnout is at 61% '
                "&amp; rising</p>&mdash; Election Desk (@electiondesk)</blockquote>"
                '<script async src="https://platform.twitter.com/widgets.js"></script>',
            },
            "bluesky": {
                "type": "rich",
                "author_name": "Field Reporter",
                "author_url": "https://bsky.app/profile/field.example",
                "html": '<blockquote class="bluesky-embed" data-bluesky-uri="at://did:plc:'
                'abc123/app.bsky.feed.post/3kxyz"><p>Queues at Hill Road</p></blockquote>',
            },
            "mastodon": {
                "type": "rich",
                "author_name": "reporter",
                "author_url": f"{base}/@reporter",
                "html": f'<iframe src="{base}/@reporter/1101/embed"></iframe>',
            },
        }
        document = {
            "version": "1.0",
            "provider_name": key,
            "thumbnail_url": f"{base}/thumbnail.jpg",
            "thumbnail_width": THUMBNAIL_SIZE[0],
            "thumbnail_height": THUMBNAIL_SIZE[1],
            **answers.get(key, {"type": "rich", "title": f"A post on {key}", "html": ""}),
        }
        if self.modes.get(key) == "hostile":
            document |= {
                "title": '<script>alert("title")</script>Results <b>night</b>',
                "author_name": "<img src=x onerror=alert(1)>Mallory",
                "author_url": "javascript:alert(document.domain)",
                "url": "javascript:alert(4)",
                "thumbnail_url": "javascript:alert(5)",
                "html": HOSTILE_HTML,
            }
        return document

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with provider._lock:
                    provider.requests.append(self.path)
                parts = urlsplit(self.path)
                if parts.path == "/thumbnail.jpg":
                    return self._send(200, "image/jpeg", provider.thumbnail)
                if parts.path.startswith("/@") and parts.path.count("/") == 2:
                    # A Mastodon post's page: it names its oEmbed endpoint in <head>.
                    page = (
                        '<!doctype html><html><head><link rel="alternate" '
                        f'type="application/json+oembed" href="{provider.base}/api/oembed?'
                        f'url={provider.base}{parts.path}"></head><body>post</body></html>'
                    )
                    return self._send(200, "text/html", page.encode())
                key = "mastodon" if parts.path == "/api/oembed" else parts.path.split("/")[1]
                if key not in PROVIDERS:
                    return self._send(404, "text/plain", b"no such thing")
                mode = provider.modes.get(key, "ok")
                if mode == "slow":
                    provider.release.wait(30)
                elif mode == "error":
                    return self._send(500, "text/plain", b"upstream broke")
                elif mode == "garbage":
                    return self._send(200, "application/json", b"<html>\x00not json{")
                elif mode == "huge":
                    return self._send_huge()
                url = parse_qs(parts.query).get("url", [""])[0]
                body = json.dumps(provider.answer(key, url)).encode()
                self._send(200, "application/json", body)

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send_huge(self) -> None:
                # No Content-Length: the reader has to count for itself.
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    chunk = b'{"type": "rich", "title": "' + b"x" * 65536
                    for _ in range(HUGE_BYTES // len(chunk)):
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        return Handler


@contextmanager
def running_provider() -> Iterator[OembedProvider]:
    provider = OembedProvider().start()
    try:
        yield provider
    finally:
        provider.stop()


def resolving_environment(provider: OembedProvider, directory: Path) -> dict[str, str]:
    """What a `bulletin serve` needs to resolve embeds from `provider` (on the loopback) and
    keep their thumbnails and uploads under `directory`."""
    return {
        "BULLETIN_EMBED_ALLOW_PRIVATE_TARGETS": "true",
        "BULLETIN_EMBED_OEMBED_ENDPOINTS": json.dumps(provider.endpoints),
        "BULLETIN_MEDIA_DIR": str(directory / "media"),
    }
