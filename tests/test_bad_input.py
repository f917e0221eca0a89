"""Bad input through the real CLI (issue 7, item 1): one test per kind of bad input.

Every user error exits with status 2 (``wsol data check`` lists problems and exits 1), prints one
message on stderr (``wsol <cmd>: error: ...``; a list of annotation problems adds one indented
line per problem) that names the file / line / key / image at fault, and never a Python
traceback; with ``--debug`` the exception (and so the traceback) comes through. Images of other
modes are converted, not refused; ``--skip-bad`` turns unreadable images into counted skips.

Data: copies of the ``tiny_synth`` tree (CUB layout, 3 classes, 18 test images of 64 px) damaged
in ``tmp_path``, and wsolevaluation metadata folders written by hand for the same images.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cam.errors import CAMInputError
from wsol.checkpoints import save_checkpoint
from wsol.cli import main
from wsol.errors import UserError
from wsol.models import create_model

REPO = Path(__file__).resolve().parents[1]
FIRST_TEST = "001.hue000/test_0000.png"  # the first test image: images.txt line 43 (ids 1..42 are train/val)
FIRST_TEST_LINE = 43


# ----------------------------------------------------------------------------------------------
# helpers


def _evaluate(args: list[str]) -> int:
    return main(["evaluate", "--no-progress", "--device", "cpu", "--workers", "0", *args])


def _user_error(capsys, rc: int, *needles: str, cmd: str = "evaluate", lines: int = 1) -> str:
    """Status 2, no traceback, one error message naming every needle: one line, or (a list of
    ``lines - 1`` annotation problems) a header and one indented line per problem."""
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    got = err.strip().splitlines()
    assert got and got[0].startswith(f"wsol {cmd}: error: "), err
    assert len(got) == lines and all(ln.startswith("  ") for ln in got[1:]), err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    return err


def _set_line(path: Path, lineno: int, text: str | None) -> None:
    """Replace line ``lineno`` (1-based) of ``path``; ``None`` deletes it."""
    lines = path.read_text().splitlines()
    if text is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _append(path: Path, text: str) -> int:
    """Append a line; returns its 1-based number."""
    lines = path.read_text().splitlines() + [text]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


@pytest.fixture
def data(tiny_synth, tmp_path) -> Path:
    """A private copy of the tiny synthetic tree, to damage."""
    root = tmp_path / "data"
    shutil.copytree(tiny_synth, root)
    return root


def _data_args(root: Path) -> list[str]:
    return ["--dataset", "synthetic", "--data-root", str(root)]


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


@pytest.fixture
def meta(tiny_synth, tmp_path) -> Path:
    """wsolevaluation metadata of the tiny test split; images under ``tiny_synth / "images"``."""
    folder = tmp_path / "meta"
    folder.mkdir()
    recs = _test_records(tiny_synth)
    (folder / "image_ids.txt").write_text("".join(f"{i}\n" for i, _, _ in recs))
    (folder / "class_labels.txt").write_text("".join(f"{i},{lab}\n" for i, lab, _ in recs))
    (folder / "image_sizes.txt").write_text("".join(f"{i},64,64\n" for i, _, _ in recs))
    (folder / "localization.txt").write_text("".join(f"{i},{b[0]},{b[1]},{b[2]},{b[3]}\n" for i, _, b in recs))
    return folder


def _check(capsys, args: list[str]) -> dict:
    """``wsol data check``: must list problems (exit 1) as JSON."""
    rc = main(["data", "check", *args])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1 and report["problems"], report
    return report


def _listed(report: dict, file: str, line: int | None, text: str) -> None:
    hits = [
        p for p in report["problems"] if Path(p["file"]).name == file and p["line"] == line and text in p["message"]
    ]
    assert hits, f"no problem {file}:{line} ~ {text!r} in {report['problems']}"


# ----------------------------------------------------------------------------------------------
# images


def _as_jpeg(data: Path, rel: str, lineno: int) -> Path:
    """Re-encode image ``rel`` as JPEG under a .jpg name; images.txt line ``lineno`` follows."""
    png = data / "images" / rel
    jpg = png.with_suffix(".jpg")
    Image.open(png).convert("RGB").save(jpg, quality=95)
    png.unlink()
    _set_line(data / "images.txt", lineno, f"{lineno} {Path(rel).with_suffix('.jpg').as_posix()}")
    return jpg


@pytest.mark.parametrize("damage", ["truncated", "garbage", "bad_header"])
def test_corrupt_jpeg_names_the_file_and_annotation_line(damage, data, tiny_checkpoint, tmp_path, capsys):
    jpg = _as_jpeg(data, FIRST_TEST, FIRST_TEST_LINE)
    raw = jpg.read_bytes()
    if damage == "truncated":
        jpg.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        jpg.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    else:  # a JPEG start marker followed by nonsense
        jpg.write_bytes(raw[:2] + b"\x00" * 200)
    rc = _evaluate(["--checkpoint", str(tiny_checkpoint), *_data_args(data), "--output", str(tmp_path / "r.json")])
    _user_error(capsys, rc, "cannot read image", str(jpg), f"images.txt:{FIRST_TEST_LINE}")
    assert not (tmp_path / "r.json").exists()
    # --debug: the exception (hence the traceback) comes through
    with pytest.raises(UserError, match="test_0000.jpg"):
        main(
            [
                "evaluate",
                "--debug",
                "--no-progress",
                "--device",
                "cpu",
                "--workers",
                "0",
                "--checkpoint",
                str(tiny_checkpoint),
                *_data_args(data),
                "--output",
                str(tmp_path / "d.json"),
            ]
        )


def test_missing_image_names_the_file_and_annotation_line(data, tiny_checkpoint, tmp_path, capsys):
    victim = data / "images" / "002.hue120" / "test_0004.png"
    lineno = next(
        i
        for i, ln in enumerate((data / "images.txt").read_text().splitlines(), 1)
        if ln.endswith(" 002.hue120/test_0004.png")
    )
    victim.unlink()
    rc = _evaluate(["--checkpoint", str(tiny_checkpoint), *_data_args(data), "--output", str(tmp_path / "r.json")])
    _user_error(capsys, rc, str(victim), "does not exist", f"images.txt:{lineno}")
    # data check lists it too
    report = _check(capsys, ["--format", "synthetic", "--root", str(data)])
    _listed(report, "images.txt", lineno, "does not exist")
    # spelled as in evaluate (--dataset / --data-root): the same report
    assert _check(capsys, _data_args(data)) == report


def test_greyscale_cmyk_rgba_palette_and_16bit_images_are_converted(data, tiny_checkpoint, tmp_path):
    """Other modes are converted to 8-bit RGB, and give the same numbers as their RGB equivalent."""
    rng_ids = [
        "001.hue000/test_0001.png",
        "001.hue000/test_0002.png",
        "002.hue120/test_0000.png",
        "002.hue120/test_0001.png",
        "003.hue240/test_0000.png",
        "003.hue240/test_0001.png",
    ]
    ref = tmp_path / "ref"  # the same tree where each changed image is its exact RGB conversion
    shutil.copytree(data, ref)
    lines = (data / "images.txt").read_text().splitlines()
    line_of = {ln.split()[1]: i for i, ln in enumerate(lines, 1)}
    for mode, rel in zip(["L", "LA", "RGBA", "P", "I;16", "CMYK"], rng_ids):
        path = data / "images" / rel
        rgb = Image.open(path).convert("RGB")
        if mode == "I;16":
            grey = np.asarray(rgb.convert("L"), dtype=np.uint16)
            Image.fromarray(grey * 257).save(path)  # a 16-bit PNG that reads back as `grey`
            assert Image.open(path).mode.startswith("I")
            expected = Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")
        elif mode == "CMYK":
            cmyk = rgb.convert("CMYK")
            tif = path.with_suffix(".tiff")
            cmyk.save(tif)  # lossless CMYK
            path.unlink()
            new_rel = Path(rel).with_suffix(".tiff").as_posix()
            _set_line(data / "images.txt", line_of[rel], f"{line_of[rel]} {new_rel}")
            expected = cmyk.convert("RGB")
        else:
            converted = rgb.convert(mode)
            converted.save(path)
            expected = Image.open(path).convert("RGB")
        expected.save(ref / "images" / rel)
    common = ["--checkpoint", str(tiny_checkpoint), "--batch-size", "18"]
    assert _evaluate([*common, *_data_args(data), "--output", str(tmp_path / "modes.json")]) == 0
    assert _evaluate([*common, *_data_args(ref), "--output", str(tmp_path / "ref.json")]) == 0
    got, want = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("modes", "ref"))
    assert got["num_images"] == 18 and got["num_skipped"] == 0
    for key in ("top1_cls", "MaxBoxAcc", "MaxBoxAccV2", "PxAP", "gt_known_loc"):
        assert got[key] == want[key], key


# ----------------------------------------------------------------------------------------------
# annotations: CUB raw files (the synthetic tree uses the CUB layout) and wsolevaluation metadata

# (case, file, how the line of the first test image (id 43, line 43 of every per-image file) changes,
#  the line reported, words of the message, lines of the error: 1, or a header + one per problem)
CUB_CASES = [
    ("zero_area_box", "bounding_boxes.txt", "43 10.0 12.0 0.0 20.0", 43, "zero-area box", 1),
    ("negative_box", "bounding_boxes.txt", "43 10.0 12.0 -3.0 20.0", 43, "negative", 1),
    ("malformed_box", "bounding_boxes.txt", "43 10.0 12.0 twenty 20.0", 43, "expected numbers", 1),
    # the malformed line, and image 43 left without a label
    ("malformed_line", "image_class_labels.txt", "43", 43, "expected '<image_id> <class_number>'", 3),
    ("label_too_large", "image_class_labels.txt", "43 4", 43, "out of range 1..3", 1),
    ("label_zero", "image_class_labels.txt", "43 0", 43, "out of range 1..3", 1),
    ("duplicate_image_id", "images.txt", "43 001.hue000/test_0000.png", 61, "duplicate image number 43", 1),
]


@pytest.mark.parametrize("case,file,text,line,words,nlines", CUB_CASES, ids=[c[0] for c in CUB_CASES])
def test_bad_cub_annotation_is_listed_and_refused(
    case, file, text, line, words, nlines, data, tiny_checkpoint, tmp_path, capsys
):
    if case == "duplicate_image_id":
        _append(data / file, text)
    else:
        _set_line(data / file, 43, text)
    report = _check(capsys, ["--format", "synthetic", "--root", str(data), "--annotations-only"])
    _listed(report, file, line, words)
    rc = _evaluate(["--checkpoint", str(tiny_checkpoint), *_data_args(data), "--output", str(tmp_path / "r.json")])
    _user_error(capsys, rc, f"{file}:{line}", words, lines=nlines)


def test_duplicate_image_path_in_cub_files(data, tiny_checkpoint, tmp_path, capsys):
    """Two image numbers naming the same file would count that image twice."""
    for name, text in [
        ("images.txt", "61 001.hue000/test_0000.png"),
        ("image_class_labels.txt", "61 1"),
        ("synthetic_split.txt", "61 test"),
        ("train_test_split.txt", "61 0"),
        ("bounding_boxes.txt", "61 5.0 5.0 10.0 10.0"),
    ]:
        _append(data / name, text)
    report = _check(capsys, ["--format", "synthetic", "--root", str(data), "--annotations-only"])
    _listed(report, "images.txt", 61, "001.hue000/test_0000.png")
    rc = _evaluate(["--checkpoint", str(tiny_checkpoint), *_data_args(data), "--output", str(tmp_path / "r.json")])
    _user_error(capsys, rc, "images.txt:61", "001.hue000/test_0000.png")


def test_box_outside_the_image_cub(data, tiny_checkpoint, tmp_path, capsys):
    """CUB files do not record image sizes: the box is checked against the image when it is read."""
    _set_line(data / "bounding_boxes.txt", 43, "43 30.0 10.0 50.0 20.0")  # x1 = 80 in a 64 px image
    report = _check(capsys, ["--format", "synthetic", "--root", str(data)])
    _listed(report, "bounding_boxes.txt", 43, "outside the 64x64 image")
    rc = _evaluate(["--checkpoint", str(tiny_checkpoint), *_data_args(data), "--output", str(tmp_path / "r.json")])
    _user_error(capsys, rc, f"bounding_boxes.txt:{FIRST_TEST_LINE}", FIRST_TEST, "(30, 10, 80, 30)")


def _wsoleval_args(tiny_synth: Path, meta: Path) -> list[str]:
    return ["--dataset", "wsolevaluation", "--data-root", str(tiny_synth / "images"), "--metadata-dir", str(meta)]


def _edit_meta(meta: Path, file: str, line: int, make) -> None:
    """Replace line ``line`` of ``meta / file`` by ``make(image id of that line)``."""
    lines = (meta / file).read_text().splitlines()
    lines[line - 1] = make(lines[line - 1].split(",")[0])
    (meta / file).write_text("\n".join(lines) + "\n")


# (case, file, line changed, new line from the image id (None: append the first id again),
#  line reported, words, lines of the error)
META_CASES = [
    # inclusive boxes: x1 = x0 - 1 is zero width ((x1 - x0 + 1) = 0)
    (
        "zero_area_box",
        "localization.txt",
        2,
        lambda i: f"{i},10,10,9,20",
        2,
        "invalid inclusive box (10, 10, 9, 20)",
        1,
    ),
    ("box_outside_image", "localization.txt", 3, lambda i: f"{i},0,0,64,10", 3, "outside the recorded 64x64", 1),
    ("duplicate_image_id", "image_ids.txt", None, None, 19, "duplicate image id", 1),
    # the malformed line, and its image left without a box / a label
    ("malformed_line", "localization.txt", 4, lambda i: f"{i},1,2,3", 4, "expected 5 comma-separated fields", 3),
    ("malformed_label", "class_labels.txt", 5, lambda i: f"{i},one", 5, "expected integers", 3),
    ("label_negative", "class_labels.txt", 6, lambda i: f"{i},-1", 6, "negative", 1),
]


@pytest.mark.parametrize("case,file,line,make,reported,words,nlines", META_CASES, ids=[c[0] for c in META_CASES])
def test_bad_wsolevaluation_metadata_is_listed_and_refused(
    case, file, line, make, reported, words, nlines, meta, tiny_synth, tiny_checkpoint, tmp_path, capsys
):
    if make is None:
        _append(meta / file, (meta / file).read_text().splitlines()[0])
    else:
        _edit_meta(meta, file, line, make)
    report = _check(
        capsys,
        [
            "--format",
            "wsolevaluation",
            "--root",
            str(tiny_synth / "images"),
            "--metadata-dir",
            str(meta),
            "--annotations-only",
        ],
    )
    _listed(report, file, reported, words)
    rc = _evaluate(
        ["--checkpoint", str(tiny_checkpoint), *_wsoleval_args(tiny_synth, meta), "--output", str(tmp_path / "r.json")]
    )
    _user_error(capsys, rc, f"{file}:{reported}", words, lines=nlines)


def test_wsolevaluation_label_beyond_the_classes(meta, tiny_synth, tiny_checkpoint, tmp_path, capsys):
    """The metadata does not declare a class count: a label of 7 on 3-class data is caught by
    ``data check --num-classes`` and by ``evaluate`` against the checkpoint's classifier."""
    _edit_meta(meta, "class_labels.txt", 5, lambda i: f"{i},7")
    victim = (meta / "image_ids.txt").read_text().splitlines()[4]
    report = _check(
        capsys,
        [
            "--format",
            "wsolevaluation",
            "--root",
            str(tiny_synth / "images"),
            "--metadata-dir",
            str(meta),
            "--annotations-only",
            "--num-classes",
            "3",
        ],
    )
    _listed(report, "class_labels.txt", 5, "label 7")
    rc = _evaluate(
        ["--checkpoint", str(tiny_checkpoint), *_wsoleval_args(tiny_synth, meta), "--output", str(tmp_path / "r.json")]
    )
    _user_error(capsys, rc, "label 7", victim, "class_labels.txt:5", "3 outputs")


# ----------------------------------------------------------------------------------------------
# score maps (wsol evaluate-scoremaps)


@pytest.fixture
def scoremaps(meta, tmp_path) -> Path:
    """Valid random 64x64 float32 maps in [0, 1] for every image of ``meta``."""
    root = tmp_path / "maps"
    rng = np.random.default_rng(0)
    for iid in (meta / "image_ids.txt").read_text().splitlines():
        path = root / f"{iid}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, rng.random((64, 64), dtype=np.float32))
    return root


def _bad_map(kind: str) -> np.ndarray:
    m = np.random.default_rng(1).random((64, 64))
    if kind == "nan":
        m[3, 4] = np.nan
    elif kind == "inf":
        m[0, 0] = np.inf
    elif kind == "minus_inf":
        m[5, 5] = -np.inf
    elif kind == "three_d":
        m = m[None]
    elif kind == "rgb_like":
        m = np.stack([m] * 3, axis=-1)
    elif kind == "empty":
        m = m[:0]
    elif kind == "uint8":
        m = (m * 255).astype(np.uint8)
    elif kind == "int64":
        m = (m > 0.5).astype(np.int64)
    elif kind == "bool":
        m = m > 0.5
    elif kind == "out_of_range":
        m = m * 255  # float, but 0..255
    return m


MAP_CASES = {
    "nan": "NaN",
    "inf": "inf",
    "minus_inf": "inf",
    "three_d": "2-D",
    "rgb_like": "2-D",
    "empty": "empty",
    "uint8": "dtype uint8",
    "int64": "dtype int64",
    "bool": "dtype bool",
    "out_of_range": "[0, 1]",
    "object": "not a readable .npy",
    "corrupt": "not a readable .npy",
    "zero_bytes": "not a readable .npy array: it is empty",  # was an EOFError traceback
    "text": "does not start with the .npy magic bytes",  # was "contains pickled (object) data"
    "npz": "is an .npz archive (numpy.savez), not an .npy array",  # was a shape message
    "missing": "missing",
}


def test_a_missing_metadata_folder_is_named_once(scoremaps, tmp_path, capsys):
    missing = tmp_path / "no_such_metadata"
    args = ["evaluate-scoremaps", "--metadata-dir", str(missing), "--scoremap-dir", str(scoremaps)]
    rc = main([*args, "--no-progress", "--output", str(tmp_path / "r.json")])
    err = _user_error(capsys, rc, "metadata folder does not exist", cmd="evaluate-scoremaps")
    assert err.count(str(missing)) == 1, err


@pytest.mark.parametrize("kind", list(MAP_CASES))
def test_bad_scoremap_names_the_image(kind, meta, scoremaps, tmp_path, capsys):
    victim = (meta / "image_ids.txt").read_text().splitlines()[2]
    path = scoremaps / f"{victim}.npy"
    if kind == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "corrupt":
        path.write_bytes(path.read_bytes()[:100])
    elif kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("0.1 0.2\n0.3 0.4\n")
    elif kind == "missing":
        path.unlink()
    elif kind == "npz":
        with open(path, "wb") as f:  # np.savez to a file object keeps the .npy name
            np.savez(f, cam=np.zeros((4, 4), np.float32))
    else:
        np.save(path, _bad_map(kind))
    rc = main(
        [
            "evaluate-scoremaps",
            "--metadata-dir",
            str(meta),
            "--scoremap-dir",
            str(scoremaps),
            "--workers",
            "1",
            "--no-progress",
            "--output",
            str(tmp_path / "r.json"),
        ]
    )
    _user_error(capsys, rc, victim, MAP_CASES[kind], cmd="evaluate-scoremaps", lines=2 if kind == "missing" else 1)
    assert not (tmp_path / "r.json").exists()


def test_scoremap_error_traceback_only_with_debug(meta, scoremaps, tmp_path):
    """The real stderr of a real process (evaluate-scoremaps starts without torch: cheap)."""
    victim = (meta / "image_ids.txt").read_text().splitlines()[0]
    np.save(scoremaps / f"{victim}.npy", _bad_map("nan"))
    cmd = [
        sys.executable,
        "-m",
        "wsol",
        "evaluate-scoremaps",
        "--metadata-dir",
        str(meta),
        "--scoremap-dir",
        str(scoremaps),
        "--workers",
        "1",
        "--no-progress",
        "--output",
        str(tmp_path / "r.json"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    plain = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.count("\n") == 1 and victim in plain.stderr and "NaN" in plain.stderr
    debug = subprocess.run([*cmd, "--debug"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and victim in debug.stderr


# ----------------------------------------------------------------------------------------------
# CAMs and checkpoints


def _small(classes: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("small_cnn", classes)


@pytest.mark.parametrize("where", ["all_weights", "classifier_bias"])
def test_nan_weights_give_an_error_naming_the_image(where, tiny_synth, tmp_path, capsys):
    """NaN CAMs (every weight NaN) or NaN logits with finite CAMs (a NaN bias, which CAMs ignore)
    must stop the run naming the image, not give a silently wrong accuracy."""
    model = _small(3)
    with torch.no_grad():
        params = dict(model.named_parameters())
        if where == "all_weights":
            for p in params.values():
                p.fill_(float("nan"))
        else:
            bias = [n for n in params if n.endswith("bias")][-1]  # the classifier's bias
            params[bias][1] = float("nan")
    ckpt = save_checkpoint(tmp_path / "nan.pt", model)
    rc = _evaluate(
        ["--checkpoint", str(ckpt), *_data_args(tiny_synth), "--batch-size", "4", "--output", str(tmp_path / "r.json")]
    )
    _user_error(capsys, rc, FIRST_TEST, "not finite")
    with pytest.raises((CAMInputError, UserError), match="test_0000.png"):
        main(
            [
                "evaluate",
                "--debug",
                "--no-progress",
                "--device",
                "cpu",
                "--workers",
                "0",
                "--checkpoint",
                str(ckpt),
                *_data_args(tiny_synth),
                "--output",
                str(tmp_path / "d.json"),
            ]
        )


def test_checkpoint_of_the_wrong_architecture(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    rc = _evaluate(
        [
            "--checkpoint",
            str(tiny_checkpoint),
            "--arch",
            "vgg16",
            *_data_args(tiny_synth),
            "--output",
            str(tmp_path / "r.json"),
        ]
    )
    _user_error(capsys, rc, str(tiny_checkpoint), "'vgg16'", "missing key", "small_cnn")


def test_checkpoint_of_the_wrong_class_count(tiny_synth, tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "two.pt", _small(2))
    rc = _evaluate(["--checkpoint", str(ckpt), *_data_args(tiny_synth), "--output", str(tmp_path / "r.json")])
    _user_error(capsys, rc, str(ckpt), "3 classes", "2 outputs")


@pytest.mark.parametrize("content", [b"garbage\n", bytes(range(128, 228))], ids=["text", "binary"])
def test_a_file_that_is_no_checkpoint_gets_no_weights_only_advice(content, tiny_synth, tmp_path, capsys):
    # torch's refusal advises weights_only=False, which cannot help a file that is no pickle
    ckpt = tmp_path / "not_a_checkpoint.pt"
    ckpt.write_bytes(content)
    rc = _evaluate(["--checkpoint", str(ckpt), *_data_args(tiny_synth), "--output", str(tmp_path / "r.json")])
    err = _user_error(capsys, rc, str(ckpt), "truncated or corrupt", "Unsupported operand")
    assert "weights_only" not in err and "trusted source" not in err, err
    # the real stderr: torch's warning about the pickle protocol of the failed load is not printed
    cmd = [sys.executable, "-m", "wsol", "evaluate", "--device", "cpu", "--checkpoint", str(ckpt)]
    cmd += [*_data_args(tiny_synth), "--output", str(tmp_path / "r.json")]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("wsol evaluate: error: ") and "Unsupported operand" in proc.stderr, proc.stderr


def test_truncated_checkpoint(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    ckpt = tmp_path / "cut.pt"
    raw = tiny_checkpoint.read_bytes()
    ckpt.write_bytes(raw[: len(raw) // 2])
    rc = _evaluate(["--checkpoint", str(ckpt), *_data_args(tiny_synth), "--output", str(tmp_path / "r.json")])
    _user_error(capsys, rc, str(ckpt), "truncated or corrupt")
    with pytest.raises(UserError, match="cut.pt"):
        main(
            [
                "evaluate",
                "--debug",
                "--checkpoint",
                str(ckpt),
                *_data_args(tiny_synth),
                "--output",
                str(tmp_path / "d.json"),
            ]
        )


def _plant(marker: str) -> None:
    """What the malicious pickle below would run on load."""
    Path(marker).write_text("code ran")


class _Payload:
    """An object whose unpickling calls :func:`_plant`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_plant, (self.marker,))


def test_pickle_checkpoint_that_would_run_code_is_refused(tiny_synth, tmp_path, capsys):
    marker = tmp_path / "pwned.txt"
    ckpt = tmp_path / "evil.pt"
    torch.save({"state_dict": _small(3).state_dict(), "extra": _Payload(str(marker))}, ckpt)
    rc = _evaluate(["--checkpoint", str(ckpt), *_data_args(tiny_synth), "--output", str(tmp_path / "r.json")])
    _user_error(capsys, rc, str(ckpt), "refused to load", "arbitrary code", "_plant")
    assert not marker.exists()  # nothing was unpickled


# ----------------------------------------------------------------------------------------------
# --skip-bad


def test_skip_bad_counts_and_lists_a_missing_file(data, tiny_checkpoint, tmp_path, capsys):
    (data / "images" / "003.hue240" / "test_0005.png").unlink()
    out = tmp_path / "r.json"
    assert (
        _evaluate(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                *_data_args(data),
                "--skip-bad",
                "--batch-size",
                "4",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert res["num_skipped"] == 1 and res["num_images"] == 17
    (skip,) = res["skipped"]
    assert skip["image_id"] == "003.hue240/test_0005.png" and "does not exist" in skip["reason"]
    assert "images.txt:60" in skip["reason"]
    ids = [r["image_id"] for r in csv.DictReader(open(tmp_path / res["per_image"]))]
    assert len(ids) == 17 and skip["image_id"] not in ids
    assert "skipped: 1" in capsys.readouterr().out
