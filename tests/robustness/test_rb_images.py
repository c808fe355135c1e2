"""Bad and unusual image files (issue 8): truncated, corrupt, not images, odd modes, EXIF rotation,
decompression bombs. Every failure is an ``ImageDecodeError`` naming the file; ``read_index(check_decode=True)``
turns it into a counted skip; a training run stops with one line naming the file.
tests/data/test_images.py checks that each mode becomes RGB of the right size; here the pixels are checked."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from conftest import TINY_TRAIN, one_line_error, run_cli
from PIL import Image

from sbir_utils.data.images import ImageDecodeError, load_image
from sbir_utils.data.index import read_index


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A 100-byte PNG whose header claims ``width`` x ``height`` greyscale pixels (0.9 GP by default)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def _jpeg(size=(64, 48)) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


# ---- broken files ---------------------------------------------------------------------------------------

BROKEN = {
    "truncated.jpg": lambda: _jpeg()[: len(_jpeg()) // 2],
    "header-only.jpg": lambda: _jpeg()[:20],
    "bad-crc.png": lambda: (lambda b: b[:40] + bytes([b[40] ^ 0xFF]) + b[41:])(_png(Image.new("RGB", (16, 16), "red"))),
    "zero-bytes.png": lambda: b"",
    "text.png": lambda: b"path_sketch,path_image,label\n",
    "pdf.jpg": lambda: b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n",
    "svg.png": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>',
    "html.png": lambda: b"<html><body>404 Not Found</body></html>",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_or_non_image_file_names_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BROKEN[name]())
    with pytest.raises(ImageDecodeError, match=rf"{name}: not a decodable image"):
        load_image(path)
    with pytest.raises(ImageDecodeError, match=rf"{name}: "):
        load_image(path, kind="sketch")


def test_directory_named_like_an_image(tmp_path):
    (tmp_path / "x.png").mkdir()
    with pytest.raises(ImageDecodeError, match=r"x\.png: not a decodable image"):
        load_image(tmp_path / "x.png")


def test_undecodable_files_are_a_counted_skip_when_decoding_is_checked(tiny):
    (tiny / "photos" / "p001.png").write_bytes(_jpeg()[:100])  # truncated JPEG under a .png name
    (tiny / "sketches" / "p002-1.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning) as rec:
        df = read_index(tiny / "index_train.csv", check_decode=True)
    # p001's two rows (its photo) and p002's first sketch: three rows.
    assert df.attrs["skipped"] == {"rows with missing or undecodable files": 3} and len(df) == 5
    msg = str(rec[0].message)
    assert "path_image 'photos/p001.png': undecodable" in msg and "p001.png: not a decodable image" in msg


# ---- decompression bombs -----------------------------------------------------------------------------

def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())
    assert path.stat().st_size < 200
    with pytest.raises(ImageDecodeError, match=r"bomb\.png: refused as a decompression bomb"):
        load_image(path)


def test_decompression_bomb_in_an_index_is_a_counted_skip(tiny):
    (tiny / "photos" / "p003.png").write_bytes(bomb_png())
    with pytest.warns(UserWarning, match="refused as a decompression bomb"):
        df = read_index(tiny / "index_train.csv", check_decode=True)
    assert "photos/p003.png" not in set(df["path_image"]) and len(df) == 6


def test_decompression_bomb_stops_training_with_one_line(tiny, tmp_path, capsys):
    (tiny / "photos" / "p000.png").write_bytes(bomb_png())
    rc, err = run_cli(capsys, ["train", "--data_root", str(tiny), "--log_dir", str(tmp_path / "run"), *TINY_TRAIN])
    line = one_line_error(err)
    assert rc == 2 and "p000.png: refused as a decompression bomb" in line


# ---- corrupt images while training ----------------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 1])
def test_corrupt_photo_stops_training_with_one_line_naming_it(tiny, tmp_path, capsys, workers):
    (tiny / "photos" / "p002.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    rc, err = run_cli(capsys, ["train", "--data_root", str(tiny), "--log_dir", str(tmp_path / "run"), *TINY_TRAIN,
                               "--num_workers", str(workers)])
    line = one_line_error(err)
    assert rc == 2
    assert line.startswith("sbir train: error: ") and "photos/p002.png: not a decodable image" in line
    assert "DataLoader worker" not in line and "Original Traceback" not in line


# ---- modes: the pixels, not just the mode ------------------------------------------------------------------

def test_grey_L_photo_keeps_its_grey_level(tmp_path):
    Image.new("L", (6, 4), 77).save(tmp_path / "l.png")
    assert np.asarray(load_image(tmp_path / "l.png")).tolist() == [[[77, 77, 77]] * 6] * 4


def test_LA_transparent_pixels_become_white_opaque_keep_grey(tmp_path):
    img = Image.new("LA", (4, 2), (30, 255))
    img.putpixel((0, 0), (30, 0))
    img.save(tmp_path / "la.png")
    arr = np.asarray(load_image(tmp_path / "la.png"))
    assert arr[0, 0].tolist() == [255, 255, 255] and arr[1, 3].tolist() == [30, 30, 30]


def test_P_with_a_transparent_palette_entry(tmp_path):
    img = Image.new("P", (4, 2), 1)
    img.putpalette([0, 0, 0, 200, 10, 10] + [0, 0, 0] * 254)
    img.putpixel((0, 0), 0)
    img.save(tmp_path / "p.png", transparency=0)
    arr = np.asarray(load_image(tmp_path / "p.png"))
    assert arr[0, 0].tolist() == [255, 255, 255]  # palette index 0 is transparent, not black
    assert arr[1, 1].tolist() == [200, 10, 10]


def test_RGBA_half_transparent_is_composited_on_white(tmp_path):
    Image.new("RGBA", (2, 2), (0, 0, 0, 128)).save(tmp_path / "a.png")
    value = int(np.asarray(load_image(tmp_path / "a.png"))[0, 0, 0])
    assert 120 <= value <= 135  # half black on white


def test_CMYK_jpeg_colours_survive(tmp_path):
    Image.new("RGB", (16, 16), (220, 30, 30)).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    r, g, b = np.asarray(load_image(tmp_path / "c.jpg")).reshape(-1, 3).mean(axis=0)
    assert r > 180 and g < 80 and b < 80


def test_I16_png_uses_the_full_range(tmp_path):
    arr = np.array([[0, 1000], [30000, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "i16.png")
    with Image.open(tmp_path / "i16.png") as raw:
        assert raw.mode.startswith("I")
    out = np.asarray(load_image(tmp_path / "i16.png"))[..., 0]
    assert out[0, 0] == 0 and out[1, 1] == 255 and 100 < out[1, 0] < 130  # not clipped to white


def test_16_bit_sketch_with_dark_strokes_stays_dark_on_light(tmp_path):
    arr = np.full((8, 8), 60000, dtype=np.uint16)
    arr[4, :] = 0
    Image.fromarray(arr).save(tmp_path / "s16.png")
    sk = np.asarray(load_image(tmp_path / "s16.png", kind="sketch"))
    assert sk[0, 0] > 200 and sk[4, 3] == 0


def test_RGBA_sketch_drawn_on_transparent_background(tmp_path):
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # transparent black "paper"
    for x in range(8):
        img.putpixel((x, 4), (0, 0, 0, 255))
    img.save(tmp_path / "s.png")
    sk = np.asarray(load_image(tmp_path / "s.png", kind="sketch"))
    assert sk[0, 0] == 255 and sk[4, 2] == 0  # not inverted into white strokes on black


# ---- EXIF orientation ---------------------------------------------------------------------------------------

# Where the red top-left marker of the stored pixels ends up once orientation ``o`` is applied (2 x 3 image).
_MARKER_AFTER = {1: (0, 0), 2: (0, 2), 3: (1, 2), 4: (1, 0), 5: (0, 0), 6: (0, 1), 7: (2, 1), 8: (2, 0)}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(tmp_path, orientation):
    img = Image.new("RGB", (3, 2), (255, 255, 255))
    img.putpixel((0, 0), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(tmp_path / "o.png", exif=exif)  # PNG: lossless, so the marker stays one pixel
    arr = np.asarray(load_image(tmp_path / "o.png"))
    assert arr.shape[:2] == ((2, 3) if orientation <= 4 else (3, 2))
    red = np.argwhere((arr[..., 0] > 200) & (arr[..., 1] < 60))
    assert [tuple(r) for r in red] == [_MARKER_AFTER[orientation]]


def test_invalid_exif_orientation_is_ignored(tmp_path):
    img = Image.new("RGB", (3, 2), "white")
    exif = img.getexif()
    exif[0x0112] = 42
    img.save(tmp_path / "bad.jpg", exif=exif)
    assert load_image(tmp_path / "bad.jpg").size == (3, 2)
