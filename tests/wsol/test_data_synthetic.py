"""The synthetic benchmark: determinism, ground truth consistency, balance, design statistics."""

from __future__ import annotations

import colorsys
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from wsol.cli import main
from wsol.data import build_dataset
from wsol.data.formats import scan_dataset
from wsol.data.images import read_gray
from wsol.data.synthetic import SynthConfig, generate_synthetic, render_sample, sample_rng
from wsol.errors import UserError

SMALL = SynthConfig(classes=3, train_per_class=4, val_per_class=2, test_per_class=3, size=48, seed=5)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_byte_identical_in_any_folder(tmp_path):
    generate_synthetic(tmp_path / "one", SMALL)
    generate_synthetic(tmp_path / "deeper" / "two", SMALL)
    a, b = _tree(tmp_path / "one"), _tree(tmp_path / "deeper" / "two")
    assert len(a) == 2 * 27 + 8 and a == b
    other = _tree_after(tmp_path / "three", SynthConfig(**{**SMALL.__dict__, "seed": 6}))
    assert other.keys() == a.keys() and other != a
    assert other["images.txt"] == a["images.txt"]


def _tree_after(root: Path, cfg: SynthConfig) -> dict[str, bytes]:
    generate_synthetic(root, cfg)
    return _tree(root)


def test_boxes_are_the_tight_boxes_of_the_masks_and_classes_balance(tmp_path):
    generate_synthetic(tmp_path, SMALL)
    info = json.loads((tmp_path / "synthetic.json").read_text())
    assert info["size"] == 48 and info["classes"] == 3 and info["seed"] == 5
    counts = {}
    for split in ("train", "val", "test"):
        scan = scan_dataset("synthetic", tmp_path, split)
        assert scan.problems == [] and scan.default_size == 48
        counts[split] = Counter(r.label for r in scan.records)
        for r in scan.records:
            seg = read_gray(r.mask_paths[0]) > 0
            ys, xs = np.nonzero(seg)
            assert r.boxes.tolist() == [[xs.min(), ys.min(), xs.max(), ys.max()]]
            assert r.image_id.startswith(f"{r.label + 1:03d}.") and f"/{split}_" in r.image_id
    assert counts == {"train": {0: 4, 1: 4, 2: 4}, "val": {0: 2, 1: 2, 2: 2}, "test": {0: 3, 1: 3, 2: 3}}
    # the CUB view: train_test_split marks train + val as 1, test as 0
    assert len(scan_dataset("cub", tmp_path, "train").records) == 18
    assert len(scan_dataset("cub", tmp_path, "test").records) == 9


def test_dataset_items_from_a_synthetic_tree(tmp_path):
    generate_synthetic(tmp_path, SMALL)
    ds = build_dataset("synthetic", tmp_path, "test")
    assert ds.size == 48 and ds.num_classes == 3 and len(ds) == 9
    item = ds[4]
    assert tuple(item["image"].shape) == (3, 48, 48)
    ys, xs = np.nonzero(item["mask"] == 1)
    assert item["boxes_eval"].tolist() == [[xs.min(), ys.min(), xs.max(), ys.max()]]  # no resize at S = 48
    cut = build_dataset("synthetic", tmp_path, "test", preset="cutmix")[4]
    ys, xs = np.nonzero(cut["mask"] == 1)
    x0, y0, x1, y1 = cut["boxes_eval"][0]
    assert x0 <= xs.min() and y0 <= ys.min() and x1 >= xs.max() and y1 >= ys.max()


def test_design_statistics():
    cfg = SynthConfig()
    agree, head_frac, scale, hue_err = [], [], [], []
    for k in range(40):
        for c in range(cfg.classes):
            s = render_sample(c, sample_rng(cfg, "train", c, k), cfg)
            agree.append(s.texture == c)
            x0, y0, x1, y1 = s.box
            scale.append(max(x1 - x0 + 1, y1 - y0 + 1) / cfg.size)
            hx0, hy0, hx1, hy1 = s.head_box
            assert x0 <= hx0 and y0 <= hy0 and hx1 <= x1 and hy1 <= y1
            head_frac.append(np.pi * ((hx1 - hx0 + 1) / 2) ** 2 / s.mask.sum())
            centre = s.image[(hy0 + hy1) // 2, (hx0 + hx1) // 2] / 255.0
            hue = colorsys.rgb_to_hsv(*centre)[0]
            hue_err.append(min(abs(hue - c / cfg.classes), 1 - abs(hue - c / cfg.classes)))
    assert 0.91 <= np.mean(agree) <= 0.99  # 0.95 + 0.05 / 10 expected
    assert 0.23 <= np.mean(head_frac) <= 0.33  # part_fraction 0.28
    assert 0.34 <= min(scale) and max(scale) <= 0.81 and 0.5 <= np.mean(scale) <= 0.65
    assert np.median(hue_err) < 0.04  # the head colour carries the class


def test_refuses_to_overwrite_foreign_folders(tmp_path):
    (tmp_path / "x.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        generate_synthetic(tmp_path, SMALL)
    with pytest.raises(UserError, match="did not write"):
        generate_synthetic(tmp_path, SMALL, overwrite=True)
    out = tmp_path / "s"
    generate_synthetic(out, SMALL)
    with pytest.raises(UserError, match="--overwrite"):
        generate_synthetic(out, SMALL)
    small = SynthConfig(**{**SMALL.__dict__, "train_per_class": 1})
    generate_synthetic(out, small, overwrite=True)
    assert len(list((out / "images").rglob("*.png"))) == 3 * (1 + 2 + 3)


def test_cli_synth_then_check(tmp_path, capsys):
    out = tmp_path / "d"
    rc = main(
        [
            "data",
            "synth",
            "--out",
            str(out),
            "--classes",
            "2",
            "--train-per-class",
            "2",
            "--val-per-class",
            "1",
            "--test-per-class",
            "1",
            "--size",
            "32",
            "--seed",
            "1",
            "--quiet",
        ]
    )
    assert rc == 0 and json.loads(capsys.readouterr().out)["images"] == 8
    rc = main(["data", "check", "--format", "synthetic", "--root", str(out), "--split", "val"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["images"] == 2 and rep["masks"] == 2 and rep["classes"] == 2
    (out / "segmentations" / "001.hue000" / "val_0000.png").unlink()
    rc = main(["data", "check", "--format", "synthetic", "--root", str(out), "--split", "val"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 1 and len(rep["problems"]) == 1 and rep["problems"][0]["line"] == 5
    assert "val_0000.png" in rep["problems"][0]["message"]


def _interrupt_after(monkeypatch, n: int) -> None:
    """Make the generator's ``n + 1``-th rendered image raise KeyboardInterrupt (a Ctrl-C)."""
    import wsol.data.synthetic as synthetic

    real, calls = synthetic.render_sample, []

    def render(*args, **kwargs):
        calls.append(1)
        if len(calls) > n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_sample", render)


def test_interrupted_synth_leaves_nothing_and_keeps_the_old_tree(tmp_path, monkeypatch):
    out = tmp_path / "q"
    with monkeypatch.context() as m:
        _interrupt_after(m, 5)
        with pytest.raises(KeyboardInterrupt):
            generate_synthetic(out, SMALL)
    assert list(tmp_path.iterdir()) == []  # no partial tree, no temporary sibling
    generate_synthetic(out, SMALL)  # a rerun needs no rm -rf
    before = _tree(out)
    with monkeypatch.context() as m:
        _interrupt_after(m, 5)
        with pytest.raises(KeyboardInterrupt):
            generate_synthetic(out, SynthConfig(**{**SMALL.__dict__, "seed": 6}), overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["q"] and _tree(out) == before


def test_overwrite_refuses_a_tree_holding_foreign_files(tmp_path):
    out = tmp_path / "s"
    generate_synthetic(out, SMALL)
    (out / "notes.md").write_text("mine")
    with pytest.raises(UserError, match=r"did not write \(notes\.md\)"):
        generate_synthetic(out, SMALL, overwrite=True)
    assert (out / "notes.md").read_text() == "mine"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--seed", "-1", "--seed must be >= 0"), ("--size", "50000", "--size must be in 32..1024")],
)
def test_cli_synth_refuses_negative_seed_and_huge_size(tmp_path, capsys, option, value, message):
    assert main(["data", "synth", "--out", str(tmp_path / "d"), option, value, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # refused before anything is written
