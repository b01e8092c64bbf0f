"""The S3-compatible backend against a real HTTP server on 127.0.0.1: moto's S3 emulator
(`ThreadedMotoServer`, the `moto_server` of the moto package), started per test. It is an
emulator of S3's HTTP API, not AWS itself and not MinIO; it does not check signatures."""

import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from app.config import Settings
from tests.media.photos import metadata_segments, phone_jpeg
from tests.support.clients import asgi_client
from tests.support.databases import stored_rows
from tests.support.factories import ADMIN, ADMIN_TOKEN, SLUG, create_blog, publish_entry, read_log
from tests.support.servers import running_app

BUCKET = "bulletin-photos"
MEDIA = f"/api/v1/blogs/{SLUG}/media"


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # The emulator keeps its buckets in this process's memory: each test starts with none.
    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()
    try:
        yield endpoint
    finally:
        server.stop()


def make_public_bucket(endpoint: str, name: str = BUCKET) -> None:
    """A bucket readers may GET objects from, by bucket policy (as on AWS, without ACLs)."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bulletin-test",
        aws_secret_access_key="bulletin-test-secret",
    )
    client.create_bucket(Bucket=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{name}/*",
            }
        ],
    }
    client.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    client.close()


def s3_settings(database_url: str, endpoint: str, tmp_path: Path, **more: object) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        rate_limit_enabled=False,
        media_dir=tmp_path / "unused-local-media",
        media_storage="s3",
        media_s3_bucket=BUCKET,
        media_s3_endpoint_url=endpoint,
        media_s3_prefix="photos/",
        media_s3_access_key_id="bulletin-test",
        media_s3_secret_access_key="bulletin-test-secret",
        **more,
    )


async def test_renditions_go_to_the_bucket_and_readers_fetch_them_from_its_public_url(
    database_url: str, s3_endpoint: str, tmp_path: Path
) -> None:
    make_public_bucket(s3_endpoint)
    settings = s3_settings(database_url, s3_endpoint, tmp_path)
    async with running_app(settings) as app, asgi_client(app) as client:
        await create_blog(client)
        response = await client.post(
            MEDIA, files={"file": ("photo.jpg", phone_jpeg((1400, 1000)))}, headers=ADMIN
        )
        assert response.status_code == 201, response.text
        photo = response.json()
        await publish_entry(client, media=[{"kind": "image", "media_id": photo["id"], "alt": "x"}])
        [event] = await read_log(client, SLUG)
        page = (await client.get(f"/blogs/{SLUG}")).text
        # Nothing is served from this server: the local route knows no such files.
        key = photo["renditions"][0]["url"].rsplit("/", 1)[1]
        assert (await client.get(f"/media/{key}")).status_code == 404

    prefix = f"{s3_endpoint}/{BUCKET}/photos/"
    assert len(photo["renditions"]) == 8
    async with httpx.AsyncClient() as reader:  # a reader's browser: no credentials
        for rendition in photo["renditions"]:
            assert rendition["url"].startswith(prefix)
            assert rendition["url"] in event["html"] and rendition["url"] in page
            served = await reader.get(rendition["url"])
            assert served.status_code == 200
            assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert served.headers["content-type"] == f"image/{rendition['format']}"
            picture = Image.open(io.BytesIO(served.content))
            assert picture.size == (rendition["width"], rendition["height"])
            assert dict(picture.getexif()) == {}
            if rendition["format"] == "jpeg":
                assert metadata_segments(served.content) == []
    assert not (tmp_path / "unused-local-media").exists()


async def test_a_bucket_that_fails_answers_503_and_records_nothing(
    database_url: str, s3_endpoint: str, tmp_path: Path
) -> None:
    settings = s3_settings(database_url, s3_endpoint, tmp_path)  # the bucket was never made
    async with running_app(settings) as app, asgi_client(app) as client:
        await create_blog(client)
        response = await client.post(
            MEDIA, files={"file": ("photo.jpg", phone_jpeg((800, 600)))}, headers=ADMIN
        )
        rows = await stored_rows(app.state.services.database)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "media_storage_unavailable"
    assert response.headers["retry-after"] == "5"
    assert rows["media"] == []


async def test_an_unreachable_storage_service_answers_503(
    database_url: str, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = s3_settings(database_url, endpoint, tmp_path)
    async with running_app(settings) as app, asgi_client(app) as client:
        await create_blog(client)
        response = await client.post(
            MEDIA, files={"file": ("photo.jpg", phone_jpeg((400, 300)))}, headers=ADMIN
        )
        assert response.status_code == 503
        assert (await stored_rows(app.state.services.database))["media"] == []


def test_s3_storage_without_a_bucket_is_refused_at_start(database_url: str) -> None:
    from app.media.storage import create_store

    with pytest.raises(ValueError, match="BULLETIN_MEDIA_S3_BUCKET"):
        create_store(Settings(database_url=database_url, media_storage="s3"))
