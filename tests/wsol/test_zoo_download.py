"""The zoo's downloader through the CLI, against a local HTTP server (never the internet): success
then cache hit, checksum mismatch, truncated transfer, server down, archive without the member,
a recorded hash then a changed file, mirrors as folder and as URL, torchvision's weights API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.wsol.zoo_server import (  # noqa: F401
    dead_url,
    files_under,
    manifest_checkpoint,
    register,
    server,
    sha256,
    tiny_cutmix_checkpoint,
    tiny_entry,
    zip_bytes,
    zoo_env,
)
from wsol.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _zip_entry(server, monkeypatch, name="tiny-zip", body=None, member="model_best.pth.tar"):
    ckpt = tiny_cutmix_checkpoint()
    body = zip_bytes({f"folder/{member}": ckpt, "folder/log.txt": b"epoch 300"}) if body is None else body
    server.files[f"{name}.zip"] = body
    entry = tiny_entry(name, server.url(f"{name}.zip") + "?dl=1", f"{name}.zip", member="model_best.pth.tar")
    register(monkeypatch, entry)
    return entry, ckpt


def test_download_then_cache_hit_and_zoo_checkpoint(server, zoo_env, monkeypatch, capsys):
    entry, ckpt = _zip_entry(server, monkeypatch)
    code, out, _ = _run(capsys, "zoo", "download", entry.name)
    assert code == 0
    path = Path(out.split(": ", 1)[1].strip())
    assert path == zoo_env / "zoo" / entry.name / "model_best.pth.tar"
    assert path.read_bytes() == ckpt
    assert server.requests[f"{entry.name}.zip"] == 1
    # complete: the archive is gone, the member, its marker and both trust-on-first-use records stay
    assert files_under(zoo_env) == [
        "hashes.json",
        f"zoo/{entry.name}/complete.json",
        f"zoo/{entry.name}/model_best.pth.tar",
    ]
    hashes = json.loads((zoo_env / "hashes.json").read_text())
    assert hashes[f"{entry.url}#model_best.pth.tar"]["sha256"] == sha256(ckpt)
    assert entry.url not in hashes  # a folder zip is built on the fly: only its member's hash is stable
    # cache hit: no second request, same path
    code, out2, _ = _run(capsys, "zoo", "download", entry.name)
    assert code == 0 and out2 == out
    assert server.requests[f"{entry.name}.zip"] == 1
    # --checkpoint zoo:NAME: the real file, the entry's options given (not assumed)
    from wsol.checkpoints import load_checkpoint

    model = load_checkpoint(f"zoo:{entry.name}")
    assert model.arch == "small_cnn" and model.num_classes == 3
    assert model.load_report.source == str(path)
    assert model.load_report.assumed == {}
    assert model.load_report.format == "cutmix-pytorch"
    assert server.requests[f"{entry.name}.zip"] == 1
    # an offline cluster: the cache copied elsewhere is complete as it is (no request)
    import shutil

    copied = zoo_env.parent / "copied-cache"
    shutil.copytree(zoo_env, copied)
    monkeypatch.setenv("WSOL_CACHE", str(copied))
    code, out3, _ = _run(capsys, "zoo", "download", entry.name)
    assert code == 0 and out3.strip().endswith(str(copied / "zoo" / entry.name / "model_best.pth.tar"))
    assert server.requests[f"{entry.name}.zip"] == 1


def test_sha256_mismatch_is_refused_and_nothing_is_kept(server, zoo_env, monkeypatch, capsys):
    server.files["tiny.pth"] = tiny_cutmix_checkpoint()
    entry = tiny_entry("tiny-sha", server.url("tiny.pth"), "tiny.pth", sha="0" * 64)
    register(monkeypatch, entry)
    code, _, err = _run(capsys, "zoo", "download", entry.name)
    assert code == 2
    line = _one_line_error(err)
    assert "sha256" in line and "published" in line and entry.url in line
    assert files_under(zoo_env) == []


def test_truncated_transfer_is_refused(server, zoo_env, monkeypatch, capsys):
    server.files["tiny.pth"] = tiny_cutmix_checkpoint()
    server.truncate["tiny.pth"] = 5000
    entry = tiny_entry("tiny-cut", server.url("tiny.pth"), "tiny.pth")
    register(monkeypatch, entry)
    code, _, err = _run(capsys, "zoo", "download", entry.name)
    assert code == 2
    line = _one_line_error(err)
    assert "truncated" in line and entry.url in line
    assert str(zoo_env / "zoo" / entry.name / "tiny.pth") in line  # where a hand download goes
    assert files_under(zoo_env) == []


def test_server_down_names_url_and_cache_path(zoo_env, monkeypatch, capsys):
    url = dead_url("cutmix.zip")
    entry = tiny_entry("tiny-down", url, "tiny-down.zip", member="model_best.pth.tar")
    register(monkeypatch, entry)
    code, _, err = _run(capsys, "zoo", "download", entry.name)
    assert code == 2
    line = _one_line_error(err)
    dest = zoo_env / "zoo" / entry.name / "tiny-down.zip"
    assert url in line and f"put it at {dest}" in line
    assert files_under(zoo_env) == []
    # the hand-downloaded file put at that path is used (no request: the server is still down)
    dest.write_bytes(zip_bytes({"model_best.pth.tar": tiny_cutmix_checkpoint()}))
    code, out, _ = _run(capsys, "zoo", "download", entry.name)
    assert code == 0 and out.strip().endswith("model_best.pth.tar")


def test_archive_without_the_member(server, zoo_env, monkeypatch, capsys):
    body = zip_bytes({"folder/checkpoint.pth.tar": tiny_cutmix_checkpoint()})
    entry, _ = _zip_entry(server, monkeypatch, name="tiny-nomember", body=body)
    code, _, err = _run(capsys, "zoo", "download", entry.name)
    assert code == 2
    line = _one_line_error(err)
    assert "no member 'model_best.pth.tar'" in line and "folder/checkpoint.pth.tar" in line
    assert files_under(zoo_env) == []


def test_weights_of_another_architecture_are_refused(server, zoo_env, monkeypatch, capsys):
    from tests.wsol.zoo_server import checkpoint_bytes, tiny_state_dict

    server.files["other.pth"] = checkpoint_bytes(tiny_state_dict(num_classes=5))  # 5 classes, entry says 3
    entry = tiny_entry("tiny-other", server.url("other.pth"), "other.pth")
    register(monkeypatch, entry)
    code, _, err = _run(capsys, "zoo", "download", entry.name)
    assert code == 2
    assert "does not hold the small_cnn weights" in _one_line_error(err)
    assert not (zoo_env / "zoo" / entry.name / "complete.json").exists()


def test_recorded_hash_then_changed_file_is_refused(server, zoo_env, monkeypatch, capsys):
    server.files["tiny.pth"] = tiny_cutmix_checkpoint(seed=0)
    entry = tiny_entry("tiny-tofu", server.url("tiny.pth"), "tiny.pth")
    register(monkeypatch, entry)
    assert _run(capsys, "zoo", "download", entry.name)[0] == 0
    cached = zoo_env / "zoo" / entry.name / "tiny.pth"
    # 1. the cached file changes on disk: refused on the next use
    original = cached.read_bytes()
    cached.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    code, _, err = _run(capsys, "zoo", "download", entry.name)
    assert code == 2 and "recorded on first download" in _one_line_error(err)
    from wsol.checkpoints import load_checkpoint
    from wsol.errors import UserError

    with pytest.raises(UserError, match="recorded on first download"):
        load_checkpoint(f"zoo:{entry.name}")
    # 2. the entry is deleted and the source now serves another file: refused, nothing kept
    import shutil

    shutil.rmtree(zoo_env / "zoo" / entry.name)
    server.files["tiny.pth"] = tiny_cutmix_checkpoint(seed=1)
    code, _, err = _run(capsys, "zoo", "download", entry.name)
    line = _one_line_error(err)
    assert code == 2 and "recorded on first download" in line and "nothing was kept" in line
    assert files_under(zoo_env) == ["hashes.json"]
    assert server.requests["tiny.pth"] == 2


def test_mirror_as_folder_and_as_url(server, zoo_env, tmp_path, monkeypatch, capsys):
    ckpt = tiny_cutmix_checkpoint()
    entry = tiny_entry("tiny-mirror", dead_url("unreachable.zip"), "tiny-mirror.zip", member="model_best.pth.tar")
    register(monkeypatch, entry)
    body = zip_bytes({"model_best.pth.tar": ckpt})
    # folder, through the environment
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / entry.filename).write_bytes(body)
    monkeypatch.setenv("WSOL_MIRROR", str(folder))
    code, out, _ = _run(capsys, "zoo", "download", entry.name)
    assert code == 0 and Path(out.split(": ", 1)[1].strip()).read_bytes() == ckpt
    # a folder without the file: one line naming the mirror path and the cache path
    import shutil

    shutil.rmtree(zoo_env)
    (folder / entry.filename).unlink()
    code, _, err = _run(capsys, "zoo", "download", entry.name)
    line = _one_line_error(err)
    assert code == 2 and str(folder / entry.filename) in line and str(zoo_env / "zoo" / entry.name) in line
    # URL, through --mirror (which wins over the environment)
    server.files[f"mirror/{entry.filename}"] = body
    code, out, _ = _run(capsys, "zoo", "download", entry.name, "--mirror", server.url("mirror/"))
    assert code == 0 and Path(out.split(": ", 1)[1].strip()).read_bytes() == ckpt
    assert server.requests[f"mirror/{entry.filename}"] == 1


# ------------------------------------------------------------------------------ torchvision


def _fake_weights(monkeypatch, url: str):
    from torchvision.models._api import Weights, WeightsEnum

    class TinyWeights(WeightsEnum):
        V1 = Weights(url=url, transforms=None, meta={})

    import wsol.zoo.resolve as resolve

    monkeypatch.setattr(resolve, "torchvision_weights", lambda entry: TinyWeights.V1)


def test_torchvision_entry_through_the_weights_api(server, zoo_env, tmp_path, monkeypatch, capsys):
    ckpt = tiny_cutmix_checkpoint()
    fname = f"tiny-{sha256(ckpt)[:8]}.pth"
    server.files[fname] = ckpt
    _fake_weights(monkeypatch, server.url(fname))
    register(monkeypatch, tiny_entry("tiny-tv", server.url(fname), fname, kind="torchvision"))
    code, out, _ = _run(capsys, "zoo", "download", "tiny-tv")
    assert code == 0
    hub = tmp_path / "torch" / "hub" / "checkpoints" / fname
    assert out.strip().endswith(str(hub)) and hub.read_bytes() == ckpt
    assert server.requests[fname] == 1
    assert _run(capsys, "zoo", "download", "tiny-tv")[0] == 0
    assert server.requests[fname] == 1  # cache hit
    # a changed file in the hub cache: refused (the hash prefix and the record no longer match)
    hub.write_bytes(ckpt + b"x")
    code, _, err = _run(capsys, "zoo", "download", "tiny-tv")
    assert code == 2 and "refused" in _one_line_error(err)


def test_torchvision_entry_from_a_mirror_and_a_wrong_hash(server, zoo_env, tmp_path, monkeypatch, capsys):
    ckpt = tiny_cutmix_checkpoint()
    fname = f"tiny-{sha256(ckpt)[:8]}.pth"
    url = dead_url(fname)
    _fake_weights(monkeypatch, url)
    register(monkeypatch, tiny_entry("tiny-tv-m", url, fname, kind="torchvision"))
    # server down, no mirror: the weights API fails; one line with the URL and the hub path
    code, _, err = _run(capsys, "zoo", "download", "tiny-tv-m")
    hub = tmp_path / "torch" / "hub" / "checkpoints" / fname
    line = _one_line_error(err)
    assert code == 2 and url in line and str(hub) in line
    # mirror URL: fetched into the hub cache, where the weights API finds it (the dead URL is never needed)
    server.files[fname] = ckpt
    code, out, _ = _run(capsys, "zoo", "download", "tiny-tv-m", "--mirror", server.base)
    assert code == 0 and hub.read_bytes() == ckpt and server.requests[fname] == 1
    # a mirror file whose sha256 does not start with the hash in the name: refused, nothing kept
    import shutil

    shutil.rmtree(tmp_path / "torch")
    shutil.rmtree(zoo_env)
    server.files[fname] = ckpt + b"tampered"
    code, _, err = _run(capsys, "zoo", "download", "tiny-tv-m", "--mirror", server.base)
    assert code == 2 and "does not start with" in _one_line_error(err)
    assert files_under(tmp_path / "torch") == []


def test_a_garbage_file_in_the_hub_cache_is_refused_and_removed(server, zoo_env, tmp_path, monkeypatch, capsys):
    # torchvision checks the name's hash on download only: the garbage was unpickled, the error
    # quoted torch's advice to load it with weights_only=False, and the file stayed
    ckpt = tiny_cutmix_checkpoint()
    fname = f"tiny-{sha256(ckpt)[:8]}.pth"
    _fake_weights(monkeypatch, dead_url(fname))
    register(monkeypatch, tiny_entry("tiny-tv-g", dead_url(fname), fname, kind="torchvision"))
    hub = tmp_path / "torch" / "hub" / "checkpoints" / fname
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"not a checkpoint at all")
    code, _, err = _run(capsys, "zoo", "download", "tiny-tv-g")
    line = _one_line_error(err)
    assert code == 2 and f"refused {hub}" in line and "does not start with" in line and "removed" in line, line
    assert "weights_only" not in line and not hub.exists()


def test_an_archive_with_other_weights_is_refused_and_nothing_is_kept(server, zoo_env, monkeypatch, capsys):
    # the checkpoint inside was refused but the zip stayed in the cache
    from tests.wsol.zoo_server import checkpoint_bytes, tiny_state_dict

    body = zip_bytes({"folder/model_best.pth.tar": checkpoint_bytes(tiny_state_dict(num_classes=5))})
    entry, _ = _zip_entry(server, monkeypatch, name="tiny-otherzip", body=body)
    code, _, err = _run(capsys, "zoo", "download", entry.name)
    line = _one_line_error(err)
    assert code == 2 and "does not hold the small_cnn weights" in line and "removed from the cache" in line, line
    assert [f for f in files_under(zoo_env) if f != "hashes.json"] == []


def test_a_mirror_of_an_unsupported_scheme_is_named(zoo_env, capsys):
    # ftp://x/ was taken as a folder: "mirror ftp://x/ has no file ftp:/x/..."
    code, _, err = _run(capsys, "zoo", "download", "resnet50-cutmix", "--mirror", "ftp://x/")
    line = _one_line_error(err)
    assert code == 2 and "--mirror ftp://x/: unsupported URL scheme 'ftp'" in line, line


# ------------------------------------------------------------------------------ a real entry


def test_real_cutmix_entry_from_a_mirror_loads_strict(server, zoo_env, monkeypatch, capsys):
    """The catalog's resnet50-cutmix: a Dropbox folder zip (built from the manifest) on a mirror."""
    from wsol.zoo.catalog import get_entry

    entry = get_entry("resnet50-cutmix")
    ckpt = manifest_checkpoint("cutmix_pytorch_resnet50_imagenet")
    server.files[f"m/{entry.filename}"] = zip_bytes({"model_best.pth.tar": ckpt})
    monkeypatch.setenv("WSOL_MIRROR", server.url("m"))
    from wsol.checkpoints import load_checkpoint

    model = load_checkpoint("zoo:resnet50-cutmix", map_location="meta")
    assert (model.arch, model.num_classes) == ("resnet50", 1000)
    assert model.arch_options == {"large_feature_map": False, "layer4_stride": 2}
    assert model.load_report.assumed == {}
    assert model.load_report.source == str(zoo_env / "zoo" / "resnet50-cutmix" / "model_best.pth.tar")
    assert server.requests[f"m/{entry.filename}"] == 1


def test_real_torchvision_entry_refuses_a_file_without_its_hash(server, zoo_env, tmp_path, monkeypatch, capsys):
    """resnet50-tv-v1 through a mirror: a file whose sha256 does not start with 0676ba61 is refused."""
    ckpt = manifest_checkpoint("cutmix_pytorch_resnet50_imagenet")
    server.files["resnet50-0676ba61.pth"] = ckpt
    code, _, err = _run(capsys, "zoo", "download", "resnet50-tv-v1", "--mirror", server.base)
    line = _one_line_error(err)
    assert code == 2 and "0676ba61" in line and "refused" in line
    assert files_under(tmp_path / "torch") == []


def test_zoo_checkpoint_in_evaluate_and_compare(server, zoo_env, tmp_path, monkeypatch, capsys):
    """--checkpoint zoo:NAME wherever a checkpoint is accepted (load_checkpoint's hook)."""
    from wsol.data.synthetic import SynthConfig, generate_synthetic

    data = tmp_path / "synth"
    generate_synthetic(data, SynthConfig(classes=3, train_per_class=0, val_per_class=0, test_per_class=2, size=32))
    entry, ckpt = _zip_entry(server, monkeypatch, name="tiny-eval")
    out = tmp_path / "eval" / "result.json"
    code, _, err = _run(
        capsys,
        "evaluate",
        "--checkpoint",
        f"zoo:{entry.name}",
        "--dataset",
        "synthetic",
        "--data-root",
        str(data),
        "--workers",
        "0",
        "--batch-size",
        "3",
        "--no-progress",
        "--output",
        str(out),
    )
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["checkpoint"] == f"zoo:{entry.name}" and result["num_images"] == 6
    guarded = json.loads(out.with_name("result.config.json").read_text())["guarded"]
    cached = zoo_env / "zoo" / entry.name / "model_best.pth.tar"
    assert guarded["checkpoint_file"] == str(cached.resolve()) and guarded["checkpoint_sha256"] == sha256(ckpt)
    code, _, err = _run(
        capsys,
        "compare",
        "--checkpoint",
        f"zoo:{entry.name}",
        "--names",
        "tiny",
        "--dataset",
        "synthetic",
        "--data-root",
        str(data),
        "--workers",
        "0",
        "--out",
        str(tmp_path / "cmp"),
        "--quiet",
    )
    assert code == 0, err
    assert (tmp_path / "cmp" / "tiny" / "result.json").is_file()
    assert server.requests[f"{entry.name}.zip"] == 1


def test_zoo_checkpoint_as_train_init(server, zoo_env, tmp_path, monkeypatch, capsys):
    """``init_checkpoint=zoo:NAME``: training starts from the published weights (here a 3-class
    entry fine-tuned on a 2-class set: the classifier stays new, every other tensor is copied)."""
    import torch
    from zoo_server import TINY_WIDTHS

    from wsol.data.synthetic import SynthConfig, generate_synthetic

    data = tmp_path / "synth"
    generate_synthetic(data, SynthConfig(classes=2, train_per_class=4, val_per_class=0, test_per_class=1, size=32))
    entry, ckpt = _zip_entry(server, monkeypatch, name="tiny-init")
    code, _, err = _run(
        capsys,
        "train",
        "--recipe",
        "synthetic_cpu",
        "--out",
        str(tmp_path / "t"),
        "--device",
        "cpu",
        "--no-progress",
        "--set",
        f"data_root={data}",
        "--set",
        "epochs=1",
        "--set",
        "val_every=0",
        "--set",
        "lr=1e-9",
        "--set",
        "weight_decay=0",
        "--set",
        "momentum=0",
        "--set",
        "nesterov=false",
        "--set",
        "batch_size=8",
        "--set",
        f"model_options.widths={list(TINY_WIDTHS)}",
        "--set",
        f"init_checkpoint=zoo:{entry.name}",
    )
    assert code == 0, err
    kept = err.split("kept new: ", 1)[1].splitlines()[0].split(", ")
    trained = torch.load(tmp_path / "t" / "last.pt", weights_only=True)["state_dict"]
    source = torch.load(zoo_env / "zoo" / entry.name / "model_best.pth.tar", weights_only=True)["state_dict"]
    params = [k for k in trained if "running_" not in k and "num_batches" not in k]
    copied = [k for k in params if k not in kept]
    assert kept and all(source[f"module.{k}"].shape != trained[k].shape for k in kept)  # the classifier
    assert len(copied) > len(kept)
    for k in copied:  # lr 1e-9: the copied weights are (all but) unchanged
        assert torch.allclose(source[f"module.{k}"], trained[k], atol=1e-6), k
    assert server.requests[f"{entry.name}.zip"] == 1
