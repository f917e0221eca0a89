"""More bad input through the real CLI (issue "Trust, part 2", item 7): one test per case.

* metadata with a UTF-8 BOM and/or Windows (CRLF) line ends gives the numbers of the clean files
  (wsolevaluation layout and the CUB raw files);
* image paths with spaces and non-ASCII characters work (and give the same numbers);
* an EXIF-rotated JPEG is read as stored, without transposing (as wsolevaluation reads images);
* an image above PIL's decompression-bomb limit, an empty split, an unwritable output folder and
  a failing write of the result each end in one line on stderr (exit status 2) naming the file;
  nothing partial is left at the final paths;
* SIGINT (Ctrl-C: the whole process group) during ``wsol evaluate`` prints one line, exits 130,
  keeps the per-image log, and ``--resume`` then gives the numbers of an uninterrupted run.

``wsol evaluate`` runs with the default ``--workers`` (one per core) and with ``--workers 2``,
so the loader and sweep worker processes are part of every case. Data: copies of the
``tiny_synth`` tree (CUB layout, 3 classes, 18 test images of 64 px) and wsolevaluation metadata
written for its test images.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from wsol.cli import main

REPO = Path(__file__).resolve().parents[1]
FIRST_TEST = "001.hue000/test_0000.png"  # images.txt line 43 (ids 1..42 are train/val)
FIRST_TEST_LINE = 43
WORKERS = pytest.mark.parametrize("workers", [None, "2"], ids=["default_workers", "workers2"])

# what must be identical between two runs on the same data (not timings, paths or file names)
METRICS = (
    "num_images",
    "cam_curve_interval",
    "MaxBoxAcc",
    "MaxBoxAccV2",
    "best_threshold",
    "PxAP",
    "ci95",
    "top1_loc",
    "top5_loc",
    "gt_known_loc",
    "top1_cls",
    "top5_cls",
    "BoxAcc_curve",
    "num_skipped",
    "num_without_gt_in_frame",
)


# ----------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every in-process evaluation here runs its tiny model on one torch thread."""


def _single_thread(fn):
    """Run ``fn()`` with one torch thread (for module-scoped fixtures), restoring the count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(previous)


def _workers(workers: str | None) -> list[str]:
    return [] if workers is None else ["--workers", workers]


def _evaluate(args: list[str], workers: str | None) -> int:
    return main(["evaluate", "--no-progress", "--device", "cpu", *_workers(workers), *args])


def _scoremaps_cli(args: list[str], workers: str | None) -> int:
    return main(["evaluate-scoremaps", "--no-progress", *_workers(workers), *args])


def _one_line_error(capsys, rc: int, *needles: str, cmd: str = "evaluate") -> str:
    """Exit status 2, exactly one line on stderr, no traceback, naming every needle."""
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wsol {cmd}: error: "), err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    return err


def _numbers(result_json: Path) -> dict:
    res = json.loads(result_json.read_text())
    return {k: res[k] for k in METRICS if k in res}


def _per_image(result_json: Path, drop: tuple[str, ...] = ()) -> list[dict]:
    res = json.loads(result_json.read_text())
    with open(result_json.parent / res["per_image"], newline="", encoding="utf-8") as fh:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(fh)]


def _same_result(got: Path, want: Path, *, ids_differ: bool = False) -> None:
    a, b = _numbers(got), _numbers(want)
    assert a["num_images"] > 0 and a == b
    drop = ("image_id",) if ids_differ else ()
    assert _per_image(got, drop) == _per_image(want, drop)


def _dirty(path: Path, *, bom: bool, crlf: bool, final_newline: bool = True) -> None:
    """Rewrite text file ``path`` with a UTF-8 BOM and/or CRLF line ends (same content)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    nl = "\r\n" if crlf else "\n"
    new = nl.join(lines) + (nl if final_newline and lines else "")
    path.write_bytes(("\ufeff" if bom else "").encode("utf-8") + new.encode("utf-8"))


def _test_records(tiny_synth: Path) -> list[tuple[str, int, tuple[int, int, int, int]]]:
    """``(image_id, label, inclusive box)`` of the test images, read from the CUB text files."""

    def table(name: str) -> dict[str, list[str]]:
        return {p[0]: p[1:] for p in (ln.split() for ln in (tiny_synth / name).read_text().splitlines())}

    images, labels, split, boxes = (
        table(n) for n in ("images.txt", "image_class_labels.txt", "synthetic_split.txt", "bounding_boxes.txt")
    )
    out = []
    for iid, (rel,) in images.items():
        if split[iid] == ["test"]:
            x, y, w, h = (float(v) for v in boxes[iid])
            out.append((rel, int(labels[iid][0]) - 1, (int(x), int(y), int(x + w), int(y + h))))
    return out


def _write_meta(folder: Path, recs, sizes: dict[str, tuple[int, int]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sizes = sizes or {}
    (folder / "image_ids.txt").write_text("".join(f"{i}\n" for i, _, _ in recs), encoding="utf-8")
    (folder / "class_labels.txt").write_text("".join(f"{i},{lab}\n" for i, lab, _ in recs), encoding="utf-8")
    (folder / "image_sizes.txt").write_text(
        "".join(f"{i},{sizes.get(i, (64, 64))[0]},{sizes.get(i, (64, 64))[1]}\n" for i, _, _ in recs), encoding="utf-8"
    )
    (folder / "localization.txt").write_text(
        "".join(f"{i},{b[0]},{b[1]},{b[2]},{b[3]}\n" for i, _, b in recs), encoding="utf-8"
    )
    return folder


@pytest.fixture
def data(tiny_synth, tmp_path) -> Path:
    """A private copy of the tiny synthetic tree."""
    root = tmp_path / "data"
    shutil.copytree(tiny_synth, root)
    return root


@pytest.fixture
def meta(tiny_synth, tmp_path) -> Path:
    """Clean wsolevaluation metadata of the tiny test split; images under ``tiny_synth / "images"``."""
    return _write_meta(tmp_path / "meta", _test_records(tiny_synth))


@pytest.fixture
def scoremaps(meta, tmp_path) -> Path:
    """Random 64x64 float32 maps in [0, 1] for every image of ``meta``."""
    root = tmp_path / "maps"
    rng = np.random.default_rng(0)
    for iid in (meta / "image_ids.txt").read_text().splitlines():
        path = root / f"{iid}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, rng.random((64, 64), dtype=np.float32))
    return root


@pytest.fixture(scope="module")
def clean_synthetic(tiny_synth, tiny_checkpoint, tmp_path_factory) -> Path:
    """The result JSON of ``wsol evaluate`` on the untouched tiny tree (the reference numbers)."""
    out = tmp_path_factory.mktemp("clean") / "r.json"
    assert (
        _single_thread(
            lambda: main(
                [
                    "evaluate",
                    "--no-progress",
                    "--device",
                    "cpu",
                    "--workers",
                    "0",
                    "--checkpoint",
                    str(tiny_checkpoint),
                    "--dataset",
                    "synthetic",
                    "--data-root",
                    str(tiny_synth),
                    "--output",
                    str(out),
                ]
            )
        )
        == 0
    )
    return out


def _synthetic(root: Path) -> list[str]:
    return ["--dataset", "synthetic", "--data-root", str(root)]


def _wsoleval(images: Path, meta: Path) -> list[str]:
    return ["--dataset", "wsolevaluation", "--data-root", str(images), "--metadata-dir", str(meta)]


# ----------------------------------------------------------------------------------------------
# UTF-8 BOM and CRLF line ends

DIRT = {
    "bom": {"bom": True, "crlf": False},
    "crlf": {"bom": False, "crlf": True},
    "bom_crlf": {"bom": True, "crlf": True},
    "bom_crlf_no_final_newline": {"bom": True, "crlf": True, "final_newline": False},
}


@WORKERS
@pytest.mark.parametrize("dirt", list(DIRT))
def test_bom_and_crlf_wsolevaluation_metadata_give_the_same_scoremap_numbers(
    dirt, workers, meta, scoremaps, tmp_path, capsys
):
    dirty = tmp_path / "dirty"
    shutil.copytree(meta, dirty)
    for f in dirty.iterdir():
        _dirty(f, **DIRT[dirt])
    assert (dirty / "image_ids.txt").read_bytes() != (meta / "image_ids.txt").read_bytes()
    for name, folder in (("clean", meta), ("dirty", dirty)):
        rc = _scoremaps_cli(
            [
                "--metadata-dir",
                str(folder),
                "--scoremap-dir",
                str(scoremaps),
                "--output",
                str(tmp_path / f"{name}.json"),
            ],
            workers,
        )
        assert rc == 0, capsys.readouterr().err
    _same_result(tmp_path / "dirty.json", tmp_path / "clean.json")
    assert (
        main(
            [
                "data",
                "check",
                "--format",
                "wsolevaluation",
                "--root",
                "/nonexistent",
                "--metadata-dir",
                str(dirty),
                "--annotations-only",
            ]
        )
        == 0
    )


@WORKERS
def test_bom_and_crlf_wsolevaluation_metadata_give_the_same_evaluate_numbers(
    workers, meta, tiny_synth, tiny_checkpoint, tmp_path
):
    dirty = tmp_path / "dirty"
    shutil.copytree(meta, dirty)
    for f in dirty.iterdir():
        _dirty(f, bom=True, crlf=True)
    for name, folder in (("clean", meta), ("dirty", dirty)):
        assert (
            _evaluate(
                [
                    "--checkpoint",
                    str(tiny_checkpoint),
                    *_wsoleval(tiny_synth / "images", folder),
                    "--output",
                    str(tmp_path / f"{name}.json"),
                ],
                workers,
            )
            == 0
        )
    _same_result(tmp_path / "dirty.json", tmp_path / "clean.json")


@WORKERS
def test_bom_and_crlf_cub_files_give_the_same_numbers(
    workers, data, tiny_checkpoint, clean_synthetic, tmp_path, capsys
):
    for f in [*data.glob("*.txt"), data / "synthetic.json"]:
        _dirty(f, bom=True, crlf=True)
    assert (data / "images.txt").read_bytes().startswith(b"\xef\xbb\xbf1 ")
    assert main(["data", "check", "--format", "synthetic", "--root", str(data), "--annotations-only"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 18
    out = tmp_path / "r.json"
    assert _evaluate(["--checkpoint", str(tiny_checkpoint), *_synthetic(data), "--output", str(out)], workers) == 0
    _same_result(out, clean_synthetic)


def test_bom_and_crlf_real_metadata_parse_the_same(shared_dir, tmp_path):
    """The real CUB and OpenImages test metadata, BOM + CRLF, parse to exactly the same split."""
    from eval.metadata import read_split

    for split in ("CUB/test", "OpenImages/test"):
        src = shared_dir / "data" / "wsolevaluation_metadata" / split
        dst = tmp_path / split
        shutil.copytree(src, dst)
        for f in dst.iterdir():
            _dirty(f, bom=True, crlf=True)
        a, b = read_split(src), read_split(dst)
        assert a.image_ids == b.image_ids and a.labels == b.labels and a.sizes == b.sizes
        assert a.masks == b.masks and a.ignore == b.ignore and a.kind == b.kind
        assert a.boxes.keys() == b.boxes.keys() and all((a.boxes[k] == b.boxes[k]).all() for k in a.boxes)


# ----------------------------------------------------------------------------------------------
# paths with spaces and non-ASCII characters

ODD_DIR = "dossier données ☀"  # spaces, accents, a non-Latin-1 symbol


def _odd(rel: str) -> str:
    """``001.hue000/test_0000.png`` -> ``001 hué 000/test 0000 ü.png``."""
    cls, name = rel.split("/")
    return f"{cls.replace('.', ' ').replace('hue', 'hué ')}/{Path(name).stem.replace('_', ' ')} ü.png"


@WORKERS
def test_image_paths_with_spaces_and_non_ascii_cub(
    workers, tiny_synth, tiny_checkpoint, clean_synthetic, tmp_path, capsys
):
    root = tmp_path / ODD_DIR / "data"
    shutil.copytree(tiny_synth, root)
    lines = []
    for line in (root / "images.txt").read_text().splitlines():
        num, rel = line.split(" ", 1)
        new = _odd(rel)
        for folder, old_rel, new_rel in (
            ("images", rel, new),
            ("segmentations", Path(rel).with_suffix(".png"), Path(new).with_suffix(".png")),
        ):
            (root / folder / new_rel).parent.mkdir(parents=True, exist_ok=True)
            (root / folder / old_rel).rename(root / folder / new_rel)
        lines.append(f"{num} {new}")
    (root / "images.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["data", "check", "--format", "synthetic", "--root", str(root)]) == 0
    capsys.readouterr()
    out = tmp_path / "résultats ☀" / "r 1.json"
    assert _evaluate(["--checkpoint", str(tiny_checkpoint), *_synthetic(root), "--output", str(out)], workers) == 0
    _same_result(out, clean_synthetic, ids_differ=True)
    ids = [r["image_id"] for r in _per_image(out)]
    assert _odd(FIRST_TEST) in ids and all(" " in i and "ü" in i for i in ids)


@WORKERS
def test_image_paths_with_spaces_and_non_ascii_wsolevaluation(
    workers, tiny_synth, tiny_checkpoint, meta, scoremaps, tmp_path, capsys
):
    images = tmp_path / ODD_DIR / "images"
    odd_maps = tmp_path / ODD_DIR / "maps ü"
    recs = [(_odd(i), lab, box) for i, lab, box in _test_records(tiny_synth)]
    for (iid, _, _), (old, _, _) in zip(recs, _test_records(tiny_synth)):
        for src, dst in (
            (tiny_synth / "images" / old, images / iid),
            (scoremaps / f"{old}.npy", odd_maps / f"{iid}.npy"),
        ):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    odd_meta = _write_meta(tmp_path / ODD_DIR / "méta", recs)
    # evaluate-scoremaps: same maps under odd names, same numbers
    for name, m, d in (("clean", meta, scoremaps), ("odd", odd_meta, odd_maps)):
        assert (
            _scoremaps_cli(
                ["--metadata-dir", str(m), "--scoremap-dir", str(d), "--output", str(tmp_path / f"maps_{name}.json")],
                workers,
            )
            == 0
        )
    _same_result(tmp_path / "maps_odd.json", tmp_path / "maps_clean.json", ids_differ=True)
    # evaluate, saving its score maps under the odd names
    for name, m, root in (("clean", meta, tiny_synth / "images"), ("odd", odd_meta, images)):
        assert (
            _evaluate(
                [
                    "--checkpoint",
                    str(tiny_checkpoint),
                    *_wsoleval(root, m),
                    "--save-scoremaps",
                    str(tmp_path / ODD_DIR / f"saved {name}"),
                    "--output",
                    str(tmp_path / f"eval_{name}.json"),
                ],
                workers,
            )
            == 0
        )
    _same_result(tmp_path / "eval_odd.json", tmp_path / "eval_clean.json", ids_differ=True)
    assert (tmp_path / ODD_DIR / "saved odd" / f"{recs[0][0]}.npy").is_file()


# ----------------------------------------------------------------------------------------------
# EXIF orientation: not applied (the reference reads Image.open(path).convert("RGB"))


def _exif_jpeg(path: Path, orientation: int = 6) -> np.ndarray:
    """A 64x48 JPEG whose EXIF says "rotate 90" (orientation 6); returns its stored pixels."""
    rng = np.random.default_rng(3)
    arr = np.zeros((48, 64, 3), dtype=np.uint8)
    arr[:, :32] = (200, 30, 30)
    arr[:, 32:] = rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "RGB").save(path, quality=95, exif=exif.tobytes())
    with Image.open(path) as im:
        assert im.getexif()[0x0112] == orientation
        return np.asarray(im.convert("RGB"))


def test_exif_rotated_jpeg_is_read_as_stored(tmp_path):
    from wsol.data.images import image_size, open_rgb

    jpg = tmp_path / "rotated.jpg"
    stored = _exif_jpeg(jpg)
    got = np.asarray(open_rgb(jpg))
    assert got.shape == (48, 64, 3) and image_size(jpg) == (64, 48)
    assert np.array_equal(got, stored)  # exactly the reference's Image.open(path).convert("RGB")
    with Image.open(jpg) as im:
        turned = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert turned.shape == (64, 48, 3)  # what applying the EXIF orientation would have given


@WORKERS
def test_exif_rotated_jpeg_through_evaluate(workers, tiny_synth, tiny_checkpoint, tmp_path, capsys):
    """The metadata records the stored 64x48 size and a box reaching x = 63: read transposed
    (48x64) the image would be refused. Same numbers as the same pixels in a PNG without EXIF."""
    images = tmp_path / "images"
    shutil.copytree(tiny_synth / "images", images)
    stored = _exif_jpeg(images / "exif" / "rotated.jpg")
    Image.fromarray(stored, "RGB").save(images / "exif" / "plain.png")
    recs = _test_records(tiny_synth)
    extra = (0, (40, 4, 63, 43))
    results = {}
    for name in ("rotated.jpg", "plain.png"):
        iid = f"exif/{name}"
        m = _write_meta(tmp_path / f"meta_{name}", [*recs, (iid, *extra)], sizes={iid: (64, 48)})
        assert (
            main(["data", "check", "--format", "wsolevaluation", "--root", str(images), "--metadata-dir", str(m)]) == 0
        ), capsys.readouterr().out
        capsys.readouterr()
        results[name] = tmp_path / f"{name}.json"
        assert (
            _evaluate(
                ["--checkpoint", str(tiny_checkpoint), *_wsoleval(images, m), "--output", str(results[name])], workers
            )
            == 0
        ), capsys.readouterr().err
    _same_result(results["rotated.jpg"], results["plain.png"], ids_differ=True)
    assert _numbers(results["rotated.jpg"])["num_images"] == 19


# ----------------------------------------------------------------------------------------------
# an image above PIL's decompression-bomb limit


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width x height`` RGB pixels (and holds almost no data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


@WORKERS
def test_decompression_bomb_is_refused_with_one_line(workers, data, tiny_checkpoint, tmp_path, capsys):
    victim = data / "images" / FIRST_TEST
    side = 20_000  # 400 M pixels > 2 x Image.MAX_IMAGE_PIXELS: PIL refuses it from the header
    assert side * side > 2 * Image.MAX_IMAGE_PIXELS
    _png_header_only(victim, side, side)
    out = tmp_path / "r.json"
    rc = _evaluate(["--checkpoint", str(tiny_checkpoint), *_synthetic(data), "--output", str(out)], workers)
    _one_line_error(
        capsys, rc, str(victim), f"images.txt:{FIRST_TEST_LINE}", "decompression-bomb limit", "400,000,000 pixels"
    )
    assert not out.exists()
    assert main(["data", "check", "--format", "synthetic", "--root", str(data)]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [p["line"] for p in problems if "decompression-bomb" in p["message"]] == [FIRST_TEST_LINE]


def test_decompression_bomb_limit_follows_pil_setting(make_image, monkeypatch):
    """The limit is PIL's own (``Image.MAX_IMAGE_PIXELS``), checked before decoding."""
    from wsol.data.images import open_rgb
    from wsol.errors import UserError

    path = make_image("a b/ç.png", size=(40, 30))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # error above 2 x 500 = 1000 pixels
    with pytest.raises(UserError, match=r"has 1,200 pixels, more than PIL's decompression-bomb limit of 1,000"):
        open_rgb(path, "list.txt:7")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert open_rgb(path).size == (40, 30)


# ----------------------------------------------------------------------------------------------
# an empty split


def test_empty_wsolevaluation_split(tmp_path, capsys, tiny_checkpoint):
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt"):
        (empty / name).write_bytes(b"")
    (tmp_path / "maps").mkdir()
    rc = _scoremaps_cli(
        ["--metadata-dir", str(empty), "--scoremap-dir", str(tmp_path / "maps"), "--output", str(tmp_path / "r.json")],
        None,
    )
    _one_line_error(capsys, rc, str(empty / "image_ids.txt"), "empty", cmd="evaluate-scoremaps")
    rc = _evaluate(
        ["--checkpoint", str(tiny_checkpoint), *_wsoleval(tmp_path, empty), "--output", str(tmp_path / "e.json")], None
    )
    _one_line_error(capsys, rc, str(empty / "image_ids.txt"), "empty")
    assert (
        main(["data", "check", "--format", "wsolevaluation", "--root", str(tmp_path), "--metadata-dir", str(empty)])
        == 1
    )
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["file"] == str(empty / "image_ids.txt") and "empty" in problem["message"]
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "e.json").exists()


def test_empty_split_of_a_cub_tree(data, tiny_checkpoint, tmp_path, capsys):
    lines = (data / "synthetic_split.txt").read_text().splitlines()
    (data / "synthetic_split.txt").write_text("".join(ln.replace(" test", " train") + "\n" for ln in lines))
    rc = _evaluate(
        ["--checkpoint", str(tiny_checkpoint), *_synthetic(data), "--output", str(tmp_path / "r.json")], None
    )
    _one_line_error(capsys, rc, str(data / "synthetic_split.txt"), "split 'test' has no image")
    assert main(["data", "check", "--format", "synthetic", "--root", str(data), "--annotations-only"]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["file"] == str(data / "synthetic_split.txt")


# ----------------------------------------------------------------------------------------------
# an unwritable output folder (tests run as root, so a chmod would not stop a write: the output
# folder is below a regular file instead, which stops everyone)


@pytest.mark.parametrize("below", ["r.json", "sub/r.json"], ids=["file_as_folder", "file_above_folder"])
@WORKERS
def test_unwritable_output_folder_evaluate_scoremaps(below, workers, meta, scoremaps, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    rc = _scoremaps_cli(
        ["--metadata-dir", str(meta), "--scoremap-dir", str(scoremaps), "--output", str(blocker / below)], workers
    )
    _one_line_error(capsys, rc, str(blocker), "not a folder", cmd="evaluate-scoremaps")
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize("below", ["r.json", "sub/r.json"], ids=["file_as_folder", "file_above_folder"])
@WORKERS
def test_unwritable_output_folder_evaluate(below, workers, tiny_synth, tiny_checkpoint, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    rc = _evaluate(
        ["--checkpoint", str(tiny_checkpoint), *_synthetic(tiny_synth), "--output", str(blocker / below)], workers
    )
    _one_line_error(capsys, rc, str(blocker), "not a folder")
    assert blocker.read_text() == "a file, not a folder"


# ----------------------------------------------------------------------------------------------
# a failing write of the result


def _fail_fsync(monkeypatch) -> None:
    """Every fsync fails as on a full disk (the data of the temporary file cannot be stored)."""

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


def _fail_rename_of(monkeypatch, name: str) -> None:
    """Renaming a temporary file onto a final path called ``name`` fails (EIO)."""
    real = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst).name == name and not str(src).endswith(".old"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} if folder.is_dir() else {}


@pytest.mark.parametrize("how", ["disk_full", "json_rename_fails"])
def test_failing_write_of_the_scoremap_result(how, meta, scoremaps, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if how == "disk_full":
        _fail_fsync(monkeypatch)
    else:
        _fail_rename_of(monkeypatch, "r.json")
    rc = _scoremaps_cli(
        ["--metadata-dir", str(meta), "--scoremap-dir", str(scoremaps), "--output", str(out_dir / "r.json")], None
    )
    why = "No space left on device" if how == "disk_full" else "Input/output error"
    _one_line_error(capsys, rc, str(out_dir), why, cmd="evaluate-scoremaps")
    assert _files(out_dir) == {}  # no result, no per-image CSV without its result, no temporary file


def test_failing_overwrite_keeps_the_old_scoremap_result(meta, scoremaps, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r.json"
    args = ["--metadata-dir", str(meta), "--scoremap-dir", str(scoremaps), "--output", str(out)]
    assert _scoremaps_cli(args, None) == 0
    capsys.readouterr()
    before = _files(tmp_path)
    assert set(before) >= {"r.json", "r.per_image.csv"}
    np.save(scoremaps / f"{(meta / 'image_ids.txt').read_text().split()[0]}.npy", np.zeros((64, 64)))
    _fail_rename_of(monkeypatch, "r.json")
    rc = _scoremaps_cli([*args, "--overwrite"], None)
    _one_line_error(capsys, rc, str(out), "Input/output error", cmd="evaluate-scoremaps")
    assert _files(tmp_path) == before  # the old JSON and its old CSV, both whole


@pytest.mark.parametrize("how", ["disk_full", "json_rename_fails"])
def test_failing_write_of_the_evaluate_result(
    how, tiny_synth, tiny_checkpoint, clean_synthetic, tmp_path, capsys, monkeypatch
):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "r.json"
    args = ["--checkpoint", str(tiny_checkpoint), *_synthetic(tiny_synth), "--output", str(out)]
    with monkeypatch.context() as m:
        if how == "disk_full":
            _fail_fsync(m)
        else:
            _fail_rename_of(m, "r.json")
        rc = _evaluate(args, None)
    why = "No space left on device" if how == "disk_full" else "Input/output error"
    _one_line_error(capsys, rc, str(out_dir), why)
    left = set(_files(out_dir))
    # nothing partial: no result, no companion file of a result that does not exist, no temporary
    # file; the per-image log may stay (it is what --resume reads), nothing else
    assert left <= {"r.log.jsonl"}, left
    # nothing lost: --resume (or a plain rerun) then writes the result with the same numbers
    assert _evaluate([*args, "--resume"], None) == 0
    _same_result(out, clean_synthetic)


# ----------------------------------------------------------------------------------------------
# SIGINT during wsol evaluate


@pytest.fixture(scope="module")
def slow_synth(tmp_path_factory) -> Path:
    """A tree with 240 test images of 32 px: several seconds at batch size 1, to interrupt mid-run."""
    from wsol.data import SynthConfig, generate_synthetic

    root = tmp_path_factory.mktemp("slow_synth") / "data"
    generate_synthetic(
        root, SynthConfig(classes=3, train_per_class=1, val_per_class=1, test_per_class=80, size=32, seed=1)
    )
    return root


SLOW = ["--batch-size", "1"]  # one log flush per image


@pytest.fixture(scope="module")
def slow_reference(slow_synth, tiny_checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slow_ref") / "r.json"
    assert (
        _single_thread(
            lambda: main(
                [
                    "evaluate",
                    "--no-progress",
                    "--device",
                    "cpu",
                    "--workers",
                    "0",
                    *SLOW,
                    "--checkpoint",
                    str(tiny_checkpoint),
                    *_synthetic(slow_synth),
                    "--output",
                    str(out),
                ]
            )
        )
        == 0
    )
    return out


def _interrupt_evaluate(args: list[str], log: Path, cwd: Path, delay: float = 0.0) -> tuple[int, str]:
    """Run ``wsol <args>`` in a subprocess, Ctrl-C it ``delay`` s after its per-image log has 5
    lines; its return code and stderr."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
    }  # a tiny model: one torch thread, as in-process
    # its own session: Ctrl-C signals the whole foreground process group (main process and workers)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsol", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (log.is_file() and log.read_text().count("\n") >= 5):
            assert proc.poll() is None, f"evaluate ended before it could be interrupted:\n{proc.communicate()}"
            assert time.monotonic() < deadline, "no per-image log after 120 s"
            time.sleep(0.01)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("wsol evaluate still runs 60 s after SIGINT (hung while stopping its workers)")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, stderr


@WORKERS
def test_sigint_during_evaluate_then_resume(workers, slow_synth, slow_reference, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "run" / "r.json"
    log = out.with_name("r.log.jsonl")
    args = [
        "evaluate",
        "--no-progress",
        "--device",
        "cpu",
        *_workers(workers),
        *SLOW,
        "--checkpoint",
        str(tiny_checkpoint),
        *_synthetic(slow_synth),
        "--output",
        str(out),
    ]
    returncode, stderr = _interrupt_evaluate(args, log, tmp_path)
    assert returncode == 130, (returncode, stderr)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsol") and "interrupted" in lines[0], stderr
    assert not out.exists()
    rows = [json.loads(r) for r in log.read_text().splitlines()]  # whole lines only
    scored = [r for r in rows if "image_id" in r]  # (a header line may come first)
    assert 3 <= len(scored) < 240
    capsys.readouterr()
    assert main(args[:1] + ["--resume"] + args[1:]) == 0
    err = capsys.readouterr().err
    assert "resum" in err and str(len(scored)) in err, err  # says how many images it did not redo
    _same_result(out, slow_reference)
    assert not log.exists()


def test_sigint_at_several_moments_prints_one_line(slow_synth, tiny_checkpoint, tmp_path):
    """Ctrl-C lands wherever the main process is (fetching a batch from the loader worker, running
    the model, waiting for sweeps): always the one line, never a worker's traceback after it."""
    from concurrent.futures import ThreadPoolExecutor

    def interrupted(k: int, delay: float) -> tuple[int, str]:
        out = tmp_path / f"run{k}" / "r.json"
        args = ["evaluate", "--no-progress", "--device", "cpu", *SLOW, "--checkpoint", str(tiny_checkpoint)]
        args += [*_synthetic(slow_synth), "--output", str(out)]
        return _interrupt_evaluate(args, out.with_name("r.log.jsonl"), tmp_path, delay)

    delays = (0.0, 0.05, 0.1, 0.2, 0.35)
    with ThreadPoolExecutor(len(delays)) as pool:  # the runs at once: most of each is Python start-up
        runs = list(pool.map(interrupted, range(len(delays)), delays))
    for delay, (returncode, stderr) in zip(delays, runs):
        assert returncode == 130, (delay, returncode, stderr)
        assert "Traceback" not in stderr and "Error" not in stderr, (delay, stderr)
        assert len(stderr.strip().splitlines()) == 1, (delay, stderr)


# ----------------------------------------------------------------------------------------------
# counts on the command line: one argparse line, before anything runs

_EVAL = ["--checkpoint", "c.pt", "--dataset", "synthetic", "--data-root", "d", "--output", "r.json"]
BAD_COUNTS = [
    (["evaluate", *_EVAL, "--batch-size", "0"], "--batch-size", "at least 1"),
    (["evaluate", *_EVAL, "--workers", "-1"], "--workers", "0 (in this process) or more"),
    (["evaluate-scoremaps", "--metadata-dir", "m", "--scoremap-dir", "s", "--workers", "-3"], "--workers", "or more"),
    (["compare", "a.json", "b.json", "--decimals", "-1"], "--decimals", "invalid choice"),
    (["figure", "per-class", "a.json", "--out", "f.png", "--max-classes", "0"], "--max-classes", "at least 1"),
    (
        [
            "figure",
            "grid",
            "--checkpoint",
            "c.pt",
            "--dataset",
            "synthetic",
            "--data-root",
            "d",
            "--out",
            "f.png",
            "--images",
            "0",
        ],
        "--images",
        "at least 1",
    ),
    (
        ["zoo", "study", "imagenet-resnet50", "--data-root", "d", "--out", "o", "--batch-size", "0"],
        "--batch-size",
        "at least 1",
    ),
    (
        [
            "robustness",
            "--checkpoint",
            "c.pt",
            "--occlusion",
            "center",
            "--dataset",
            "synthetic",
            "--data-root",
            "d",
            "--steps",
            "0",
        ],
        "--steps",
        "at least 1",
    ),
    (["demo", "--parallel", "0"], "--parallel", "at least 1"),
    (["demo", "--seeds", "0"], "--seeds", "at least 1"),
    (["evaluate", *_EVAL, "--batch-size", "many"], "--batch-size", "whole number"),
    # --sigma nan / 5 / -1 ran and wrote a result (GT-known loc 0.00)
    (["evaluate", *_EVAL, "--sigma", "nan"], "--sigma", "in [0, 1)"),
    (["evaluate-scoremaps", "--metadata-dir", "m", "--scoremap-dir", "s", "--sigma", "5"], "--sigma", "in [0, 1)"),
    (["evaluate", *_EVAL, "--sigma", "-1"], "--sigma", "in [0, 1)"),
    # 0.5 was read as 0.5 % (MaxBoxAcc@0.5 100.00)
    (["evaluate", *_EVAL, "--iou-thresholds", "0.5"], "--iou-thresholds", "did you mean 50?"),
]


@pytest.mark.parametrize("argv, flag, why", BAD_COUNTS, ids=[f"{a[0]}-{f}-{a[-1]}" for a, f, _ in BAD_COUNTS])
def test_a_bad_count_is_one_argparse_line(argv, flag, why, tmp_path, monkeypatch, capsys):
    # --batch-size 0 reached the DataLoader (a ValueError traceback); demo --parallel 0 looped forever
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"wsol {argv[0]}") and f"argument {flag}" in last and why in last, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_demo_checks_the_benchmark_before_starting(tmp_path, capsys):
    # the data stage's error came back as a CalledProcessError traceback after the child's line
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--classes", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "wsol demo: error: --classes must be at least 2", err
    assert not out.exists()


def test_evaluate_scoremaps_workers_0_runs_in_this_process_like_evaluate(meta, scoremaps, tmp_path):
    # `evaluate --workers 0` meant "in this process" while evaluate-scoremaps refused 0
    results = {}
    for w in ("0", "1", "2"):
        out = tmp_path / f"w{w}.json"
        assert (
            _scoremaps_cli(["--metadata-dir", str(meta), "--scoremap-dir", str(scoremaps), "--output", str(out)], w)
            == 0
        )
        res = json.loads(out.read_text())
        results[w] = {k: res.get(k) for k in METRICS}
    assert results["0"] == results["1"] == results["2"]


def test_ctrl_c_while_the_command_is_imported_is_one_line(monkeypatch, capsys):
    # Ctrl-C 0.1 s after start landed in the command module's imports: a KeyboardInterrupt traceback
    import wsol.cli

    def importing(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(wsol.cli, "build_parser", importing)
    try:
        rc = main(["evaluate-scoremaps", "--metadata-dir", "m", "--scoremap-dir", "s"])
    except KeyboardInterrupt:  # would stop the whole pytest session
        pytest.fail("KeyboardInterrupt escaped wsol.cli.main")
    assert rc == 130
    assert capsys.readouterr().err == "wsol evaluate-scoremaps: interrupted\n"
