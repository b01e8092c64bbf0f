"""Photo uploads (`POST /api/v1/blogs/{slug}/media`) and, on the local backend, the files
they become (`GET /media/{key}`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import FileResponse

from app.api.deps import PrincipalDep, ServicesDep
from app.errors import NotFound
from app.media.library import MediaLibrary
from app.media.storage import IMMUTABLE
from app.media.storage.local import LocalStore
from app.media.uploads import FILE_FIELD, read_upload
from app.people.permissions import require_role
from app.schemas import RATE_LIMITED, ErrorPublic, UploadedMediaPublic


def get_media(services: ServicesDep) -> MediaLibrary:
    return services.media


MediaDep = Annotated[MediaLibrary, Depends(get_media)]

router = APIRouter(prefix="/api/v1/blogs/{slug}/media", tags=["media"], responses=RATE_LIMITED)
files = APIRouter(tags=["media"], include_in_schema=False)

UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "additionalProperties": False,
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "A JPEG, PNG, WebP, HEIC/HEIF or GIF photo, at most "
                        "BULLETIN_MEDIA_MAX_BYTES (25 MiB by default).",
                    }
                },
            }
        }
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorPublic, "description": description}


UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The multipart body is malformed (`malformed_upload`)."),
    401: _error("Missing or unknown token."),
    403: _error("The token's scope does not allow this."),
    404: _error("No such blog."),
    413: _error("The photo is over BULLETIN_MEDIA_MAX_BYTES, refused as it streams in."),
    415: _error(
        "Not multipart/form-data, or the file is not a JPEG, PNG, WebP, HEIC/HEIF or GIF "
        "image whatever its name says (`not_an_image`)."
    ),
    422: _error(
        "No `file` part, another part, an empty file, a truncated or corrupt image "
        "(`corrupt_image`), too many pixels (`too_many_pixels`) or frames (`too_many_frames`)."
    ),
    503: _error("The media storage did not answer; nothing was kept. Retry shortly."),
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=UPLOAD_ERRORS,
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload_media(
    slug: str, request: Request, principal: PrincipalDep, library: MediaDep
) -> UploadedMediaPublic:
    """Upload a photo (contributors and up): all metadata stripped, WebP and JPEG renditions."""
    blog = await library.find_blog(slug)  # before a byte of the body is read
    require_role(principal, blog, "contributor", "Uploading photos")
    async with read_upload(request, library.max_bytes) as upload:
        return await library.add(blog.id, slug, upload)


@files.api_route("/media/{key}", methods=["GET", "HEAD"])
async def read_media_file(key: str, request: Request, library: MediaDep) -> Response:
    """A rendition kept on local disk; its name is its content's hash, so it never changes."""
    store = library.store
    path = store.path(key) if isinstance(store, LocalStore) else None
    if path is None or not path.is_file():
        raise NotFound("There is no such media file.")
    etag = f'"{key.split(".")[0]}"'
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    media_type = "image/webp" if key.endswith(".webp") else "image/jpeg"
    return FileResponse(path, media_type=media_type, headers=headers)
