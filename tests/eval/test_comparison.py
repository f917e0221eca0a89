"""Comparison tables from hand-made result JSON files and per-image CSVs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from eval.compare import (
    align_per_image,
    compare_results,
    comparison_csv,
    comparison_markdown,
    format_p,
    per_class_matrix,
    table_metrics,
    write_comparison,
)
from eval.errors import InputError
from eval.results import load_result, read_per_image_csv

HEADER = [
    "image_id",
    "label",
    "pred_top1",
    "top1_cls",
    "top5_cls",
    "top1_loc",
    "top5_loc",
    "gt_known_loc",
    "hit@30",
    "hit@50",
    "hit@70",
    "best_iou",
]


def write_result(
    folder: Path,
    hits: dict[str, list[int]],
    ids: list[str] | None = None,
    *,
    extra: dict | None = None,
    per_image: bool = True,
    order: list[int] | None = None,
) -> Path:
    """A result JSON whose metric values are the means of the given per-image hit columns."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(hits.values())))
    ids = ids or [f"c{i % 2}/img_{i:02d}.jpg" for i in range(n)]
    pct = {k: 100.0 * float(np.mean(v)) for k, v in hits.items()}
    data = {
        "num_images": n,
        "cam_curve_interval": 0.01,
        "MaxBoxAcc": {d: pct[f"hit@{d}"] for d in ("30", "50", "70")},
        "MaxBoxAccV2": float(np.mean([pct["hit@30"], pct["hit@50"], pct["hit@70"]])),
        "best_threshold": {"30": 0.1, "50": 0.25, "70": 0.4},
        "ci95": {
            "MaxBoxAccV2": [1.0, 99.0],
            "MaxBoxAcc@50": [pct["hit@50"] - 5, pct["hit@50"] + 5],
            "top1_cls": [pct["top1_cls"] - 3.25, pct["top1_cls"] + 3.25],
        },
        "protocol": "wsolevaluation MaxBoxAccV2, interval 0.01",
        "top1_cls": pct["top1_cls"],
        "top5_cls": pct["top5_cls"],
        "top1_loc": pct["top1_loc"],
        "top5_loc": pct["top5_loc"],
        "gt_known_loc": pct["gt_known_loc"],
        "arch": "small_cnn",
        "cam_method": "cam",
    }
    if per_image:
        data["per_image"] = "result.per_image.csv"
        rows = list(range(n)) if order is None else order
        with open(folder / "result.per_image.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(HEADER)
            for i in rows:
                w.writerow(
                    [ids[i], i % 2, i % 2, *(hits[c][i] for c in HEADER[3:11]), f"{hits['hit@50'][i] * 0.6:.3f}"]
                )
    data.update(extra or {})
    path = folder / "result.json"
    path.write_text(json.dumps(data))
    return path


N = 10
REF = {
    "top1_cls": [1] * 8 + [0, 1],
    "top5_cls": [1] * 10,
    "top1_loc": [1] * 6 + [0] * 4,
    "top5_loc": [1] * 7 + [0] * 3,
    "gt_known_loc": [1] * 7 + [0] * 3,
    "hit@30": [1] * 9 + [0],
    "hit@50": [1] * 5 + [0] * 5,
    "hit@70": [1] * 2 + [0] * 8,
}
# other vs ref: hit@50 b=5 (ref only), c=0 -> p = 2 / 2**5 = 0.0625
#               top1_cls b=1 (image 9), c=1 (image 8) -> p = 1
#               hit@30 identical -> b = c = 0, p = 1
OTHER = {
    "top1_cls": [1] * 9 + [0],
    "top5_cls": [1] * 10,
    "top1_loc": [0] * 10,
    "top5_loc": [1] * 7 + [0] * 3,
    "gt_known_loc": [1] * 7 + [0] * 3,
    "hit@30": [1] * 9 + [0],
    "hit@50": [0] * 10,
    "hit@70": [0] * 10,
}


@pytest.fixture
def two(tmp_path):
    a = write_result(tmp_path / "baseline", REF)
    # the other file lists its images in another order: matching must go by image_id
    b = write_result(tmp_path / "cutmix", OTHER, order=list(reversed(range(N))))
    return a, b


def test_values_intervals_and_pvalues(two):
    comp = compare_results(two)
    assert comp.names == ["baseline", "cutmix"]
    r = comp.row("cutmix", "MaxBoxAcc@50")
    assert r.value == 0.0 and r.delta == -50.0
    assert (r.b, r.c, r.n_paired, r.test) == (5, 0, 10, "mcnemar_exact")
    assert r.p_value == pytest.approx(0.0625)
    r = comp.row("cutmix", "top1_cls")
    assert (r.b, r.c) == (1, 1) and r.p_value == pytest.approx(1.0)
    assert r.value == 90.0 and r.delta == 0.0
    r = comp.row("cutmix", "top1_loc")  # ref hits 6 images, other none: b = 6 -> p = 2 / 64
    assert (r.b, r.c) == (6, 0) and r.p_value == pytest.approx(2 / 64)
    r = comp.row("cutmix", "MaxBoxAcc@30")
    assert (r.b, r.c) == (0, 0) and r.p_value == pytest.approx(1.0)
    # V2 per-image scores: ref (h30+h50+h70)/3 vs other h30/3 -> ref higher on images 0-4 (b = 5), never lower
    r = comp.row("cutmix", "MaxBoxAccV2")
    assert (r.b, r.c, r.test) == (5, 0, "sign_test") and r.p_value == pytest.approx(0.0625)
    ref = comp.row("baseline", "MaxBoxAcc@50")
    assert ref.value == 50.0 and ref.ci == (45.0, 55.0) and ref.p_value is None and ref.delta is None
    assert comp.metrics == [
        "top1_cls",
        "top5_cls",
        "top1_loc",
        "top5_loc",
        "gt_known_loc",
        "MaxBoxAcc@30",
        "MaxBoxAcc@50",
        "MaxBoxAcc@70",
        "MaxBoxAccV2",
    ]  # no PxAP anywhere
    assert not [n for n in comp.notes if n.startswith("Warning")]


def test_markdown_shows_numbers_intervals_and_p(two):
    md = comparison_markdown(compare_results(two, names=["base", "CutMix"]))
    lines = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert lines["MaxBoxAcc@50"] == "| MaxBoxAcc@50 | 50.0 [45.0, 55.0] | 0.0 [-5.0, 5.0] | -50.0 (p = 0.062) |"
    assert lines["Top-1 Cls"] == "| Top-1 Cls | 90.0 [86.8, 93.2] | 90.0 [86.8, 93.2] | +0.0 (p = 1.000) |"
    assert lines["Top-5 Loc"].endswith("| 70.0 | 70.0 | +0.0 (p = 1.000) |")  # no interval stored
    assert "Δ vs base (p)" in md and "McNemar" in md and "| CutMix |" in md
    assert "Protocol: wsolevaluation MaxBoxAccV2, interval 0.01" in md
    assert "0.10 / 0.25 / 0.40" in md


def test_csv_is_tidy_and_exact(two, tmp_path):
    comp = compare_results(two)
    rows = list(csv.DictReader(io.StringIO(comparison_csv(comp))))
    assert len(rows) == 2 * len(comp.metrics)
    row = next(r for r in rows if r["model"] == "cutmix" and r["metric"] == "top1_loc")
    assert row["value"] == "0" and row["delta"] == "-60" and row["b"] == "6" and row["c"] == "0"
    assert float(row["p_value"]) == pytest.approx(0.03125)
    assert row["ci_low"] == "" and row["test"] == "mcnemar_exact"
    base = next(r for r in rows if r["model"] == "baseline" and r["metric"] == "MaxBoxAccV2")
    assert base["ci_low"] == "1" and base["ci_high"] == "99" and base["p_value"] == ""
    written = write_comparison(comp, tmp_path / "o" / "t.md", tmp_path / "o" / "t.csv")
    assert [p.name for p in written] == ["t.md", "t.csv"] and all(p.stat().st_size > 100 for p in written)


def test_mismatched_image_sets_is_an_error(tmp_path):
    a = write_result(tmp_path / "a", REF)
    ids = [f"c{i % 2}/img_{i:02d}.jpg" for i in range(N)]
    ids[3] = "c1/other.jpg"
    b = write_result(tmp_path / "b", OTHER, ids=ids)
    with pytest.raises(
        InputError,
        match=r"not evaluated on the same images: 1 image\(s\) only in a "
        r"\(c1/img_03.jpg\); 1 image\(s\) only in b \(c1/other.jpg\)",
    ):
        compare_results([a, b])


def test_missing_optional_keys_show_dash(tmp_path):
    a = write_result(tmp_path / "a", REF)
    minimal = tmp_path / "scoremaps.json"
    minimal.write_text(
        json.dumps({"num_images": N, "MaxBoxAcc": {"50": 40.0}, "MaxBoxAccV2": 33.3, "PxAP": 61.2, "protocol": "V1"})
    )
    comp = compare_results([a, minimal])
    assert comp.names == ["a", "scoremaps"]
    assert "PxAP" in comp.metrics and comp.row("a", "PxAP").value is None
    md = comparison_markdown(comp)
    line = next(l for l in md.splitlines() if l.startswith("| PxAP"))
    assert line == "| PxAP | — | 61.2 | — |"
    line = next(l for l in md.splitlines() if l.startswith("| MaxBoxAcc@50"))
    assert line == "| MaxBoxAcc@50 | 50.0 [45.0, 55.0] | 40.0 | -10.0 |"
    assert any("no per-image CSV" in n for n in comp.notes)
    assert any("different protocols" in n for n in comp.notes)


def test_bad_inputs_name_file_and_line(tmp_path):
    a = write_result(tmp_path / "a", REF)
    text = (tmp_path / "a" / "result.per_image.csv").read_text().splitlines()
    text[3] = text[3].replace(",1,1,1,", ",1,2,1,", 1)
    (tmp_path / "a" / "result.per_image.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match=r"result.per_image.csv:4: column '.*' must be 0 or 1, got '2'"):
        read_per_image_csv(tmp_path / "a" / "result.per_image.csv")
    bad = tmp_path / "bad.json"
    bad.write_text('{"num_images": 3, "MaxBoxAccV2": "high"}')
    with pytest.raises(InputError, match=r"bad.json: key 'MaxBoxAccV2' must be a number"):
        table_metrics([load_result(bad)])
    dup = tmp_path / "dup.csv"
    dup.write_text("image_id,hit@50\nx.jpg,1\nx.jpg,0\n")
    with pytest.raises(InputError, match=r"dup.csv:3: image_id 'x.jpg' repeats line 2"):
        read_per_image_csv(dup)
    with pytest.raises(InputError, match="2 names for 1 result"):
        compare_results([a], names=["x", "y"])


def test_num_images_must_match_per_image_rows(tmp_path):
    a = write_result(tmp_path / "a", REF, extra={"num_images": 11})
    with pytest.raises(InputError, match="num_images is 11 but the per-image CSV"):
        compare_results([a])


def test_inconsistent_json_and_csv_warn(tmp_path):
    a = write_result(tmp_path / "a", REF, extra={"top1_loc": 12.0})
    comp = compare_results([a])
    assert any("Top-1 Loc is 12.00" in n and "60.00 from its per-image CSV" in n for n in comp.notes)


def test_align_and_format_p(tmp_path):
    a = read_per_image_csv(write_result(tmp_path / "a", REF).with_name("result.per_image.csv"))
    b = read_per_image_csv(
        write_result(tmp_path / "b", REF, order=[3, 1, 2, 0, 4, 5, 6, 7, 9, 8]).with_name("result.per_image.csv")
    )
    order = align_per_image(a, b)
    assert [b.image_ids[i] for i in order] == a.image_ids
    assert format_p(0.0342) == "0.034" and format_p(2.1e-5) == "2.1e-05" and format_p(None) == "—"


def test_per_class_matrix_aligns_by_class(tmp_path):
    paths = []
    for name, rows in (("a", [("001.A", 50.0), ("002.B", 100.0)]), ("b", [("002.B", 25.0), ("003.C", 0.0)])):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "pc.csv").write_text("class,num_images,top1_loc\n" + "".join(f"{c},2,{v}\n" for c, v in rows))
        (folder / "result.json").write_text(json.dumps({"per_class": "pc.csv"}))
        paths.append(load_result(folder / "result.json"))
    names, values = per_class_matrix(paths, "top1_loc")
    assert names == ["001.A", "002.B", "003.C"]
    np.testing.assert_array_equal(values["a"], [50.0, 100.0, np.nan])
    np.testing.assert_array_equal(values["b"], [np.nan, 25.0, 0.0])
    with pytest.raises(InputError, match="no column 'gt_known_loc'"):
        per_class_matrix(paths, "gt_known_loc")
