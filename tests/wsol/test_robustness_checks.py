"""``wsol robustness`` refuses, in one line and before any pass, what it cannot run or would ignore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wsol.checkpoints
import wsol.robustness
from wsol.cli import main
from wsol.errors import UserError
from wsol.jobs.robustness import RobustnessConfig, run_robustness


@pytest.fixture
def no_model_load(monkeypatch) -> None:
    """Any checkpoint load fails the test: the refusal must come before a model is read."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a checkpoint was loaded before the refusal")

    monkeypatch.setattr(wsol.checkpoints, "load_checkpoint", boom)


@pytest.fixture(scope="module")
def checkpoint_of(tmp_path_factory):
    """``checkpoint_of(k) -> Path``: an untrained seeded ``small_cnn`` with ``k`` classes."""
    import torch

    from wsol.checkpoints import save_checkpoint
    from wsol.models import create_model

    folder = tmp_path_factory.mktemp("ckpts")

    def _make(k: int) -> Path:
        path = folder / f"cnn{k}.pt"
        if not path.exists():
            torch.manual_seed(0)
            save_checkpoint(path, create_model("small_cnn", k))
        return path

    return _make


def _robustness(capsys, checkpoints: list[Path], data_root: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    argv = ["robustness"]
    for c in checkpoints:
        argv += ["--checkpoint", str(c)]
    argv += ["--dataset", "synthetic", "--data-root", str(data_root), "--device", "cpu", "--batch-size", "18"]
    rc = main([*argv, "--out", str(out), *extra])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wsol robustness: error: ")
    return lines[0]


# defect 1: class counts


def test_label_out_of_range_refused_for_every_checkpoint_before_any_pass(
    tiny_checkpoint, checkpoint_of, tiny_synth, tmp_path, capsys
):
    # the first checkpoint fits; the second (2 classes) cannot score labels 0..2: refused before the first pass
    rc, out, err = _robustness(
        capsys, [tiny_checkpoint, checkpoint_of(2)], tiny_synth, tmp_path / "r", "--attack", "fgsm"
    )
    assert rc == 2
    line = _one_line_error(err)
    assert str(checkpoint_of(2)) in line and "out of range 0..1" in line and str(tiny_synth) in line
    assert "model " not in out  # no model line: no pass started
    assert not (tmp_path / "r" / "robustness.json").exists()


def test_class_count_mismatch_needs_label_subset(checkpoint_of, tiny_synth, tmp_path, capsys):
    four = checkpoint_of(4)  # 4 outputs, a 3-class dataset whose labels 0..2 are in range
    rc, out, err = _robustness(capsys, [four], tiny_synth, tmp_path / "r", "--attack", "fgsm")
    assert rc == 2
    line = _one_line_error(err)
    assert "has 4 classes" in line and "has 3" in line and "--label-subset" in line
    assert "model " not in out

    rc, out, err = _robustness(capsys, [four], tiny_synth, tmp_path / "r", "--attack", "fgsm", "--label-subset")
    assert rc == 0, err
    res = json.loads((tmp_path / "r" / "robustness.json").read_text())
    assert res["models"][0]["num_images"] == 18
    assert json.loads((tmp_path / "r" / "config.json").read_text())["label_subset"] is True


# defect 2: --eps


@pytest.mark.parametrize("eps", ["2", "-0.1", "nan", "inf", "300/255"])
def test_eps_out_of_range_is_an_argument_error(eps, tiny_checkpoint, tiny_synth, tmp_path, capsys, no_model_load):
    with pytest.raises(SystemExit) as exc:
        _robustness(capsys, [tiny_checkpoint], tiny_synth, tmp_path / "r", "--attack", "fgsm", "--eps", eps)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"argument --eps: must be in [0, 1] pixel units (e.g. 8/255), got {eps!r}" in err


def test_eps_accepts_fractions_and_the_bounds():
    from wsol.cli import build_parser

    parser = build_parser("robustness")
    base = ["--checkpoint", "c.pt", "--attack", "fgsm", "--dataset", "synthetic", "--data-root", "d", "--out", "o"]
    assert parser.parse_args([*base, "--eps", "8/255"]).eps == pytest.approx(8 / 255)
    assert parser.parse_args([*base, "--eps", "0"]).eps == 0.0
    assert parser.parse_args([*base, "--eps", "1"]).eps == 1.0


def test_job_refuses_eps_out_of_range_before_loading(tiny_checkpoint, tiny_synth, tmp_path, no_model_load):
    cfg = RobustnessConfig(
        checkpoints=[str(tiny_checkpoint)], dataset="synthetic", data_root=str(tiny_synth), out=str(tmp_path), eps=2.0
    )
    with pytest.raises(UserError, match=r"--eps must be in \[0, 1\]"):
        run_robustness(cfg)


# defect 3: the output folder


@pytest.mark.parametrize("below", [False, True], ids=["is-a-file", "under-a-file"])
def test_output_folder_in_a_file_refused_first(below, tiny_checkpoint, tiny_synth, tmp_path, capsys, no_model_load):
    blocker = tmp_path / "images.txt"
    blocker.write_text("x\n")
    out = blocker / "r" if below else blocker
    rc, _, err = _robustness(capsys, [tiny_checkpoint], tiny_synth, out, "--attack", "fgsm")
    assert rc == 2
    line = _one_line_error(err)
    assert f"cannot create output folder {out}: {blocker} is a file, not a folder" in line
    assert blocker.read_text() == "x\n"


# defect 4: options that do not apply


def test_steps_with_attack_refused(tiny_checkpoint, tiny_synth, tmp_path, capsys, no_model_load):
    rc, _, err = _robustness(capsys, [tiny_checkpoint], tiny_synth, tmp_path / "r", "--attack", "fgsm", "--steps", "5")
    assert rc == 2
    line = _one_line_error(err)
    assert "--steps 5 has no effect with --attack fgsm" in line


def test_eps_with_occlusion_refused(tiny_checkpoint, tiny_synth, tmp_path, capsys, no_model_load):
    rc, _, err = _robustness(
        capsys, [tiny_checkpoint], tiny_synth, tmp_path / "r", "--occlusion", "center", "--eps", "0.1"
    )
    assert rc == 2
    line = _one_line_error(err)
    assert "--eps 0.1 has no effect with --occlusion center" in line


def test_workers_given_on_cpu_is_used(tiny_checkpoint, tiny_synth, tmp_path, capsys, monkeypatch):
    seen: list[int] = []
    original = wsol.robustness.make_loader

    def record(dataset, batch_size: int, num_workers: int = 0):
        seen.append(num_workers)
        return original(dataset, batch_size, num_workers=0)  # no worker processes in the test

    monkeypatch.setattr(wsol.robustness, "make_loader", record)
    rc, _, err = _robustness(
        capsys, [tiny_checkpoint], tiny_synth, tmp_path / "r", "--occlusion", "center", "--steps", "1", "--workers", "2"
    )
    assert rc == 0, err
    assert seen == [2]


def test_same_display_name_twice_refused(tiny_checkpoint, tiny_synth, tmp_path, capsys, no_model_load):
    # the figure and the rows are keyed by name: two curves named alike would show as one
    rc, _, err = _robustness(capsys, [tiny_checkpoint, tiny_checkpoint], tiny_synth, tmp_path / "r", "--attack", "fgsm")
    assert rc == 2
    line = _one_line_error(err)
    assert "same name 'small'" in line and "--names" in line
