"""``wsol evaluate`` end to end on a tiny seeded model and the tiny synthetic benchmark."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eval.metrics import BoxAccuracy
from wsol.checkpoints import load_checkpoint
from wsol.cli import main
from wsol.data import build_dataset, collate
from wsol.evaluate import evaluate_model

REPO = Path(__file__).resolve().parents[2]
NUMBERS = (
    "top1_cls",
    "top5_cls",
    "top1_loc",
    "top5_loc",
    "gt_known_loc",
    "MaxBoxAcc",
    "MaxBoxAccV2",
    "best_threshold",
    "PxAP",
    "ci95",
    "BoxAcc_curve",
    "num_images",
)


def _run(args: list[str]) -> int:
    return main(["evaluate", "--no-progress", "--device", "cpu", *args])


def _numbers(path: Path) -> dict:
    res = json.loads(path.read_text())
    return {k: res[k] for k in NUMBERS}


@pytest.fixture(scope="module")
def baseline(tiny_checkpoint, tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "result.json"
    assert (
        _run(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--workers",
                "0",
                "--batch-size",
                "4",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_result_files_and_keys(baseline):
    res = json.loads(baseline.read_text())
    assert res["num_images"] == 18
    for key in NUMBERS:
        assert key in res, key
    assert set(res["MaxBoxAcc"]) == {"30", "50", "70"}
    assert res["MaxBoxAccV2"] == pytest.approx(np.mean(list(res["MaxBoxAcc"].values())))
    assert all(0 <= res[k] <= 100 for k in ("top1_cls", "top1_loc", "gt_known_loc", "PxAP"))
    assert res["top1_loc"] <= res["gt_known_loc"] and res["top1_loc"] <= res["top1_cls"]
    lo, hi = res["ci95"]["MaxBoxAccV2"]
    assert lo <= res["MaxBoxAccV2"] <= hi
    assert len(res["BoxAcc_curve"]["thresholds"]) == 100 and len(res["BoxAcc_curve"]["50"]) == 100
    assert max(res["BoxAcc_curve"]["50"]) == pytest.approx(res["MaxBoxAcc"]["50"])
    folder = baseline.parent
    rows = list(csv.DictReader(open(folder / res["per_image"])))
    assert len(rows) == 18 and {"hit@50", "top1_loc", "gt_known_loc", "pred_top1"} <= set(rows[0])
    # the per-image hits at the selected threshold give MaxBoxAcc back
    assert 100 * np.mean([int(r["hit@50"]) for r in rows]) == pytest.approx(res["MaxBoxAcc"]["50"])
    per_class = list(csv.DictReader(open(folder / res["per_class"])))
    assert [int(r["num_images"]) for r in per_class] == [6, 6, 6]
    config = json.loads((folder / res["config"]).read_text())
    assert config["cam_method"] == "cam" and "torch" in config["versions"]
    assert not (folder / "result.log.jsonl").exists()  # the resume log is gone after success


def test_accumulated_equals_one_shot(baseline, tiny_checkpoint, tiny_synth):
    """The pipelined pass equals BoxAccuracy fed with the CAMs of one batch of everything."""
    from cam import compute_cams

    model = load_checkpoint(tiny_checkpoint)
    ds = build_dataset("synthetic", tiny_synth, "test")
    batch = collate([ds[i] for i in range(len(ds))])
    cams = compute_cams(model, batch["image"], torch.as_tensor(batch["label"])).numpy().astype(np.float64)
    acc = BoxAccuracy(0.01)
    acc.update(list(cams), batch["boxes_eval"])
    one_shot = acc.compute()
    res = json.loads(baseline.read_text())
    assert res["MaxBoxAcc"] == pytest.approx(one_shot["MaxBoxAcc"], abs=1e-9)
    # and the library call used by the trainer's validation gives the same
    direct = evaluate_model(model, ds, device="cpu", batch_size=5, workers=2, progress=False)
    assert direct["MaxBoxAccV2"] == pytest.approx(res["MaxBoxAccV2"], abs=1e-9)
    assert direct["top1_loc"] == pytest.approx(res["top1_loc"], abs=1e-9)


_METRIC_KEYS = (
    "MaxBoxAcc",
    "MaxBoxAccV2",
    "best_threshold",
    "top1_loc",
    "top5_loc",
    "gt_known_loc",
    "top1_cls",
    "top5_cls",
    "PxAP",
    "ci95",
)


def test_saving_scoremaps_does_not_change_the_numbers(baseline, tiny_checkpoint, tiny_synth, tmp_path, write_metadata):
    """Default saving is lossless (float32, the dtype the maps are computed in): every metric in the
    JSON equals the run without saving, and evaluate-scoremaps on the saved maps agrees."""
    out = tmp_path / "r.json"
    maps = tmp_path / "maps"
    assert (
        _run(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--workers",
                "2",
                "--save-scoremaps",
                str(maps),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    saved = np.load(next(maps.rglob("*.npy")))
    assert saved.dtype == np.float32 and saved.shape == (64, 64)
    a, base = json.loads(out.read_text()), json.loads(baseline.read_text())
    assert {k: a.get(k) for k in _METRIC_KEYS} == {k: base.get(k) for k in _METRIC_KEYS}
    assert a["scoremaps"]["dtype"] == "float32" and "lossless" in a["scoremaps"]["metrics_on"]
    ds = build_dataset("synthetic", tiny_synth, "test")
    write_metadata(ds, tmp_path / "meta")
    out2 = tmp_path / "r2.json"
    assert (
        main(
            [
                "evaluate-scoremaps",
                "--metadata-dir",
                str(tmp_path / "meta"),
                "--scoremap-dir",
                str(maps),
                "--workers",
                "1",
                "--output",
                str(out2),
            ]
        )
        == 0
    )
    b = json.loads(out2.read_text())
    assert a["MaxBoxAcc"] == b["MaxBoxAcc"] and a["best_threshold"] == b["best_threshold"]


def test_float16_scoremaps_are_an_opt_in_the_result_names(
    baseline, tiny_checkpoint, tiny_synth, tmp_path, write_metadata
):
    out = tmp_path / "r16.json"
    maps = tmp_path / "maps16"
    assert (
        _run(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--save-scoremaps",
                str(maps),
                "--scoremap-dtype",
                "float16",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert np.load(next(maps.rglob("*.npy"))).dtype == np.float16
    a = json.loads(out.read_text())
    assert a["scoremaps"]["dtype"] == "float16" and "rounded to float16" in a["scoremaps"]["metrics_on"]
    ds = build_dataset("synthetic", tiny_synth, "test")
    write_metadata(ds, tmp_path / "meta")
    out2 = tmp_path / "r2.json"
    assert (
        main(
            [
                "evaluate-scoremaps",
                "--metadata-dir",
                str(tmp_path / "meta"),
                "--scoremap-dir",
                str(maps),
                "--workers",
                "1",
                "--output",
                str(out2),
            ]
        )
        == 0
    )
    b = json.loads(out2.read_text())
    assert a["MaxBoxAcc"] == b["MaxBoxAcc"] and a["best_threshold"] == b["best_threshold"]
    assert abs(a["MaxBoxAccV2"] - json.loads(baseline.read_text())["MaxBoxAccV2"]) < 10


def test_refuses_to_overwrite(baseline, tiny_checkpoint, tiny_synth, capsys):
    rc = _run(
        [
            "--checkpoint",
            str(tiny_checkpoint),
            "--dataset",
            "synthetic",
            "--data-root",
            str(tiny_synth),
            "--output",
            str(baseline),
        ]
    )
    assert rc == 2 and "--overwrite" in capsys.readouterr().err


def test_kill_and_resume_equals_uninterrupted(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    """Killed, then resumed with the same options: the numbers of an uninterrupted run at the same
    batch size (the batch size can move a CPU convolution's last bits, so --resume guards it too)."""
    uninterrupted = tmp_path / "uninterrupted.json"
    assert (
        _run(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--workers",
                "0",
                "--batch-size",
                "1",
                "--output",
                str(uninterrupted),
            ]
        )
        == 0
    )
    out = tmp_path / "result.json"
    log = tmp_path / "result.log.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "wsol",
        "evaluate",
        "--no-progress",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--batch-size",
        "1",
        "--checkpoint",
        str(tiny_checkpoint),
        "--dataset",
        "synthetic",
        "--data-root",
        str(tiny_synth),
        "--output",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 4:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists()
    done = len(log.read_text().splitlines()) - 1  # the first line is the configuration header
    assert 3 <= done < 18
    # a plain re-run refuses to silently start over
    assert (
        _run(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--output",
                str(out),
            ]
        )
        == 2
    )
    assert (
        _run(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--workers",
                "0",
                "--batch-size",
                "3",
                "--resume",
                "--output",
                str(out),
            ]
        )
        == 2
    )
    assert "batch_size: 1 -> 3" in capsys.readouterr().err
    assert (
        _run(
            [
                "--checkpoint",
                str(tiny_checkpoint),
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--workers",
                "2",
                "--batch-size",
                "1",
                "--resume",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert _numbers(out) == _numbers(uninterrupted)


def test_bad_image_names_the_file_or_is_skipped(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_synth, data)
    victim = sorted((data / "images").rglob("test_0003.png"))[0]
    victim.write_bytes(victim.read_bytes()[:60])  # truncated PNG
    args = ["--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic", "--data-root", str(data), "--workers", "0"]
    assert _run([*args, "--output", str(tmp_path / "a.json")]) == 2
    err = capsys.readouterr().err
    assert "test_0003.png" in err and "Traceback" not in err
    assert _run([*args, "--skip-bad", "--output", str(tmp_path / "b.json")]) == 0
    res = json.loads((tmp_path / "b.json").read_text())
    assert res["num_skipped"] == 1 and res["num_images"] == 17
    assert res["skipped"][0]["image_id"].endswith("test_0003.png")


def test_torchrun_two_processes_equal_one(baseline, tiny_checkpoint, tiny_synth, tmp_path):
    """2 gloo processes, batch size 1, one thread each: numbers identical to one process."""
    one = tmp_path / "one.json"
    two = tmp_path / "two.json"
    common = [
        "--no-progress",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--batch-size",
        "1",
        "--checkpoint",
        str(tiny_checkpoint),
        "--dataset",
        "synthetic",
        "--data-root",
        str(tiny_synth),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "wsol", "evaluate", *common, "--output", str(one)],
        env=env,
        check=True,
        capture_output=True,
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            "-m",
            "wsol",
            "evaluate",
            *common,
            "--output",
            str(two),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert _numbers(two) == _numbers(one)
    res = json.loads(two.read_text())
    assert res["processes"] == 2 and res["num_images"] == 18
    ids = [row["image_id"] for row in csv.DictReader(open(tmp_path / res["per_image"]))]
    assert len(ids) == len(set(ids)) == 18  # no image counted twice


def test_compare_evaluates_checkpoints_at_once(tiny_checkpoint, tiny_synth, tmp_path):
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                "--checkpoint",
                str(tiny_checkpoint),
                "--checkpoint",
                str(tiny_checkpoint),
                "--names",
                "a",
                "b",
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--device",
                "cpu",
                "--workers",
                "0",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    table = (out / "comparison.md").read_text()
    assert "| MaxBoxAccV2 |" in table and "p = 1.000" in table  # identical models: no difference
    assert json.loads((out / "b" / "result.json").read_text())["num_images"] == 18


def test_compare_checkpoint_takes_the_options_of_evaluate(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    # compare --checkpoint evaluated at the default metric options only, and took any --cam-method
    options = ["--dataset", "synthetic", "--data-root", str(tiny_synth), "--device", "cpu", "--workers", "0"]
    options += ["--cam-curve-interval", "0.05", "--iou-thresholds", "40", "60", "--sigma", "0.3"]
    options += ["--cam-method", "gradcam", "--batch-size", "5"]
    alone = tmp_path / "alone.json"
    assert _run(["--checkpoint", str(tiny_checkpoint), *options, "--output", str(alone)]) == 0
    out = tmp_path / "cmp"
    cmd = ["compare", "--checkpoint", str(tiny_checkpoint), "--names", "a", *options, "--out", str(out), "--quiet"]
    assert main([*cmd, "--no-progress"]) == 0
    assert _numbers(out / "a" / "result.json") == _numbers(alone)
    assert set(json.loads(alone.read_text())["MaxBoxAcc"]) == {"40", "60"}
    config = json.loads((out / "a" / "result.config.json").read_text())
    assert config["cam_method"] == "gradcam" and config["metrics"]["cam_curve_interval"] == 0.05
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--checkpoint", str(tiny_checkpoint), "--cam-method", "nonsense"])
    assert exit_.value.code == 2 and "invalid choice: 'nonsense'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["a/b", "..", ".", "c\\d"])
def test_compare_refuses_names_that_leave_the_output_folder(tiny_checkpoint, tiny_synth, tmp_path, capsys, name):
    # --names "a/b" ".." wrote OUT/a/b/result.json and OUT/../result.json
    out = tmp_path / "deep" / "cmp"
    cmd = ["compare", "--checkpoint", str(tiny_checkpoint), "--names", name, "--dataset", "synthetic"]
    assert main([*cmd, "--data-root", str(tiny_synth), "--workers", "0", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--names: {name!r}" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "deep").exists()


def test_compare_refuses_evaluation_options_without_a_checkpoint(tmp_path, capsys):
    # they were accepted and silently did nothing: the result files record their own options
    assert main(["compare", "a.json", "b.json", "--dataset", "synthetic", "--cam-curve-interval", "0.001"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "--dataset, --cam-curve-interval: only used to evaluate a --checkpoint" in err, err
    assert main(["compare", "a.json", "--workers", "2"]) == 2
    assert "--workers: only used to evaluate a --checkpoint" in capsys.readouterr().err


def test_the_sweep_pool_starts_while_the_loader_decodes_the_first_batch(tiny_checkpoint, tiny_synth, monkeypatch):
    # the kernel load and the sweep workers' start overlap the DataLoader's first batch
    import eval.sweep
    import wsol.evaluate as we
    from eval.settings import MetricSettings
    from wsol.evaluate import make_evaluator, run_pass

    events: list[str] = []

    class Loader(we.DataLoader):
        def __iter__(self):
            events.append("loader started")
            return super().__iter__()

    start = eval.sweep.SweepPool.start

    def recorded_start(self):
        events.append("pool started")
        start(self)

    iterate = we.iterate

    def recorded_iterate(batches):
        for batch in iterate(batches):
            events.append("batch")
            yield batch

    monkeypatch.setattr(we, "DataLoader", Loader)
    monkeypatch.setattr(eval.sweep.SweepPool, "start", recorded_start)
    monkeypatch.setattr(we, "iterate", recorded_iterate)
    dataset = build_dataset("synthetic", tiny_synth, "test")
    model = load_checkpoint(tiny_checkpoint)
    st = MetricSettings()
    for workers, loader_workers in ((2, 1), (0, 0)):
        events.clear()
        out = run_pass(
            model,
            dataset,
            make_evaluator(dataset, st),
            device="cpu",
            batch_size=8,
            workers=workers,
            loader_workers=loader_workers,
            progress=False,
        )
        assert out.images_scored == len(dataset)
        assert events[:3] == ["loader started", "pool started", "batch"], (workers, events[:3])
    events.clear()
    run_pass(model, dataset, make_evaluator(dataset, st), device="cpu", indices=[], workers=2, progress=False)
    assert "pool started" not in events  # nothing to score (a finished resume): no pool


def test_compare_reuses_finished_checkpoints_and_refuses_another_configuration(
    tiny_checkpoint, tiny_synth, tmp_path, capsys, monkeypatch
):
    # every compare --checkpoint run evaluated again from scratch (an interrupted one too)
    out = tmp_path / "cmp"
    base = ["compare", "--checkpoint", str(tiny_checkpoint), "--names", "a", "--dataset", "synthetic"]
    base += ["--data-root", str(tiny_synth), "--device", "cpu", "--workers", "0", "--out", str(out), "--quiet"]
    assert main(base) == 0
    first = (out / "a" / "result.json").read_text()
    capsys.readouterr()
    assert main(base) == 0  # reused, not evaluated again
    assert "already finished with this configuration" in capsys.readouterr().err
    assert (out / "a" / "result.json").read_text() == first
    assert main([*base, "--batch-size", "5"]) == 2  # another configuration: refused, naming the key
    err = capsys.readouterr().err
    assert "batch_size" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1, err
    assert "--resume" not in err  # compare has no --resume: the message named an option never given
    assert main([*base, "--batch-size", "5", "--overwrite"]) == 0

    import wsol.evaluate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(wsol.evaluate, "run_pass", interrupted)
    capsys.readouterr()
    assert main([*base, "--batch-size", "6", "--overwrite"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("wsol compare: interrupted; ") and "rerun the same command (without --overwrite)" in err


def test_saving_score_maps_under_a_cropping_preset_is_refused(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    # the maps covered the centre crop; evaluate-scoremaps then scored them against whole-image boxes
    out = tmp_path / "r.json"
    args = ["--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic", "--data-root", str(tiny_synth)]
    rc = _run([*args, "--preset", "cutmix", "--save-scoremaps", str(tmp_path / "maps"), "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--save-scoremaps with --preset cutmix: its maps cover the centre crop" in err, err
    assert not out.exists() and not (tmp_path / "maps").exists()


def test_compare_checkpoint_takes_label_subset(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    # the class-count refusal of compare --checkpoint named --label-subset, which compare did not have
    out = tmp_path / "cmp"
    cmd = ["compare", "--checkpoint", str(tiny_checkpoint), "--names", "a", "--dataset", "synthetic"]
    cmd += ["--data-root", str(tiny_synth), "--workers", "0", "--device", "cpu", "--out", str(out), "--quiet"]
    assert main([*cmd, "--label-subset", "--no-progress"]) == 0
    assert json.loads((out / "a" / "result.config.json").read_text())["label_subset"] is True
    capsys.readouterr()
    assert main(["compare", "a.json", "--label-subset"]) == 2
    assert "--label-subset: only used to evaluate a --checkpoint" in capsys.readouterr().err


def test_imagenet_val_images_without_a_box_annotation_are_announced(tmp_path, capsys):
    # a partial LOC_val_solution.csv gave the numbers of a subset without a word
    import torch

    from tests.wsol.test_zoo_study import fake_imagenet
    from wsol.checkpoints import save_checkpoint
    from wsol.models import create_model

    root = fake_imagenet(tmp_path / "ILSVRC2012", images=5, classes=3)
    csv_path = root / "LOC_val_solution.csv"
    csv_path.write_text("\n".join(csv_path.read_text().splitlines()[:-1]) + "\n")  # drop the last image
    torch.manual_seed(0)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, create_model("small_cnn", 3))
    args = ["--checkpoint", str(ckpt), "--dataset", "imagenet", "--data-root", str(root), "--split", "val"]
    assert _run([*args, "--workers", "0", "--output", str(tmp_path / "r.json")]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 images under" in err and "ILSVRC2012_val_00000005" in err, err
    assert "the result covers the 4 annotated images" in err
    assert json.loads((tmp_path / "r.json").read_text())["num_images"] == 4
