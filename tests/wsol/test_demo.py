"""``wsol demo`` end to end at toy size: every stage runs, the report is written, a re-run reuses,
``--seeds 2`` adds only the second seed's runs and the table across seeds."""

from __future__ import annotations

import json

import pytest

from tests.wsol.demo_args import demo_args
from wsol.cli import main


def test_demo_runs_and_reuses_finished_stages(tmp_path, capsys):
    out = tmp_path / "demo"
    args = demo_args(out, classes=3, train_per_class=16, test_per_class=4, batch_size=16)
    assert main(args) == 0
    first = capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "| MaxBoxAccV2 |" in report and "CutMix vs baseline" in report
    # the report leads with the finding: one sentence with the numbers and intervals
    lead = report.split("\n\n")[1]
    assert lead.startswith("**Finding.** In this one-seed run CutMix") and "MaxBoxAccV2" in lead and "[" in lead
    assert not (out / "seeds.md").exists()
    for name in ("cam_grid.png", "boxacc_curves.png", "per_class.png", "comparison.csv"):
        assert (out / name).stat().st_size > 0, name
    res = json.loads((out / "eval" / "cutmix" / "result.json").read_text())
    assert res["num_images"] == 12 and "MaxBoxAccV2" in res and "top1_loc" in res
    assert "1/5 generating" in first and "(2 to do" in first
    # the second run trains and evaluates nothing again
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "synthetic benchmark: reusing" in second and "(0 to do" in second
    # a second seed: only its two runs are trained and evaluated; the table across seeds appears
    assert main([*args, "--seeds", "2"]) == 0
    third = capsys.readouterr().out
    assert "2 models x 2 seeds with synthetic_cpu (2 to do" in third
    assert (out / "train" / "cutmix_seed1" / "last.pt").is_file()
    seeds_md = (out / "seeds.md").read_text()
    assert "the CutMix effect " in seeds_md.splitlines()[0] and "t(0.975, 1)" in seeds_md
    assert "| MaxBoxAccV2 | baseline |" in seeds_md and (out / "seeds.csv").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert (
        report.split("\n\n")[1].startswith("**Finding.** Over 2 seeds, the CutMix effect ")
        and "## Across 2 seeds" in report
    )


def _comparison(v2: tuple[float, float], loc: tuple[float, float]):
    """A comparison of baseline and CutMix where CutMix's MaxBoxAccV2 / top-1 loc rows have the
    given (delta, p-value)."""
    from eval.compare import Comparison, ComparisonRow

    rows = []
    for metric, (delta, p) in (("MaxBoxAccV2", v2), ("top1_loc", loc)):
        rows.append(ComparisonRow("baseline", metric, 40.0, (38.0, 42.0)))
        rows.append(ComparisonRow("CutMix", metric, 40.0 + delta, (38.0 + delta, 42.0 + delta), delta, p))

    class _Named:
        def __init__(self, name: str) -> None:
            self.name = name

    return Comparison([_Named("baseline"), _Named("CutMix")], ["MaxBoxAccV2", "top1_loc"], rows)


@pytest.mark.parametrize(
    "v2, loc, head",
    [
        ((2.1, 0.1), (9.2, 0.0003), "differs from baseline at p < 0.05 on top-1 loc (higher) but not on MaxBoxAccV2:"),
        ((-3.0, 0.01), (1.0, 0.5), "differs from baseline at p < 0.05 on MaxBoxAccV2 (lower) but not on top-1 loc:"),
        ((2.0, 0.01), (9.0, 0.001), "localizes better than baseline on both MaxBoxAccV2 and top-1 loc (p < 0.05):"),
        ((-2.0, 0.01), (-9.0, 0.001), "localizes worse than baseline on both MaxBoxAccV2 and top-1 loc (p < 0.05):"),
        (
            (2.0, 0.01),
            (-9.0, 0.001),
            "on MaxBoxAccV2 and top-1 loc in opposite directions (MaxBoxAccV2 +, top-1 loc -):",
        ),
        ((2.0, 0.2), (9.0, 0.3), "does not differ from baseline at p < 0.05 on MaxBoxAccV2 or top-1 loc:"),
    ],
)
def test_the_finding_names_which_headline_metric_differs(v2, loc, head):
    # "only on top-1 loc" read as "on no other row", which the tables below it contradicted
    from wsol.jobs.demo import lead_sentence

    text = lead_sentence(_comparison(v2, loc))
    assert text.startswith("In this one-seed run CutMix ") and head in text, text
    assert "only on" not in text


def test_ctrl_c_stops_the_running_children_and_says_how_to_continue(tmp_path, monkeypatch, capsys):
    # an interrupted parent left its trainings running on their own, and said only "interrupted"
    import subprocess
    import sys

    from wsol.cli import main
    from wsol.jobs import demo

    started: list[subprocess.Popen] = []
    popen = subprocess.Popen

    def recorded(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    sleep, calls = demo.time.sleep, []

    def interrupted(seconds):  # the first sleep of the polling loop is Ctrl-C; the rest are sleeps
        calls.append(seconds)
        if len(calls) == 1:
            raise KeyboardInterrupt
        sleep(seconds)

    monkeypatch.setattr(demo.subprocess, "Popen", recorded)
    monkeypatch.setattr(demo.time, "sleep", interrupted)
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    monkeypatch.setattr(
        demo, "_run_demo", lambda cfg: demo._run_parallel({"a": sleeper, "b": sleeper}, tmp_path, 2, {})
    )
    assert main(["demo", "--out", str(tmp_path / "d")]) == 130
    err = capsys.readouterr().err
    assert err.startswith("wsol demo: interrupted; finished stages are kept in ") and "rerun the same command" in err
    assert len(started) == 2 and all(p.poll() is not None for p in started)  # stopped, not left running


@pytest.mark.parametrize(
    "argv, why",
    [
        # --set seed=5 made every "seed" of --seeds 2 train with seed 5 (zero-width intervals)
        (["--seeds", "2", "--set", "seed=5"], "--set seed=5: seed is set for every training by --seed / --seeds"),
        (["--set", "aug=mixup"], "aug is set for every training by --augs"),
        (["--set", "data_root=elsewhere"], "data_root is set for every training by the demo"),
        # these were refused only after the benchmark was generated (or not at all)
        (["--augs", "bogus"], "unknown augmentation 'bogus'"),
        (["--augs", "none", "none"], "--augs names 'none' twice"),
        (["--set", "bogus=1"], "unknown key 'bogus'"),
        (["--set", "epochs=0"], "epochs must be >= 1"),
        (["--test-per-class", "0"], "--test-per-class must be at least 1"),
    ],
)
def test_demo_refuses_what_would_run_another_configuration_before_anything_is_made(argv, why, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert why in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "data").exists()
