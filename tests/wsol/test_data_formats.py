"""Tiny trees of every raw format, written here, read back; ``wsol data check`` on good and broken trees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsol.cli import main
from wsol.data import DATASETS, build_dataset, collate
from wsol.data.check import check_dataset
from wsol.errors import UserError


def _img(path: Path, w: int, h: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def write_cub(root: Path) -> Path:
    """3 images, 2 classes; image 3 is test. Sizes 40x30, 50x40, 30x30; segmentation for each."""
    cub = root / "CUB_200_2011"
    files = [("001.Red/r_1.jpg", 40, 30), ("001.Red/r_2.jpg", 50, 40), ("002.Blue/b_1.jpg", 30, 30)]
    for i, (rel, w, h) in enumerate(files):
        _img(cub / "images" / rel, w, h, i)
        seg = np.zeros((h, w), np.uint8)
        seg[5:10, 4:12] = 255
        (cub / "segmentations" / rel).with_suffix(".png").parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(seg).save((cub / "segmentations" / rel).with_suffix(".png"))
    (cub / "images.txt").write_text("".join(f"{i + 1} {f[0]}\n" for i, f in enumerate(files)))
    (cub / "classes.txt").write_text("1 001.Red\n2 002.Blue")  # no trailing newline
    (cub / "image_class_labels.txt").write_text("1 1\r\n2 1\r\n3 2\r\n")  # CRLF
    (cub / "train_test_split.txt").write_text("1 1\n2 1\n3 0\n")
    (cub / "bounding_boxes.txt").write_text("1 4.0 5.0 8.0 5.0\n2 0.0 0.0 49.0 39.0\n3 10.5 2.0 9.0 20.0\n")
    return cub


def write_imagenet(root: Path, *, csv: bool = False, class_folders: bool = False) -> Path:
    wnids = ["n002", "n001", "n003"]  # sorted order: n001=0, n002=1, n003=2
    for k, w in enumerate(wnids):
        _img(root / "train" / w / f"{w}_1.JPEG", 20, 16, k)
    vals = {
        "ILSVRC2012_val_00000001": ("n003", 32, 24, [[1, 2, 10, 12], [5, 5, 31, 23]]),
        "ILSVRC2012_val_00000002": ("n001", 20, 20, [[0, 0, 19, 19]]),
    }
    rows = ["ImageId,PredictionString"]
    for stem, (wnid, w, h, boxes) in vals.items():
        rel = f"val/{wnid}/{stem}.JPEG" if class_folders else f"val/{stem}.JPEG"
        _img(root / rel, w, h)
        if csv:
            rows.append(stem + "," + " ".join(f"{wnid} {' '.join(map(str, b))}" for b in boxes))
        else:
            objs = "".join(
                f"<object><name>{wnid}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
                for b in boxes
            )
            xml = (
                f"<annotation><filename>{stem}</filename><size><width>{w}</width><height>{h}</height>"
                f"<depth>3</depth></size>{objs}</annotation>"
            )
            d = root / "ILSVRC2012_bbox_val_v3" / "val"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{stem}.xml").write_text(xml)
    if csv:
        (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    return root


def write_wsoleval(root: Path, *, masks: bool = False) -> tuple[Path, Path]:
    data, meta = root / "dataset", root / "metadata" / "X" / "test"
    meta.mkdir(parents=True)
    ids = ["c/a.jpg", "c/b.png"]
    sizes = {"c/a.jpg": (10, 20), "c/b.png": (16, 8)}
    for i, iid in enumerate(ids):
        _img(data / iid, *sizes[iid], seed=i)
    (meta / "image_ids.txt").write_text("\n".join(ids))
    (meta / "class_labels.txt").write_text("c/a.jpg,0\nc/b.png,2")
    if masks:
        (meta / "image_sizes.txt").write_text("")
        for name, box in [
            ("c/a_m1.png", (0, 0, 4, 9)),
            ("c/a_m2.png", (6, 10, 9, 19)),
            ("c/b_m1.png", (0, 0, 7, 7)),
            ("c/a_ignore.png", (0, 0, 9, 19)),
            ("c/b_ignore.png", (0, 0, 0, 0)),
        ]:
            size = sizes["c/a.jpg" if "/a_" in name else "c/b.png"]
            m = np.zeros(size[::-1], np.uint8)
            m[box[1] : box[3] + 1, box[0] : box[2] + 1] = 255
            Image.fromarray(m).save(data / name)
        (meta / "localization.txt").write_text(
            "c/a.jpg,c/a_m1.png,c/a_ignore.png\nc/a.jpg,c/a_m2.png,\nc/b.png,c/b_m1.png,c/b_ignore.png"
        )
    else:
        (meta / "image_sizes.txt").write_text("c/a.jpg,10,20\nc/b.png,16,8\n")
        (meta / "localization.txt").write_text("c/a.jpg,1,2,4,3\nc/b.png,0,0,15,7\nc/b.png,2,2,3,3\n")
    return data, meta


def test_registry_names():
    assert DATASETS.names() == ["cub", "imagenet", "wsolevaluation", "synthetic"]
    with pytest.raises(UserError, match="choose from"):
        DATASETS.get("coco")


def test_cub_raw_tree(tmp_path):
    cub = write_cub(tmp_path)
    for root in (tmp_path, cub):  # the parent of CUB_200_2011 works too
        ds = build_dataset("cub", root, "train", size=32)
        assert len(ds) == 2 and ds.num_classes == 2 and ds.class_names == ["001.Red", "002.Blue"]
    r = ds.records[0]
    assert r.image_id == "001.Red/r_1.jpg" and r.label == 0
    assert r.boxes.tolist() == [[4, 5, 12, 10]]  # x1 = x + w (the wsolevaluation reading)
    item = ds[0]
    assert item["orig_size"] == (40, 30) and item["label"] == 0 and item["index"] == 0
    assert item["boxes_eval"].tolist() == [[int(4 * 32 / 40), int(5 * 32 / 30), int(12 * 32 / 40), int(10 * 32 / 30)]]
    assert item["mask"].shape == (32, 32) and set(np.unique(item["mask"])) == {0, 1}
    test = build_dataset("cub", cub, "test")
    assert [r.label for r in test.records] == [1] and test.records[0].boxes.tolist() == [[10, 2, 19, 22]]
    assert test.size == 224 and test[0]["image"].shape == (3, 224, 224)
    assert len(build_dataset("cub", cub, "all")) == 3


@pytest.mark.parametrize("csv, class_folders", [(False, False), (True, False), (False, True)])
def test_imagenet_raw_tree(tmp_path, csv, class_folders):
    write_imagenet(tmp_path, csv=csv, class_folders=class_folders)
    val = build_dataset("imagenet", tmp_path, "val", size=16)
    assert val.num_classes == 3 and val.class_names == ["n001", "n002", "n003"]
    ids = [r.image_id for r in val.records]
    prefix = "val/n003/" if class_folders else "val/"
    assert ids[0] == prefix + "ILSVRC2012_val_00000001.JPEG"
    assert [r.label for r in val.records] == [2, 0]
    assert val.records[0].boxes.tolist() == [[1, 2, 10, 12], [5, 5, 31, 23]]
    item = val[0]
    assert item["boxes_eval"].shape == (2, 4) and len(item["boxes"]) == 2
    batch = collate([val[0], val[1]])
    assert batch["image"].shape == (2, 3, 16, 16) and batch["label"].tolist() == [2, 0]
    train = build_dataset("imagenet", tmp_path, "train", size=16)
    assert [(r.image_id, r.label) for r in train.records] == [
        ("train/n001/n001_1.JPEG", 0),
        ("train/n002/n002_1.JPEG", 1),
        ("train/n003/n003_1.JPEG", 2),
    ]
    assert train[0]["boxes_eval"].shape == (0, 4)


def test_wsolevaluation_boxes(tmp_path):
    data, meta = write_wsoleval(tmp_path)
    for md in (meta, meta.parent):  # the split folder or its parent + split
        ds = build_dataset("wsolevaluation", data, "test", metadata_dir=md, size=35)
    assert ds.num_classes == 3 and len(ds) == 2
    # the section 2.5 case in a square frame: (1,2,4,3) in 10x20 -> 35x35
    assert ds[0]["boxes_eval"].tolist() == [[3, 3, 14, 5]]
    assert ds[1]["boxes_eval"].tolist() == [[0, 0, 32, 30], [4, 8, 6, 13]]  # int(15*35/16) = 32
    assert ds[0]["mask"] is None


def test_wsolevaluation_masks(tmp_path):
    data, meta = write_wsoleval(tmp_path, masks=True)
    ds = build_dataset("wsolevaluation", data, "test", metadata_dir=meta, size=20)
    r = ds.records[0]
    assert len(r.mask_paths) == 2 and r.ignore_path == data / "c/a_ignore.png" and r.size is None
    m = ds[0]["mask"]  # a.jpg is 10x20 -> 20x20 (x doubled): fg (x 0-9, y 0-9) and (x 12-19, y 10-19)
    assert m.shape == (20, 20)
    assert (m[0:10, 0:10] == 1).all() and (m[10:, 12:] == 1).all()
    assert (m[10:, 0:12] == 255).all() and (m[0:10, 10:] == 255).all()  # ignore box minus fg
    assert not (m == 0).any()
    m1 = ds[1]["mask"]
    assert set(np.unique(m1)) == {0, 1}  # ignore pixel (0,0) lies inside fg


def test_annotation_problems_raise_with_file_and_line(tmp_path):
    cub = write_cub(tmp_path)
    (cub / "image_class_labels.txt").write_text("1 1\n2 7\n3 2\n")
    with pytest.raises(UserError, match=r"image_class_labels\.txt:2: class number '7'.*out of range 1\.\.2"):
        build_dataset("cub", cub, "train")


def test_missing_image_names_file_and_annotation_line(tmp_path):
    cub = write_cub(tmp_path)
    (cub / "images" / "001.Red" / "r_2.jpg").unlink()
    ds = build_dataset("cub", cub, "train")
    with pytest.raises(UserError, match=r"r_2\.jpg.*images\.txt:2.*does not exist"):
        ds[1]


def _run_check(capsys, *args: str) -> tuple[int, dict]:
    rc = main(["data", "check", *args])
    return rc, json.loads(capsys.readouterr().out)


def test_check_good_trees(tmp_path, capsys):
    cub = write_cub(tmp_path / "a")
    rc, rep = _run_check(capsys, "--format", "cub", "--root", str(cub), "--split", "all")
    assert rc == 0 and rep == {
        "format": "cub",
        "split": "all",
        "images": 3,
        "classes": 2,
        "boxes": 3,
        "masks": 3,
        "problems": [],
    }
    write_imagenet(tmp_path / "b")
    rc, rep = _run_check(capsys, "--format", "imagenet", "--root", str(tmp_path / "b"), "--split", "val")
    assert rc == 0 and rep["images"] == 2 and rep["boxes"] == 3 and rep["classes"] == 3
    data, meta = write_wsoleval(tmp_path / "c", masks=True)
    rc, rep = _run_check(capsys, "--format", "wsolevaluation", "--root", str(data), "--metadata-dir", str(meta))
    assert rc == 0 and rep["masks"] == 3 and rep["boxes"] == 0


def test_check_broken_cub_lists_every_problem(tmp_path, capsys):
    cub = write_cub(tmp_path)
    (cub / "bounding_boxes.txt").write_text("1 4.0 5.0 -8.0 5.0\n2 0.0 0.0 49.0\n3 10.5 2.0 90.0 20.0\n")
    (cub / "images" / "002.Blue" / "b_1.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (cub / "images" / "001.Red" / "r_2.jpg").unlink()
    rc, rep = _run_check(capsys, "--format", "cub", "--root", str(cub), "--split", "all")
    assert rc == 1
    got = {(Path(p["file"]).name, p["line"]): p["message"] for p in rep["problems"]}
    assert "negative" in got[("bounding_boxes.txt", 1)] and "rejected" in got[("bounding_boxes.txt", 1)]
    assert "expected" in got[("bounding_boxes.txt", 2)]
    assert "does not exist" in got[("images.txt", 2)] and "r_2.jpg" in got[("images.txt", 2)]
    assert "cannot read image" in got[("images.txt", 3)] and "b_1.jpg" in got[("images.txt", 3)]
    assert "image 2 " in got[("bounding_boxes.txt", None)]  # left without a valid box line
    # the box of image 3 (x1 = 100) lies outside its 30x30 image: found only when images are opened,
    # and b_1.jpg cannot be opened
    assert len(rep["problems"]) == 5
    rc, rep = _run_check(capsys, "--format", "cub", "--root", str(cub), "--split", "all", "--annotations-only")
    assert rc == 1 and len(rep["problems"]) == 3
    (cub / "images" / "002.Blue" / "b_1.jpg").unlink()
    _img(cub / "images" / "002.Blue" / "b_1.jpg", 30, 30)
    rc, rep = _run_check(capsys, "--format", "cub", "--root", str(cub), "--split", "test")
    assert rc == 1 and "outside the 30x30 image" in rep["problems"][-1]["message"]
    assert rep["problems"][-1]["line"] == 3


def test_check_broken_imagenet_and_wsoleval(tmp_path, capsys):
    root = write_imagenet(tmp_path / "i")
    xml = root / "ILSVRC2012_bbox_val_v3" / "val" / "ILSVRC2012_val_00000002.xml"
    xml.write_text(xml.read_text().replace("<xmax>19</xmax>", "<xmax>25</xmax>"))
    _img(root / "val" / "ILSVRC2012_val_00000009.JPEG", 8, 8)  # no annotation
    (root / "ILSVRC2012_bbox_val_v3" / "val" / "ILSVRC2012_val_00000001.xml").write_text("<annotation><oops>")
    rc, rep = _run_check(capsys, "--format", "imagenet", "--root", str(root), "--split", "val")
    assert rc == 1
    msgs = [(Path(p["file"]).name, p["line"], p["message"]) for p in rep["problems"]]
    assert any(f == "ILSVRC2012_val_00000001.xml" and "malformed XML" in m and line == 1 for f, line, m in msgs)
    assert any(f == "ILSVRC2012_val_00000002.xml" and "outside the 20x20" in m for f, _, m in msgs)
    assert sum("no box annotation" in m for _, _, m in msgs) == 2  # image 1 (bad XML) and image 9

    data, meta = write_wsoleval(tmp_path / "w")
    (meta / "localization.txt").write_text("c/a.jpg,1,2,4,30\nc/b.png,0,0,15,7\nc/zz.png,0,0,1,1")
    (meta / "image_sizes.txt").write_text("c/a.jpg,10,20\nc/b.png,16,9\n")
    rc, rep = _run_check(capsys, "--format", "wsolevaluation", "--root", str(data), "--metadata-dir", str(meta))
    assert rc == 1
    got = {(Path(p["file"]).name, p["line"]): p["message"] for p in rep["problems"]}
    assert "outside the recorded 10x20" in got[("localization.txt", 1)]
    assert "not in image_ids.txt" in got[("localization.txt", 3)]
    assert "is 16x8 but the annotations record 16x9" in got[("image_ids.txt", 2)]


def test_check_real_metadata_annotations_only(shared_dir, capsys):
    md = shared_dir / "data" / "wsolevaluation_metadata"
    assert md.is_dir(), f"wsolevaluation metadata {md} is missing from the shared folder"
    rc, rep = _run_check(
        capsys,
        "--format",
        "wsolevaluation",
        "--root",
        "/nonexistent/CUB",
        "--metadata-dir",
        str(md / "CUB"),
        "--split",
        "test",
        "--annotations-only",
    )
    assert rc == 0 and rep["images"] == 5794 and rep["boxes"] == 5794 and rep["classes"] == 200
    rc, rep = _run_check(
        capsys,
        "--format",
        "wsolevaluation",
        "--root",
        "/nonexistent/OI",
        "--metadata-dir",
        str(md / "OpenImages" / "test"),
        "--split",
        "test",
        "--annotations-only",
    )
    assert rc == 0 and rep["masks"] == 7632 and rep["problems"] == []


def test_check_library_function_matches_cli(tmp_path):
    cub = write_cub(tmp_path)
    rep = check_dataset("cub", cub, "train")
    assert rep["images"] == 2 and rep["problems"] == []


def test_check_unreadable_tree_is_one_problem(tmp_path, capsys):
    rc, rep = _run_check(capsys, "--format", "cub", "--root", str(tmp_path / "missing"))
    assert rc == 1 and rep["images"] == 0 and len(rep["problems"]) == 1
    assert "does not exist" in rep["problems"][0]["message"]
    rc, rep = _run_check(
        capsys,
        "--format",
        "wsolevaluation",
        "--root",
        str(tmp_path),
        "--metadata-dir",
        str(tmp_path),
        "--split",
        "test",
    )
    assert rc == 1 and "needs" not in rep["problems"][0]["message"]
    assert "image_ids.txt" in rep["problems"][0]["message"]
    write_cub(tmp_path / "c")
    rc, rep = _run_check(capsys, "--format", "cub", "--root", str(tmp_path / "c"), "--split", "val")
    assert rc == 1 and "unknown split 'val'" in rep["problems"][0]["message"]


def test_box_outside_the_real_image_rejects_the_image(tmp_path):
    cub = write_cub(tmp_path)
    (cub / "bounding_boxes.txt").write_text("1 4.0 5.0 8.0 5.0\n2 0.0 0.0 49.0 39.0\n3 10.5 2.0 90.0 20.0\n")
    ds = build_dataset("cub", cub, "test")
    with pytest.raises(UserError, match=r"bounding_boxes\.txt:3.*invalid inclusive box \(10, 2, 100, 22\).*rejected"):
        ds[0]


def test_cub_paths_with_spaces_bom_and_crlf(tmp_path):
    """images.txt: the path is the rest of the line (spaces and any UTF-8 allowed); BOM and CRLF."""
    cub = write_cub(tmp_path)
    old = "002.Blue/b_1.jpg"
    new = "002 Blue ☀/b 1 ü.jpg"
    (cub / "images" / new).parent.mkdir(parents=True)
    (cub / "images" / old).rename(cub / "images" / new)
    (cub / "segmentations" / "002.Blue").rename(cub / "segmentations" / "002 Blue ☀")
    (cub / "segmentations" / "002 Blue ☀" / "b_1.png").rename(cub / "segmentations" / "002 Blue ☀" / "b 1 ü.png")
    text = (cub / "images.txt").read_text().replace(old, new + "  ")  # trailing blanks are not part of it
    (cub / "images.txt").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    ds = build_dataset("cub", tmp_path, "test")
    assert [r.image_id for r in ds.records] == [new]
    assert ds[0]["orig_size"] == (30, 30) and ds[0]["mask"] is not None


def test_empty_split_is_a_problem_of_the_split_file(tmp_path, capsys):
    cub = write_cub(tmp_path)
    (cub / "train_test_split.txt").write_text("1 1\n2 1\n3 1\n")  # no test image
    with pytest.raises(UserError, match=r"train_test_split.txt: split 'test' has no image"):
        build_dataset("cub", cub, "test")
    rc, rep = _run_check(capsys, "--format", "cub", "--root", str(cub), "--split", "test")
    assert rc == 1 and [Path(p["file"]).name for p in rep["problems"]] == ["train_test_split.txt"]


def test_a_split_folder_given_directly_names_the_split(tmp_path, capsys, tiny_checkpoint):
    # --metadata-dir metadata/ILSVRC/val (the default --split is test): the report and the
    # result said "test" while they described val
    data, test_dir = write_wsoleval(tmp_path)
    val = test_dir.rename(test_dir.with_name("val"))
    args = ["--metadata-dir", str(val), "--dataset", "wsolevaluation", "--data-root", str(data)]
    rc, rep = _run_check(capsys, *args)
    assert rc == 0 and rep["split"] == "val", rep
    out = tmp_path / "r.json"
    rc = main(
        ["evaluate", "--no-progress", "--device", "cpu", "--workers", "0", "--checkpoint", str(tiny_checkpoint)]
        + args
        + ["--output", str(out)]
    )
    assert rc == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["split"] == "val" and res["preset"]["split"] == "val"


def test_check_imagenet_without_split_reads_the_splits_it_has(tmp_path, capsys):
    write_imagenet(tmp_path)
    rc, rep = _run_check(capsys, "--dataset", "imagenet", "--data-root", str(tmp_path))
    assert rc == 0 and rep["split"] == "train+val" and rep["images"] == 3 + 2 and rep["boxes"] == 3
    import shutil

    shutil.rmtree(tmp_path / "train")
    (tmp_path / "LOC_synset_mapping.txt").write_text("n001 a\nn002 b\nn003 c\n")
    rc, rep = _run_check(capsys, "--dataset", "imagenet", "--data-root", str(tmp_path))
    assert rc == 0 and rep["split"] == "val" and rep["images"] == 2


def test_check_blames_a_cub_box_outside_the_image_on_bounding_boxes_txt(tmp_path, capsys):
    cub = write_cub(tmp_path)
    (cub / "bounding_boxes.txt").write_text("1 4.0 5.0 8.0 5.0\n2 30.0 8.0 16.0 16.0\n3 10.5 2.0 9.0 20.0\n")
    _img(cub / "images" / "001.Red" / "r_2.jpg", 32, 32)
    rc, rep = _run_check(capsys, "--dataset", "cub", "--data-root", str(cub), "--split", "all")
    assert rc == 1 and len(rep["problems"]) == 1
    p = rep["problems"][0]
    assert (Path(p["file"]).name, p["line"]) == ("bounding_boxes.txt", 2) and "(30, 8, 46, 24)" in p["message"]


@pytest.mark.parametrize("fmt", ["cub", "imagenet", "synthetic"])
def test_check_a_file_as_root_says_so(tmp_path, capsys, fmt):
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, rep = _run_check(capsys, "--dataset", fmt, "--data-root", str(afile))
    assert rc == 1 and rep["problems"][0]["message"] == f"dataset root {afile} is a file, not a folder"
