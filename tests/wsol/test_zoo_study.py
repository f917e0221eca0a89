"""``wsol zoo study``: the plan on a tiny fake ImageNet tree (nothing downloaded, nothing written),
and the whole study (download, evaluate, resume, comparison, figures) with two tiny zoo entries
served on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.wsol.zoo_server import files_under, register, server, tiny_cutmix_checkpoint, tiny_entry, zip_bytes, zoo_env  # noqa: F401
from wsol.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STUDY = [
    "resnet50-baseline",
    "resnet50-cutmix",
    "resnet50-feature-cutmix",
    "resnet50-mixup",
    "resnet50-manifold-mixup",
    "resnet50-cutout",
    "resnet50-tv-v1",
    "resnet50-tv-v2",
]


def fake_imagenet(root: Path, images: int = 4, classes: int = 1000, size: int = 48) -> Path:
    """ILSVRC2012 val as distributed, tiny: flat val/ JPEGs, LOC_val_solution.csv and the synset
    mapping (the class order) of ``classes`` classes."""
    from PIL import Image

    (root / "val").mkdir(parents=True)
    wnids = [f"n{k:08d}" for k in range(classes)]
    (root / "LOC_synset_mapping.txt").write_text("\n".join(f"{w} class {k}" for k, w in enumerate(wnids)) + "\n")
    rng = np.random.default_rng(0)
    rows = ["ImageId,PredictionString"]
    for i in range(1, images + 1):
        stem = f"ILSVRC2012_val_{i:08d}"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / "val" / f"{stem}.JPEG")
        w = wnids[(7 * i) % classes]
        rows.append(f"{stem},{w} 4 5 30 40 {w} 10 10 20 20")
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    return root


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_prints_downloads_and_commands_and_does_nothing(zoo_env, tmp_path, capsys):
    root = fake_imagenet(tmp_path / "ILSVRC2012")
    out = tmp_path / "runs" / "study"
    code, text, _ = _run(
        capsys,
        "zoo",
        "study",
        "imagenet-resnet50",
        "--data-root",
        str(root),
        "--out",
        str(out),
        "--plan",
        "--device",
        "cpu",
    )
    assert code == 0, text
    assert "data: imagenet split 'val'" in text and "4 images, 1000 classes" in text
    for i, name in enumerate(STUDY, 1):
        assert f"\n{i}. {name} [to run]\n" in text
        assert (
            f"wsol evaluate --checkpoint zoo:{name} --dataset imagenet --data-root {root} --split val "
            f"--preset cutmix --cam-method cam --batch-size 32 --device cpu --output {out / name / 'result.json'} "
            "--resume" in text
        )
    assert text.count("(size unknown)") == 6 and text.count("(97.8 MB)") == 2
    assert "torchvision weights API" in text and "model_best.pth.tar" in text
    assert "to download: 8 download(s): 195.6 MB of known size + 6 of unknown size" in text
    assert "problem" not in text
    assert not out.exists() and not zoo_env.exists() and not (tmp_path / "torch").exists()


def test_plan_of_a_subset_with_a_mirror_and_a_finished_model(zoo_env, tmp_path, capsys):
    root = fake_imagenet(tmp_path / "ILSVRC2012", images=5)
    out = tmp_path / "study"
    done = out / "resnet50-cutmix" / "result.json"
    done.parent.mkdir(parents=True)
    done.write_text("{}")
    code, text, _ = _run(
        capsys,
        "zoo",
        "study",
        "imagenet-resnet50",
        "--data-root",
        str(root),
        "--out",
        str(out),
        "--plan",
        "--images",
        "2",
        "--mirror",
        "http://mirror.invalid/wsol",
    )
    assert code == 0, text
    assert "2 images (an evenly spread subset of 5" in text
    assert f"--dataset wsolevaluation --data-root {root} --split test --metadata-dir {out / 'subset-2'}" in text
    assert "--label-subset" in text
    assert "2. resnet50-cutmix [finished]" in text and "finished; checked, not redone" in text
    assert "via mirror http://mirror.invalid/wsol/cutmix_pytorch_resnet50_baseline.zip" in text
    assert "via mirror http://mirror.invalid/wsol/resnet50-0676ba61.pth" in text
    assert files_under(out) == ["resnet50-cutmix/result.json"]  # nothing written


def test_plan_reports_a_class_list_that_does_not_fit(zoo_env, tmp_path, capsys):
    root = fake_imagenet(tmp_path / "ILSVRC2012", classes=3)
    code, text, _ = _run(
        capsys, "zoo", "study", "imagenet-resnet50", "--data-root", str(root), "--out", str(tmp_path / "o"), "--plan"
    )
    assert code == 1 and "problem: the models have 1000 classes but" in text


def test_plan_reports_an_output_folder_in_a_file(zoo_env, tmp_path, capsys):
    # --out under a regular file: the plan exited 0 and the run failed later
    root = fake_imagenet(tmp_path / "ILSVRC2012")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, text, _ = _run(
        capsys, "zoo", "study", "imagenet-resnet50", "--data-root", str(root), "--out", str(blocker / "o"), "--plan"
    )
    assert code == 1 and f"problem: --out {blocker / 'o'}: {blocker} is a file, not a folder" in text, text


def test_more_images_than_the_split_has_is_refused(zoo_env, tmp_path, capsys):
    # planned "subset-100000" of a 4-image split without a word
    root = fake_imagenet(tmp_path / "ILSVRC2012")
    argv = ["zoo", "study", "imagenet-resnet50", "--data-root", str(root), "--out", str(tmp_path / "o")]
    code, _, err = _run(capsys, *argv, "--plan", "--images", "100000")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--images 100000 is more than the 4 images" in err and not (tmp_path / "o").exists()


def test_plan_of_a_tree_without_boxes_is_one_line(zoo_env, tmp_path, capsys):
    root = fake_imagenet(tmp_path / "ILSVRC2012")
    (root / "LOC_val_solution.csv").unlink()
    code, _, err = _run(
        capsys, "zoo", "study", "imagenet-resnet50", "--data-root", str(root), "--out", str(tmp_path / "o"), "--plan"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no ImageNet validation boxes" in err


def test_study_runs_resumes_and_compares(server, zoo_env, tmp_path, monkeypatch, capsys):
    from wsol.zoo.catalog import STUDIES, Study

    names = ["tiny-base", "tiny-mix"]
    for seed, name in enumerate(names):
        server.files[f"{name}.zip"] = zip_bytes({"model_best.pth.tar": tiny_cutmix_checkpoint(1000, seed)})
        register(
            monkeypatch,
            tiny_entry(name, server.url(f"{name}.zip"), f"{name}.zip", member="model_best.pth.tar", num_classes=1000),
        )
    monkeypatch.setitem(STUDIES._items, "tiny", Study("tiny", tuple(names), "two tiny models", "fake ImageNet"))
    monkeypatch.setitem(STUDIES._help, "tiny", "test study")
    root = fake_imagenet(tmp_path / "ILSVRC2012", images=6)
    out = tmp_path / "study"
    argv = [
        "zoo",
        "study",
        "tiny",
        "--data-root",
        str(root),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--batch-size",
        "3",
        "--grid-images",
        "2",
        "--no-progress",
    ]
    code, text, err = _run(capsys, *argv)
    assert code == 0, err
    for name in names:
        res = json.loads((out / name / "result.json").read_text())
        assert res["checkpoint"] == f"zoo:{name}" and res["num_images"] == 6
        assert "cutmix" in json.dumps(res["preset"]) and res["arch_options"] == {"widths": [4, 4, 4, 4, 4]}
    for f in (
        "comparison.md",
        "comparison.csv",
        "published.md",
        "boxacc_curves.png",
        "cam_grid.png",
        "study.md",
        "study.json",
    ):
        assert (out / f).is_file(), f
    published = (out / "published.md").read_text()
    assert "| tiny-base | none | 50.00 |" in published
    assert "tiny-mix" in (out / "comparison.md").read_text()
    assert {k: server.requests[k] for k in ("tiny-base.zip", "tiny-mix.zip")} == {"tiny-base.zip": 1, "tiny-mix.zip": 1}
    # resumable: finished models are checked, not redone (results unchanged, no download)
    before = {n: (out / n / "result.json").stat().st_mtime_ns for n in names}
    code, _, err = _run(capsys, *argv)
    assert code == 0
    assert err.count("already finished with this configuration") == 2
    assert {n: (out / n / "result.json").stat().st_mtime_ns for n in names} == before
    assert server.requests["tiny-base.zip"] == 1
    # the plan now says so
    code, text, _ = _run(capsys, "zoo", "study", "tiny", "--data-root", str(root), "--out", str(out), "--plan")
    assert "1. tiny-base [finished]" in text and "cached:" in text and "to download: 0 download(s)" in text
