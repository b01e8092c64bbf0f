"""Photo uploads benchmark: from POST to every rendition stored, to the entry on an open
reader stream, and to the photo shown on an open reader page (Chromium, the page's own
bulletin.js and the photo loaded), next to a plain Pillow resize-and-save of the same photo
(the peer), and the fan-out latency of a live stream while uploads run.

One run, one machine: one `bulletin serve` process (SQLite, local media directory) on
127.0.0.1, a 12-megapixel phone JPEG made here (4000 x 3000, with EXIF and an
orientation), and, in this process, the peer: Pillow opening the same file and writing the
same widths in WebP and JPEG, nothing more (no draft decoding, no orientation, no colour
conversion, no metadata stripping). Prints a Markdown table and saves it to bench/results/.

    make bench                                 # with the other benchmarks
    .venv/bin/python bench/uploads.py          # 20 rounds, 100 readers
    .venv/bin/python bench/uploads.py --quick  # 3 rounds, 20 readers
"""

import argparse
import asyncio
import datetime
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image
from playwright.async_api import async_playwright
from servers import BENCH_DIR, HOST, VENV_BIN, free_port
from websockets.asyncio.client import connect

RESULTS_DIR = BENCH_DIR / "results"
SLUG = "field-photos"
WIDTHS = (320, 640, 1024, 1600)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=40, help="live events per fan-out phase")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--chromium", default=os.environ.get("BULLETIN_TEST_CHROMIUM", "/usr/bin/chromium")
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.readers, args.messages = 3, 20, 10
    return args


def phone_photo() -> bytes:
    """12 megapixels with smooth areas, detail and grain; EXIF as a phone writes it."""
    base = Image.effect_mandelbrot((4000, 3000), (-2.2, -1.3, 1.0, 1.3), 90).convert("RGB")
    grain = Image.effect_noise((4000, 3000), 18).convert("RGB")
    picture = Image.blend(base, grain, 0.3)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Acme", "Fieldphone 12", 1
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 30.0, 26.16)})
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def peer_resize_and_save(photo: bytes, workdir: Path) -> float:
    """The peer: open, resize to each width, save WebP and JPEG. Seconds."""
    started = time.perf_counter()
    with Image.open(io.BytesIO(photo)) as image:
        image.load()
        for width in WIDTHS:
            height = round(image.height * width / image.width)
            resized = image.resize((width, height), Image.Resampling.LANCZOS)
            resized.save(workdir / f"peer-{width}.webp", "WEBP", quality=80, method=4)
            resized.save(workdir / f"peer-{width}.jpg", "JPEG", quality=82, optimize=True)
    return time.perf_counter() - started


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.token = "bench-" + os.urandom(18).hex()
        self.http = f"http://{HOST}:{self.port}"
        self.headers = {"Authorization": f"Bearer {self.token}"}
        env = {
            **os.environ,
            "BULLETIN_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'uploads.db'}",
            "BULLETIN_MIGRATE_ON_START": "true",
            "BULLETIN_ADMIN_TOKEN": self.token,
            "BULLETIN_RATE_LIMIT_ENABLED": "false",
            "BULLETIN_MEDIA_DIR": str(workdir / "media"),
            "BULLETIN_LOG_LEVEL": "warning",
        }
        argv = [str(VENV_BIN / "bulletin"), "serve", "--host", HOST, "--port", str(self.port)]
        with (workdir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.http}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("bulletin serve did not start; see server.log")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def upload_files(photo: bytes) -> dict:
    return {"file": ("photo.jpg", photo, "image/jpeg")}


# True once the entry's photo is on the page, loaded and decoded: what a reader sees.
PHOTO_SHOWN = """id => {
  const img = document.querySelector(`#entry-${id} img`);
  return Boolean(img && img.complete && img.naturalWidth > 0);
}"""


async def upload_to_visible(
    server: Server, photo: bytes, rounds: int, chromium: str
) -> dict[str, list[float]]:
    """Per round: POST -> 201 (every rendition stored), POST -> the entry on an open stream,
    and POST -> its photo shown on an open reader page."""
    stored, visible, shown = [], [], []
    async with (
        async_playwright() as playwright,
        httpx.AsyncClient(base_url=server.http, headers=server.headers, timeout=120) as client,
        connect(f"ws://{HOST}:{server.port}/api/v1/blogs/{SLUG}/ws", open_timeout=30) as ws,
    ):
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{server.http}/blogs/{SLUG}")
        await page.wait_for_selector('[data-bulletin-state="connected"]', timeout=30_000)
        assert json.loads(await ws.recv())["type"] == "hello"
        for _ in range(rounds):
            started = time.perf_counter()
            response = await client.post(f"/api/v1/blogs/{SLUG}/media", files=upload_files(photo))
            response.raise_for_status()
            stored.append(time.perf_counter() - started)
            media = [{"kind": "image", "media_id": response.json()["id"], "alt": "A bench photo"}]
            entry = await client.post(f"/api/v1/blogs/{SLUG}/entries", json={"media": media})
            entry.raise_for_status()
            entry_id = entry.json()["id"]
            on_page = asyncio.create_task(
                page.wait_for_function(PHOTO_SHOWN, arg=entry_id, polling="raf", timeout=60_000)
            )
            on_page.add_done_callback(
                lambda _done, at=started: shown.append(time.perf_counter() - at)
            )
            while True:
                message = json.loads(await ws.recv())
                if message.get("type") == "entry.created" and message["entry"]["id"] == entry_id:
                    break
            visible.append(time.perf_counter() - started)
            await on_page
        await browser.close()
    return {"stored": stored, "visible": visible, "shown": shown}


async def fan_out(server: Server, readers: int, messages: int, photo: bytes | None) -> list[float]:
    """Publish `messages` entries 100 ms apart to `readers` open streams; each delivery's
    latency from the publish request. With `photo`, uploads run back to back meanwhile."""
    received: dict[int, list[float]] = {}
    published: dict[int, float] = {}
    done = asyncio.Event()

    async def read(ws) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "entry.created":
                received.setdefault(message["entry"]["id"], []).append(time.perf_counter())

    stop = threading.Event()
    uploads = 0

    def keep_uploading() -> None:
        nonlocal uploads
        with httpx.Client(base_url=server.http, headers=server.headers, timeout=120) as client:
            while not stop.is_set():
                client.post(
                    f"/api/v1/blogs/{SLUG}/media", files=upload_files(photo)
                ).raise_for_status()
                uploads += 1

    url = f"ws://{HOST}:{server.port}/api/v1/blogs/{SLUG}/ws"
    sockets = [await connect(url, open_timeout=30) for _ in range(readers)]
    for ws in sockets:
        assert json.loads(await ws.recv())["type"] == "hello"
    tasks = [asyncio.create_task(read(ws)) for ws in sockets]
    uploader = None
    if photo is not None:
        uploader = threading.Thread(target=keep_uploading, daemon=True)
        uploader.start()
        await asyncio.sleep(1.0)  # the first upload is being processed
    async with httpx.AsyncClient(
        base_url=server.http, headers=server.headers, timeout=30
    ) as client:
        for number in range(messages):
            started = time.perf_counter()
            response = await client.post(
                f"/api/v1/blogs/{SLUG}/entries", json={"headline": f"Update {number}"}
            )
            published[response.json()["id"]] = started
            await asyncio.sleep(0.1)
    deadline = time.monotonic() + 30
    while (
        any(len(received.get(i, [])) < readers for i in published) and time.monotonic() < deadline
    ):
        await asyncio.sleep(0.05)
    done.set()
    stop.set()
    if uploader is not None:
        uploader.join(120)
    for task in tasks:
        task.cancel()
    for ws in sockets:
        await ws.close()
    latencies = [
        moment - published[i]
        for i, moments in received.items()
        if i in published
        for moment in moments
    ]
    if len(latencies) != readers * messages:
        raise RuntimeError(f"{len(latencies)} of {readers * messages} deliveries arrived")
    if photo is not None and uploads == 0:
        raise RuntimeError("no upload finished during the fan-out phase")
    return latencies


def ms(value: float) -> str:
    return f"{value * 1000:,.0f} ms" if value >= 0.1 else f"{value * 1000:,.1f} ms"


def render(results: dict, context: list[str]) -> str:
    rounds = len(results["peer"])
    peer_median = statistics.median(results["peer"])
    rows = [
        ("POST → every rendition stored (201)", results["stored"]),
        ("POST → entry on an open reader stream", results["visible"]),
        ("POST → photo shown on an open reader page (Chromium)", results["shown"]),
        ("peer: plain Pillow resize-and-save of the same photo", results["peer"]),
    ]
    lines = [
        f"| measure ({rounds} rounds) | median | p95 | median / peer |",
        "|---|--:|--:|--:|",
    ]
    for label, values in rows:
        median = statistics.median(values)
        p95 = quantile(values, 0.95)
        lines.append(f"| {label} | {ms(median)} | {ms(p95)} | {median / peer_median:.2f}x |")
    lines += [
        "",
        f"| live stream, {results['readers']} readers, {results['messages']} events "
        "| p50 | p99 | max |",
        "|---|--:|--:|--:|",
    ]
    for label, key in (("no uploads", "quiet"), ("uploads running back to back", "busy")):
        values = results[key]
        p50, p99 = quantile(values, 0.5), quantile(values, 0.99)
        lines.append(f"| {label} | {ms(p50)} | {ms(p99)} | {ms(max(values))} |")
    return "\n".join([*lines, "", *context]) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    photo = phone_photo()
    with tempfile.TemporaryDirectory(prefix="bulletin-uploads-") as directory:
        workdir = Path(directory)
        server = Server(workdir)
        try:
            httpx.post(
                f"{server.http}/api/v1/blogs",
                json={"slug": SLUG, "title": "Photos from the field"},
                headers=server.headers,
            ).raise_for_status()
            results: dict = {"readers": args.readers, "messages": args.messages}
            results["peer"] = [peer_resize_and_save(photo, workdir) for _ in range(args.rounds)]
            results |= asyncio.run(upload_to_visible(server, photo, args.rounds, args.chromium))
            results["quiet"] = asyncio.run(fan_out(server, args.readers, args.messages, None))
            results["busy"] = asyncio.run(fan_out(server, args.readers, args.messages, photo))
        finally:
            server.stop()
    when = datetime.datetime.now(datetime.UTC)
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    context = [
        f"Run {when:%Y-%m-%d %H:%M} UTC on {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Pillow {Image.__version__}; the photo: "
        f"4000 x 3000 JPEG, {len(photo) / 1e6:.1f} MB; command: {command}.",
    ]
    table = render(results, context)
    print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"uploads-{when:%Y-%m-%d-%H%M}.md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
