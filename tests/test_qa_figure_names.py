"""QA fixes: repeated --names / --ids are refused; figure per-class refuses results on different
image sets; figure grid says when --images is more than the split has. Through the CLI."""

from __future__ import annotations

import json

import pytest

from tests.wsol.test_figure_checks import _grid, setup  # noqa: F401  (the module fixture)
from wsol.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "a.json", "b.json", "--names", "x", "x"],
        ["figure", "curves", "a.json", "b.json", "--names", "x", "x", "--out", "c.png"],
        ["figure", "per-class", "a.json", "b.json", "--names", "x", "x", "--out", "c.png"],
        ["figure", "grid", "--checkpoint", "a.pt", "--checkpoint", "b.pt", "--names", "x", "x", "--out", "g.png"],
        ["figure", "grid", "--checkpoint", "a.pt", "--ids", "c/1.png", "c/1.png", "--out", "g.png"],
        ["robustness", "--checkpoint", "a.pt", "--checkpoint", "b.pt", "--names", "x", "x", "--occlusion", "center"],
    ],
    ids=["compare", "curves", "per-class", "grid-names", "grid-ids", "robustness"],
)
def test_a_repeated_name_or_id_is_one_argparse_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "is given twice; give each value once" in err and "Traceback" not in err, err


def test_per_class_refuses_results_on_other_images(setup, tmp_path, capsys):  # noqa: F811
    root, _ = setup
    r0 = root / "r0" / "result.json"
    data = json.loads(r0.read_text())
    rows = (r0.parent / data["per_image"]).read_text().splitlines()
    (tmp_path / "fewer.per_image.csv").write_text("\n".join(rows[:-1]) + "\n")  # one image less
    data["per_image"] = "fewer.per_image.csv"
    data["per_class"] = str(r0.parent / data["per_class"])
    (tmp_path / "fewer.json").write_text(json.dumps(data))
    argv = ["figure", "per-class", str(r0), str(tmp_path / "fewer.json"), "--out", str(tmp_path / "p.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "were not evaluated on the same images: 1 image(s) only in r0" in err, err
    assert "Per-class bars side by side need results on identical image sets." in err
    assert not (tmp_path / "p.png").exists()
    assert main([*argv[:3], str(r0), "--out", str(tmp_path / "p.png")]) == 0  # the same images


def test_grid_says_when_images_exceed_the_split(setup, capsys, one_torch_thread):  # noqa: F811
    root, ck = setup
    assert main(_grid(root, [ck["m0"]], "--images", "50", out="all.png")) == 0
    err = capsys.readouterr().err
    assert "--images 50: the synthetic test split has 6 images; showing all of them" in err, err
