"""`wsol compare` from the command line: stdout table, files, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from wsol.cli import main

COLUMNS = ["top1_cls", "top1_loc", "hit@30", "hit@50", "hit@70"]


def _result(folder: Path, hits: dict[str, list[int]], ids: list[str]) -> str:
    folder.mkdir(parents=True)
    with open(folder / "result.per_image.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image_id", *COLUMNS, "best_iou"])
        for i, image_id in enumerate(ids):
            w.writerow([image_id, *(hits[c][i] for c in COLUMNS), 0.5])
    pct = {c: 100.0 * sum(v) / len(v) for c, v in hits.items()}
    data = {
        "num_images": len(ids),
        "MaxBoxAcc": {d: pct[f"hit@{d}"] for d in ("30", "50", "70")},
        "MaxBoxAccV2": sum(pct[f"hit@{d}"] for d in ("30", "50", "70")) / 3,
        "top1_cls": pct["top1_cls"],
        "top1_loc": pct["top1_loc"],
        "ci95": {"top1_loc": [10.0, 20.0]},
        "per_image": "result.per_image.csv",
    }
    (folder / "result.json").write_text(json.dumps(data))
    return str(folder / "result.json")


IDS = [f"img{i}.jpg" for i in range(8)]
A = {"top1_cls": [1] * 8, "top1_loc": [1] * 7 + [0], "hit@30": [1] * 8, "hit@50": [1] * 7 + [0], "hit@70": [0] * 8}
B = {"top1_cls": [1] * 8, "top1_loc": [0] * 8, "hit@30": [1] * 8, "hit@50": [0] * 8, "hit@70": [0] * 8}


def test_compare_prints_and_writes(tmp_path, capsys):
    a, b = _result(tmp_path / "base", A, IDS), _result(tmp_path / "cutmix", B, IDS)
    out = tmp_path / "cmp"
    assert main(["compare", a, b, "--names", "baseline", "CutMix", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    # top-1 loc: baseline hits 7 images the other misses -> McNemar p = 2 / 2**7
    assert "| Top-1 Loc | 87.5 [10.0, 20.0] | 0.0 [10.0, 20.0] | -87.5 (p = 0.016) |" in text
    assert f"wrote {out / 'comparison.md'}" in text
    assert (out / "comparison.md").read_text() in text
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    row = next(r for r in rows if r["model"] == "CutMix" and r["metric"] == "MaxBoxAcc@50")
    assert float(row["p_value"]) == pytest.approx(2 / 2**7) and row["b"] == "7" and row["c"] == "0"


def test_compare_markdown_and_csv_paths(tmp_path, capsys):
    a, b = _result(tmp_path / "base", A, IDS), _result(tmp_path / "cutmix", B, IDS)
    assert (
        main(
            [
                "compare",
                a,
                b,
                "--markdown",
                str(tmp_path / "t.md"),
                "--csv",
                str(tmp_path / "t.csv"),
                "--quiet",
                "--decimals",
                "2",
            ]
        )
        == 0
    )
    assert "| MaxBoxAcc@50 | 87.50 | 0.00 | -87.50 (p = 0.016) |" in (tmp_path / "t.md").read_text()
    assert (tmp_path / "t.csv").read_text().startswith("model,result,metric,value,ci_low")
    assert "| base |" in (tmp_path / "t.md").read_text()  # default name: folder of result.json


def test_compare_mismatched_images_is_a_clear_error(tmp_path, capsys):
    a = _result(tmp_path / "base", A, IDS)
    b = _result(tmp_path / "other", B, IDS[:-1] + ["elsewhere.jpg"])
    assert main(["compare", a, b]) == 2
    err = capsys.readouterr().err
    assert "not evaluated on the same images" in err and "img7.jpg" in err and "elsewhere.jpg" in err
    assert "Traceback" not in err


def test_compare_argument_errors(tmp_path, capsys):
    a = _result(tmp_path / "base", A, IDS)
    assert main(["compare", a, "--names", "x", "y"]) == 2
    assert "2 names for 1 result files" in capsys.readouterr().err
    assert main(["compare", a, "--out", str(tmp_path), "--csv", "x.csv"]) == 2
    assert main(["compare", str(tmp_path / "missing.json")]) == 2
    assert "result file not found" in capsys.readouterr().err


def test_a_json_that_is_no_result_is_refused(tmp_path, capsys):
    # compare put such a file in the table as a column of dashes
    a = _result(tmp_path / "base", A, IDS)
    other = tmp_path / "config.json"
    other.write_text(json.dumps({"checkpoint": "m.pt", "batch_size": 32}))
    assert main(["compare", a, str(other)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(other) in err and "not a result" in err and "checkpoint, batch_size" in err, err


@pytest.mark.parametrize("key, value", [("MaxBoxAccV2", "NaN"), ("MaxBoxAcc", '{"30": 1.0, "50": Infinity}')])
def test_a_result_with_a_non_finite_number_is_refused(tmp_path, capsys, key, value):
    # "MaxBoxAccV2": NaN showed as "—" with an interval beside it, and "— (p = 1.000)"
    a = _result(tmp_path / "base", A, IDS)
    b = _result(tmp_path / "other", B, IDS)
    data = json.loads(Path(b).read_text())
    data[key] = "@@"
    Path(b).write_text(json.dumps(data).replace('"@@"', value))
    assert main(["compare", a, b]) == 2
    err = capsys.readouterr().err
    where = key if key == "MaxBoxAccV2" else "MaxBoxAcc.50"
    assert f"{b}: {where} is not a finite number" in err and len(err.strip().splitlines()) == 1, err
