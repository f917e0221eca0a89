"""Image reading: every PIL mode becomes 8-bit RGB; broken files name the file and the annotation line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wsol.data.images import open_rgb, read_gray
from wsol.errors import UserError


def test_greyscale_palette_rgba_cmyk_1bit(tmp_path):
    grey = tmp_path / "g.png"
    Image.fromarray(np.full((3, 4), 77, np.uint8), "L").save(grey)
    im = open_rgb(grey)
    assert im.mode == "RGB" and im.size == (4, 3) and np.asarray(im)[0, 0].tolist() == [77, 77, 77]

    pal = Image.new("P", (2, 2))
    pal.putpalette([10, 20, 30] + [200, 100, 0] * 255)
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "p.png")
    arr = np.asarray(open_rgb(tmp_path / "p.png"))
    assert arr[0, 0].tolist() == [10, 20, 30] and arr[1, 1].tolist() == [200, 100, 0]

    Image.new("RGBA", (2, 2), (1, 2, 3, 0)).save(tmp_path / "a.png")
    assert np.asarray(open_rgb(tmp_path / "a.png"))[0, 0].tolist() == [1, 2, 3]

    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure red
    cmyk.save(tmp_path / "c.tiff")
    assert np.asarray(open_rgb(tmp_path / "c.tiff"))[0, 0].tolist() == [255, 0, 0]
    cmyk.save(tmp_path / "c.jpg")
    r, g, b = np.asarray(open_rgb(tmp_path / "c.jpg"))[0, 0].tolist()
    assert r > 200 and g < 60 and b < 60

    Image.new("1", (3, 3), 1).save(tmp_path / "one.png")
    assert np.asarray(open_rgb(tmp_path / "one.png")).min() == 255


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 257 * 100], [65535, 257 * 7]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    out = np.asarray(open_rgb(tmp_path / "d.png"))[..., 0]
    assert out.tolist() == [[0, 100], [255, 7]]


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([5, 6, 7, 8, 9, 10] + [0, 0, 0] * 254)
    im.putpixel((1, 0), 1)
    im.info["transparency"] = 0
    im.save(tmp_path / "t.png", transparency=0)
    assert np.asarray(open_rgb(tmp_path / "t.png")).tolist() == [[[5, 6, 7], [8, 9, 10]]]


def test_missing_corrupt_and_truncated_files_name_file_and_line(tmp_path, make_image):
    with pytest.raises(UserError, match=r"nope\.jpg \(referred to by images\.txt:7\) does not exist"):
        open_rgb(tmp_path / "nope.jpg", "images.txt:7")
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image")
    with pytest.raises(UserError, match=r"cannot read image .*junk\.jpg \(referred to by ids\.txt:3\)"):
        open_rgb(tmp_path / "junk.jpg", "ids.txt:3")
    data = make_image("full.png", size=(64, 64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cut\.png \(referred to by x\.txt:1\)"):
        open_rgb(tmp_path / "cut.png", "x.txt:1")
    data = make_image("full.jpg", size=(64, 64)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cut\.jpg"):
        open_rgb(tmp_path / "cut.jpg")


def test_read_gray(tmp_path):
    Image.fromarray(np.array([[0, 255]], np.uint8)).save(tmp_path / "m.png")
    assert read_gray(tmp_path / "m.png").tolist() == [[0, 255]]
    with pytest.raises(UserError, match=r"mask .*x\.png \(referred to by loc\.txt:2\) does not exist"):
        read_gray(tmp_path / "x.png", "loc.txt:2")
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(UserError, match="cannot read mask"):
        read_gray(tmp_path / "bad.png")
