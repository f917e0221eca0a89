"""THE evaluation pass: dataset -> model -> CAMs -> per-image scores -> accumulators -> report.

One pass over the data gives everything:

* classification top-1 / top-5 from the logits of the forward pass that gives the CAMs;
* the wsolevaluation metrics on CAMs of the **ground-truth** class, upsampled (bicubic) and
  min-max normalized on the model's device: BoxAcc curves, MaxBoxAcc per IoU threshold,
  MaxBoxAccV2, and PxAP for mask data;
* the old protocol of CAM (2016) / CutMix (2019) on the same CAM max-normalized: box of the
  largest connected region above ``sigma``; GT-known loc (IoU > 0.5), top-1 loc (and the top-1
  prediction is the label), top-5 loc (and the label is in the top 5). Only the guess equal to
  the label can be right and its CAM is the GT-class CAM, so one CAM per image serves all three.

Per-image sweeps run in CPU worker processes while the model computes the next batch. Each
scored image is appended to ``<output>.log.jsonl`` (flushed every batch): ``resume=True`` after a
crash replays it and gives numbers identical to an uninterrupted run. Under ``torchrun`` rank r
scores a contiguous block of the images (no padding, no duplicates) and rank 0 merges the
accumulator states in rank order, i.e. in dataset order, so every number (intervals included)
equals the one-process result.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import platform
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from cam.errors import CAMInputError
from eval.errors import InputError
from eval.evaluator import ImageScore, LocalizationEvaluator, ScoreSettings, score_image
from wsol.errors import UserError

TOPK = 5


# ----------------------------------------------------------------------------------------------
# configuration


@dataclass
class EvaluateConfig:
    """Everything ``wsol evaluate`` needs; saved (resolved) beside every result."""

    checkpoint: str
    dataset: str
    data_root: str
    output: str
    arch: str | None = None
    arch_options: dict = field(default_factory=dict)
    metadata_dir: str | None = None
    split: str = "test"
    protocol: str = "wsolevaluation"
    cam_method: str = "cam"
    cam_curve_interval: float = 0.01
    iou_thresholds: tuple[int, ...] = (30, 50, 70)
    multi_contour: bool = True
    sigma: float = 0.15
    batch_size: int = 32
    device: str | None = None
    workers: int | None = None
    save_scoremaps: str | None = None
    scoremap_dtype: str = "float16"
    overwrite: bool = False
    resume: bool = False
    skip_bad: bool = False
    progress: bool = True


# ----------------------------------------------------------------------------------------------
# data: a wrapper that turns unreadable images into counted skips (only with skip_bad)


class _Guarded(Dataset):
    """``dataset[indices[i]]``; with ``skip_bad`` an unreadable item becomes ``{"bad": message}``."""

    def __init__(self, dataset, indices: Sequence[int], skip_bad: bool) -> None:
        self.dataset, self.indices, self.skip_bad = dataset, list(indices), skip_bad

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        index = self.indices[i]
        try:
            return self.dataset[index]
        except (UserError, InputError, OSError) as exc:
            if not self.skip_bad:
                raise
            rec = self.dataset.records[index]
            return {"bad": str(exc), "index": index, "image_id": rec.image_id}


def _collate(items: list[dict]) -> dict:
    from wsol.data import collate

    # evaluation reads boxes_eval; dropping the per-image tv_tensors boxes here (in the loader
    # worker) spares one shared-memory handle per image on the way to the main process
    good = [{k: v for k, v in it.items() if k != "boxes"} for it in items if "bad" not in it]
    batch = collate(good) if good else {"image": None}
    batch["bad"] = [it for it in items if "bad" in it]
    return batch


# ----------------------------------------------------------------------------------------------
# the resume log: one JSON line per scored (or skipped) image


def _encode(score: ImageScore) -> dict:
    d: dict[str, Any] = {}
    if score.hits is not None:
        d["hits"] = base64.b64encode(np.packbits(score.hits.ravel()).tobytes()).decode("ascii")
        d["hits_shape"] = list(score.hits.shape)
        d["old_iou"] = score.old_iou
    if score.hist is not None:
        d["hist"] = score.hist.tolist()
    return d


def _decode(d: dict) -> ImageScore:
    s = ImageScore()
    if "hits" in d:
        shape = tuple(d["hits_shape"])
        bits = np.unpackbits(np.frombuffer(base64.b64decode(d["hits"]), dtype=np.uint8),
                             count=int(np.prod(shape)))
        s.hits, s.old_iou = bits.reshape(shape).astype(bool), float(d["old_iou"])
    if "hist" in d:
        s.hist = np.asarray(d["hist"], dtype=np.int64)
    return s


def read_log(path: Path) -> list[dict]:
    """Complete lines of a resume log (a torn last line from a crash is ignored)."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


# ----------------------------------------------------------------------------------------------
# the pass


@dataclass
class PassOutput:
    """What :func:`evaluate_model` returns (one process's share)."""

    evaluator: LocalizationEvaluator
    skipped: list[dict]
    num_without_gt: int
    seconds: float
    images_scored: int


def _annotations(dataset) -> dict[str, bool]:
    """Which localization annotations every record of ``dataset`` has: ``{"boxes", "masks"}``."""
    recs = dataset.records
    has = {"boxes": bool(recs) and all(len(r.boxes) for r in recs),
           "masks": bool(recs) and all(r.mask_paths for r in recs)}
    if not any(has.values()):
        raise UserError("the dataset has neither boxes nor masks for every image: nothing to localize")
    return has


def make_evaluator(dataset, *, cam_curve_interval: float = 0.01,
                   iou_thresholds: Sequence[int] = (30, 50, 70), multi_contour: bool = True,
                   sigma: float = 0.15) -> LocalizationEvaluator:
    return LocalizationEvaluator(**_annotations(dataset), cam_curve_interval=cam_curve_interval,
                                 iou_thresholds=iou_thresholds, multi_contour=multi_contour,
                                 ks=(1, TOPK), sigma=sigma)


def _score_task(task: tuple) -> ImageScore:
    """Worker entry point: ``(settings, scoremap, gt_boxes, mask, old_map, image_id)``."""
    st, smap, gt, mask, old_map, image_id = task
    if gt is not None and len(gt) == 0:  # every GT box was cropped away (cutmix preset): a miss
        return ImageScore(hits=np.zeros((len(st.iou_thresholds), len(st.thresholds)), dtype=bool),
                          old_iou=0.0)
    return score_image(st, smap, gt, mask, old_map, where=f"score map of {image_id}")


def _cams(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, method: str):
    """GT-class CAMs min-max normalized (wsolevaluation) and max-normalized (old protocol), and
    the logits of the same pass; all upsampled to the input size on the images' device."""
    from cam import layer_cams, postprocess

    maps, logits = layer_cams(model, images, labels, method=method)
    size = tuple(images.shape[-2:])
    return postprocess(maps, size, "minmax"), postprocess(maps, size, "max"), logits


def _not_finite(batch: dict, j: int, what: str) -> str:
    """``what`` ("the CAM is", "the logits are") of batch item ``j`` is NaN/Inf: name the image."""
    return (f"image {batch['image_id'][j]!r} (dataset index {int(batch['index'][j])}): {what} not finite "
            "(NaN or Inf); check the image and the model's weights")


def _save_scoremap(root: Path, image_id: str, smap: np.ndarray) -> None:
    from eval.io import atomic_write_bytes
    from eval.scoremaps import scoremap_path

    buf = io.BytesIO()
    np.save(buf, smap, allow_pickle=False)
    atomic_write_bytes(scoremap_path(root, image_id), buf.getvalue())


def evaluate_model(model: nn.Module, dataset, *, device: torch.device | str | None = None,
                   batch_size: int = 32, cam_method: str = "cam", cam_curve_interval: float = 0.01,
                   iou_thresholds: Sequence[int] = (30, 50, 70), multi_contour: bool = True,
                   sigma: float = 0.15, workers: int = 0, indices: Sequence[int] | None = None,
                   evaluator: LocalizationEvaluator | None = None, log_path: Path | None = None,
                   skip_bad: bool = False, save_scoremaps: str | None = None,
                   scoremap_dtype: str = "float16", progress: bool = True,
                   loader_workers: int = 0) -> PassOutput | dict:
    """Evaluate ``model`` on ``dataset`` (or its ``indices``) in one pass.

    Called with just a model and a dataset (as the trainer's validation does), returns the result
    dict (see :meth:`LocalizationEvaluator.compute`). With an ``evaluator`` (to continue after a
    resumed log) or ``indices``, returns a :class:`PassOutput` (this process's share) for
    :func:`run_evaluate` to merge. ``workers``: processes for the per-image sweeps (0: in this
    process). ``log_path``: append one JSON line per image. ``save_scoremaps``: write
    ``<dir>/<image_id>.npy`` in ``scoremap_dtype``; the metrics then use those saved values.
    """
    from eval.sweep import SweepPool

    t0 = time.perf_counter()
    plain_call = evaluator is None and indices is None
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    ev = evaluator if evaluator is not None else make_evaluator(dataset, cam_curve_interval=cam_curve_interval,
                                     iou_thresholds=iou_thresholds, multi_contour=multi_contour,
                                     sigma=sigma)
    st: ScoreSettings = ev.settings
    idx = list(range(len(dataset))) if indices is None else list(indices)
    loader = DataLoader(_Guarded(dataset, idx, skip_bad), batch_size=batch_size, shuffle=False,
                        num_workers=loader_workers, collate_fn=_collate,
                        pin_memory=device.type == "cuda")
    dtype = np.dtype(scoremap_dtype)
    save_root = Path(save_scoremaps) if save_scoremaps else None
    skipped: list[dict] = []
    without_gt = 0
    scored = 0
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "a", encoding="utf-8") if log_path is not None else None
    pending: deque = deque()

    def drain(block: bool) -> None:
        nonlocal scored
        while pending and (block or len(pending) > 1):
            meta, results = pending.popleft()
            lines = []
            for (image_id, label, topk, index), score in zip(meta, results):
                ev.add(image_id, score, label, topk)
                scored += 1
                if log is not None:
                    lines.append(json.dumps({"index": index, "image_id": image_id, "label": label,
                                             "topk": topk, **_encode(score)}))
            if log is not None and lines:
                log.write("\n".join(lines) + "\n")
                log.flush()

    bar = tqdm(total=len(idx), desc="evaluate", unit="img", disable=not progress, leave=False)
    try:
        with SweepPool(workers, chunksize=4) as pool:
            for batch in loader:
                for bad in batch["bad"]:
                    skipped.append({"index": bad["index"], "image_id": bad["image_id"], "reason": bad["bad"]})
                    if log is not None:
                        log.write(json.dumps({"index": bad["index"], "image_id": bad["image_id"],
                                              "skipped": bad["bad"]}) + "\n")
                if batch["image"] is None:
                    bar.update(len(batch["bad"]))
                    continue
                images = batch["image"].to(device, non_blocking=True)
                labels = torch.as_tensor(batch["label"], device=device)
                with torch.no_grad() if cam_method == "cam" else torch.enable_grad():
                    try:
                        mm, mx, logits = _cams(model, images, labels, cam_method)
                    except CAMInputError as exc:
                        if getattr(exc, "index", None) is None:
                            raise
                        raise UserError(_not_finite(batch, exc.index, "the CAM is")) from exc
                finite = torch.isfinite(logits.detach()).all(dim=1)
                if not bool(finite.all()):
                    raise UserError(_not_finite(batch, int((~finite).nonzero()[0, 0]), "the logits are"))
                k = min(TOPK, logits.shape[1])
                top = logits.float().topk(k, dim=1).indices.cpu().numpy()
                mm_np = mm.cpu().numpy()
                mx_np = mx.cpu().numpy()
                tasks, meta = [], []
                for j, image_id in enumerate(batch["image_id"]):
                    smap = mm_np[j]
                    if save_root is not None:
                        smap = smap.astype(dtype)
                        _save_scoremap(save_root, image_id, smap)
                    gt = batch["boxes_eval"][j] if ev.has_boxes else None
                    if gt is not None and len(gt) == 0:
                        without_gt += 1
                    mask = batch["mask"][j] if ev.has_masks else None
                    tasks.append((st, smap.astype(np.float64), gt, mask, mx_np[j].astype(np.float64), image_id))
                    topk = [int(v) for v in top[j]] + [-1] * (TOPK - k)  # < 5 classes: all in the top 5
                    meta.append((image_id, int(batch["label"][j]), topk, int(batch["index"][j])))
                pending.append((meta, pool.imap(_score_task, tasks)))
                drain(block=False)  # score the previous batch while this one's sweeps run
                bar.update(len(batch["image_id"]) + len(batch["bad"]))
            drain(block=True)
    finally:
        bar.close()
        if log is not None:
            log.close()
    out = PassOutput(ev, skipped, without_gt, time.perf_counter() - t0, scored)
    if plain_call:
        result, _ = ev.compute()
        return result
    return out


# ----------------------------------------------------------------------------------------------
# the job behind ``wsol evaluate``


def software_versions() -> dict:
    import cv2
    import torchvision

    from wsol import __version__

    versions = {"wsol-toolkit": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "torchvision": torchvision.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
                "platform": platform.platform()}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("grad-cam", "numba"):  # read from the metadata: importing grad-cam is slow
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            pass
    return versions


def _paths(output: str) -> dict[str, Path]:
    out = Path(output)
    stem = out.with_suffix("") if out.suffix == ".json" else out
    return {"json": out, "per_class": Path(f"{stem}.per_class.csv"), "config": Path(f"{stem}.config.json"),
            "log": Path(f"{stem}.log.jsonl")}


def _class_count_message(dataset, num_classes: int, checkpoint: str) -> str:
    """Why ``dataset`` cannot be evaluated by a classifier with ``num_classes`` outputs, naming the
    first image whose label is out of range and the file:line that gives it."""
    msg = (f"the dataset has {dataset.num_classes} classes but the checkpoint's classifier has "
           f"{num_classes} outputs ({checkpoint})")
    bad = next((r for r in dataset.records if r.label >= num_classes), None)
    if bad is not None:
        where = getattr(bad, "label_source", "") or bad.source
        msg += (f": label {bad.label} of image {bad.image_id!r}"
                f"{f' ({where})' if where else ''} is out of range 0..{num_classes - 1}")
    return msg


def _loader_workers(workers: int, device: torch.device) -> int:
    """DataLoader processes: image decoding overlaps the model and the sweeps. On a GPU up to 4;
    on a CPU one when there are cores to spare (the main process runs the model)."""
    if device.type == "cuda":
        return min(workers, 4)
    return 1 if workers >= 2 else 0


def _shard(n: int, rank: int, world: int) -> list[int]:
    """Contiguous block of ``range(n)`` for ``rank``: no padding, no duplicates, rank order = data order."""
    return list(range(n * rank // world, n * (rank + 1) // world))


def per_class_rows(per_image: dict, class_names: Sequence[str]) -> list[dict]:
    """Per-class accuracies (percent) from the per-image columns."""
    labels = np.asarray(per_image["label"])
    hit_cols = [c for c in per_image if c.startswith("hit@")]
    rows = []
    for c, name in enumerate(class_names):
        sel = labels == c
        n = int(sel.sum())
        row: dict[str, Any] = {"class": name, "num_images": n}
        for col in ("top1_cls", "top1_loc", "gt_known_loc"):
            if col in per_image:
                row[col] = 100.0 * float(np.mean(np.asarray(per_image[col])[sel])) if n else float("nan")
        if hit_cols:
            hits = np.stack([np.asarray(per_image[h], dtype=float)[sel] for h in hit_cols])
            row["MaxBoxAccV2_hits"] = 100.0 * float(hits.mean()) if n else float("nan")
        rows.append(row)
    return rows


def _csv(rows: list[dict]) -> str:
    import csv

    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def run_evaluate(cfg: EvaluateConfig) -> dict | None:
    """Run ``wsol evaluate``; write the result JSON, its per-image / per-class CSVs and config.
    Returns the result dict (``None`` on ranks other than 0 under torchrun)."""
    from eval.io import atomic_write_json, atomic_write_text
    from eval.report import write_result
    from wsol.checkpoints import load_checkpoint
    from wsol.data import build_dataset
    from wsol.train import distributed as D

    info = D.setup(cfg.device)
    paths = _paths(cfg.output)
    try:
        if info.is_main and paths["json"].exists() and not (cfg.overwrite or cfg.resume):
            raise UserError(f"{paths['json']} exists; pass --overwrite to replace it")
        t0 = time.perf_counter()
        model = load_checkpoint(cfg.checkpoint, arch=cfg.arch, map_location=info.device,
                                **cfg.arch_options).to(info.device).eval()
        dataset = build_dataset(cfg.dataset, cfg.data_root, cfg.split, metadata_dir=cfg.metadata_dir,
                                preset=cfg.protocol)
        num_classes = getattr(model, "num_classes", None)
        if num_classes is not None and dataset.num_classes > num_classes:
            raise UserError(_class_count_message(dataset, num_classes, cfg.checkpoint))
        ev = make_evaluator(dataset, cam_curve_interval=cfg.cam_curve_interval,
                            iou_thresholds=cfg.iou_thresholds, multi_contour=cfg.multi_contour, sigma=cfg.sigma)
        shard = _shard(len(dataset), info.rank, info.world_size)
        log = paths["log"] if info.world_size == 1 else Path(f"{paths['log']}.rank{info.rank}")
        skipped: list[dict] = []
        done: set[int] = set()
        if log.exists() and not cfg.resume:
            if not cfg.overwrite:
                raise UserError(f"{log} holds an interrupted run: pass --resume to finish it or "
                                "--overwrite to start over")
            log.unlink()
        for row in read_log(log):  # resume: replay what was already scored, in order
            done.add(row["index"])
            if "skipped" in row:
                skipped.append({"index": row["index"], "image_id": row["image_id"], "reason": row["skipped"]})
            else:
                ev.add(row["image_id"], _decode(row), row["label"], row["topk"])
        if done and info.is_main:
            print(f"resuming: {len(done)} images already scored in {log}", file=sys.stderr)
        todo = [i for i in shard if i not in done]
        workers = (os.cpu_count() or 1) if cfg.workers is None else max(0, cfg.workers)
        out = evaluate_model(model, dataset, device=info.device, batch_size=cfg.batch_size,
                             cam_method=cfg.cam_method, workers=workers, indices=todo, evaluator=ev,
                             log_path=log, skip_bad=cfg.skip_bad, save_scoremaps=cfg.save_scoremaps,
                             scoremap_dtype=cfg.scoremap_dtype, progress=cfg.progress and info.is_main,
                             loader_workers=_loader_workers(workers, info.device))
        skipped += out.skipped
        if info.distributed:
            import torch.distributed as dist

            gathered: list = [None] * info.world_size
            dist.all_gather_object(gathered, (ev.state_dict(), skipped, out.num_without_gt))
            if not info.is_main:
                log.unlink(missing_ok=True)
                return None
            merged = make_evaluator(dataset, cam_curve_interval=cfg.cam_curve_interval,
                                    iou_thresholds=cfg.iou_thresholds, multi_contour=cfg.multi_contour,
                                    sigma=cfg.sigma)
            skipped, without_gt = [], 0
            for state, sk, wg in gathered:  # rank order == dataset order
                part = make_evaluator(dataset, cam_curve_interval=cfg.cam_curve_interval,
                                      iou_thresholds=cfg.iou_thresholds, multi_contour=cfg.multi_contour,
                                      sigma=cfg.sigma)
                part.load_state_dict(state)
                merged.merge(part)
                skipped += sk
                without_gt += wg
            ev = merged
        else:
            without_gt = out.num_without_gt
        result, per_image = ev.compute()
        elapsed = time.perf_counter() - t0
        result = {
            **{k: result[k] for k in list(result)[:2]},
            "checkpoint": str(cfg.checkpoint), "arch": getattr(model, "arch", cfg.arch),
            "arch_options": getattr(model, "arch_options", cfg.arch_options),
            "cam_method": cfg.cam_method, "dataset": cfg.dataset, "split": cfg.split,
            "preset": dataset.describe() if hasattr(dataset, "describe") else cfg.protocol,
            **{k: v for k, v in result.items() if k not in ("num_images", "cam_curve_interval")},
            "num_skipped": len(skipped), "skipped": skipped,
            "num_without_gt_in_frame": without_gt,
            "processes": info.world_size, "device": str(info.device),
            "elapsed_seconds": round(elapsed, 3),
            "images_per_second": round(result["num_images"] / elapsed, 2) if elapsed > 0 else None,
        }
        if "BoxAcc_curve" in result:  # long lists last
            result["BoxAcc_curve"] = result.pop("BoxAcc_curve")
        class_names = list(getattr(dataset, "class_names", None) or range(dataset.num_classes))
        atomic_write_text(paths["per_class"], _csv(per_class_rows(per_image, [str(c) for c in class_names])))
        result["per_class"] = paths["per_class"].name
        config = {**dataclasses.asdict(cfg), "resolved": {"device": str(info.device), "workers": workers,
                                                          "processes": info.world_size},
                  "versions": software_versions()}
        atomic_write_json(paths["config"], config)
        result["config"] = paths["config"].name
        write_result(paths["json"], result, per_image=per_image, overwrite=True)
        log.unlink(missing_ok=True)
        return result
    finally:
        D.cleanup(info)


def format_summary(result: dict) -> str:
    """A short table of the headline numbers (percent, 95 % intervals)."""
    ci = result.get("ci95", {})
    rows = []
    names = [("top1_cls", "classification top-1"), ("top5_cls", "classification top-5"),
             ("top1_loc", "top-1 loc (old protocol)"), ("top5_loc", "top-5 loc (old protocol)"),
             ("gt_known_loc", "GT-known loc (old protocol)")]
    names += [(f"MaxBoxAcc@{k}", f"MaxBoxAcc @ IoU {k}") for k in result.get("MaxBoxAcc", {})]
    names += [("MaxBoxAccV2", "MaxBoxAccV2"), ("PxAP", "PxAP")]
    for key, label in names:
        value = result.get(key)
        if value is None and key.startswith("MaxBoxAcc@"):
            value = result["MaxBoxAcc"][key.split("@")[1]]
        if value is None:
            continue
        lo_hi = ci.get(key)
        interval = f"[{lo_hi[0]:5.1f}, {lo_hi[1]:5.1f}]" if lo_hi else ""
        rows.append(f"  {label:<30} {value:6.2f}  {interval}")
    head = (f"{result.get('num_images')} images, CAM '{result.get('cam_method')}', "
            f"{result.get('images_per_second')} img/s")
    extra = f"\n  skipped: {result['num_skipped']} unreadable image(s)" if result.get("num_skipped") else ""
    return head + "\n" + "\n".join(rows) + extra
