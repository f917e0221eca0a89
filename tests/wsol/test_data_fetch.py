"""``wsol data fetch``: CUB (md5, safe unpacking, then `data check`), the wsolevaluation metadata
(pinned commit, per-file sha256, checked against the shared byte-identical copies) and ImageNet's
manual steps; all through a local server or a mirror folder, never the internet."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.wsol.zoo_server import SHARED, dead_url, files_under, server, zoo_env  # noqa: F401
from wsol.cli import main

META = SHARED / "data" / "wsolevaluation_metadata"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _cub_tgz(tmp_path: Path) -> bytes:
    """A tiny tree in the CUB-200-2011 layout (the synthetic generator writes it), as the real
    archive packs it: ``CUB_200_2011/...`` and ``attributes.txt``."""
    from wsol.data.synthetic import SynthConfig, generate_synthetic

    src = tmp_path / "src" / "CUB_200_2011"
    generate_synthetic(src, SynthConfig(classes=2, train_per_class=1, val_per_class=0, test_per_class=2, size=32))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src, arcname="CUB_200_2011")
        data = b"1 has_bill_shape::curved\n"
        info = tarfile.TarInfo("attributes.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def cub_served(server, tmp_path, monkeypatch):
    from wsol.data import fetch
    from wsol.zoo.download import Remote

    body = _cub_tgz(tmp_path)
    server.files["CUB_200_2011.tgz"] = body
    remote = Remote(
        url=server.url("CUB_200_2011.tgz") + "?download=1",
        filename="CUB_200_2011.tgz",
        md5=hashlib.md5(body).hexdigest(),
    )
    monkeypatch.setattr(fetch, "CUB", remote)
    return remote


def test_fetch_cub_unpacks_checks_and_reuses_the_cache(server, cub_served, zoo_env, tmp_path, capsys):
    root = tmp_path / "data"
    code, out, _ = _run(capsys, "data", "fetch", "cub", "--root", str(root))
    assert code == 0
    report = json.loads(out)
    assert report["problems"] == [] and report["images"] == 4 and report["fetched"] == str(root / "CUB_200_2011")
    assert (root / "CUB_200_2011" / "images.txt").is_file() and (root / "attributes.txt").is_file()
    assert [p.name for p in root.iterdir() if p.name.startswith(".wsol-extract")] == []
    assert files_under(zoo_env) == ["data/CUB_200_2011.tgz", "hashes.json"]
    # again: the cached archive (no request), the unpacked tree kept
    code, out2, _ = _run(capsys, "data", "fetch", "cub", "--root", str(root))
    assert code == 0 and json.loads(out2)["images"] == 4
    assert server.requests["CUB_200_2011.tgz"] == 1
    # a tree not unpacked by fetch is never overwritten
    other = tmp_path / "other"
    (other / "CUB_200_2011").mkdir(parents=True)
    code, _, err = _run(capsys, "data", "fetch", "cub", "--root", str(other))
    assert code == 2 and "was not unpacked by `wsol data fetch cub`" in _one_line(err)


def test_fetch_cub_md5_mismatch_and_server_down(server, cub_served, zoo_env, tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    from wsol.data import fetch

    monkeypatch.setattr(fetch, "CUB", replace(cub_served, md5="0" * 32))
    code, _, err = _run(capsys, "data", "fetch", "cub", "--root", str(tmp_path / "d"))
    line = _one_line(err)
    assert code == 2 and "md5" in line and "nothing was kept" in line
    assert files_under(zoo_env) == [] and not (tmp_path / "d").exists()
    monkeypatch.setattr(fetch, "CUB", replace(cub_served, url=dead_url("CUB_200_2011.tgz")))
    code, _, err = _run(capsys, "data", "fetch", "cub", "--root", str(tmp_path / "d"))
    line = _one_line(err)
    assert code == 2 and "cannot download" in line and f"put it at {zoo_env / 'data' / 'CUB_200_2011.tgz'}" in line


def test_an_archive_escaping_its_folder_is_refused(zoo_env, tmp_path):
    from wsol.errors import UserError
    from wsol.zoo.download import extract_all

    for name, kind in (
        ("../evil.txt", tarfile.REGTYPE),
        ("/abs/evil.txt", tarfile.REGTYPE),
        ("CUB_200_2011/link", tarfile.SYMTYPE),
    ):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
                tf.addfile(info)
            else:
                info.size = 4
                tf.addfile(info, io.BytesIO(b"evil"))
        archive = tmp_path / "bad.tgz"
        archive.write_bytes(buf.getvalue())
        dest = tmp_path / "dest"
        with pytest.raises(UserError, match="refused"):
            extract_all(archive, dest)
        assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_wsolevaluation_metadata_from_a_mirror_folder_matches_every_pinned_sha256(zoo_env, tmp_path, capsys):
    """The mirror layout is <mirror>/metadata/<dataset>/<split>/<file> (a clone of the repository)."""
    from wsol.data.fetch import WSOLEVAL_SHA256

    mirror = tmp_path / "wsolevaluation"
    mirror.mkdir()
    (mirror / "metadata").symlink_to(META, target_is_directory=True)
    root = tmp_path / "metadata"
    code, out, _ = _run(
        capsys, "data", "fetch", "wsolevaluation-metadata", "--root", str(root), "--mirror", str(mirror)
    )
    assert code == 0, out
    assert json.loads(out)["files"] == len(WSOLEVAL_SHA256) == 32
    for rel in WSOLEVAL_SHA256:
        assert (root / rel).read_bytes() == (META / rel).read_bytes(), rel
    # the written metadata is what `data check` reads
    code, out, _ = _run(
        capsys,
        "data",
        "check",
        "--format",
        "wsolevaluation",
        "--root",
        str(tmp_path),
        "--metadata-dir",
        str(root / "CUB"),
        "--split",
        "val",
        "--annotations-only",
    )
    assert json.loads(out)["images"] == 1000


def test_wsolevaluation_metadata_over_http_refuses_a_changed_file(server, zoo_env, tmp_path, monkeypatch, capsys):
    from wsol.data import fetch

    for rel in fetch.WSOLEVAL_SHA256:
        if rel.startswith("CUB/"):
            server.files[f"raw/{fetch.WSOLEVAL_COMMIT}/metadata/{rel}"] = (META / rel).read_bytes()
    monkeypatch.setattr(fetch, "WSOLEVAL_RAW", server.base + "/raw/{commit}/metadata/{path}")
    root = tmp_path / "md"
    code, out, _ = _run(capsys, "data", "fetch", "wsolevaluation-metadata", "--root", str(root), "--dataset", "CUB")
    assert code == 0 and json.loads(out)["files"] == 12
    assert sum(server.requests.values()) == 12
    assert _run(capsys, "data", "fetch", "wsolevaluation-metadata", "--root", str(root), "--dataset", "CUB")[0] == 0
    assert sum(server.requests.values()) == 12  # all from the cache
    # a file whose content differs from the pinned commit's: refused, nothing kept
    import shutil

    shutil.rmtree(zoo_env)
    key = f"raw/{fetch.WSOLEVAL_COMMIT}/metadata/CUB/val/image_ids.txt"
    server.files[key] = server.files[key] + b"\n"
    code, _, err = _run(
        capsys, "data", "fetch", "wsolevaluation-metadata", "--root", str(tmp_path / "md2"), "--dataset", "CUB"
    )
    line = _one_line(err)
    assert code == 2 and "differs from the published" in line and "CUB/val/image_ids.txt" in line
    assert not any(p.name.endswith(".partial") for p in zoo_env.rglob("*"))


def test_imagenet_prints_the_steps_then_checks(zoo_env, tmp_path, capsys):
    from tests.wsol.test_zoo_study import fake_imagenet

    code, out, _ = _run(capsys, "data", "fetch", "imagenet", "--root", str(tmp_path / "ILSVRC2012"))
    assert code == 1 and "ILSVRC2012_img_val.tar" in out and "does not exist yet" in out
    root = fake_imagenet(tmp_path / "ILSVRC2012", classes=20)
    code, out, _ = _run(capsys, "data", "fetch", "imagenet", "--root", str(root))
    assert code == 0
    report = json.loads(out[out.index("{") :])
    assert report["format"] == "imagenet" and report["images"] == 4 and report["problems"] == []


@pytest.mark.parametrize("name", ["cub", "imagenet"])
def test_metadata_options_for_another_fetch_are_refused(name, zoo_env, tmp_path, capsys):
    # --include-ilsvrc-train / --dataset were accepted and ignored (cub went on to download 1.1 GB)
    rc = main(["data", "fetch", name, "--root", str(tmp_path / "r"), "--dataset", "CUB", "--include-ilsvrc-train"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"--dataset, --include-ilsvrc-train: only for `data fetch wsolevaluation-metadata`, not {name}" in err


@pytest.mark.parametrize("name", ["cub", "wsolevaluation-metadata"])
def test_a_root_under_a_file_is_refused_before_any_download(name, zoo_env, tmp_path, capsys, monkeypatch):
    # cub tried the 1.1 GB download first
    import wsol.data.fetch as fetch_mod

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded before checking --root")

    monkeypatch.setattr(fetch_mod, "fetch_cub", no_download)
    monkeypatch.setattr(fetch_mod, "fetch_wsolevaluation_metadata", no_download)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc = main(["data", "fetch", name, "--root", str(blocker / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and f"{blocker} is a file, not a folder" in err, err
