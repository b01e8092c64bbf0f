"""Photos the media tests upload, made here with Pillow, and what is read back from renditions.

`phone_jpeg` is a photo as a phone takes it: EXIF with GPS coordinates, the camera's make,
model and serial numbers, a maker note, an orientation and an embedded thumbnail (IFD1),
plus XMP, an IPTC block, a comment, a colour profile and a second picture after it (MPF,
as phones keep a preview or a depth map), itself with EXIF and GPS. `metadata_segments`
and `webp_chunks` list what a rendition carries besides its pixels.
"""

import io
import struct

from PIL import Image, ImageDraw

SERIAL = "CAM-SERIAL-5H1T-0042"
LENS_SERIAL = "LENS-SERIAL-77Q"
GPS_LATITUDE = (51.0, 30.0, 26.16)
XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="51,30.4361N" '
    b'exif:GPSLongitude="0,7.6590W"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
COMMENT = b"Taken at the safe house, 12 Hill Road"
IPTC_CITY = b"Secret Town"
# Written into the embedded thumbnail and the second (MPF) picture, to look for afterwards.
THUMBNAIL_NOTE = b"thumbnail of the safe house"
SECOND_PICTURE_NOTE = b"depth map of the safe house"


def scene(size: tuple[int, int], colour: tuple[int, int, int] = (30, 90, 160)) -> Image.Image:
    """A picture with an unmistakable top-left corner (red), to check orientation."""
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle((0, 0, width // 4, height // 4), fill=(220, 20, 20))
    draw.ellipse((width // 3, height // 3, width // 2, height // 2), fill=(240, 240, 240))
    return image


def exif_of_a_phone(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Acme"  # Make
    exif[0x0110] = "Fieldphone 12"  # Model
    exif[0x0112] = orientation
    exif[0x0131] = "Acme Camera 4.1"  # Software
    camera = exif.get_ifd(0x8769)  # the Exif IFD
    camera[0xA431] = SERIAL  # BodySerialNumber
    camera[0xA435] = LENS_SERIAL  # LensSerialNumber
    camera[0x927C] = b"ACME\x00maker-note " + SERIAL.encode()  # MakerNote
    camera[0x9003] = "2026:11:05 21:14:03"  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)  # the GPS IFD
    gps[1] = "N"
    gps[2] = GPS_LATITUDE
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 39.54)
    return exif


def _iptc_segment() -> bytes:
    # APP13 "Photoshop 3.0" with an 8BIM IPTC-NAA resource holding City (2:90).
    dataset = b"\x1c\x02\x5a" + struct.pack(">H", len(IPTC_CITY)) + IPTC_CITY
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(dataset)) + dataset
    if len(dataset) % 2:
        resource += b"\x00"
    body = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def with_thumbnail(exif: bytes, thumbnail: bytes) -> bytes:
    """EXIF (as Pillow writes it, IFD0 first) with an IFD1 that holds a JPEG thumbnail, as
    cameras write it: Pillow reads IFD1 but never writes one."""
    assert exif[:6] == b"Exif\x00\x00"
    tiff = bytearray(exif[6:])
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd0,) = struct.unpack_from(order + "I", tiff, 4)
    (count,) = struct.unpack_from(order + "H", tiff, ifd0)
    next_pointer = ifd0 + 2 + 12 * count
    tiff += b"\x00" * (len(tiff) % 2)
    ifd1 = len(tiff)
    thumbnail_at = ifd1 + 2 + 3 * 12 + 4
    struct.pack_into(order + "I", tiff, next_pointer, ifd1)
    tiff += struct.pack(order + "H", 3)
    tiff += struct.pack(order + "HHIHH", 0x0103, 3, 1, 6, 0)  # Compression: JPEG
    tiff += struct.pack(order + "HHII", 0x0201, 4, 1, thumbnail_at)  # JPEGInterchangeFormat
    tiff += struct.pack(order + "HHII", 0x0202, 4, 1, len(thumbnail))  # ...Length
    tiff += struct.pack(order + "I", 0) + thumbnail
    return b"Exif\x00\x00" + bytes(tiff)


def phone_jpeg(
    size: tuple[int, int] = (1200, 900), orientation: int = 1, icc: bytes | None = None
) -> bytes:
    """A JPEG with every kind of metadata a phone or an editor leaves in it."""
    picture = scene(size)
    thumbnail = picture.copy()
    thumbnail.thumbnail((160, 160))
    exif = with_thumbnail(
        exif_of_a_phone(orientation).tobytes(),
        encoded(thumbnail, "JPEG", quality=70, comment=THUMBNAIL_NOTE),
    )
    second = picture.resize((size[0] // 4, size[1] // 4))
    second.encoderinfo = {"exif": exif_of_a_phone().tobytes(), "comment": SECOND_PICTURE_NOTE}
    buffer = io.BytesIO()
    picture.save(
        buffer,
        "MPO",  # a JPEG, with an MPF index (APP2) naming the second picture after it
        save_all=True,
        append_images=[second],
        quality=90,
        exif=exif,
        xmp=XMP,
        comment=COMMENT,
        icc_profile=icc,
    )
    data = buffer.getvalue()
    return data[:2] + _iptc_segment() + data[2:]  # right after SOI


def encoded(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _tag_xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + _s15(x) + _s15(y) + _s15(z)


def _tag_text(text: bytes) -> bytes:
    return b"text\x00\x00\x00\x00" + text + b"\x00"


def _tag_description(text: bytes) -> bytes:
    ascii_part = struct.pack(">I", len(text) + 1) + text + b"\x00"
    return b"desc\x00\x00\x00\x00" + ascii_part + b"\x00" * 8 + b"\x00\x00\x00" + b"\x00" * 67


def swapped_primaries_profile() -> bytes:
    """An RGB display profile that is not sRGB at all: sRGB's red and green primaries swapped
    (gamma 2.2). A pixel (255, 0, 0) in it is sRGB green: a photo shown without converting
    its profile is plainly wrong."""
    red, green, blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    gamma = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, 0x0233) + b"\x00\x00"
    tags = [
        (b"desc", _tag_description(b"Swapped primaries (test)")),
        (b"cprt", _tag_text(b"No copyright, test profile")),
        (b"wtpt", _tag_xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _tag_xyz(*green)),
        (b"gXYZ", _tag_xyz(*red)),
        (b"bXYZ", _tag_xyz(*blue)),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for name, body in tags:
        table += name + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\x00" * (-len(body) % 4)
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + b"\x00\x00\x00\x00"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 12, 2, 0, 0, 0)
        + b"acsp"
        + b"\x00" * 24
        + struct.pack(">I", 0)
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\x00" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def metadata_segments(jpeg: bytes) -> list[tuple[int, bytes]]:
    """Every JPEG segment before the image data but the ones that describe pixels:
    (marker, first bytes) of APPn, COM and anything unknown."""
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    found, position = [], 2
    pixel_markers = {0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD}
    while position < len(jpeg):
        assert jpeg[position] == 0xFF, f"lost at byte {position}"
        marker = jpeg[position + 1]
        if marker == 0xDA:  # start of scan: metadata comes before it
            break
        length = struct.unpack(">H", jpeg[position + 2 : position + 4])[0]
        body = jpeg[position + 4 : position + 2 + length]
        if marker not in pixel_markers and not (marker == 0xE0 and body.startswith(b"JFIF\x00")):
            found.append((marker, body[:16]))
        position += 2 + length
    return found


def webp_chunks(webp: bytes) -> list[bytes]:
    """The four-character names of a WebP's RIFF chunks."""
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP", "not a WebP"
    names, position = [], 12
    while position + 8 <= len(webp):
        name, size = (
            webp[position : position + 4],
            struct.unpack("<I", webp[position + 4 : position + 8])[0],
        )
        names.append(name)
        position += 8 + size + (size % 2)
    return names


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG that says it is width x height (7.5 GB decoded) in a few kilobytes: one row's
    worth of real data is enough for the header to be believed."""
    import zlib

    def chunk(name: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + name
            + data
            + struct.pack(">I", zlib.crc32(name + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" + b"\x00" * (width * 3), 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def animated_gif(frames: int, size: tuple[int, int] = (40, 30)) -> bytes:
    pictures = [
        Image.new("RGB", size, (index * 20 % 256, 255 - index * 20 % 256, 90))
        for index in range(frames)
    ]
    return encoded(pictures[0], "GIF", save_all=True, append_images=pictures[1:], duration=40)
