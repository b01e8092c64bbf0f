"""Uploading photos: what is answered, what is stored, and what every rendition carries
(its pixels, oriented and in sRGB, and nothing else), on SQLite and PostgreSQL."""

import io
from pathlib import Path

import exifread
import httpx
import pillow_heif
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.media.photos import (
    COMMENT,
    IPTC_CITY,
    LENS_SERIAL,
    SECOND_PICTURE_NOTE,
    SERIAL,
    THUMBNAIL_NOTE,
    animated_gif,
    encoded,
    metadata_segments,
    phone_jpeg,
    scene,
    swapped_primaries_profile,
    webp_chunks,
)
from tests.support.factories import ADMIN, SLUG

MEDIA = f"/api/v1/blogs/{SLUG}/media"
PIXEL_CHUNKS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


async def upload(
    client: httpx.AsyncClient,
    data: bytes,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    headers: dict[str, str] = ADMIN,
) -> httpx.Response:
    return await client.post(MEDIA, files={"file": (filename, data, content_type)}, headers=headers)


def uploaded(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


async def fetch(client: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await client.get(url)
    assert response.status_code == 200, url
    return response


def red_corner(image: Image.Image) -> str:
    """Which corner of the picture holds the red square `scene` draws top left."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    corners = {
        "top left": (2, 2),
        "top right": (width - 3, 2),
        "bottom left": (2, height - 3),
        "bottom right": (width - 3, height - 3),
    }
    for name, point in corners.items():
        red, green, blue = rgb.getpixel(point)
        if red > 180 and green < 70 and blue < 70:
            return name
    return "none"


async def test_a_phone_photo_is_answered_with_its_size_placeholder_and_renditions(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    photo = uploaded(await upload(client, phone_jpeg((2400, 1800)), headers=publish_headers))

    assert isinstance(photo["id"], int)
    assert photo["blog"] == SLUG and photo["kind"] == "image" and photo["source_format"] == "jpeg"
    assert (photo["width"], photo["height"]) == (2400, 1800)
    assert len(photo["placeholder"]) == 7 and photo["placeholder"].startswith("#")
    shapes = [(r["format"], r["width"], r["height"]) for r in photo["renditions"]]
    assert shapes == [
        (kind, width, width * 3 // 4)
        for width in (320, 640, 1024, 1600)
        for kind in ("webp", "jpeg")
    ]
    assert photo["url"] == photo["renditions"][-1]["url"]  # the largest JPEG
    for rendition in photo["renditions"]:
        assert rendition["url"].startswith("/media/")
        served = await fetch(client, rendition["url"])
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert served.headers["content-type"] == f"image/{rendition['format']}"
        assert len(served.content) == rendition["bytes"]
        picture = Image.open(io.BytesIO(served.content))
        assert picture.format == rendition["format"].upper()
        assert picture.size == (rendition["width"], rendition["height"])


async def test_every_rendition_reads_back_without_location_serials_or_any_other_metadata(
    client: httpx.AsyncClient, blog: dict, media_dir: Path
) -> None:
    original = phone_jpeg((1800, 1200), icc=swapped_primaries_profile())
    # The photo as taken carries all of it, as the readers below see it.
    tags = exifread.process_file(io.BytesIO(original), details=True)
    assert "GPS GPSLatitude" in tags and str(tags["EXIF BodySerialNumber"]) == SERIAL
    assert "JPEGThumbnail" in tags and THUMBNAIL_NOTE in original  # the embedded thumbnail
    assert Image.open(io.BytesIO(original)).n_frames == 2  # the second picture, in MPF
    assert SECOND_PICTURE_NOTE in original
    assert {marker for marker, _ in metadata_segments(original)} == {0xE1, 0xE2, 0xED, 0xFE}

    photo = uploaded(await upload(client, original))

    for rendition in photo["renditions"]:
        data = (await fetch(client, rendition["url"])).content
        picture = Image.open(io.BytesIO(data))
        assert dict(picture.getexif()) == {}, rendition
        assert picture.getexif().get_ifd(0x8825) == {}  # no GPS
        assert exifread.process_file(io.BytesIO(data), details=True) == {}, rendition
        for secret in (SERIAL, LENS_SERIAL, "GPS", "Acme", "xmpmeta", "Photoshop"):
            assert secret.encode() not in data, (secret, rendition)
        assert COMMENT not in data and IPTC_CITY not in data
        assert THUMBNAIL_NOTE not in data and SECOND_PICTURE_NOTE not in data
        assert data.count(b"\xff\xd8\xff") <= 1, rendition  # one picture, nothing after it
        assert "icc_profile" not in picture.info and "xmp" not in picture.info
        if rendition["format"] == "jpeg":
            # No APP1 (EXIF, XMP, thumbnails), APP2 (ICC, MPF), APP13 (IPTC) or COM at all.
            assert metadata_segments(data) == [], rendition
        else:
            assert set(webp_chunks(data)) <= PIXEL_CHUNKS, rendition

    # The upload itself is not kept: only the renditions are on disk.
    stored = sorted(path.name for path in media_dir.rglob("*") if path.is_file())
    assert stored == sorted(r["url"].removeprefix("/media/") for r in photo["renditions"])
    assert all(path.read_bytes() != original for path in media_dir.rglob("*") if path.is_file())


async def test_exif_orientation_is_applied_before_it_is_stripped(
    client: httpx.AsyncClient, blog: dict
) -> None:
    # Stored 1200 x 800 landscape, to be shown turned 90 degrees clockwise (orientation 6).
    photo = uploaded(await upload(client, phone_jpeg((1200, 800), orientation=6)))

    assert (photo["width"], photo["height"]) == (800, 1200)
    for rendition in photo["renditions"]:
        picture = Image.open(io.BytesIO((await fetch(client, rendition["url"])).content))
        assert picture.height > picture.width
        assert red_corner(picture) == "top right", rendition


async def test_a_photo_in_another_colour_profile_is_converted_to_srgb(
    client: httpx.AsyncClient, blog: dict
) -> None:
    # In the swapped-primaries profile, the scene's red square is in truth green.
    tagged = phone_jpeg((900, 600), icc=swapped_primaries_profile())
    assert red_corner(Image.open(io.BytesIO(tagged))) == "top left"  # read without converting

    photo = uploaded(await upload(client, tagged))

    for rendition in photo["renditions"]:
        picture = Image.open(io.BytesIO((await fetch(client, rendition["url"])).content))
        red, green, blue = picture.convert("RGB").getpixel((3, 3))
        assert green > 180 and red < 60 and blue < 60, (rendition, (red, green, blue))


async def test_a_small_photo_is_never_made_larger(client: httpx.AsyncClient, blog: dict) -> None:
    photo = uploaded(await upload(client, encoded(scene((500, 250)), "JPEG")))

    assert [(r["format"], r["width"], r["height"]) for r in photo["renditions"]] == [
        ("webp", 320, 160),
        ("jpeg", 320, 160),
        ("webp", 500, 250),
        ("jpeg", 500, 250),
    ]


def heic(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, format="HEIF", quality=80)
    return buffer.getvalue()


def transparent_png() -> bytes:
    image = scene((640, 480)).convert("RGBA")
    image.putalpha(Image.new("L", image.size, 128))
    return encoded(image, "PNG")


@pytest.mark.parametrize(
    ("name", "make", "source_format"),
    [
        ("photo.heic", lambda: heic(scene((1000, 750))), "heif"),
        ("photo.png", transparent_png, "png"),
        ("photo.webp", lambda: encoded(scene((800, 600)), "WEBP"), "webp"),
        ("photo.gif", lambda: animated_gif(12, (400, 300)), "gif"),
        # The name and Content-Type are not believed: the bytes say what it is.
        ("photo.jpg", lambda: encoded(scene((700, 500)), "PNG"), "png"),
    ],
)
async def test_phone_and_web_formats_are_accepted_and_shown_as_webp_and_jpeg(
    client: httpx.AsyncClient, blog: dict, name: str, make, source_format: str
) -> None:
    photo = uploaded(await upload(client, make(), filename=name))

    assert photo["source_format"] == source_format
    assert {r["format"] for r in photo["renditions"]} == {"webp", "jpeg"}
    for rendition in photo["renditions"]:
        picture = Image.open(io.BytesIO((await fetch(client, rendition["url"])).content))
        assert getattr(picture, "n_frames", 1) == 1  # an animation is shown as its first frame
        assert picture.size == (rendition["width"], rendition["height"])
        if name == "photo.png" and rendition["format"] == "webp":
            assert picture.mode == "RGBA"  # WebP keeps the transparency; JPEG has none


async def test_the_same_photo_uploaded_twice_is_stored_once(
    client: httpx.AsyncClient, blog: dict, media_dir: Path
) -> None:
    data = phone_jpeg((800, 600))
    first = uploaded(await upload(client, data))
    second = uploaded(await upload(client, data))

    assert first["id"] != second["id"]
    assert [r["url"] for r in first["renditions"]] == [r["url"] for r in second["renditions"]]
    assert len([path for path in media_dir.rglob("*") if path.is_file()]) == 6


async def test_a_media_file_revalidates_with_its_hash_and_unknown_names_are_404(
    client: httpx.AsyncClient, blog: dict
) -> None:
    photo = uploaded(await upload(client, phone_jpeg((400, 300))))
    url = photo["renditions"][0]["url"]
    first = await fetch(client, url)

    again = await client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert (await client.head(url)).headers["content-length"] == str(len(first.content))
    for missing in ("/media/" + "0" * 64 + ".jpg", "/media/..%2Fbulletin.db", "/media/x.png"):
        response = await client.get(missing)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_uploading_needs_a_publish_token_and_an_existing_blog(
    client: httpx.AsyncClient, blog: dict, app: FastAPI
) -> None:
    data = phone_jpeg((400, 300))
    assert (await upload(client, data, headers={})).status_code == 401
    response = await client.post(
        "/api/v1/blogs/no-such-blog/media", files={"file": ("a.jpg", data)}, headers=ADMIN
    )
    assert response.status_code == 404
