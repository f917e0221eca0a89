"""QA findings on the wsolevaluation metadata parser: integers are read as written (the fast
parser clamped overflowing ones to the int64 maximum), labels are bounded by ``MAX_CLASSES``, and a
folder in a file's place is named as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.errors import InputError
from eval.metadata import read_split

MAX_CLASSES = 100_000  # eval.metadata.MAX_CLASSES (checked below)


def _write(d: Path, **files: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / f"{name}.txt").write_text(text)
    return d


def _clean(d: Path, *, sizes: str = "a.jpg,10,20\nb.jpg,5,5\n", boxes: str = "a.jpg,1,2,4,3\nb.jpg,0,0,4,4\n"):
    return _write(
        d, image_ids="a.jpg\nb.jpg\n", class_labels="a.jpg,3\nb.jpg,0\n", image_sizes=sizes, localization=boxes
    )


@pytest.mark.parametrize("width", ["99999999999999999999", "9223372036854775808", "-9223372036854775809"])
def test_an_integer_past_int64_is_refused_as_written(tmp_path, width):
    # a width 99999999999999999999 was read as 9223372036854775807 (np.fromstring clamps)
    d = _clean(tmp_path / "m", sizes=f"a.jpg,10,20\nb.jpg,{width},5\n")
    m = read_split(d, strict=False)
    assert "b.jpg" not in m.sizes and 2**63 - 1 not in {w for w, _ in m.sizes.values()}
    (p,) = [p for p in m.problems if p.line == 2]
    assert Path(p.file).name == "image_sizes.txt"
    assert p.message.startswith(f"width={width} does not fit a 64-bit integer")
    with pytest.raises(InputError, match=rf"image_sizes\.txt:2: width={width} does not fit"):
        read_split(d)


def test_the_largest_int64_is_read_exactly(tmp_path):
    d = _clean(tmp_path / "m", sizes=f"a.jpg,10,20\nb.jpg,{2**63 - 1},5\n")
    m = read_split(d)
    assert m.sizes["b.jpg"] == (2**63 - 1, 5)


def test_an_overflowing_box_coordinate_names_its_line(tmp_path):
    d = _clean(tmp_path / "m", boxes="a.jpg,1,2,4,3\nb.jpg,0,0,4,99999999999999999999\n")
    m = read_split(d, strict=False)
    assert [str(p).split(": ", 1)[1] for p in m.problems if p.line == 2] == [
        "y1=99999999999999999999 does not fit a 64-bit integer (in <image_id>,<x0>,<y0>,<x1>,<y1>); line skipped"
    ]


@pytest.mark.parametrize("label", [MAX_CLASSES, 10**8, 2**63 - 1])
def test_a_label_past_max_classes_is_refused_before_any_class_is_counted(tmp_path, label):
    from eval import metadata

    assert metadata.MAX_CLASSES == MAX_CLASSES
    d = _clean(tmp_path / "m")
    (d / "class_labels.txt").write_text(f"a.jpg,3\nb.jpg,{label}\n")
    m = read_split(d, strict=False)
    assert m.labels == {"a.jpg": 3} and m.num_classes == 4
    (p,) = m.problems
    assert (Path(p.file).name, p.line) == ("class_labels.txt", 2)
    assert f"label {label} of 'b.jpg' is too large" in p.message and f"at most {MAX_CLASSES} classes" in p.message


def test_a_folder_in_place_of_a_file_is_named_as_one(tmp_path):
    d = _clean(tmp_path / "m")
    for name in ("class_labels.txt", "image_sizes.txt"):
        (d / name).unlink()
        (d / name).mkdir()
    m = read_split(d, strict=False)
    folders = {Path(p.file).name for p in m.problems if p.message.startswith("is a folder, not a file")}
    assert folders == {"class_labels.txt", "image_sizes.txt"}
    assert not any("file is missing" in p.message for p in m.problems)
