"""Renditions in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...), for many
machines; readers fetch them from the bucket's public URL (or a CDN in front of it).

boto3 is a blocking client: each call runs on a worker thread. Its client is thread-safe
and kept for the life of the process. The bucket must let readers GET its objects (a
bucket policy; ACLs are not used); each object is sent with its Content-Type and
`Cache-Control: public, max-age=31536000, immutable`.
"""

import asyncio
import logging
from typing import Any

from app.config import Settings
from app.media.storage import IMMUTABLE, MediaStorageUnavailable

logger = logging.getLogger("bulletin.media")


class S3Store:
    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        if not settings.media_s3_bucket:
            raise ValueError("BULLETIN_MEDIA_STORAGE=s3 needs BULLETIN_MEDIA_S3_BUCKET")
        self.bucket = settings.media_s3_bucket
        self.prefix = settings.media_s3_prefix
        endpoint = settings.media_s3_endpoint_url
        secret = settings.media_s3_secret_access_key
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=settings.media_s3_region,
            aws_access_key_id=settings.media_s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(
                signature_version="s3v4",
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                # Services other than AWS name buckets in the path more reliably than by host.
                s3={"addressing_style": "path" if endpoint else "auto"},
            ),
        )
        if settings.media_s3_public_url:
            self.public_url = settings.media_s3_public_url.rstrip("/")
        elif endpoint:
            self.public_url = f"{endpoint.rstrip('/')}/{self.bucket}"
        else:
            self.public_url = f"https://{self.bucket}.s3.{settings.media_s3_region}.amazonaws.com"

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await asyncio.to_thread(
                self.client.put_object,
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                ContentType=content_type,
                CacheControl=IMMUTABLE,
            )
        except (BotoCoreError, ClientError) as error:
            logger.warning("media bucket %s: %s", self.bucket, error)
            raise MediaStorageUnavailable(
                "The photo could not be stored right now; retry shortly."
            ) from error

    def url(self, key: str) -> str:
        return f"{self.public_url}/{self.prefix}{key}"

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)
