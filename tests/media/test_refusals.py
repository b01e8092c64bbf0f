"""What an upload is refused for: a clear JSON error, and nothing stored (no row, no file)."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from tests.media.photos import animated_gif, bomb_png, encoded, phone_jpeg, scene
from tests.support.clients import asgi_client
from tests.support.databases import stored_rows
from tests.support.factories import ADMIN, ADMIN_TOKEN, SLUG, create_blog
from tests.support.servers import running_app

MEDIA = f"/api/v1/blogs/{SLUG}/media"
MAX_BYTES = 200_000
MAX_FRAMES = 10


@pytest.fixture
def settings(database_url: str, media_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,
        media_dir=media_dir,
        media_max_bytes=MAX_BYTES,
        media_max_frames=MAX_FRAMES,
        media_max_pixels=4_000_000,
    )


def truncated_jpeg() -> bytes:
    whole = phone_jpeg((1200, 900))
    return whole[: len(whole) // 2]


def corrupt_jpeg() -> bytes:
    whole = bytearray(phone_jpeg((1200, 900)))
    # The photo's own first Huffman table (the embedded thumbnail has one too, inside EXIF):
    # walk the segments from the start. Broken, the pixels cannot be decoded.
    at = 2
    while whole[at + 1] != 0xC4:
        at += 2 + int.from_bytes(whole[at + 2 : at + 4], "big")
    whole[at + 5 : at + 30] = b"\xff" * 25
    return bytes(whole)


def noise_png(size: tuple[int, int]) -> bytes:
    from PIL import Image

    return encoded(Image.effect_noise(size, 60).convert("RGB"), "PNG")


REFUSED_FILES: dict[str, tuple[Callable[[], bytes], str, int, str]] = {
    # name: (the file, its claimed name, status, code)
    "text named .jpg": (
        lambda: b"Not a photo, whatever the name says.\n" * 20,
        "a.jpg",
        415,
        "not_an_image",
    ),
    "html named .png": (
        lambda: b"<html><script>alert(1)</script></html>",
        "a.png",
        415,
        "not_an_image",
    ),
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>', "a.svg", 415, "not_an_image"),
    "bmp": (lambda: encoded(scene((50, 50)), "BMP"), "a.bmp", 415, "not_an_image"),
    "truncated jpeg": (truncated_jpeg, "a.jpg", 422, "corrupt_image"),
    "corrupt jpeg": (corrupt_jpeg, "a.jpg", 422, "corrupt_image"),
    "decompression bomb": (bomb_png, "bomb.png", 422, "too_many_pixels"),
    "over the pixel limit": (
        lambda: encoded(scene((2100, 2000)), "PNG"),
        "big.png",
        422,
        "too_many_pixels",
    ),
    "too many frames": (lambda: animated_gif(MAX_FRAMES + 1), "a.gif", 422, "too_many_frames"),
    "over the size limit": (lambda: noise_png((400, 300)), "big.png", 413, "payload_too_large"),
}


@pytest.fixture
async def empty_blog(client: httpx.AsyncClient) -> dict:
    return await create_blog(client)


async def assert_nothing_stored(app: FastAPI, media_dir: Path) -> None:
    rows = await stored_rows(app.state.services.database)
    assert rows["media"] == []
    assert not media_dir.exists() or [p for p in media_dir.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("case", list(REFUSED_FILES))
async def test_a_file_that_is_not_a_sound_photo_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, app: FastAPI, empty_blog: dict, media_dir: Path, case: str
) -> None:
    make, filename, status, code = REFUSED_FILES[case]
    data = make()
    if case == "over the size limit":
        assert len(data) > MAX_BYTES
    response = await client.post(
        MEDIA, files={"file": (filename, data, "image/jpeg")}, headers=ADMIN
    )

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    await assert_nothing_stored(app, media_dir)


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code", "fields"),
    [
        ({"json": {"file": "a photo"}}, 415, "unsupported_media_type", None),
        ({"data": {"alt": "a photo"}}, 415, "unsupported_media_type", None),
        ({"files": {"photo": ("a.jpg", b"x")}}, 422, "invalid_input", {"photo"}),
        (
            {"files": [("file", ("a.jpg", b"x")), ("file", ("b.jpg", b"y"))]},
            422,
            "invalid_input",
            {"file"},
        ),
        ({"files": {"file": ("a.jpg", b"")}}, 422, "invalid_input", {"file"}),
        (
            {
                "content": b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
                "headers": {"Content-Type": "multipart/form-data; boundary=xyz"},
            },
            400,
            "malformed_upload",
            None,
        ),
    ],
    ids=["json", "urlencoded", "wrong part", "two files", "empty file", "unterminated"],
)
async def test_a_request_that_is_not_one_photo_in_multipart_is_refused(
    client: httpx.AsyncClient,
    app: FastAPI,
    empty_blog: dict,
    media_dir: Path,
    request_kwargs: dict,
    status: int,
    code: str,
    fields: set[str] | None,
) -> None:
    request_kwargs = dict(request_kwargs)
    headers = {**ADMIN, **request_kwargs.pop("headers", {})}
    response = await client.post(MEDIA, headers=headers, **request_kwargs)

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if fields is not None:
        assert set(error["fields"]) == fields
    await assert_nothing_stored(app, media_dir)


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    client: httpx.AsyncClient, app: FastAPI, empty_blog: dict, media_dir: Path
) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 65536
            yield b"\x00" * 65536

    response = await client.post(
        MEDIA,
        content=body(),
        headers={
            **ADMIN,
            "Content-Type": "multipart/form-data; boundary=xyz",
            "Content-Length": str(100 * 65536),
        },
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert sent <= 65536  # at most the chunk the transport had in hand
    await assert_nothing_stored(app, media_dir)


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    client: httpx.AsyncClient, app: FastAPI, empty_blog: dict, media_dir: Path
) -> None:
    sent = 0
    total_chunks = 200

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        for _ in range(total_chunks):
            sent += 16384
            yield b"\xff" * 16384

    response = await client.post(
        MEDIA,
        content=body(),
        headers={**ADMIN, "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code == 413
    assert MAX_BYTES < sent < MAX_BYTES + 4 * 16384 < total_chunks * 16384
    await assert_nothing_stored(app, media_dir)


async def test_a_large_photo_is_not_held_to_the_json_body_limit(
    database_url: str, tmp_path: Path
) -> None:
    # BULLETIN_MAX_BODY_BYTES bounds JSON requests; uploads have BULLETIN_MEDIA_MAX_BYTES.
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,
        media_dir=tmp_path / "media",
        max_body_bytes=10_000,
    )
    data = phone_jpeg((1600, 1200))
    assert len(data) > 10_000
    async with running_app(settings) as app, asgi_client(app) as client:
        await create_blog(client)
        response = await client.post(MEDIA, files={"file": ("a.jpg", data)}, headers=ADMIN)
        assert response.status_code == 201, response.text
        too_long = await client.post(
            f"/api/v1/blogs/{SLUG}/entries", json={"body": "x" * 20_000}, headers=ADMIN
        )
        assert too_long.status_code == 413
