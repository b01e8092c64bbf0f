"""Uploads against a real `bulletin serve` process: a decompression bomb is refused quickly
with bounded memory (the server's own RSS, measured), an oversized body is refused while it
streams, and readers keep getting live events while photos are being processed."""

import io
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageFilter
from websockets.sync.client import connect

from tests.media.photos import bomb_png, exif_of_a_phone
from tests.support.databases import fresh_database
from tests.support.factories import ADMIN, ADMIN_TOKEN, SLUG
from tests.support.servers import ServerProcess, serve_environment

MEDIA = f"/api/v1/blogs/{SLUG}/media"
MAX_BYTES = 1024 * 1024


def proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    database_url = fresh_database("sqlite", request, tmp_path)
    env = serve_environment(
        database_url, media_dir=str(tmp_path / "media"), media_max_bytes=str(MAX_BYTES * 8)
    )
    with ServerProcess(env, tmp_path / "server.log") as process:
        response = httpx.post(
            f"{process.http}/api/v1/blogs",
            json={"slug": SLUG, "title": "Vote night"},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
        yield process


def test_a_decompression_bomb_is_refused_quickly_with_bounded_memory(
    server: ServerProcess,
) -> None:
    bomb = bomb_png()  # 50,000 x 50,000: 7.5 GB of pixels
    assert len(bomb) < 200_000
    assert server.process is not None
    pid = server.process.pid
    with httpx.Client(base_url=server.http, timeout=30) as client:
        client.get("/readyz")
        before = proc_status(pid, "VmRSS")
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak RSS starts again from now
        started = time.monotonic()
        response = client.post(
            MEDIA, files={"file": ("bomb.png", bomb, "image/png")}, headers=ADMIN
        )
        elapsed = time.monotonic() - started
        peak = proc_status(pid, "VmHWM")

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "too_many_pixels"
    assert elapsed < 2.0
    assert peak - before < 32 * 1024 * 1024, (before, peak)


def test_an_oversized_chunked_upload_is_refused_before_it_is_all_sent(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = fresh_database("sqlite", request, tmp_path)
    env = serve_environment(
        database_url, media_dir=str(tmp_path / "media"), media_max_bytes=str(MAX_BYTES)
    )
    planned = 64 * MAX_BYTES
    with ServerProcess(env, tmp_path / "server.log") as process:
        httpx.post(f"{process.http}/api/v1/blogs", json={"slug": SLUG, "title": "T"}, headers=ADMIN)
        sock = socket.create_connection(("127.0.0.1", process.port))
        sock.sendall(
            (
                f"POST {MEDIA} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {ADMIN_TOKEN}\r\n"
                "Content-Type: multipart/form-data; boundary=xyz\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        chunk = b"\xff" * 65536
        sent, answer = 0, b""
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            while sent < planned:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        finally:
            sock.close()

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"payload_too_large" in body or b"content-length" in head.lower()
    # Refused after about the limit; kernel buffers on loopback account for the rest.
    assert sent < 16 * MAX_BYTES < planned, sent


def field_photo() -> bytes:
    """A 12-megapixel phone photo: smooth areas and detail, as a camera takes them."""
    base = Image.effect_mandelbrot((4000, 3000), (-2.2, -1.3, 1.0, 1.3), 90).convert("RGB")
    grain = Image.effect_noise((4000, 3000), 18).convert("RGB")
    picture = Image.blend(base, grain, 0.25).filter(ImageFilter.SMOOTH)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=88, exif=exif_of_a_phone(6))
    return buffer.getvalue()


def test_readers_get_live_events_while_photos_are_processed(server: ServerProcess) -> None:
    photo = field_photo()
    uploads = 4
    bodies_sent = [threading.Event() for _ in range(uploads)]
    answered: list[tuple[float, int]] = []

    def upload(index: int) -> None:
        def body() -> Iterator[bytes]:
            boundary = "photo-boundary"
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="p{index}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            yield photo
            yield f"\r\n--{boundary}--\r\n".encode()
            bodies_sent[index].set()

        response = httpx.post(
            f"{server.http}{MEDIA}",
            content=body(),
            headers={**ADMIN, "Content-Type": "multipart/form-data; boundary=photo-boundary"},
            timeout=120,
        )
        answered.append((time.monotonic(), response.status_code))

    with connect(f"{server.ws}/api/v1/blogs/{SLUG}/ws", open_timeout=10) as reader:
        assert json.loads(reader.recv(timeout=10))["type"] == "hello"
        threads = [threading.Thread(target=upload, args=(i,)) for i in range(uploads)]
        for thread in threads:
            thread.start()
        for sent in bodies_sent:
            assert sent.wait(30)  # every photo is in the server's hands now
        with httpx.Client(base_url=server.http, timeout=10) as client:
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            health_seconds = time.monotonic() - started
            published = time.monotonic()
            response = client.post(
                f"/api/v1/blogs/{SLUG}/entries", json={"headline": "Polls close"}, headers=ADMIN
            )
            assert response.status_code == 201
        while True:
            message = json.loads(reader.recv(timeout=30))
            if message["type"] == "entry.created":
                delivered = time.monotonic()
                break
        for thread in threads:
            thread.join(120)

    assert sorted(status for _, status in answered) == [201] * uploads
    assert delivered < max(moment for moment, _ in answered)  # while photos were processing
    assert delivered - published < 1.0, delivered - published
    assert health_seconds < 1.0
