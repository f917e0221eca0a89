"""eval.metadata: the real wsolevaluation files and hand-made broken ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval.errors import InputError
from eval.metadata import read_split


@pytest.fixture(scope="module")
def meta_root(shared_dir: Path) -> Path:
    root = shared_dir / "data" / "wsolevaluation_metadata"
    assert root.is_dir(), f"wsolevaluation metadata {root} is missing from the shared folder"
    return root


@pytest.fixture(scope="module")
def ilsvrc_test(meta_root):
    return read_split(meta_root / "ILSVRC/test")


@pytest.mark.parametrize(
    "split, images, boxes",
    [
        ("CUB/train", 5994, 5994),
        ("CUB/val", 1000, 1000),
        ("CUB/test", 5794, 5794),
        ("ILSVRC/val", 10000, 18532),
        ("ILSVRC/test", 50000, 80477),
    ],
)
def test_real_box_splits(meta_root, ilsvrc_test, split, images, boxes):
    m = ilsvrc_test if split == "ILSVRC/test" else read_split(meta_root / split)
    assert m.kind == "boxes"
    assert m.problems == []
    assert len(m.image_ids) == images == len(m.labels) == len(m.sizes) == len(m.boxes)
    assert m.num_boxes == boxes
    for b in m.boxes.values():
        assert b.dtype == np.int64 and b.ndim == 2 and b.shape[1] == 4


def test_real_values(meta_root, ilsvrc_test):
    m = ilsvrc_test
    assert m.image_ids[0] == "val/ILSVRC2012_val_00000001.JPEG"
    assert m.labels["val/ILSVRC2012_val_00000001.JPEG"] == 65  # the sea snake, sorted-WNID order
    assert m.sizes["val/ILSVRC2012_val_00000001.JPEG"] == (500, 375)
    np.testing.assert_array_equal(m.boxes["val/ILSVRC2012_val_00000002.JPEG"], [[45, 49, 499, 162], [2, 69, 437, 207]])
    assert m.num_classes == 1000
    cub = read_split(meta_root / "CUB/test")
    first = "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg"
    assert cub.image_ids[0] == first and cub.labels[first] == 0
    np.testing.assert_array_equal(cub.boxes[first], [[60, 27, 385, 331]])
    assert cub.num_classes == 200


@pytest.mark.parametrize("split, images, masks", [("OpenImages/val", 2500, 3854), ("OpenImages/test", 5000, 7632)])
def test_real_mask_splits(meta_root, split, images, masks):
    m = read_split(meta_root / split)
    assert m.kind == "masks" and m.problems == []
    assert len(m.image_ids) == images and m.num_masks == masks
    assert m.sizes == {}  # image_sizes.txt is empty upstream: not a problem for masks
    assert all(m.ignore[i] is not None for i in m.image_ids)
    if split.endswith("test"):
        iid = "test/01226z/7af766bd43da900b.jpg"
        assert m.masks[iid] == [
            "test/01226z/7af766bd43da900b_m01226z_6554d965.png",
            "test/01226z/7af766bd43da900b_m01226z_8856c605.png",
        ]
        assert m.ignore[iid] == "test/01226z/7af766bd43da900b_ignore.png"


def test_real_openimages_train_has_no_localization(meta_root):
    m = read_split(meta_root / "OpenImages/train")
    assert m.kind == "none" and m.problems == [] and len(m.image_ids) == 29819


def _write(d: Path, **files: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / f"{name}.txt").write_bytes(text.encode())
    return d


def test_crlf_trailing_newline_and_multiple_boxes(tmp_path):
    d = _write(
        tmp_path / "m",
        image_ids="a.jpg\r\nb.jpg\r\n",
        class_labels="a.jpg,3\r\nb.jpg,0\r\n",
        image_sizes="a.jpg,10,20\r\nb.jpg,5,5\r\n",
        localization="a.jpg,1,2,4,3\r\nb.jpg,0,0,4,4\r\na.jpg,0,0,9,19\r\n",
    )
    m = read_split(d)
    assert m.image_ids == ["a.jpg", "b.jpg"] and m.labels == {"a.jpg": 3, "b.jpg": 0}
    np.testing.assert_array_equal(m.boxes["a.jpg"], [[1, 2, 4, 3], [0, 0, 9, 19]])
    assert m.sizes["a.jpg"] == (10, 20) and m.num_classes == 4


def test_masks_without_sizes(tmp_path):
    d = _write(
        tmp_path / "m",
        image_ids="x/a.jpg",
        class_labels="x/a.jpg,0",
        image_sizes="",
        localization="x/a.jpg,x/a_m1.png,x/a_ignore.png\nx/a.jpg,x/a_m2.png,",
    )
    m = read_split(d)
    assert m.kind == "masks" and m.masks["x/a.jpg"] == ["x/a_m1.png", "x/a_m2.png"]
    assert m.ignore["x/a.jpg"] == "x/a_ignore.png"


def test_every_problem_is_listed(tmp_path):
    d = _write(
        tmp_path / "m",
        image_ids="a.jpg\nb.jpg\nb.jpg\nc.jpg",
        class_labels="a.jpg,1\nb.jpg,x\nzzz.jpg,0\nc.jpg,-1\nc.jpg",
        image_sizes="a.jpg,10,10\nb.jpg,10,10\nc.jpg,10,10",
        localization="a.jpg,5,0,4,3\nb.jpg,0,0,10,9\nc.jpg,-1,0,3,3\nq.jpg,0,0,1,1\nc.jpg,1,2,3",
    )
    m = read_split(d, strict=False)
    got = {(Path(p.file).name, p.line) for p in m.problems}
    assert ("image_ids.txt", 3) in got  # duplicate id
    assert ("class_labels.txt", 2) in got  # non-integer label
    assert ("class_labels.txt", 3) in got  # unknown id
    assert ("class_labels.txt", 4) in got  # negative label
    assert ("class_labels.txt", 5) in got  # wrong field count
    assert ("class_labels.txt", None) in got  # b.jpg is then left without a valid label
    for line in (1, 2, 3, 4, 5):
        assert ("localization.txt", line) in got
    msgs = {(Path(p.file).name, p.line): p.message for p in m.problems}
    assert "x1 < x0" in msgs[("localization.txt", 1)] or "x0 <= x1" in msgs[("localization.txt", 1)]
    assert "rejected" in msgs[("localization.txt", 1)]
    assert "outside" in msgs[("localization.txt", 2)] and "not clipped" in msgs[("localization.txt", 2)]
    assert "expected 5" in msgs[("localization.txt", 5)]
    assert "a.jpg" not in m.boxes and "b.jpg" not in m.boxes
    with pytest.raises(InputError, match=r"class_labels\.txt:2: expected integers"):
        read_split(d)


def test_strict_message_counts_problems(tmp_path):
    ids = "\n".join(f"i{k}.jpg" for k in range(30))
    d = _write(tmp_path / "m", image_ids=ids, class_labels="", image_sizes="", localization="")
    with pytest.raises(InputError) as err:
        read_split(d)
    assert "30 problem(s)" in str(err.value) and "and 20 more" in str(err.value)
    assert "'i0.jpg'" in str(err.value) and "has no valid label line" in str(err.value)


def test_missing_files_and_folder(tmp_path):
    m = read_split(tmp_path / "nope", strict=False)
    assert len(m.problems) == 1 and m.problems[0].line is None
    d = _write(tmp_path / "m", image_ids="a.jpg", localization="a.jpg,0,0,1,1")
    m = read_split(d, strict=False)
    names = {Path(p.file).name for p in m.problems}
    assert names == {"class_labels.txt", "image_sizes.txt"}
    assert any("missing" in p.message for p in m.problems)


def test_empty_lines_and_conflicting_ignore(tmp_path):
    d = _write(
        tmp_path / "m",
        image_ids="a.jpg\n\nb.jpg",
        class_labels="a.jpg,0\nb.jpg,0",
        image_sizes="",
        localization="a.jpg,m1.png,ign.png\na.jpg,m2.png,other.png\nb.jpg,,x.png",
    )
    m = read_split(d, strict=False)
    got = sorted((Path(p.file).name, p.line) for p in m.problems)
    assert ("image_ids.txt", 2) in got
    assert ("localization.txt", 2) in got  # conflicting ignore path
    assert ("localization.txt", 3) in got  # empty mask path
    assert m.ignore["a.jpg"] == "ign.png"


@pytest.mark.parametrize("split", ["CUB/val", "ILSVRC/val"])
def test_fast_path_equals_line_by_line_parser(meta_root, split, monkeypatch):
    import eval.metadata as md

    fast = read_split(meta_root / split)
    monkeypatch.setattr(md, "_fast_table", lambda lines, n: None)
    slow = read_split(meta_root / split)
    assert slow.image_ids == fast.image_ids and slow.labels == fast.labels and slow.sizes == fast.sizes
    assert slow.boxes.keys() == fast.boxes.keys()
    assert all(np.array_equal(slow.boxes[k], fast.boxes[k]) for k in fast.boxes)


def test_empty_split_is_a_problem(tmp_path):
    d = _write(tmp_path / "m", image_ids="", class_labels="", image_sizes="", localization="")
    m = read_split(d, strict=False)
    assert [(Path(p.file).name, p.line) for p in m.problems] == [("image_ids.txt", None)]
    assert "split is empty" in m.problems[0].message
    with pytest.raises(InputError, match="image_ids.txt: lists no image"):
        read_split(d)


def test_bom_crlf_and_no_final_newline_parse_like_clean_files(tmp_path):
    clean = {
        "image_ids": "a b/é.jpg\nc.jpg\n",
        "class_labels": "a b/é.jpg,1\nc.jpg,0\n",
        "image_sizes": "a b/é.jpg,10,20\nc.jpg,5,5\n",
        "localization": "a b/é.jpg,1,2,4,3\nc.jpg,0,0,4,4\n",
    }
    a = read_split(_write(tmp_path / "clean", **clean))
    dirty = {k: "\ufeff" + v.replace("\n", "\r\n").rstrip("\r\n") for k, v in clean.items()}
    b = read_split(_write(tmp_path / "dirty", **dirty))
    assert a.image_ids == b.image_ids == ["a b/é.jpg", "c.jpg"]
    assert a.labels == b.labels and a.sizes == b.sizes
    assert all(np.array_equal(a.boxes[k], b.boxes[k]) for k in a.boxes)
