"""Checkpoint loading: every published layout (manifests), inference, safety, errors, our format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from wsol.checkpoints import inspect_checkpoint, load_checkpoint, read_checkpoint, save_checkpoint
from wsol.errors import UserError
from wsol.models import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _manifests(shared_dir: Path) -> list[Path]:
    files = sorted((shared_dir / "data" / "checkpoint_manifests").glob("*.json"))
    assert len(files) == 13
    return files


def _write_manifest_checkpoint(manifest: dict, name: str, path: Path, compact: bool = True) -> None:
    """Zero tensors of the listed shapes, saved in the listed layout. ``compact``: each tensor is
    a zero scalar expanded to its shape, so the file stays small (same names, shapes, dtypes)."""

    def zeros(key: str, shape: list[int]) -> torch.Tensor:
        dtype = torch.long if key.endswith("num_batches_tracked") else torch.float32
        return torch.zeros((), dtype=dtype).expand(shape) if compact else torch.zeros(shape, dtype=dtype)

    sd = {k: zeros(k, shape) for k, shape in manifest["state_dict_keys"].items()}
    if name.startswith("cutmix"):
        assert all(k.startswith("module.") for k in sd)
        obj = {"epoch": 300, "arch": "resnet", "state_dict": sd, "best_err1": 21.4, "optimizer": {}}
    else:
        arch = name.split("_cam_")[0].removeprefix("wsolevaluation_")
        obj = {
            "architecture": arch,
            "epoch": 50,
            "state_dict": sd,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]},
        }
    torch.save(obj, path)


def _meta_cam_shape(model: torch.nn.Module) -> tuple[int, ...]:
    meta = model.to("meta")
    with torch.no_grad():
        feats = meta.forward_features(torch.empty(1, 3, 224, 224, device="meta"))
        return tuple(meta.class_maps(feats, torch.zeros(1, dtype=torch.long, device="meta")).shape)


# loaded with real (zero) data; the others are checked on the meta device (names, shapes, strict)
_REAL_DATA = {
    "wsolevaluation_resnet50_cam_CUB_std",
    "wsolevaluation_vgg16_cam_CUB_lfm",
    "wsolevaluation_inception_v3_cam_CUB_lfm",
}


def test_every_manifest_loads_strict_with_its_cam_shape(shared_dir, tmp_path):
    for file in _manifests(shared_dir):
        manifest = json.loads(file.read_text())
        path = tmp_path / (file.stem + ".pth.tar")
        _write_manifest_checkpoint(manifest, file.stem, path)
        # what the file cannot say: large_feature_map of ResNet-50 / InceptionV3 (VGG's is inferred)
        options = {}
        if manifest.get("large_feature_map") and "vgg16" not in file.stem:
            options["large_feature_map"] = True
        location = "cpu" if file.stem in _REAL_DATA else "meta"
        model = load_checkpoint(path, map_location=location, **options)
        assert next(model.parameters()).device.type == location
        assert not model.training
        assert model.num_classes == manifest["num_classes"]
        expected = tuple(manifest.get("cam_shape_at_224", [1, 7, 7]))  # CutMix ResNet-50: 7x7
        assert _meta_cam_shape(model) == expected, file.stem
        path.unlink()


def test_cutmix_resnet50_gives_224_cams(shared_dir, tmp_path):
    import cam

    file = shared_dir / "data" / "checkpoint_manifests" / "cutmix_pytorch_resnet50_imagenet.json"
    path = tmp_path / "model_best.pth.tar"
    _write_manifest_checkpoint(json.loads(file.read_text()), file.stem, path, compact=False)
    spec = inspect_checkpoint(read_checkpoint(path), str(path))
    assert (spec.format, spec.arch, spec.arch_options, spec.num_classes) == (
        "cutmix-pytorch",
        "resnet50",
        {"layer4_stride": 2},
        1000,
    )
    assert spec.extra["best_err1"] == 21.4
    model = load_checkpoint(path)
    cams, logits = cam.cams_and_logits(model, torch.randn(1, 3, 224, 224), torch.tensor([3]))
    assert cams.shape == (1, 224, 224) and logits.shape == (1, 1000)
    assert torch.equal(cams, torch.zeros_like(cams))  # zero weights: a constant map becomes zeros


def _small(num_classes: int = 5):
    torch.manual_seed(0)
    return create_model("small_cnn", num_classes, widths=(4, 6, 8, 8, 12)).eval()


def test_own_format_roundtrip(tmp_path):
    model = _small()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    path = save_checkpoint(
        tmp_path / "run" / "last.pt",
        model,
        epoch=3,
        recipe={"lr": 0.1, "name": "cutmix"},
        optimizer=opt.state_dict(),
        metrics=[1.5, None],
    )
    assert path.is_file() and not list(path.parent.glob("*.tmp*"))
    raw = read_checkpoint(path)
    assert raw["format"] == "wsol-toolkit/1" and raw["arch"] == "small_cnn"
    assert raw["arch_options"] == {"widths": [4, 6, 8, 8, 12]} and raw["num_classes"] == 5
    spec = inspect_checkpoint(raw)
    assert spec.format == "wsol-toolkit" and spec.extra["epoch"] == 3 and "optimizer" in spec.extra
    loaded = load_checkpoint(path)
    assert loaded.arch == "small_cnn" and not loaded.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_save_refuses_values_weights_only_cannot_load(tmp_path):
    import numpy as np

    with pytest.raises(TypeError, match=r"epoch is a numpy.*\.item\(\)"):
        save_checkpoint(tmp_path / "a.pt", _small(), epoch=np.int64(3))
    with pytest.raises(TypeError, match="reserved"):
        save_checkpoint(tmp_path / "a.pt", _small(), arch="x")
    assert not (tmp_path / "a.pt").exists()


def test_prefixes_raw_and_explicit_arch(tmp_path):
    model = _small()
    sd = model.state_dict()
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "dp.pth")
    torch.save({"model": {f"_orig_mod.{k}": v for k, v in sd.items()}}, tmp_path / "compiled.pth")
    x = torch.randn(1, 3, 32, 32)
    for name in ("dp.pth", "compiled.pth"):
        loaded = load_checkpoint(tmp_path / name)
        assert loaded.arch_options == {"widths": [4, 6, 8, 8, 12]}  # inferred from shapes
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))


def test_torchvision_raw_state_dict_infers_resnet18(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "tv.pth")
    model = load_checkpoint(tmp_path / "tv.pth")
    assert (model.arch, model.num_classes, model.arch_options["layer4_stride"]) == ("resnet18", 3, 2)
    assert load_checkpoint(tmp_path / "tv.pth", layer4_stride=1).arch_options["layer4_stride"] == 1


def test_mismatch_names_keys_and_suggests_the_architecture(tmp_path):
    torch.save({"state_dict": _small().state_dict()}, tmp_path / "small.pth")
    with pytest.raises(UserError) as err:
        load_checkpoint(tmp_path / "small.pth", arch="resnet18")
    msg = str(err.value)
    assert "small.pth" in msg and "missing key(s): conv1.weight" in msg and "unexpected key(s): stem.0.weight" in msg
    assert "The keys fit arch='small_cnn' with widths=[4, 6, 8, 8, 12]" in msg
    with pytest.raises(
        UserError,
        match=r"2 mis-shaped key\(s\): fc.weight file \[5, 12\] vs model "
        r"\[7, 12\], fc.bias .*fit this architecture with 5 classes",
    ):
        load_checkpoint(tmp_path / "small.pth", num_classes=7)
    torch.save({"encoder.weight": torch.zeros(3, 3)}, tmp_path / "odd.pth")
    with pytest.raises(UserError, match="cannot tell the architecture.*pass arch="):
        load_checkpoint(tmp_path / "odd.pth")
    with pytest.raises(UserError, match="'pretrained' does not apply"):
        load_checkpoint(tmp_path / "small.pth", pretrained=True)


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickles_that_need_code_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    boom = _Boom()
    boom.marker = str(marker)
    torch.save({"state_dict": _small().state_dict(), "payload": boom}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match=r"evil.pth: refused to load.*could run arbitrary code"):
        load_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["truncated", "empty", "text"])
def test_corrupt_files_are_user_errors_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    if kind == "truncated":
        torch.save(_small().state_dict(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("not a checkpoint\n")
    with pytest.raises(UserError, match=rf"{kind}.pth: cannot read the checkpoint \(truncated or corrupt"):
        load_checkpoint(path)
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pth")


def test_not_a_checkpoint(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(UserError, match="list.pth: not a checkpoint"):
        load_checkpoint(tmp_path / "list.pth")
    torch.save({"epoch": 3}, tmp_path / "nosd.pth")
    with pytest.raises(UserError, match="no state dict found.*'epoch'"):
        load_checkpoint(tmp_path / "nosd.pth")


def test_a_successful_load_keeps_torchs_warnings(tmp_path, monkeypatch):
    import warnings

    def load(*args, **kwargs):
        warnings.warn("a note from torch.load", UserWarning, stacklevel=2)
        return {"w": torch.zeros(1)}

    path = tmp_path / "m.pt"
    path.write_bytes(b"x")
    monkeypatch.setattr(torch, "load", load)
    with pytest.warns(UserWarning, match="a note from torch.load"):
        assert set(read_checkpoint(path)) == {"w"}
