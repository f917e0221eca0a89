"""QA findings on ``wsol data`` and ``wsol demo``: huge labels and box values are problems naming
their line (not a MemoryError or OverflowError), a rerun of the demo with other settings is refused
instead of reusing stages made with the old ones, ``--fresh`` deletes only a folder the demo wrote,
and a few messages say what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.wsol.demo_args import demo_args
from tests.wsol.test_data_formats import write_cub, write_wsoleval
from wsol.cli import main
from wsol.jobs import demo


def _check(capsys, *args: str) -> tuple[int, dict]:
    rc = main(["data", "check", *args])
    return rc, json.loads(capsys.readouterr().out)


def _problems(rep: dict) -> dict[tuple[str, int | None], str]:
    return {(Path(p["file"]).name, p["line"]): p["message"] for p in rep["problems"]}


# --- bug 1: a huge class label ---------------------------------------------------------------


@pytest.mark.parametrize("label", ["100000000", "9223372036854775807", "99999999999999999999"])
def test_wsolevaluation_huge_label_is_a_problem_of_its_line(tmp_path, capsys, label):
    # 100000000 took 5.8 GB and ended in a MemoryError (one class name per class); the int64 maximum
    # and a value past it got the process killed
    data, meta = write_wsoleval(tmp_path)
    (meta / "class_labels.txt").write_text(f"c/a.jpg,0\nc/b.png,{label}\n")
    rc, rep = _check(
        capsys, "--format", "wsolevaluation", "--root", str(data), "--metadata-dir", str(meta), "--annotations-only"
    )
    assert rc == 1 and rep["classes"] == 1 and rep["images"] == 1
    msg = _problems(rep)[("class_labels.txt", 2)]
    assert label in msg and "line skipped" in msg
    assert ("too large" in msg and "100000 classes" in msg) or "does not fit a 64-bit integer" in msg


def test_the_largest_label_allowed_is_accepted(tmp_path):
    from eval.metadata import MAX_CLASSES, read_split

    _, meta = write_wsoleval(tmp_path)
    (meta / "class_labels.txt").write_text(f"c/a.jpg,0\nc/b.png,{MAX_CLASSES - 1}\n")
    assert read_split(meta).num_classes == MAX_CLASSES


def test_cub_huge_label_without_classes_txt_is_a_problem(tmp_path, capsys):
    # without classes.txt the classes were numbered up to the largest label: one name each
    cub = write_cub(tmp_path)
    (cub / "classes.txt").unlink()
    (cub / "image_class_labels.txt").write_text("1 1\n2 1\n3 100000000\n")
    rc, rep = _check(capsys, "--format", "cub", "--root", str(cub), "--split", "all", "--annotations-only")
    assert rc == 1 and rep["classes"] == 1 and rep["images"] == 2
    msg = _problems(rep)[("image_class_labels.txt", 3)]
    assert "'100000000'" in msg and "out of range 1..100000" in msg


# --- bug 2: a huge but finite CUB box value ----------------------------------------------------


def test_cub_huge_box_value_is_a_problem_of_its_line(tmp_path, capsys):
    # 1e300 -> "OverflowError: Python int too large to convert to C long" in check and train
    cub = write_cub(tmp_path)
    (cub / "bounding_boxes.txt").write_text("1 4.0 5.0 8.0 5.0\n2 2.0 1e300 10.0 10.0\n3 10.5 2.0 9.0 20.0\n")
    rc, rep = _check(capsys, "--format", "cub", "--root", str(cub), "--split", "all", "--annotations-only")
    assert rc == 1
    msg = _problems(rep)[("bounding_boxes.txt", 2)]
    assert msg.startswith("box x=2 y=1e+300 w=10 h=10 out of range") and msg.endswith("box rejected")
    # reading the dataset (what train does) raises the one-line UserError naming the line
    from wsol.data import build_dataset
    from wsol.errors import UserError

    with pytest.raises(UserError, match=r"bounding_boxes\.txt:2: box .* out of range"):
        build_dataset("cub", cub, "train")


# --- bug 6: messages ---------------------------------------------------------------------------


def test_a_folder_in_place_of_class_labels_txt_says_so(tmp_path, capsys):
    data, meta = write_wsoleval(tmp_path)
    (meta / "class_labels.txt").unlink()
    (meta / "class_labels.txt").mkdir()
    rc, rep = _check(
        capsys, "--format", "wsolevaluation", "--root", str(data), "--metadata-dir", str(meta), "--annotations-only"
    )
    assert rc == 1
    assert _problems(rep)[("class_labels.txt", None)].startswith("is a folder, not a file")


def test_synth_out_under_a_file_names_the_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["data", "synth", "--out", str(tmp_path / "afile" / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'afile'} is a file, not a folder" in err and "Errno" not in err
    assert len(err.strip().splitlines()) == 1


def test_synth_help_states_the_size_range(capsys):
    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    assert "32..1024" in " ".join(capsys.readouterr().out.split())


# --- bugs 3-5: the demo -------------------------------------------------------------------------


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fail the test if the demo starts a stage (a refusal must come before anything runs)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a demo stage ran")

    monkeypatch.setattr(demo.subprocess, "run", refuse)
    monkeypatch.setattr(demo, "_run_parallel", refuse)


def _refused(capsys, argv: list[str]) -> str:
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_demo_refuses_a_single_method_before_training(tmp_path, capsys, nothing_runs):
    # --augs none trained and evaluated, then failed on "--select disagree needs ... at least two"
    err = _refused(capsys, ["--out", str(tmp_path / "d"), "--augs", "none"])
    assert "--augs needs at least two methods to compare" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("fresh", [True, False])
def test_demo_does_not_delete_or_write_into_a_folder_it_did_not_write(tmp_path, capsys, nothing_runs, fresh):
    # --fresh ran shutil.rmtree on any folder (`--out .` or `--out ~` wiped it)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    (mine / "data").mkdir()  # the data stage deleted OUT/data before writing the benchmark there
    (mine / "data" / "keep.txt").write_text("precious")
    err = _refused(capsys, ["--out", str(mine), *(["--fresh"] if fresh else [])])
    assert "was not written by `wsol demo`" in err
    assert (mine / "thesis.tex").read_text() == "precious" and (mine / "data" / "keep.txt").is_file()
    assert sorted(p.name for p in mine.iterdir()) == ["data", "thesis.tex"]


def test_demo_refuses_a_file_as_out(tmp_path, capsys, nothing_runs):
    (tmp_path / "f").write_text("x")
    assert "is a file, not a folder" in _refused(capsys, ["--out", str(tmp_path / "f"), "--fresh"])
    assert (tmp_path / "f").read_text() == "x"


def test_demo_refuses_stages_of_an_older_version_without_settings(tmp_path, capsys, nothing_runs):
    # stamps that say only "ok" were reused whatever the settings
    out = tmp_path / "old"
    (out / ".stages").mkdir(parents=True)
    (out / ".stages" / "synth.done").write_text("ok\n")
    err = _refused(capsys, ["--out", str(out)])
    assert "did not record its settings" in err and "pass --fresh or another --out" in err


def _small(out: Path, *extra: str) -> list[str]:
    return demo_args(out, "--size", "32", *extra, classes=2, train_per_class=4, test_per_class=2, batch_size=8)


def test_demo_rerun_with_other_settings_is_refused_and_same_settings_reuse(tmp_path, capsys):
    # a rerun with --classes 3 (or epochs=2) printed "reusing" and "0 to do" and wrote a report
    # claiming the new settings
    out = tmp_path / "udir"
    assert main(_small(out)) == 0
    first = capsys.readouterr().out
    assert "(2 to do" in first
    stamp = json.loads((out / ".stages" / "train_cutmix.done").read_text())
    assert stamp["settings"]["--set"] == ["batch_size=8", "epochs=1"]
    report = (out / "report.md").read_bytes()

    def refused(argv: list[str]) -> str:
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert "reusing" not in captured.out and len(captured.err.strip().splitlines()) == 1, captured.err
        return captured.err

    cls = _small(out)
    cls[cls.index("--classes") + 1] = "3"
    assert f"{out} was made with --classes 2, not 3: pass --fresh or another --out" in refused(cls)
    ep = _small(out)
    ep[ep.index("epochs=1")] = "epochs=2"
    err = refused(ep)
    assert f"{out} was made with --set batch_size=8 --set epochs=1, not --set batch_size=8 --set epochs=2" in err
    seed = refused(_small(out, "--seed", "1"))
    assert "--seed 0, not 1" in seed
    assert (out / "report.md").read_bytes() == report  # nothing was rewritten
    # the same settings (the --set in another order) reuse every stage
    same = _small(out)
    i = same.index("epochs=1")
    same[i], same[i + 2] = same[i + 2], same[i]
    assert main(same) == 0
    again = capsys.readouterr().out
    assert "synthetic benchmark: reusing" in again and "(0 to do" in again
