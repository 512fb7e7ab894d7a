"""Write the corpus of bad (and awkward but valid) uploads in tests/data/bad/ and tests/data/ok/.

Run from the repository root: python tests/data/make_bad_files.py. The files are committed; this
script says how each one was made. Checkpoint zips are made from a tiny model in the test itself.
"""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def drawing(size=(96, 96)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).ellipse((20, 20, size[0] - 20, size[1] - 20), outline="black", width=8)
    return image


def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def main() -> None:
    bad, ok = HERE / "bad", HERE / "ok"
    bad.mkdir(exist_ok=True)
    ok.mkdir(exist_ok=True)
    jpeg = encoded(drawing((300, 300)), "JPEG")
    files = {
        bad / "empty.png": b"",
        bad / "text.png": b"just some text, not an image\n",
        bad / "truncated.jpg": jpeg[: len(jpeg) // 3],
        bad / "one-pixel.png": encoded(Image.new("L", (1, 1)), "PNG"),
        bad / "bomb-30000x30000.png": png_header(30000, 30000),
        bad / "drawing.svg": b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'><circle r='4'/></svg>",
        bad / "archive.zip": b"PK\x05\x06" + b"\x00" * 18,
        ok / "animated.gif": encoded(
            drawing(), "GIF", save_all=True, append_images=[Image.new("RGB", (96, 96), "black")]
        ),
        ok / "16-bit.png": encoded(Image.fromarray(np.asarray(drawing().convert("L")).astype(np.uint16) * 257), "PNG"),
        ok / "cmyk.jpg": encoded(drawing().convert("CMYK"), "JPEG"),
        ok / "transparent.png": encoded(Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "PNG"),
        ok / "rotated-exif.jpg": encoded(drawing((120, 80)), "JPEG", exif=_rotation_exif()),
        ok / "tiny-3x3.bmp": encoded(drawing().resize((3, 3)), "BMP"),
        ok / "drawing.webp": encoded(drawing(), "WEBP"),
    }
    for path, data in files.items():
        path.write_bytes(data)
        print(f"{path.relative_to(HERE)}: {len(data)} bytes")


def _rotation_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif


if __name__ == "__main__":
    main()
