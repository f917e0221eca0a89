"""The trainer on a tiny synthetic benchmark: resume == uninterrupted, outputs, options, helpers."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from wsol.augment import AUGMENTATIONS
from wsol.errors import UserError
from wsol.train import TrainConfig, train
from wsol.train import trainer as trainer_mod
from wsol.train.data import MemoryTrainSet, epoch_batches, local_slice
from wsol.train.optim import soft_cross_entropy


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from wsol.data.synthetic import SynthConfig, generate_synthetic

    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(
        root, SynthConfig(classes=3, train_per_class=8, val_per_class=2, test_per_class=2, size=32, seed=1)
    )
    return root


def tiny(synth, **kw) -> TrainConfig:
    values = dict(
        model="small_cnn",
        model_options={"widths": [4, 4, 8, 8, 8]},
        dataset="synthetic",
        data_root=str(synth),
        cache_images=True,
        epochs=3,
        batch_size=8,
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-4,
        aug="cutmix",
        threads=1,
        progress=False,
        device="cpu",
        seed=3,
    )
    values.update(kw)
    return TrainConfig(**values)


def _state(path):
    from wsol.checkpoints import read_checkpoint

    return read_checkpoint(path)


def _assert_same_training_state(a, b):
    assert a["epoch"] == b["epoch"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k]["momentum_buffer"], sb[k]["momentum_buffer"]), k


@pytest.mark.parametrize("cache", [True, False])
def test_kill_and_resume_equals_uninterrupted(synth, tmp_path, monkeypatch, cache):
    cfg = tiny(synth, cache_images=cache, aug="cutmix")
    full = _state(train(cfg, tmp_path / "full"))

    # a crash in the middle of epoch 3, after last.pt of epoch 2 was written
    real = trainer_mod._run_epoch
    calls = {"n": 0}

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "_run_epoch", crashing)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "killed")
    assert _state(tmp_path / "killed" / "last.pt")["epoch"] == 2
    monkeypatch.setattr(trainer_mod, "_run_epoch", real)
    resumed = _state(train(cfg, tmp_path / "killed", resume=True))
    _assert_same_training_state(full, resumed)
    log = [json.loads(x) for x in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]
    full_log = [json.loads(x) for x in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == [r["loss"] for r in full_log]


def test_two_epochs_then_extend_to_three_equals_three(synth, tmp_path):
    cfg = tiny(synth, aug="mixup")
    full = _state(train(cfg, tmp_path / "full"))
    train(tiny(synth, aug="mixup", epochs=2), tmp_path / "part")
    resumed = _state(train(cfg, tmp_path / "part", resume=True))
    _assert_same_training_state(full, resumed)
    # resuming a finished run is a no-op
    again = _state(train(cfg, tmp_path / "part", resume=True))
    _assert_same_training_state(full, again)


def test_outputs_config_log_and_checkpoint(synth, tmp_path):
    import yaml

    from wsol.checkpoints import load_checkpoint

    cfg = tiny(
        synth,
        epochs=2,
        lr_milestones=[1],
        lr_high_params=["fc.*"],
        lr_high_mult=10.0,
        nesterov=True,
        label_smoothing=0.1,
    )
    last = train(cfg, tmp_path / "run")
    out = tmp_path / "run"
    assert yaml.safe_load((out / "config.yaml").read_text()) == json.loads((out / "config.json").read_text())
    assert json.loads((out / "config.json").read_text())["lr_milestones"] == [1]
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0]["lr"] == pytest.approx([0.05, 0.5]) and rows[1]["lr"] == pytest.approx([0.005, 0.05])
    for r in rows:
        assert r["images"] == 24 and r["images_per_s"] > 0 and math.isfinite(r["loss"])
        assert 0 <= r["acc"] <= 1
    st = _state(last)
    assert st["arch"] == "small_cnn" and st["epoch"] == 2 and st["config"]["aug"] == "cutmix"
    assert st["aug"] == "cutmix" and st["recipe"] == ""
    assert st["optimizer"]["param_groups"][1]["nesterov"] is True
    model = load_checkpoint(last)
    assert all(torch.equal(v, st["state_dict"][k]) for k, v in model.state_dict().items())
    assert not (out / "best.pt").exists()  # no validation configured
    with pytest.raises(UserError, match="--resume"):
        train(cfg, out)
    with pytest.raises(UserError, match="lr"):
        train(tiny(synth, epochs=2, lr=0.1), out, resume=True)


@pytest.mark.parametrize("aug", AUGMENTATIONS.names())
def test_every_augmentation_trains(synth, tmp_path, aug):
    opts = {"feature_cutmix": {"layer": 3}} if aug == "feature_cutmix" else {}
    last = train(tiny(synth, epochs=1, aug=aug, aug_options=opts), tmp_path / aug)
    st = _state(last)
    assert st["epoch"] == 1 and all(torch.isfinite(v).all() for v in st["state_dict"].values() if v.is_floating_point())


def test_best_checkpoint_follows_validation_metric(synth, tmp_path, monkeypatch):
    scores = iter([50.0, 70.0, 60.0])

    def fake_validation(model, dataset, cfg, device):
        assert len(dataset) == 6  # the held-out val split
        return {"MaxBoxAccV2": next(scores), "top1_loc": 1.0, "top1_cls": 2.0, "gt_known_loc": 3.0}

    monkeypatch.setattr(trainer_mod, "run_validation", fake_validation)
    train(tiny(synth, val_split="val", val_every=1), tmp_path / "v")
    rows = [json.loads(x) for x in (tmp_path / "v" / "log.jsonl").read_text().splitlines()]
    assert [r["val"]["MaxBoxAccV2"] for r in rows] == [50.0, 70.0, 60.0]
    best, last = _state(tmp_path / "v" / "best.pt"), _state(tmp_path / "v" / "last.pt")
    assert best["epoch"] == 2 and best["best_metric"] == 70.0
    assert last["epoch"] == 3 and last["best_epoch"] == 2


def test_validation_with_evaluate_model(synth, tmp_path):
    train(tiny(synth, epochs=1, val_split="val", val_every=1), tmp_path / "v")
    row = json.loads((tmp_path / "v" / "log.jsonl").read_text().splitlines()[0])
    assert 0 <= row["val"]["MaxBoxAccV2"] <= 100 and "top1_loc" in row["val"]
    assert (tmp_path / "v" / "best.pt").exists()


def test_cli_train_end_to_end(synth, tmp_path, capsys):
    from wsol.cli import main

    rc = main(
        [
            "train",
            "--recipe",
            "synthetic_cpu",
            "--aug",
            "cutout",
            "--out",
            str(tmp_path / "c"),
            "--set",
            f"data_root={synth}",
            "--set",
            "epochs=1",
            "--set",
            "batch_size=8",
            "--set",
            "val_every=0",
            "--set",
            "model_options.widths=[4,4,4,4,4]",
            "--seed",
            "1",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert rc == 0 and (tmp_path / "c" / "last.pt").exists()
    st = _state(tmp_path / "c" / "last.pt")
    assert st["config"]["aug"] == "cutout" and st["config"]["recipe"] == "synthetic_cpu"
    assert st["config"]["seed"] == 1
    rc = main(
        [
            "train",
            "--recipe",
            "synthetic_cpu",
            "--out",
            str(tmp_path / "d"),
            "--set",
            "lr=fast",
            "--set",
            f"data_root={synth}",
        ]
    )
    assert rc == 2 and "lr" in capsys.readouterr().err


def test_soft_cross_entropy_matches_the_mixed_loss():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=g)
    a, b = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 1, 0, 2, 3])
    lam = 0.3
    soft = lam * F.one_hot(a, 4).float() + (1 - lam) * F.one_hot(b, 4).float()
    ref = lam * F.cross_entropy(logits, a) + (1 - lam) * F.cross_entropy(logits, b)
    assert torch.allclose(soft_cross_entropy(logits, soft), ref, atol=1e-6)
    ref_ls = F.cross_entropy(logits, a, label_smoothing=0.1)
    assert torch.allclose(soft_cross_entropy(logits, F.one_hot(a, 4).float(), 0.1), ref_ls, atol=1e-6)


def test_epoch_plan_is_seeded_and_splits_evenly():
    b = epoch_batches(50, 8, seed=1, epoch=0)
    assert len(b) == 6 and all(len(x) == 8 for x in b) and len({i for x in b for i in x}) == 48
    assert b == epoch_batches(50, 8, seed=1, epoch=0)
    assert b != epoch_batches(50, 8, seed=1, epoch=1)
    halves = [b[0][local_slice(8, r, 2)] for r in range(2)]
    assert halves[0] + halves[1] == b[0]
    with pytest.raises(UserError, match="divisible"):
        epoch_batches(50, 8, seed=1, epoch=0, world_size=3)


def test_memory_cache_crops_match_resized_images(synth):
    from torchvision.transforms import v2

    from wsol.data import build_dataset
    from wsol.data.images import open_rgb
    from wsol.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    ds = build_dataset("synthetic", synth, "train", train=True)
    mem = MemoryTrainSet(ds)
    assert mem.size == 32 and mem.resize == 37 and mem.images.dtype == torch.uint8
    idx = [0, 5, 9, 17]
    g = torch.Generator().manual_seed(0)
    images, labels = mem.batch(idx, g)
    part, _ = mem.batch(idx, torch.Generator().manual_seed(0), slice(2, 4))
    assert torch.equal(part, images[2:4])  # a process's share equals the slice of the batch
    ref = v2.Compose(
        [
            v2.Resize((37, 37)),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)),
        ]
    )
    for j, i in enumerate(idx):
        full = ref(open_rgb(ds.records[i].path)).as_subclass(torch.Tensor)
        crops = [
            c
            for t in range(6)
            for left in range(6)
            for c in (full[:, t : t + 32, left : left + 32], full[:, t : t + 32, left : left + 32].flip(2))
        ]
        assert min(float((c - images[j]).abs().max()) for c in crops) < 1e-5
        assert labels[j] == ds.records[i].label


@pytest.mark.parametrize("at_epoch", [1, 3])
def test_ctrl_c_says_what_is_kept_and_how_to_continue(at_epoch, synth, tmp_path, monkeypatch, capsys):
    # it printed "wsol train: interrupted" and nothing about last.pt or --resume
    from wsol.cli import main

    real, calls = trainer_mod._run_epoch, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_epoch:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "_run_epoch", interrupted)
    out = tmp_path / "run"
    sets = ["data_root=" + str(synth), "cache_images=true", "epochs=3", "batch_size=8", "threads=1"]
    argv = ["train", "--recipe", "synthetic_cpu", "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(argv + sum((["--set", s] for s in sets), [])) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("wsol train: interrupted; ") and "Traceback" not in "\n".join(err), err
    if at_epoch == 1:
        assert "no epoch had finished" in err[-1] and not (out / "last.pt").exists()
    else:
        assert f"{out / 'last.pt'} holds epoch 2 of 3" in err[-1] and "--resume" in err[-1]


def test_a_training_set_smaller_than_a_batch_writes_nothing(synth, tmp_path, capsys):
    # refused in one line, but config.json and config.yaml were already in the out folder
    from wsol.cli import main

    out = tmp_path / "run"
    sets = ["data_root=" + str(synth), "epochs=1", "batch_size=100000", "threads=1"]
    argv = ["train", "--recipe", "synthetic_cpu", "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main(argv + sum((["--set", s] for s in sets), [])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "fewer than one batch of 100000" in err[-1] and "Traceback" not in "\n".join(err), err
    assert not out.exists() or list(out.iterdir()) == []


def _train_cli(synth, out, *sets, extra=()):
    from wsol.cli import main

    base = ["data_root=" + str(synth), "epochs=1", "batch_size=8", "threads=1", *sets]
    argv = ["train", "--recipe", "synthetic_cpu", "--out", str(out), "--no-progress", "--device", "cpu", *extra]
    return main(argv + sum((["--set", s] for s in base), []))


@pytest.mark.parametrize(
    "sets, extra, why",
    [
        # tracebacks (ValueError / TypeError from the constructors), or a string taken as true
        (["aug_options.cutmix.beta=abc"], ["--aug", "cutmix"], "aug_options.cutmix.beta must be a number, got 'abc'"),
        (["aug_options.mixup.alpha=[1]"], ["--aug", "mixup"], "aug_options.mixup.alpha must be a number, got [1]"),
        (["aug_options.cutmix.beta=null"], ["--aug", "cutmix"], "aug_options.cutmix.beta must be a number"),
        (["aug_options.cutmix.per_sample=abc"], [], "aug_options.cutmix.per_sample must be true or false"),
        (["model_options.widths=abc"], [], "model_options {'widths': 'abc'} of small_cnn"),
        # refused only at the first validation, epochs in
        (["val_cam_method=bogus", "val_split=val", "val_every=1"], [], "val_cam_method 'bogus' is not a CAM method"),
        # the --set was dropped without a word
        (["aug=mixup"], ["--aug", "cutmix"], "--aug cutmix and --set aug=... both set it"),
    ],
)
def test_wrong_training_options_are_one_line_before_training(synth, tmp_path, capsys, sets, extra, why):
    out = tmp_path / "run"
    assert _train_cli(synth, out, *sets, extra=extra) == 2
    err = capsys.readouterr().err
    assert why in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "last.pt").exists() and not (out / "config.yaml").exists()


def test_an_out_folder_in_a_file_is_one_line(synth, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert _train_cli(synth, blocker / "run") == 2  # was a NotADirectoryError traceback
    err = capsys.readouterr().err
    assert f"{blocker} is a file, not a folder" in err and "Traceback" not in err, err


def test_resume_refuses_fewer_epochs_than_done_and_names_a_broken_log_line(synth, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train_cli(synth, out, "epochs=2") == 0
    config = (out / "config.yaml").read_text()
    capsys.readouterr()
    # "resuming after epoch 2 of 1", exit 0, and config.yaml rewritten to epochs: 1
    assert _train_cli(synth, out, "epochs=1", extra=["--resume"]) == 2
    err = capsys.readouterr().err
    assert "holds epoch 2, more than epochs=1" in err and len(err.strip().splitlines()) == 1, err
    assert (out / "config.yaml").read_text() == config
    with open(out / "log.jsonl", "a") as fh:  # a JSONDecodeError traceback
        fh.write('{"epoch": 2, broken\n')
    assert _train_cli(synth, out, "epochs=3", extra=["--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'log.jsonl'}:3: not a JSON object" in err and "Traceback" not in err, err
    assert (out / "config.yaml").read_text() == config
