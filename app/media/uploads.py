"""Reading an upload as it streams in: multipart/form-data with one `file` part, refused
the moment it passes its limit, never buffered in memory whole.

The general body limit (app/limits/bodies.py) leaves this route alone; this is its limit:
a declared Content-Length over it is refused before a byte is read, and a body that
turns out larger (chunked, or lying) is refused as soon as it has sent that much.
"""

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.errors import BulletinError, InvalidInput, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
# Boundaries and part headers around the file: a little more than the file may be sent.
MULTIPART_ALLOWANCE = 16 * 1024
# Uploads smaller than this stay in memory; larger ones go to a temporary file.
IN_MEMORY_BYTES = 1024 * 1024


class MalformedUpload(BulletinError):
    code = "malformed_upload"


class UploadTooLarge(PayloadTooLarge):
    pass


@dataclass
class Upload:
    file: IO[bytes]
    size: int
    filename: str | None
    declared_type: str | None


class _FormReader:
    """python-multipart's callbacks: keeps the `file` part, notes anything else."""

    def __init__(self, spool: IO[bytes], max_bytes: int, too_large: UploadTooLarge) -> None:
        self.spool = spool
        self.max_bytes = max_bytes
        self.too_large = too_large
        self.headers: dict[str, str] = {}
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.in_file = False
        self.files = 0
        self.size = 0
        self.ended = False
        self.filename: str | None = None
        self.declared_type: str | None = None
        self.unknown: list[str] = []

    def callbacks(self) -> "MultipartCallbacks":
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.headers = {}
        self.in_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.decode("latin-1").lower()] = self.header_value.decode(
            "latin-1"
        )
        self.header_field, self.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self.headers.get("content-disposition"))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or name != FILE_FIELD:
            self.unknown.append(name or "(unnamed)")
            return
        self.files += 1
        self.in_file = self.files == 1
        filename = params.get(b"filename")
        self.filename = filename.decode("utf-8", "replace") if filename else None
        self.declared_type = self.headers.get("content-type")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.in_file:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise self.too_large
        self.spool.write(data[start:end])

    def on_end(self) -> None:
        self.ended = True


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return int(value) if len(value) <= 18 else 10**18


@asynccontextmanager
async def read_upload(request: Request, max_bytes: int) -> AsyncIterator[Upload]:
    """The uploaded file, spooled; gone again when the block ends, however it ends."""
    media_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(
            f"Send the photo as multipart/form-data, in a part named '{FILE_FIELD}'."
        )
    too_large = UploadTooLarge(f"A photo may be at most {max_bytes} bytes.")
    declared = _declared_length(request)
    if declared is not None and declared > max_bytes + MULTIPART_ALLOWANCE:
        raise too_large
    spool = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES)  # noqa: SIM115 (closed below)
    try:
        yield await _receive(request, boundary, spool, max_bytes, too_large)
    finally:
        spool.close()


async def _receive(
    request: Request,
    boundary: bytes,
    spool: IO[bytes],
    max_bytes: int,
    too_large: UploadTooLarge,
) -> Upload:
    form = _FormReader(spool, max_bytes, too_large)
    try:
        parser = MultipartParser(
            boundary, form.callbacks(), max_header_count=8, max_header_size=1024
        )
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + MULTIPART_ALLOWANCE:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except FormParserError as error:
        raise MalformedUpload(f"The body is not valid multipart/form-data: {error}") from None
    if not form.ended:
        raise MalformedUpload("The multipart body ends before its closing boundary.")
    if form.unknown:
        raise InvalidInput(
            f"Send only the photo, in a part named '{FILE_FIELD}'.",
            fields={name: "unknown field" for name in form.unknown},
        )
    if form.files != 1:
        problem = "required" if form.files == 0 else "send one photo per request"
        raise InvalidInput("Send one photo per request.", fields={FILE_FIELD: problem})
    if form.size == 0:
        raise InvalidInput("The photo is empty.", fields={FILE_FIELD: "empty"})
    spool.seek(0)
    return Upload(
        file=spool, size=form.size, filename=form.filename, declared_type=form.declared_type
    )
