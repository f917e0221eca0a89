"""QA fixes: one naming rule for a result's side files, output paths refused up front, inputs that
are folders or not UTF-8, compare outputs that would destroy an input, --resume / --save-scoremaps
rules and the figure grid's result checks. Through the CLI (``wsol.cli.main``)."""

from __future__ import annotations

import json
import shutil

import pytest

from wsol.cli import main

EVAL = ["evaluate", "--no-progress", "--device", "cpu", "--workers", "0", "--batch-size", "6"]


def _data(ckpt, root) -> list[str]:
    return ["--checkpoint", str(ckpt), "--dataset", "synthetic", "--data-root", str(root)]


@pytest.fixture(scope="module")
def two_results(tiny_checkpoint, tiny_synth, tmp_path_factory):
    """Two evaluations into one folder whose outputs differ only after the stem (a.txt, a.dat)."""
    col = tmp_path_factory.mktemp("col")
    for name in ("a.txt", "a.dat"):
        assert main([*EVAL, *_data(tiny_checkpoint, tiny_synth), "--output", str(col / name)]) == 0
    return col / "a.txt", col / "a.dat"


# ------------------------------------------------------------------------------ 1. side-file names


def test_outputs_with_the_same_stem_keep_their_own_per_image_csv(two_results):
    a, b = two_results
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ra["per_image"] == "a.txt.per_image.csv" and rb["per_image"] == "a.dat.per_image.csv"
    assert ra["per_class"] == "a.txt.per_class.csv" and ra["config"] == "a.txt.config.json"
    assert (a.parent / ra["per_image"]).is_file() and (b.parent / rb["per_image"]).is_file()
    assert not (a.parent / "a.per_image.csv").exists()


def test_an_existing_side_file_is_refused_without_overwrite(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    (tmp_path / "b.per_image.csv").write_text("image_id\n")  # e.g. left by --output b
    rc = main([*EVAL, *_data(tiny_checkpoint, tiny_synth), "--output", str(tmp_path / "b.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "b.per_image.csv exists; pass --overwrite" in err, err
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "b.log.jsonl").exists()


# ------------------------------------------------------------------------- 2. compare's own outputs


def test_compare_refuses_to_write_over_its_inputs(two_results, tmp_path, capsys):
    a, b = two_results
    before = b.read_bytes()
    assert main(["compare", str(a), str(b), "--quiet", "--csv", str(b)]) == 2
    assert "is the input result" in capsys.readouterr().err and b.read_bytes() == before
    side = b.parent / "a.dat.per_image.csv"
    assert main(["compare", str(a), str(b), "--quiet", "--markdown", str(side)]) == 2
    assert "a file of the input result" in capsys.readouterr().err
    t = tmp_path / "t.md"
    assert main(["compare", str(a), str(b), "--quiet", "--markdown", str(t), "--csv", str(t)]) == 2
    assert "--markdown and --csv both name" in capsys.readouterr().err and not t.exists()


# --------------------------------------------------------------------- 3. folders, non-UTF-8, BOM


def test_a_folder_or_non_utf8_result_is_one_line(two_results, tmp_path, capsys):
    a, _ = two_results
    folder = tmp_path / "d"
    folder.mkdir()
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe{")
    for cmd in (["compare", str(a), str(folder)], ["figure", "curves", str(a), str(folder)]):
        out = tmp_path / "f.png"
        rc = main([*cmd, "--out", str(out)] if cmd[0] == "figure" else cmd)
        err = capsys.readouterr().err
        assert rc == 2 and f"{folder}: is a folder, not a file" in err and "Traceback" not in err, err
    assert main(["compare", str(a), str(bad)]) == 2
    assert f"{bad}:1: not UTF-8 text (byte 0xff)" in capsys.readouterr().err
    assert main(["figure", "per-class", str(a), str(bad), "--out", str(tmp_path / "p.png")]) == 2
    assert f"{bad}:1: not UTF-8 text (byte 0xff)" in capsys.readouterr().err


def test_a_per_image_csv_that_is_a_folder_or_has_a_bom(two_results, tmp_path, capsys):
    a, b = two_results
    copy = tmp_path / "c"
    copy.mkdir()
    for p in b.parent.glob("a.dat*"):
        shutil.copy(p, copy / p.name)
    csv = copy / "a.dat.per_image.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())  # saved by a spreadsheet
    assert main(["compare", str(a), str(copy / "a.dat"), "--quiet"]) == 0
    csv.unlink()
    csv.mkdir()
    assert main(["compare", str(a), str(copy / "a.dat"), "--quiet"]) == 2
    assert f"{csv}: is a folder, not a file" in capsys.readouterr().err


# ---------------------------------------------------------------------------- 4. output paths


@pytest.mark.parametrize("kind", ["empty", "folder", "slash"])
def test_evaluate_refuses_an_output_that_is_no_file_name(kind, tiny_checkpoint, tiny_synth, tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    output = {"empty": "", "folder": str(folder), "slash": str(tmp_path / "new") + "/"}[kind]
    rc = main([*EVAL, *_data(tiny_checkpoint, tiny_synth), "--output", output])
    err = capsys.readouterr().err
    assert rc == 2 and "--output" in err and "give a file name" in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.glob("*.log.jsonl")) and not (tmp_path / "new").exists()
    assert "wsol.small_cnn" not in err and "images" not in capsys.readouterr().out  # nothing evaluated


def test_other_commands_refuse_an_empty_output(two_results, tmp_path, capsys):
    a, b = two_results
    meta = tmp_path / "meta"
    meta.mkdir()
    assert main(["evaluate-scoremaps", "--metadata-dir", str(meta), "--scoremap-dir", str(meta), "--output", ""]) == 2
    assert "--output '': empty path" in capsys.readouterr().err
    assert main(["figure", "curves", str(a), "--out", ""]) == 2
    assert "--out '': empty path" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--csv", ""]) == 2
    assert "--csv '': empty path" in capsys.readouterr().err
    assert (
        main(["evaluate-scoremaps", "--metadata-dir", str(meta), "--scoremap-dir", str(meta), "--output", str(meta)])
        == 2
    )
    assert "is an existing folder" in capsys.readouterr().err


# ------------------------------------------------------------------- 5-7. evaluate's option rules


def test_resume_may_not_add_save_scoremaps(two_results, tiny_checkpoint, tiny_synth, tmp_path, capsys):
    a, _ = two_results
    rc = main(
        [
            *EVAL,
            *_data(tiny_checkpoint, tiny_synth),
            "--output",
            str(a),
            "--resume",
            "--save-scoremaps",
            str(tmp_path / "m"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "save_scoremaps" in err, err
    assert "scoremaps" not in json.loads(a.read_text())


@pytest.mark.parametrize("option", [["--save-scoremaps", "maps"], ["--scoremap-dtype", "float16"]])
def test_resume_of_an_interrupted_run_may_not_add_score_maps(
    option, tiny_checkpoint, tiny_synth, tmp_path, capsys, monkeypatch
):
    import wsol.resume_log

    scored = wsol.resume_log.ResumeLog.scored
    calls = []

    def interrupt_after_one_batch(self, rows):
        scored(self, rows)
        calls.append(len(rows))
        raise KeyboardInterrupt

    out = tmp_path / "r.json"
    argv = [*EVAL, *_data(tiny_checkpoint, tiny_synth), "--output", str(out)]
    maps = ["--save-scoremaps", str(tmp_path / "maps")]
    first = maps if option[0] == "--scoremap-dtype" else []  # then the log has float32 maps saved
    with monkeypatch.context() as m:
        m.setattr(wsol.resume_log.ResumeLog, "scored", interrupt_after_one_batch)
        assert main([*argv, *first]) == 130
    log = tmp_path / "r.log.jsonl"
    assert calls == [6] and log.exists() and not out.exists()
    capsys.readouterr()
    extra = maps if option[0] == "--save-scoremaps" else [*maps, *option]
    assert main([*argv, "--resume", *extra]) == 2
    err = capsys.readouterr().err
    assert "was written with other score-map options" in err and "cannot be added, changed or dropped" in err, err
    assert log.exists() and not out.exists()  # the interrupted run is kept for a correct resume


def test_save_scoremaps_on_a_file_is_refused_before_the_log(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = tmp_path / "r.json"
    rc = main([*EVAL, *_data(tiny_checkpoint, tiny_synth), "--output", str(out), "--save-scoremaps", str(afile)])
    err = capsys.readouterr().err
    assert rc == 2 and f"--save-scoremaps {afile}: is a file, not a folder" in err, err
    assert not (tmp_path / "r.log.jsonl").exists() and not out.exists()


def test_contradictory_or_idle_options_are_refused(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    out = str(tmp_path / "r.json")
    rc = main([*EVAL, *_data(tiny_checkpoint, tiny_synth), "--output", out, "--scoremap-dtype", "float16"])
    assert rc == 2 and "--scoremap-dtype float16 has no effect without --save-scoremaps" in capsys.readouterr().err
    rc = main([*EVAL, *_data(tiny_checkpoint, tiny_synth), "--output", out, "--resume", "--overwrite"])
    assert rc == 2 and "--resume and --overwrite contradict each other" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------- 8. figure grid


def _grid(ckpt, root, result, out, *extra) -> list[str]:
    return [
        "figure", "grid", *_data(ckpt, root), "--device", "cpu", "--images", "1", "--results", str(result),
        "--out", str(out), *extra,
    ]  # fmt: skip


def test_grid_refuses_a_result_of_another_preset_or_cam_method(
    two_results, tiny_checkpoint, tiny_synth, tmp_path, capsys
):
    a, _ = two_results
    out = tmp_path / "g.png"
    assert main(_grid(tiny_checkpoint, tiny_synth, a, out, "--cam-method", "gradcam")) == 2
    err = capsys.readouterr().err
    assert "cam_method 'cam', not 'gradcam'" in err, err
    assert main(_grid(tiny_checkpoint, tiny_synth, a, out, "--preset", "cutmix")) == 2
    err = capsys.readouterr().err
    assert "preset 'wsolevaluation', not 'cutmix'" in err, err
    assert not out.exists()


def test_grid_says_when_a_result_gives_no_threshold(two_results, tiny_checkpoint, tiny_synth, tmp_path, capsys):
    a, _ = two_results
    copy = tmp_path / "a.txt"
    for p in a.parent.glob("a.txt*"):
        shutil.copy(p, tmp_path / p.name)
    data = json.loads(copy.read_text())
    data["best_threshold"].pop("50")
    copy.write_text(json.dumps(data))
    assert main(_grid(tiny_checkpoint, tiny_synth, copy, tmp_path / "g.png")) == 0
    err = capsys.readouterr().err
    assert "no best_threshold at IoU 50" in err and "using tau = 0.15" in err, err
