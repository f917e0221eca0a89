"""``wsol demo`` end to end at toy size: every stage runs, the report is written, a re-run reuses."""

from __future__ import annotations

import json

from wsol.cli import main


def test_demo_runs_and_reuses_finished_stages(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--augs", "none", "cutmix", "--classes", "3",
            "--train-per-class", "16", "--test-per-class", "4", "--set", "epochs=1", "--set", "batch_size=16"]
    assert main(args) == 0
    first = capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "| MaxBoxAccV2 |" in report and "CutMix vs baseline" in report
    for name in ("cam_grid.png", "boxacc_curves.png", "per_class.png", "comparison.csv"):
        assert (out / name).stat().st_size > 0, name
    res = json.loads((out / "eval" / "cutmix" / "result.json").read_text())
    assert res["num_images"] == 12 and "MaxBoxAccV2" in res and "top1_loc" in res
    assert "1/5 generating" in first and "(2 to do" in first
    # the second run trains and evaluates nothing again
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "synthetic benchmark: reusing" in second and "(0 to do" in second
