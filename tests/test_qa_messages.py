"""``wsol evaluate`` starts no more sweep processes than images; folder/file mix-ups are named."""

from __future__ import annotations

import json

from eval.cores import max_workers
from tests.test_qa_options import _CountingContext
from wsol.cli import main


def test_evaluate_pool_has_no_more_processes_than_images(tiny_synth, tiny_checkpoint, tmp_path, monkeypatch, capsys):
    import eval.sweep

    n = 18  # the tiny split's test images
    ctx = _CountingContext(n)
    monkeypatch.setattr(eval.sweep, "_mp_context", lambda: ctx)
    results = {}
    for workers in ("0", str(max_workers())):
        out = tmp_path / f"r{workers}.json"
        argv = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic"]
        argv += ["--data-root", str(tiny_synth), "--device", "cpu", "--workers", workers, "--no-progress"]
        assert main([*argv, "--output", str(out)]) == 0, capsys.readouterr().err
        results[workers] = json.loads(out.read_text())
    assert ctx.sizes and max(ctx.sizes) <= n, ctx.sizes
    for key in ("MaxBoxAcc", "MaxBoxAccV2", "top1_loc", "PxAP"):
        if key in results["0"]:
            assert results["0"][key] == results[str(max_workers())][key], key


def test_a_folder_given_as_checkpoint_is_named_a_folder(tmp_path, tiny_synth, capsys):
    folder = tmp_path / "ptdir"
    folder.mkdir()
    argv = ["evaluate", "--checkpoint", str(folder), "--dataset", "synthetic", "--data-root", str(tiny_synth)]
    assert main([*argv, "--device", "cpu", "--output", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a checkpoint file" in err and "Traceback" not in err, err


def test_a_file_given_as_metadata_dir_is_named_a_file(tmp_path, capsys):
    afile = tmp_path / "meta.txt"
    afile.write_text("x\n")
    maps = tmp_path / "maps"
    maps.mkdir()
    assert main(["evaluate-scoremaps", "--metadata-dir", str(afile), "--scoremap-dir", str(maps)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err, err
