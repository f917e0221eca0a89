"""QA fixes of `wsol train`: worker-independent loader batches, finite/bounded config values,
one-line errors for broken recipes and logs, and a --out that holds someone else's files."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.wsol.test_train import synth  # noqa: F401  the same tiny benchmark fixture
from wsol.train import trainer as trainer_mod


def _train_cli(synth, out, *sets, extra=()):
    from wsol.cli import main

    base = ["data_root=" + str(synth), "epochs=1", "batch_size=8", "threads=1", *sets]
    argv = ["train", "--recipe", "synthetic_cpu", "--out", str(out), "--no-progress", "--device", "cpu", *extra]
    return main(argv + sum((["--set", s] for s in base), []))


def _weights(path):
    from wsol.checkpoints import read_checkpoint

    return read_checkpoint(path)["state_dict"]


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _one_line(capsys, why):
    err = capsys.readouterr().err  # progress lines ("resuming ...") may come first
    errors = [line for line in err.splitlines() if "error:" in line]
    assert "Traceback" not in err and len(errors) == 1 and why in errors[0], err
    assert err.strip().splitlines()[-1] == errors[0], err
    return errors[0]


# -- 1. workers does not change the loader path's weights -----------------------------------------
def test_loader_weights_do_not_depend_on_workers_and_resume_may_change_them(synth, tmp_path, capsys):
    sets = ("cache_images=false", "epochs=2", "image_size=16")
    assert _train_cli(synth, tmp_path / "w0", *sets, "workers=0") == 0
    assert _train_cli(synth, tmp_path / "w2", *sets, "workers=2") == 0
    full = _weights(tmp_path / "w0" / "last.pt")
    assert _same(full, _weights(tmp_path / "w2" / "last.pt"))
    # one epoch at workers=2, then resumed to two at workers=0 == uninterrupted
    out = tmp_path / "resumed"
    assert _train_cli(synth, out, "cache_images=false", "epochs=1", "image_size=16", "workers=2") == 0
    assert _train_cli(synth, out, *sets, "workers=0", extra=["--resume"]) == 0
    assert _same(full, _weights(out / "last.pt"))
    capsys.readouterr()


# -- 2. / 3. non-finite and absurd values ---------------------------------------------------------
@pytest.mark.parametrize(
    "sets, extra, why",
    [
        (["lr=.inf"], [], "lr must be a finite number"),
        (["weight_decay=.inf"], [], "weight_decay must be a finite number"),
        (["lr=.nan"], [], "lr must be a finite number"),
        (["aug_options.mixup.alpha=.inf"], ["--aug", "mixup"], "aug_options.mixup.alpha must be a finite number"),
        (["lr=1e300"], [], "lr must be <= 10"),
        (["weight_decay=1e300"], [], "weight_decay must be <="),
        (["threads=100000"], [], "threads must be <="),
        (["image_size=100000"], [], "image_size must be <= 2048"),
        (["init_checkpoint=."], [], "is a folder, not a checkpoint file"),
    ],
)
def test_bad_values_are_one_line(synth, tmp_path, capsys, sets, extra, why):
    out = tmp_path / "run"
    assert _train_cli(synth, out, *sets, extra=extra) == 2
    _one_line(capsys, why)
    assert not (out / "last.pt").exists()


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(synth, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert _train_cli(synth, out) == 0
    good = (out / "last.pt").read_bytes()
    log = (out / "log.jsonl").read_text()
    real = trainer_mod.soft_cross_entropy
    monkeypatch.setattr(trainer_mod, "soft_cross_entropy", lambda *a, **k: real(*a, **k) * math.nan)
    capsys.readouterr()
    assert _train_cli(synth, out, "epochs=2", extra=["--resume"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert "loss is not finite (nan) at epoch 2 step 1; nothing saved for this epoch" in err.strip().splitlines()[-1]
    assert (out / "last.pt").read_bytes() == good and (out / "log.jsonl").read_text() == log


# -- 4. recipes -----------------------------------------------------------------------------------
def test_a_non_utf8_or_invalid_yaml_recipe_is_one_line(synth, tmp_path, capsys):
    from wsol.cli import main

    bad = tmp_path / "nonutf.yaml"
    bad.write_bytes(b"# ok\n\xff\xfe lr: 1\n")
    assert main(["train", "--recipe", str(bad), "--out", str(tmp_path / "x")]) == 2
    _one_line(capsys, f"recipe {bad}:2: not UTF-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: 0.1\nepochs: [1\n")
    assert main(["train", "--recipe", str(broken), "--out", str(tmp_path / "x")]) == 2
    err = _one_line(capsys, f"recipe {broken}:")
    assert "invalid YAML" in err
    assert _train_cli(synth, tmp_path / "y", "lr_milestones=[1") == 2
    _one_line(capsys, "value is not valid YAML: 1:")


# -- 5. a broken log on resume --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["epoch_str", "non_utf8", "folder"])
def test_resume_with_a_broken_log_is_one_line(synth, tmp_path, capsys, kind):
    out = tmp_path / "run"
    assert _train_cli(synth, out) == 0
    log = out / "log.jsonl"
    if kind == "epoch_str":
        log.write_text('{"epoch": "x"}\n')
        why = f"{log}:1: not a JSON object"
    elif kind == "non_utf8":
        log.write_bytes(log.read_bytes() + b'{"epoch": 1, "x": "\xff"}\n')
        why = f"{log}:2: not a JSON object"
    else:
        log.unlink()
        log.mkdir()
        why = f"{log}: cannot read the epoch log"
    capsys.readouterr()
    assert _train_cli(synth, out, "epochs=2", extra=["--resume"]) == 2
    _one_line(capsys, why)


# -- 6. someone else's files in --out -------------------------------------------------------------
@pytest.mark.parametrize("name", ["config.yaml", "log.jsonl"])
def test_a_foreign_file_in_out_is_refused(synth, tmp_path, capsys, name):
    out = tmp_path / "proj"
    out.mkdir()
    (out / name).write_text("mine: 1\n")
    assert _train_cli(synth, out) == 2
    _one_line(capsys, "choose another --out")
    assert (out / name).read_text() == "mine: 1\n" and not (out / "last.pt").exists()


def test_a_run_stopped_in_its_first_epoch_may_start_again(synth, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(trainer_mod, "_run_epoch", stop)
        _train_cli(synth, out)
    assert (out / "config.yaml").exists() and not (out / "last.pt").exists()
    assert _train_cli(synth, out) == 0
    assert json.loads((out / "log.jsonl").read_text().splitlines()[0])["epoch"] == 1
    capsys.readouterr()


def test_an_empty_out_is_refused(synth, capsys):
    from wsol.cli import main

    assert main(["train", "--recipe", "synthetic_cpu", "--out", "", "--set", f"data_root={synth}"]) == 2
    _one_line(capsys, "--out is empty")
