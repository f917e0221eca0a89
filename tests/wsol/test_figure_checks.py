"""`wsol figure`: what is refused before anything is drawn: a checkpoint whose class count does
not match the data, result files of another checkpoint or other data, a --width out of range and
an --out suffix that would not name the files written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval.results import Result
from wsol.cli import main
from wsol.commands.figure import figure_width
from wsol.errors import UserError
from wsol.jobs import figure as figure_job
from wsol.jobs.figure import MAX_PIXELS, output_problem, result_problem


def _one_line_error(capsys) -> str:
    """The CLI's stderr, checked to be one line without a traceback."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("wsol figure: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Synthetic splits of 3 and 4 classes (32 px, 2 test images per class), 3-class checkpoints
    m0, m1 and a 4-class one, and the `wsol evaluate` results r0, r1 of m0, m1 on the 3-class split."""
    import torch

    from wsol.checkpoints import save_checkpoint
    from wsol.data.synthetic import SynthConfig, generate_synthetic
    from wsol.models import create_model

    root = tmp_path_factory.mktemp("figure_checks")
    for classes in (3, 4):
        generate_synthetic(
            root / f"data{classes}",
            SynthConfig(classes=classes, train_per_class=1, val_per_class=1, test_per_class=2, size=32, seed=0),
        )
    ckpts = {}
    for name, classes in (("m0", 3), ("m1", 3), ("m4", 4)):
        torch.manual_seed(len(ckpts))
        ckpts[name] = root / name / "last.pt"
        save_checkpoint(ckpts[name], create_model("small_cnn", classes))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for k in ("0", "1"):
            argv = ["evaluate", "--no-progress", "--device", "cpu", "--workers", "0", "--checkpoint"]
            argv += [str(ckpts[f"m{k}"]), "--dataset", "synthetic", "--data-root", str(root / "data3")]
            assert main([*argv, "--output", str(root / f"r{k}" / "result.json")]) == 0
    finally:
        torch.set_num_threads(previous)
    return root, {k: str(v) for k, v in ckpts.items()}


def _grid(root: Path, ckpts: list[str], *extra: str, data: str = "data3", out: str = "grid.png") -> list[str]:
    argv = ["figure", "grid", "--dataset", "synthetic", "--data-root", str(root / data), "--images", "1"]
    for c in ckpts:
        argv += ["--checkpoint", c]
    return [*argv, "--workers", "0", "--device", "cpu", "--out", str(root / out), *extra]


@pytest.fixture
def no_image_read(monkeypatch):
    """Fails a test whose grid reads an image (every check comes before)."""

    def refuse(*args, **kwargs):
        raise AssertionError("an image was read before the checks")

    monkeypatch.setattr(figure_job, "_read_items", refuse)


# --------------------------------------------------------------------------------- class count


def test_grid_refuses_a_class_count_mismatch_of_any_checkpoint(setup, capsys, no_image_read):
    root, ck = setup
    # a 3-class checkpoint (the second column) on the 4-class split: refused before reading images
    assert main(_grid(root, [ck["m4"], ck["m1"]], data="data4")) == 2
    err = _one_line_error(capsys)
    assert f"checkpoint {ck['m1']} has 3 outputs" in err and "'test' split at" in err and "label 3 of image" in err
    # a 4-class checkpoint on the 3-class split: refused unless --label-subset
    assert main(_grid(root, [ck["m4"]])) == 2
    err = _one_line_error(capsys)
    assert f"the checkpoint {ck['m4']} has 4 classes" in err and "has 3" in err and "--label-subset" in err


def test_grid_label_subset_accepts_fewer_dataset_classes(setup, capsys, one_torch_thread):
    root, ck = setup
    assert main(_grid(root, [ck["m4"]], "--label-subset", out="subset.png")) == 0
    assert (root / "subset.png").stat().st_size > 0 and (root / "subset.pdf").stat().st_size > 0


# ------------------------------------------------------------------------------ --results checks


def test_grid_refuses_results_of_another_checkpoint(setup, capsys, no_image_read):
    root, ck = setup
    r0, r1 = str(root / "r0" / "result.json"), str(root / "r1" / "result.json")
    assert main(_grid(root, [ck["m0"], ck["m1"]], "--results", r1, r0)) == 2  # swapped
    err = _one_line_error(capsys)
    assert f"{r1} is not a result of --checkpoint {ck['m0']}" in err
    assert f"computed on checkpoint {Path(ck['m1']).resolve()}" in err and "sha256" in err
    assert "result.config.json" in err


def test_grid_accepts_results_in_the_checkpoints_order(setup, capsys, one_torch_thread):
    root, ck = setup
    r0, r1 = str(root / "r0" / "result.json"), str(root / "r1" / "result.json")
    argv = _grid(root, [ck["m0"], ck["m1"]], "--results", r0, r1, "--select", "disagree", out="ok.png")
    assert main(argv) == 0
    assert (root / "ok.png").exists()


def test_grid_refuses_results_of_other_data(setup, capsys, no_image_read):
    root, ck = setup
    r0 = str(root / "r0" / "result.json")
    other = root / "data3_copy"
    if not other.exists():
        shutil.copytree(root / "data3", other)
    assert main(_grid(root, [ck["m0"]], "--results", r0, data="data3_copy")) == 2
    err = _one_line_error(capsys)
    assert f"{r0} is not a result" in err and f"data root {(root / 'data3').resolve()}, not {other.resolve()}" in err
    assert main(_grid(root, [ck["m0"]], "--results", r0, "--split", "val")) == 2
    assert "split 'test', not 'val'" in _one_line_error(capsys)


def test_grid_without_a_config_file_compares_what_the_result_records(setup, tmp_path, capsys, no_image_read):
    root, ck = setup
    for f in (root / "r0").iterdir():  # the result without its config side file
        if not f.name.endswith(".config.json"):
            shutil.copy(f, tmp_path / f.name)
    other = root / "data3_copy"
    if not other.exists():
        shutil.copytree(root / "data3", other)
    r = str(tmp_path / "result.json")
    # the JSON records the (absolute) data root it was given: still refused, no config named
    assert main(_grid(root, [ck["m1"]], "--results", r, data="data3_copy")) == 2
    err = _one_line_error(capsys)
    assert f"data root {root / 'data3'}, not {other.resolve()}" in err and "recorded in" not in err


def test_result_problem_compares_only_what_is_recorded(tmp_path):
    def result(data: dict) -> Result:
        return Result("r", tmp_path / "result.json", data)

    kw = {"checkpoint": "m.pt", "checkpoint_file": None, "dataset": "synthetic", "data_root": tmp_path}
    assert result_problem(result({}), split="test", **kw) is None  # evaluate-scoremaps: nothing recorded
    # a relative root was relative to an unknown working directory: not compared
    assert result_problem(result({"preset": {"root": "elsewhere"}}), split="test", **kw) is None
    bad = result({"dataset": "cub", "split": "val", "preset": {"root": "/no/such/root"}})
    problem = result_problem(bad, split="test", **kw)
    assert "dataset 'cub', not 'synthetic'" in problem and "split 'val', not 'test'" in problem
    assert "data root /no/such/root" in problem
    # an unreadable config side file: the JSON's own keys are compared
    (tmp_path / "result.config.json").write_text("{not json")
    assert result_problem(result({"config": "result.config.json"}), split="test", **kw) is None
    (tmp_path / "result.config.json").write_text(json.dumps({"guarded": {"dataset": "cub"}}))
    problem = result_problem(result({"config": "result.config.json"}), split="test", **kw)
    assert "dataset 'cub'" in problem and "recorded in" in problem


# ------------------------------------------------------------------------------------ --width


@pytest.mark.parametrize("width", ["0", "-3", "nan", "inf", "1000", "0.5", "abc"])
@pytest.mark.parametrize("figure", ["grid", "curves", "per-class"])
def test_width_out_of_range_is_an_argparse_error(tmp_path, capsys, width, figure):
    argv = ["figure", figure, f"--width={width}", "--out", str(tmp_path / "f.png")]
    if figure == "grid":
        argv += ["--checkpoint", "m.pt", "--dataset", "synthetic", "--data-root", str(tmp_path)]
    else:
        argv += [str(tmp_path / "r.json")]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --width" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_width_range_and_pixel_cap():
    assert figure_width("1") == 1.0 and figure_width("100") == 100.0 and figure_width("3.3") == 3.3
    from eval.figures import _new_figure

    fig = _new_figure(figsize=(100, 40))  # a tall grid at 100 in: 30000 x 12000 px
    with pytest.raises(UserError, match=r"30000 x 12000 px .* smaller --width"):
        figure_job._save(fig, "never.png")
    assert 30000 * 12000 > MAX_PIXELS


# -------------------------------------------------------------------------------------- --out


def test_out_suffix(tmp_path, setup, capsys):
    root, ck = setup
    r0 = str(root / "r0" / "result.json")
    out = tmp_path / "fig" / "e11.jpg"
    for argv in (
        ["figure", "curves", r0, "--out", str(out)],
        ["figure", "per-class", r0, "--out", str(out)],
        _grid(root, [ck["m0"]], "--out", str(out)),
    ):
        assert main(argv) == 2
        err = _one_line_error(capsys)
        assert f"--out {out}" in err and f"{tmp_path / 'fig' / 'e11'}.png and {tmp_path / 'fig' / 'e11'}.pdf" in err
    assert not (tmp_path / "fig").exists()
    assert output_problem("a.png") is None and output_problem("a.PDF") is None and output_problem("fig/a") is None
    for name in ("c.pdf", "d"):  # a .pdf or no suffix: the same PNG + PDF pair
        assert main(["figure", "curves", r0, "--out", str(tmp_path / name)]) == 0
        stem = name.split(".")[0]
        assert (tmp_path / f"{stem}.png").exists() and (tmp_path / f"{stem}.pdf").exists()
