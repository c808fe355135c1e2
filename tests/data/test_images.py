"""`data.images`: every image mode decodes to RGB (transparency on white, EXIF rotation, inverted sketches),
errors name the file, and ink coverage keeps thin strokes."""

import numpy as np
import pytest
from PIL import Image

from sbir_utils.data.images import ImageDecodeError, ink_coverage, load_image


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "RGB", "I;16", "1"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    img = Image.new("RGB", (12, 10), (200, 30, 30)).convert(mode)
    path = tmp_path / f"x_{mode.replace(';', '')}.{'tif' if mode in ('CMYK', 'I;16') else 'png'}"
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (12, 10)


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    img.save(tmp_path / "t.png")
    assert np.asarray(load_image(tmp_path / "t.png")).min() == 255


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), "white")
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (10, 20)


def test_white_on_black_sketch_is_inverted(tmp_path):
    arr = np.zeros((16, 16), np.uint8)
    arr[8, :] = 255
    Image.fromarray(arr).save(tmp_path / "s.png")
    sk = np.asarray(load_image(tmp_path / "s.png", kind="sketch"))
    assert sk[0, 0] == 255 and sk[8, 3] == 0


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        load_image(bad)
    with pytest.raises(ImageDecodeError, match="absent.png: file not found"):
        load_image(tmp_path / "absent.png")
    good = tmp_path / "trunc.png"
    Image.new("RGB", (64, 64), "red").save(good)
    good.write_bytes(good.read_bytes()[:40])
    with pytest.raises(ImageDecodeError, match="trunc.png"):
        load_image(good)


def test_ink_coverage_pooling_keeps_thin_strokes():
    arr = np.full((512, 512), 255, np.uint8)
    arr[100, :] = 0  # a 1-pixel line at 512 px
    img = Image.fromarray(arr)
    assert ink_coverage(img) == pytest.approx(1 / 512)
    assert ink_coverage(img, size=128) == pytest.approx(1 / 128)  # one full row of the 128 grid
    assert ink_coverage(img.resize((128, 128))) < 1 / 128  # plain resampling washes it out
