"""evaluate-scoremaps end to end, driven by the real wsolevaluation metadata files (subsets)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

# the repo root, for benchmarks/ and tests/ (also when pytest is run from elsewhere)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.baseline_boxes import BaselineBoxAccuracy
from eval.boxes import rescale_boxes_wsolevaluation
from eval.errors import InputError
from eval.metadata import read_split
from eval.scoremaps import evaluate_scoremaps, load_gt_mask, read_predictions
from tests.eval.test_metrics import _naive_pxap

REPO = Path(__file__).resolve().parents[2]
N_CUB = 40


def _subset_split(src: Path, dst: Path, n: int) -> None:
    """Copy the metadata of the first ``n`` images of a real split."""
    ids = src.joinpath("image_ids.txt").read_text().splitlines()[:n]
    keep = set(ids)
    dst.mkdir(parents=True)
    dst.joinpath("image_ids.txt").write_text("\n".join(ids) + "\n")
    for name in ("class_labels.txt", "image_sizes.txt", "localization.txt"):
        lines = [ln for ln in src.joinpath(name).read_text().splitlines() if ln.split(",")[0] in keep]
        dst.joinpath(name).write_text("".join(ln + "\n" for ln in lines))


def _smooth_map(rng, size=224, grid=14):
    m = cv2.resize(rng.random((grid, grid)), (size, size), interpolation=cv2.INTER_CUBIC)
    m -= m.min()
    return m / m.max()


@pytest.fixture(scope="module")
def cub(tmp_path_factory, shared_dir):
    root = tmp_path_factory.mktemp("cub")
    meta_dir = root / "meta"
    _subset_split(shared_dir / "data/wsolevaluation_metadata/CUB/test", meta_dir, N_CUB)
    meta = read_split(meta_dir)
    rng = np.random.default_rng(0)
    maps = {}
    for i, iid in enumerate(meta.image_ids):
        m = _smooth_map(rng, grid=(14, 28)[i % 2]).astype(np.float64)
        if i == 3:
            m[:] = 0.0  # a constant map is legitimate
        p = root / "maps" / (iid + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, m)
        maps[iid] = m
    preds = root / "preds.csv"
    preds.write_text(
        "image_id,p1,p2,p3,p4,p5\n"
        + "".join(
            f"{iid},{(meta.labels[iid] + (i % 3 == 0)) % 200},{meta.labels[iid]},7,8,9\n"
            for i, iid in enumerate(meta.image_ids)
        )
    )
    return root, meta_dir, meta, maps, preds


def test_cub_subset_matches_reference_evaluator(cub):
    root, meta_dir, meta, maps, preds = cub
    result, per_image = evaluate_scoremaps(meta_dir, root / "maps", workers=1, predictions=preds)
    ref = BaselineBoxAccuracy(0.01, multi_contour=True)
    for iid in meta.image_ids:
        gt = rescale_boxes_wsolevaluation(meta.boxes[iid], meta.sizes[iid], (224, 224))
        ref.accumulate(maps[iid], gt)
    assert result["MaxBoxAcc"] == {str(d): v for d, v in ref.compute().items()}
    assert result["MaxBoxAccV2"] == float(np.mean(list(ref.compute().values())))
    assert result["num_images"] == N_CUB and result["cam_curve_interval"] == 0.01
    for key in ("30", "50", "70"):
        i = int(np.argmax(ref.num_correct[int(key)]))
        assert result["best_threshold"][key] == np.arange(0, 1, 0.01)[i]
        lo, hi = result["ci95"][f"MaxBoxAcc@{key}"]
        assert 0 <= lo <= result["MaxBoxAcc"][key] <= hi <= 100
        assert np.mean(per_image[f"hit@{key}"]) * 100 == pytest.approx(result["MaxBoxAcc"][key])
    # predictions: every third image has a wrong top-1 but the label second
    assert result["top1_cls"] == pytest.approx(100 * (N_CUB - 14) / N_CUB)
    assert result["top5_cls"] == 100.0
    assert result["top5_loc"] == result["gt_known_loc"] >= result["top1_loc"]
    assert "MaxBoxAccV2" in result["ci95"] and "top1_loc" in result["ci95"]
    assert "RETR_TREE" in result["protocol"] and "CutMix" in result["protocol"]
    assert len(result["BoxAcc_curve"]["thresholds"]) == 100


def test_v1_with_workers_matches_reference(cub):
    root, meta_dir, meta, maps, _ = cub
    result, _ = evaluate_scoremaps(
        meta_dir, root / "maps", workers=2, multi_contour=False, iou_thresholds=(50,), cam_curve_interval=0.05
    )
    ref = BaselineBoxAccuracy(0.05, iou_thresholds=(50,), multi_contour=False)
    for iid in meta.image_ids:
        ref.accumulate(maps[iid], rescale_boxes_wsolevaluation(meta.boxes[iid], meta.sizes[iid], (224, 224)))
    assert result["MaxBoxAcc"] == {"50": ref.compute()[50]}


def test_missing_scoremaps_are_listed(cub, tmp_path):
    root, meta_dir, meta, maps, _ = cub
    few = tmp_path / "maps"
    for iid in meta.image_ids[7:]:
        p = few / (iid + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, maps[iid])
    with pytest.raises(InputError) as exc:
        evaluate_scoremaps(meta_dir, few, workers=1)
    msg = str(exc.value)
    assert "7 of 40 score maps are missing" in msg and "and 2 more" in msg
    assert meta.image_ids[0] + ".npy" in msg


def test_bad_map_and_bad_predictions_name_the_culprit(cub, tmp_path):
    root, meta_dir, meta, maps, _ = cub
    bad = tmp_path / "maps"
    for i, iid in enumerate(meta.image_ids):
        p = bad / (iid + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, np.full((224, 224), np.nan) if i == 5 else maps[iid])
    with pytest.raises(InputError, match="NaN") as exc:
        evaluate_scoremaps(meta_dir, bad, workers=1)
    assert meta.image_ids[5] in str(exc.value)
    csv = tmp_path / "p.csv"
    csv.write_text(f"{meta.image_ids[0]},1,x\n")
    with pytest.raises(InputError, match=r"p.csv:1"):
        read_predictions(csv, meta.image_ids)
    csv.write_text(f"{meta.image_ids[0]},1\n")
    with pytest.raises(InputError, match="no predictions for 39 of 40"):
        read_predictions(csv, meta.image_ids)
    csv.write_text(f"{meta.image_ids[0]},1\n{meta.image_ids[1]},3,-1\n")  # a negative index was taken
    with pytest.raises(InputError, match=r"p.csv:2: class indices are 0-based, got -1"):
        read_predictions(csv, meta.image_ids)


def test_cli_writes_contract_json_without_importing_torch(cub, tmp_path):
    root, meta_dir, meta, maps, preds = cub
    out = tmp_path / "res" / "result.json"
    code = (
        "import sys\n"
        "from wsol.cli import main\n"
        f"rc = main(['evaluate-scoremaps', '--metadata-dir', {str(meta_dir)!r}, '--scoremap-dir', "
        f"{str(root / 'maps')!r}, '--output', {str(out)!r}, '--workers', '2', '--predictions', {str(preds)!r}])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "MaxBoxAccV2" in proc.stdout
    data = json.loads(out.read_text())
    for key in (
        "num_images",
        "cam_curve_interval",
        "MaxBoxAcc",
        "MaxBoxAccV2",
        "best_threshold",
        "ci95",
        "protocol",
        "top1_loc",
        "top5_loc",
        "gt_known_loc",
    ):
        assert key in data, key
    assert set(data["MaxBoxAcc"]) == {"30", "50", "70"}
    expected, _ = evaluate_scoremaps(meta_dir, root / "maps", workers=1, predictions=preds)
    for key in ("MaxBoxAcc", "MaxBoxAccV2", "best_threshold", "ci95", "top1_loc", "BoxAcc_curve"):
        assert data[key] == json.loads(json.dumps(expected[key])), key
    per_image = (out.parent / data["per_image"]).read_text().splitlines()
    header = per_image[0].split(",")
    assert header[0] == "image_id" and len(per_image) == N_CUB + 1
    assert {"hit@30", "hit@50", "hit@70", "top1_loc", "gt_known_loc", "top1_cls", "best_iou"} <= set(header)
    # the existing output is not replaced without --overwrite
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "wsol",
            "evaluate-scoremaps",
            "--metadata-dir",
            str(meta_dir),
            "--scoremap-dir",
            str(root / "maps"),
            "--output",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "--overwrite" in proc.stderr


def test_command_module_import_is_light():
    code = (
        "import sys\nimport wsol.commands.evaluate_scoremaps as m\nfrom wsol.cli import build_parser\n"
        "build_parser('evaluate-scoremaps')\nassert 'torch' not in sys.modules\n"
        "assert 'numba' not in sys.modules and 'cv2' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------ PxAP (masks)


def test_openimages_subset_pxap(shared_dir, tmp_path):
    meta_dir = tmp_path / "meta"
    _subset_split(shared_dir / "data/wsolevaluation_metadata/OpenImages/test", meta_dir, 12)
    meta = read_split(meta_dir)
    assert meta.kind == "masks"
    size = 64
    rng = np.random.default_rng(2)
    mask_root = tmp_path / "OpenImages"
    maps, gts = [], []
    for k, iid in enumerate(meta.image_ids):
        fg = np.zeros((size, size), dtype=bool)
        for rel in meta.masks[iid]:
            inst = np.zeros((size, size), dtype=np.uint8)
            x0, y0 = rng.integers(0, size - 8, 2)
            inst[y0 : y0 + rng.integers(4, 30), x0 : x0 + rng.integers(4, 30)] = 255
            fg |= inst > 0
            if k == 0:  # stored at twice the size: nearest resizing gives back the same mask
                inst = np.repeat(np.repeat(inst, 2, axis=0), 2, axis=1)
            p = mask_root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), inst)
        ign = np.zeros((size, size), dtype=np.uint8)
        if meta.ignore[iid]:
            ign[:10, :] = 255
            p = mask_root / meta.ignore[iid]
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), ign)
        gt = fg.astype(np.uint8) + 255 * ((ign > 0) & ~fg).astype(np.uint8)
        gts.append(gt)
        s = np.clip(0.6 * fg + 0.5 * rng.random((size, size)), 0, 1)
        maps.append(s)
        p = tmp_path / "maps" / (iid + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, s)
        np.testing.assert_array_equal(load_gt_mask(mask_root, meta.masks[iid], meta.ignore[iid], (size, size), iid), gt)
    with pytest.raises(InputError, match="--mask-root"):
        evaluate_scoremaps(meta_dir, tmp_path / "maps", workers=1)
    result, _ = evaluate_scoremaps(meta_dir, tmp_path / "maps", mask_root=mask_root, workers=2)
    assert result["PxAP"] == pytest.approx(_naive_pxap(maps, gts, 0.01), rel=1e-12)
    lo, hi = result["ci95"]["PxAP"]
    assert lo <= result["PxAP"] <= hi
    assert "MaxBoxAcc" not in result and "PxAP" in result["protocol"]
    # a missing mask file is named
    os.remove(mask_root / meta.masks[meta.image_ids[2]][0])
    with pytest.raises(InputError, match=meta.masks[meta.image_ids[2]][0].split("/")[-1]):
        evaluate_scoremaps(meta_dir, tmp_path / "maps", mask_root=mask_root, workers=1)


def test_the_cli_says_its_old_protocol_columns_binarize_the_saved_maps(cub, tmp_path, capsys):
    # a user compared its gt_known_loc with wsol evaluate's on the same model and found them apart
    from wsol.cli import main

    root, meta_dir, _, _, _ = cub
    args = ["evaluate-scoremaps", "--metadata-dir", str(meta_dir), "--scoremap-dir", str(root / "maps")]
    assert main([*args, "--workers", "0", "--no-progress", "--output", str(tmp_path / "r.json")]) == 0
    err = capsys.readouterr().err
    assert "binarize the saved min-max normalized maps" in err and "max-normalized CAM" in err, err


def test_a_mask_root_for_a_box_split_is_refused(cub, tmp_path):
    # it was accepted and never read
    root, meta_dir, _, _, _ = cub
    with pytest.raises(InputError, match="holds boxes .* drop --mask-root"):
        evaluate_scoremaps(meta_dir, root / "maps", mask_root=tmp_path, workers=1)
