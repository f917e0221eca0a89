"""THE evaluation pass: dataset -> model -> CAMs -> per-image scores -> accumulators.

One pass over the data gives everything:

* classification top-1 / top-5 from the logits of the forward pass that gives the CAMs;
* the wsolevaluation metrics on CAMs of the **ground-truth** class, upsampled (bicubic) and
  min-max normalized on the model's device: BoxAcc curves, MaxBoxAcc per IoU threshold,
  MaxBoxAccV2, and PxAP for mask data;
* the old protocol of CAM (2016) / CutMix (2019) on the same CAM max-normalized: box of the
  largest connected region above ``sigma``; GT-known loc (IoU > 0.5), top-1 loc (and the top-1
  prediction is the label), top-5 loc (and the label is in the top 5). Only the guess equal to
  the label can be right and its CAM is the GT-class CAM, so one CAM per image serves all three.

Per-image sweeps run in CPU worker processes while the model computes the next batch; images
are decoded in DataLoader workers, whose user errors reach the caller as the original exception
(:mod:`wsol.data.loading`). :func:`run_pass` returns this process's share (a
:class:`PassOutput`); :func:`evaluate_model` is the one-call form (the trainer's validation) and
returns the result dict. The job around the pass (files, resume, torchrun) is
:mod:`wsol.jobs.evaluate`.
"""

from __future__ import annotations

import io
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from cam.errors import CAMInputError
from eval.errors import InputError
from eval.evaluator import ImageScore, LocalizationEvaluator, score_image
from eval.settings import MetricSettings
from wsol import defaults
from wsol.data.loading import CarriedError, carry_collate, iterate, worker_init
from wsol.errors import UserError
from wsol.resume_log import ResumeLog
from wsol.runtime import needs_grad

__all__ = ["BatchStream", "PassOutput", "make_evaluator", "run_pass", "evaluate_model", "TOPK"]

TOPK = 5


# ----------------------------------------------------------------------------------------------
# data: unreadable images become counted skips (``skip_bad``) or carried errors


class _Guarded(Dataset):
    """``dataset[indices[i]]``; an unreadable item becomes ``{"bad": message}`` with ``skip_bad``,
    else a :class:`~wsol.data.loading.CarriedError` that the main process raises."""

    def __init__(self, dataset: Any, indices: Sequence[int], skip_bad: bool) -> None:
        self.dataset, self.indices, self.skip_bad = dataset, list(indices), skip_bad

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        index = self.indices[i]
        try:
            return self.dataset[index]
        except (UserError, InputError, OSError) as exc:
            if not self.skip_bad:
                return CarriedError(exc)
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


class BatchStream:
    """The batches of ``dataset[indices]``, in order, decoded from construction on: with
    ``loader_workers`` > 0 the DataLoader workers start now and decode ahead, so a caller can start
    this before its other set-up (loading the model) and the first batch is ready sooner. Items are
    guarded (:class:`_Guarded`: ``skip_bad``); a carried loader error is raised while iterating.
    Iterate once; :meth:`close` (or the context manager) stops the workers, also unread."""

    def __init__(
        self,
        dataset: Any,
        indices: Sequence[int],
        *,
        batch_size: int = defaults.BATCH_SIZE,
        loader_workers: int = 0,
        skip_bad: bool = False,
        pin_memory: bool = False,
    ) -> None:
        self.indices = list(indices)
        self.loader_workers = int(loader_workers)
        loader = DataLoader(
            _Guarded(dataset, self.indices, skip_bad),
            batch_size=batch_size,
            shuffle=False,
            num_workers=self.loader_workers,
            collate_fn=carry_collate(_collate),
            pin_memory=pin_memory,
            worker_init_fn=worker_init,
        )
        from eval.signals import sigint_deferred

        self._batches: Any = None
        self._gen: Any = None
        try:
            with sigint_deferred():  # a Ctrl-C during the workers' fork comes after it: they are stopped
                self._batches = iter(loader) if self.indices else None  # workers start here
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Any:
        if self._batches is None:
            return iter(())
        self._gen = iterate(self._batches)
        return self._gen

    def close(self) -> None:
        """Stop the loader workers: the DataLoader iterator shuts them down when it is released,
        here, also when a traceback still holds the frame that iterated (the generator is closed)."""
        if self._gen is not None:
            self._gen.close()
        self._gen = self._batches = None

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# the pass


@dataclass
class PassOutput:
    """What :func:`run_pass` returns (one process's share)."""

    evaluator: LocalizationEvaluator
    skipped: list[dict]
    num_without_gt: int
    seconds: float
    images_scored: int


def _annotations(dataset: Any) -> dict[str, bool]:
    """Which localization annotations every record of ``dataset`` has: ``{"boxes", "masks"}``."""
    recs = dataset.records
    has = {
        "boxes": bool(recs) and all(len(r.boxes) for r in recs),
        "masks": bool(recs) and all(r.mask_paths for r in recs),
    }
    if not any(has.values()):
        raise UserError("the dataset has neither boxes nor masks for every image: nothing to localize")
    return has


def make_evaluator(dataset: Any, settings: MetricSettings) -> LocalizationEvaluator:
    """The accumulators for ``dataset`` (box and/or mask metrics, top-1/top-5) under ``settings``."""
    return LocalizationEvaluator(settings, **_annotations(dataset), ks=(1, TOPK))


def _score_one(st: MetricSettings, smap, gt, mask, old_map, image_id: str) -> ImageScore:
    if gt is not None and len(gt) == 0:  # every GT box was cropped away (cutmix preset): a miss
        return ImageScore(hits=np.zeros((len(st.iou_thresholds), len(st.thresholds)), dtype=bool), old_iou=0.0)
    return score_image(st, smap, gt, mask, old_map, where=f"score map of {image_id}")


def _score_chunk(task: tuple) -> list[ImageScore]:
    """Worker entry point: ``(settings, scoremaps, gt_boxes, masks, old_maps, image_ids)`` of a
    few images (maps float32 ``[n, H, W]``, taken value by value as float64 by the sweeps, the
    old-protocol box and PxAP, so the scores equal those of float64 maps) -> their scores."""
    st, smaps, gts, masks, old_maps, image_ids = task
    return [_score_one(st, smaps[j], gts[j], masks[j], old_maps[j], iid) for j, iid in enumerate(image_ids)]


def _chunks(n: int, workers: int) -> list[slice]:
    """Split ``n`` images of a batch into about two tasks per sweep worker (one task in-process)."""
    parts = max(1, min(n, 2 * workers)) if workers > 1 else 1
    step = -(-n // parts)
    return [slice(i, min(n, i + step)) for i in range(0, n, step)]


def _cams(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, method: str):
    """GT-class CAMs min-max normalized (wsolevaluation) and max-normalized (old protocol), and
    the logits of the same pass; all upsampled to the input size on the images' device."""
    from cam import layer_cams, postprocess_many

    maps, logits = layer_cams(model, images, labels, method=method)
    mm, mx = postprocess_many(maps, (int(images.shape[-2]), int(images.shape[-1])), ("minmax", "max"))
    return mm, mx, logits


def _not_finite(batch: dict, j: int, what: str) -> str:
    """``what`` ("the CAM is", "the logits are") of batch item ``j`` is NaN/Inf: name the image."""
    return (
        f"image {batch['image_id'][j]!r} (dataset index {int(batch['index'][j])}): {what} not finite "
        "(NaN or Inf); check the image and the model's weights"
    )


def _save_scoremap(root: Path, image_id: str, smap: np.ndarray) -> None:
    from eval.io import atomic_write_bytes
    from eval.scoremaps import scoremap_path

    buf = io.BytesIO()
    np.save(buf, smap, allow_pickle=False)
    atomic_write_bytes(scoremap_path(root, image_id), buf.getvalue())


def run_pass(
    model: nn.Module,
    dataset: Any,
    evaluator: LocalizationEvaluator,
    *,
    device: torch.device | str | None = None,
    batch_size: int = defaults.BATCH_SIZE,
    cam_method: str = defaults.CAM_METHOD,
    workers: int = 0,
    indices: Sequence[int] | None = None,
    log: ResumeLog | None = None,
    skip_bad: bool = False,
    save_scoremaps: str | None = None,
    scoremap_dtype: str | None = None,
    progress: bool = True,
    loader_workers: int = 0,
    batches: BatchStream | None = None,
) -> PassOutput:
    """Score ``dataset`` (or its ``indices``) with ``model`` into ``evaluator`` in one pass.

    ``workers``: processes for the per-image sweeps (0: in this process); ``loader_workers``:
    DataLoader processes; ``batches``: a :class:`BatchStream` of ``dataset`` the caller started
    early (its ``indices`` are the images scored; it is closed here). ``log``: one line per image
    appended (flushed per batch).
    ``save_scoremaps``: write ``<dir>/<image_id>.npy``; ``scoremap_dtype`` None keeps the dtype the
    maps are computed in (float32, lossless: the metrics are unchanged); a narrower dtype (float16)
    rounds the maps and the metrics then use the rounded maps (so ``evaluate-scoremaps`` on the
    saved files agrees).
    """
    from eval.sweep import SweepPool

    t0 = time.perf_counter()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    ev = evaluator
    st = ev.settings
    if batches is not None and indices is not None and list(indices) != batches.indices:
        raise ValueError("run_pass: indices differ from the indices of the BatchStream given")
    idx = batches.indices if batches is not None else list(range(len(dataset))) if indices is None else list(indices)
    save_root = Path(save_scoremaps) if save_scoremaps else None
    dtype = np.dtype(scoremap_dtype) if scoremap_dtype is not None and save_root is not None else None
    grad = needs_grad(cam_method)
    skipped: list[dict] = []
    without_gt = 0
    scored = 0
    pending: deque = deque()

    def drain(block: bool) -> None:
        nonlocal scored
        while pending and (block or len(pending) > 1):
            meta, results = pending.popleft()
            scores = [score for part in results for score in part]
            ev.add_many([m[0] for m in meta], scores, [m[1] for m in meta], [m[2] for m in meta])
            scored += len(scores)
            if log is not None:
                log.scored([(index, iid, label, topk, sc) for (iid, label, topk, index), sc in zip(meta, scores)])

    bar = tqdm(total=len(idx), desc="evaluate", unit="img", disable=not progress, leave=False)
    try:
        with SweepPool(workers, chunksize=1, items=len(idx)) as pool:  # never more processes than images
            if batches is None:  # the DataLoader workers start on the first batch now
                batches = BatchStream(
                    dataset,
                    idx,
                    batch_size=batch_size,
                    loader_workers=loader_workers,
                    skip_bad=skip_bad,
                    pin_memory=device.type == "cuda",
                )
            if idx:
                pool.start()  # while they decode it: load the sweep kernel, start the sweep workers
            for batch in batches:
                for bad in batch["bad"]:
                    skipped.append({"index": bad["index"], "image_id": bad["image_id"], "reason": bad["bad"]})
                    if log is not None:
                        log.skipped(bad["index"], bad["image_id"], bad["bad"])
                if batch["image"] is None:
                    bar.update(len(batch["bad"]))
                    continue
                images = batch["image"].to(device, non_blocking=True)
                labels = torch.as_tensor(batch["label"], device=device)
                with torch.enable_grad() if grad else torch.no_grad():
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
                mm_np = mm.cpu().numpy()  # float32 [B, H, W]
                mx_np = mx.cpu().numpy()
                if dtype is not None:  # the metrics use the rounded maps that are saved
                    mm_np = mm_np.astype(dtype)
                ids = list(batch["image_id"])
                n = len(ids)
                if save_root is not None:
                    for j, image_id in enumerate(ids):
                        _save_scoremap(save_root, image_id, mm_np[j])
                gts = list(batch["boxes_eval"]) if ev.has_boxes else [None] * n
                without_gt += sum(1 for gt in gts if gt is not None and len(gt) == 0)
                masks = list(batch["mask"]) if ev.has_masks else [None] * n
                tasks = [(st, mm_np[c], gts[c], masks[c], mx_np[c], ids[c]) for c in _chunks(n, pool.workers)]
                pad = [-1] * (TOPK - k)  # < 5 classes: all of them are in the top 5
                meta = [
                    (iid, int(batch["label"][j]), [int(v) for v in top[j]] + pad, int(batch["index"][j]))
                    for j, iid in enumerate(ids)
                ]
                pending.append((meta, pool.imap(_score_chunk, tasks)))
                drain(block=False)  # score the previous batch while this one's sweeps run
                bar.update(len(batch["image_id"]) + len(batch["bad"]))
            drain(block=True)
    finally:
        bar.close()
        if batches is not None:
            batches.close()
    return PassOutput(ev, skipped, without_gt, time.perf_counter() - t0, scored)


def evaluate_model(
    model: nn.Module,
    dataset: Any,
    *,
    settings: MetricSettings | None = None,
    device: torch.device | str | None = None,
    batch_size: int = defaults.BATCH_SIZE,
    cam_method: str = defaults.CAM_METHOD,
    workers: int = 0,
    progress: bool = True,
    **setting_changes: Any,
) -> dict:
    """Evaluate ``model`` on all of ``dataset`` and return the result dict
    (:meth:`LocalizationEvaluator.compute`; percent, with ``ci95``). ``settings`` default to
    :class:`~eval.settings.MetricSettings`, with ``setting_changes`` (its field names) applied."""
    st = settings if settings is not None else MetricSettings()
    if setting_changes:
        st = st.replace(**setting_changes)
    out = run_pass(
        model,
        dataset,
        make_evaluator(dataset, st),
        device=device,
        batch_size=batch_size,
        cam_method=cam_method,
        workers=workers,
        progress=progress,
    )
    result, _ = out.evaluator.compute()
    return result
