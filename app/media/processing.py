"""From an uploaded file to renditions fit to publish: validated, oriented, in sRGB, and
carrying no metadata at all. Blocking and CPU-bound: run on a worker thread (Pillow lets go
of the GIL while it decodes, resamples and encodes, so the event loop keeps serving).

The order matters for memory as much as for privacy: the header is checked (format, pixels,
frames) before anything is decoded; a JPEG is decoded at the smallest scale that still
covers the largest rendition; orientation and the colour profile are applied to that
largest rendition, not to the full-size image. Every rendition is then made from a new
image built from pixels alone, so no EXIF (GPS, serial numbers, maker notes, thumbnails),
XMP, IPTC, comment or profile can ride along, whatever Pillow keeps in `info`.
"""

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from app.errors import InvalidInput, UnsupportedMediaType

# Phones' HEIC and HEIF; registering twice is harmless.
pillow_heif.register_heif_opener()

# Pillow's names for the formats accepted, and what the API calls them.
FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "HEIF": "heif", "GIF": "gif"}
# A JPEG with an MPF index and pictures after it (a preview, a depth map: many phones write
# one) opens as MPO; it is a JPEG, shown as its first picture.
OPENED_AS = {**FORMATS, "MPO": "jpeg"}
WIDTHS = (320, 640, 1024, 1600)
JPEG_QUALITY = 82
WEBP_QUALITY = 80
# EXIF orientation -> the transposition that shows the photo upright (as ImageOps does).
ORIENTATION_TAG = 0x0112
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SRGB = ImageCms.createProfile("sRGB")


class NotAnImage(UnsupportedMediaType):
    code = "not_an_image"


class CorruptImage(InvalidInput):
    code = "corrupt_image"


class TooManyPixels(InvalidInput):
    code = "too_many_pixels"


class TooManyFrames(InvalidInput):
    code = "too_many_frames"


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_frames: int


@dataclass(frozen=True)
class Rendition:
    format: str  # "webp" or "jpeg"
    width: int
    height: int
    data: bytes

    @property
    def key(self) -> str:
        """Its content address: the SHA-256 of its bytes, with its extension."""
        extension = "jpg" if self.format == "jpeg" else self.format
        return f"{hashlib.sha256(self.data).hexdigest()}.{extension}"

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"


@dataclass(frozen=True)
class ProcessedPhoto:
    source_format: str
    width: int
    height: int
    placeholder: str
    renditions: list[Rendition]  # smallest first, WebP before JPEG at each width


def rendition_widths(width: int) -> list[int]:
    """The widths made for a photo this wide: never wider than the photo itself."""
    widths = [w for w in WIDTHS if w < width]
    return [*widths, min(width, WIDTHS[-1])]


def process_photo(source: IO[bytes], limits: Limits) -> ProcessedPhoto:
    """Validate the upload and make its renditions; raises a refusal for anything else."""
    with _opened(source) as image:
        source_format = OPENED_AS[str(image.format)]
        stored_width, stored_height = image.size
        if stored_width < 1 or stored_height < 1:
            raise CorruptImage("The image has no pixels.")
        if stored_width * stored_height > limits.max_pixels:
            raise TooManyPixels(
                f"The image is {stored_width} x {stored_height} pixels; "
                f"at most {limits.max_pixels:,} pixels are accepted."
            )
        _refuse_many_frames(image, limits.max_frames)
        orientation = _orientation(image)
        turned = orientation in (5, 6, 7, 8)
        width, height = (stored_height, stored_width) if turned else image.size
        target_width = rendition_widths(width)[-1]
        scale = target_width / width
        # In the stored orientation: what the largest rendition needs of the decoded image.
        needed = (max(1, round(stored_width * scale)), max(1, round(stored_height * scale)))
        largest = _decode(image, needed)
    renditions = _renditions(largest)
    return ProcessedPhoto(
        source_format=source_format,
        width=width,
        height=height,
        placeholder=_dominant_colour(largest),
        renditions=renditions,
    )


@contextmanager
def _opened(source: IO[bytes]) -> Iterator[Image.Image]:
    try:
        # Past Pillow's own pixel limit (above ours) it warns, and refuses at twice it; the
        # warning is an exception where warnings are errors. Either way: refused.
        image = Image.open(source, formats=list(FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise TooManyPixels(f"The image has too many pixels to be processed ({error}).") from None
    except UnidentifiedImageError:
        raise NotAnImage(
            "The file is not a JPEG, PNG, WebP, HEIC/HEIF or GIF image "
            "(whatever its name or Content-Type says)."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise CorruptImage(f"The image cannot be read: {error}.") from None
    try:
        yield image
    finally:
        image.close()


def _refuse_many_frames(image: Image.Image, max_frames: int) -> None:
    try:
        frames = int(getattr(image, "n_frames", 1))
        image.seek(0)
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise CorruptImage(f"The image cannot be read: {error}.") from None
    if frames > max_frames:
        raise TooManyFrames(
            f"The image has {frames} frames; at most {max_frames} are accepted "
            "(an animated image is shown as its first frame)."
        )


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block only loses its orientation
        return 1
    return value if isinstance(value, int) and value in TRANSPOSE else 1


def _decode(image: Image.Image, needed: tuple[int, int]) -> Image.Image:
    """The upright sRGB picture at the size of the largest rendition, and nothing else."""
    try:
        if image.format in ("JPEG", "MPO"):
            # libjpeg decodes at 1/2, 1/4 or 1/8 scale directly: far less memory and time.
            image.draft(None, needed)
        image.load()
        profile = image.info.get("icc_profile")
        picture = _plain_mode(image)
        if picture.size != needed:
            picture = picture.resize(needed, Image.Resampling.LANCZOS, reducing_gap=3.0)
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        raise CorruptImage(f"The image cannot be read whole: {error}.") from None
    picture = _to_srgb(picture, profile if picture.mode == _profile_mode(image) else None)
    orientation = _orientation(image)
    if orientation in TRANSPOSE:
        picture = picture.transpose(TRANSPOSE[orientation])
    # A new image from the pixels alone: nothing of the upload's `info` survives.
    return Image.frombytes(picture.mode, picture.size, picture.tobytes())


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _profile_mode(image: Image.Image) -> str:
    """The mode a colour profile of this image describes, after _plain_mode."""
    return {"L": "L", "CMYK": "CMYK"}.get(image.mode, "RGBA" if _has_alpha(image) else "RGB")


def _plain_mode(image: Image.Image) -> Image.Image:
    """RGB, RGBA, L or CMYK: what resampling and colour conversion work on."""
    if image.mode in ("RGB", "RGBA", "L", "CMYK"):
        return image
    if image.mode.startswith("I;16"):
        # 16-bit greys (PNG): scale to 8 bits rather than clip.
        return image.convert("I").point(lambda value: value * (255 / 65535)).convert("L")
    return image.convert("RGBA" if _has_alpha(image) else "RGB")


def _to_srgb(picture: Image.Image, profile: bytes | None) -> Image.Image:
    """Convert from the upload's colour profile to sRGB; without one the photo is taken to
    be sRGB already (as browsers do). A profile that cannot be read is ignored."""
    output_mode = "RGBA" if picture.mode == "RGBA" else "RGB"
    if profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            if picture.mode == "RGBA":
                # LittleCMS converts the colour bands; the alpha band is kept as it was.
                converted = ImageCms.profileToProfile(
                    picture.convert("RGB"), source, SRGB, outputMode="RGB"
                )
                if converted is not None:
                    converted.putalpha(picture.getchannel("A"))
                    return converted
            else:
                converted = ImageCms.profileToProfile(picture, source, SRGB, outputMode=output_mode)
                if converted is not None:
                    return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass
    return picture if picture.mode == output_mode else picture.convert(output_mode)


def _renditions(largest: Image.Image) -> list[Rendition]:
    made: list[Rendition] = []
    source = largest
    for width in reversed(rendition_widths(largest.width)):
        height = max(1, round(largest.height * width / largest.width))
        picture = (
            source
            if source.size == (width, height)
            else source.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        )
        made += [_webp(picture), _jpeg(picture)]
        source = picture  # each smaller one from the one before: cheaper, as sharp
    # Smallest first: WebP then JPEG at each width.
    return sorted(made, key=lambda r: (r.width, r.format != "webp"))


def _webp(picture: Image.Image) -> Rendition:
    buffer = io.BytesIO()
    # exif, xmp and icc_profile are left out: none is written unless passed.
    picture.save(buffer, "WEBP", quality=WEBP_QUALITY, method=4)
    return Rendition("webp", picture.width, picture.height, buffer.getvalue())


def _jpeg(picture: Image.Image) -> Rendition:
    if picture.mode == "RGBA":
        # JPEG has no transparency: flatten onto white, as a page background would show.
        flat = Image.new("RGB", picture.size, (255, 255, 255))
        flat.paste(picture, mask=picture.getchannel("A"))
        picture = flat
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return Rendition("jpeg", picture.width, picture.height, buffer.getvalue())


def _dominant_colour(picture: Image.Image) -> str:
    """The most common of a few colours of the photo: what the page shows until it loads."""
    small = ImageOps.contain(picture, (64, 64))
    if small.mode == "RGBA":
        flat = Image.new("RGB", small.size, (255, 255, 255))
        flat.paste(small, mask=small.getchannel("A"))
        small = flat
    palette_image = small.convert("RGB").quantize(colors=4)
    counted: list[tuple[int, int]] = palette_image.getcolors() or [(1, 0)]  # type: ignore[assignment]
    _count, index = max(counted)
    palette = palette_image.getpalette() or [0, 0, 0]
    red, green, blue = palette[index * 3 : index * 3 + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"
