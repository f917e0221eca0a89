"""``evaluate-scoremaps``: saved score maps + wsolevaluation metadata in, numbers out. No torch.

Inputs (protocol sections 1.5, 2, 3, 4):

* ``metadata_dir``: a wsolevaluation split folder (:func:`eval.metadata.read_split`);
* ``scoremap_dir``: one ``<scoremap_dir>/<image_id>.npy`` per image (image id as written in
  ``image_ids.txt``, e.g. ``001.Black_footed_Albatross/x.jpg.npy``), a 2-D float map in ``[0, 1]``
  (usually 224x224; GT boxes are rescaled to the map's size by the wsolevaluation rule);
* box data (CUB, ImageNet): MaxBoxAcc / MaxBoxAccV2 (:class:`eval.metrics.BoxAccuracy`) and the old
  fixed-threshold GT-known localization (:class:`eval.metrics.TopKLocalization`, on the saved maps);
  with ``predictions`` (CSV ``image_id,pred1[,pred2,...]``, best first, 0-based classes) also
  top-1 / top-5 localization and classification;
* mask data (OpenImages): PxAP (:class:`eval.metrics.PxAP`); ``mask_root`` is the folder the mask
  paths of ``localization.txt`` are relative to.

Streaming: maps are read one at a time by worker processes (``workers``; results identical for
any number) and reduced to per-image hits / histograms; nothing holds all maps.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from eval.boxes import rescale_boxes_wsolevaluation
from eval.errors import InputError
from eval.evaluator import LocalizationEvaluator, score_image
from eval.metadata import read_split
from eval.results import read_text_file
from eval.settings import MetricSettings
from eval.sweep import SweepPool, default_workers

__all__ = ["evaluate_scoremaps", "read_predictions", "load_gt_mask", "scoremap_path", "MISSING_SHOWN"]

MISSING_SHOWN = 5  # how many missing files an error message lists


def scoremap_path(scoremap_dir: str | os.PathLike, image_id: str) -> Path:
    """``<scoremap_dir>/<image_id>.npy`` (``np.save`` appends ``.npy`` to the image id)."""
    return Path(scoremap_dir) / (image_id + ".npy")


# The header np.save writes for a 2-D array of a plain numeric dtype (format 1.0 and later):
# such files are read with one system call and no header parsing (``ast``) in Python; any other
# file goes through np.load, which also gives the error messages.
_NPY_2D = re.compile(
    r"\{'descr': '([<>|=][fiub][1248])', 'fortran_order': (False|True), "
    r"'shape': \((\d+), (\d+)\), \} *\n"
)


def _read_npy_2d(path) -> np.ndarray | None:
    """A writable array of a 2-D ``.npy`` file in the standard layout, or None (not that layout)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = bytearray(size)
        if f.readinto(data) != size or size < 12 or data[:6] != b"\x93NUMPY":
            return None
    major = data[6]
    if major == 1:
        start, hlen = 10, int.from_bytes(data[8:10], "little")
    elif major in (2, 3):
        start, hlen = 12, int.from_bytes(data[8:12], "little")
    else:
        return None
    m = _NPY_2D.fullmatch(data[start : start + hlen].decode("latin1"))
    if m is None:
        return None
    dtype = np.dtype(m.group(1))
    h, w = int(m.group(3)), int(m.group(4))
    if size - start - hlen != h * w * dtype.itemsize:
        return None
    arr = np.frombuffer(data, dtype=dtype, count=h * w, offset=start + hlen)
    return arr.reshape(w, h).T if m.group(2) == "True" else arr.reshape(h, w)


def load_scoremap(path: Path, image_id: str) -> np.ndarray:
    try:
        arr = _read_npy_2d(path)
        if arr is None:
            arr = np.load(path, allow_pickle=False)
        if not isinstance(arr, np.ndarray):  # an .npz archive (np.savez) under the .npy name
            arr.close()
            raise InputError(
                f"score map of {image_id!r} ({path}) is an .npz archive (numpy.savez), not an .npy "
                "array: save each map with numpy.save"
            )
    except FileNotFoundError:
        raise InputError(f"score map of {image_id!r} not found: {path}") from None
    except EOFError:  # np.load on an empty file
        raise InputError(f"score map of {image_id!r} ({path}) is not a readable .npy array: it is empty") from None
    except (ValueError, OSError) as exc:
        reason = str(exc)
        if "pickled" in reason and path.read_bytes()[:6] != b"\x93NUMPY":
            reason = "it does not start with the .npy magic bytes (not a file written by numpy.save)"
        raise InputError(f"score map of {image_id!r} ({path}) is not a readable .npy array: {reason}") from None
    return arr


def load_gt_mask(
    mask_root: str | os.PathLike,
    mask_paths: Sequence[str],
    ignore_path: str | None,
    size: tuple[int, int],
    image_id: str = "",
) -> np.ndarray:
    """The wsolevaluation GT mask of one image (protocol 3.2): uint8 ``[H, W]``, 1 foreground,
    0 background, 255 ignore. ``size`` is ``(width, height)``. Every instance PNG is read in
    grayscale, resized with ``INTER_NEAREST`` and thresholded at ``> 0.5``; they are OR-ed into the
    foreground; the ignore PNG (if any) the same way, and ignore = ignore box minus foreground."""
    root = Path(mask_root)

    def read(rel: str) -> np.ndarray:
        p = root / rel
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if img is None:
            what = "missing" if not p.exists() else "not a readable image"
            raise InputError(f"mask of {image_id!r}: {p} is {what}")
        return cv2.resize(img, size, interpolation=cv2.INTER_NEAREST) > 0.5

    if not mask_paths:
        raise InputError(f"mask of {image_id!r}: no instance mask listed")
    fg = np.zeros((size[1], size[0]), dtype=bool)
    for rel in mask_paths:
        fg |= read(rel)
    ignore = np.zeros_like(fg) if not ignore_path else read(ignore_path) & ~fg
    return fg.astype(np.uint8) + 255 * ignore.astype(np.uint8)


def _score_one(job: tuple):
    """Worker: ``(image_id, path, boxes, orig_size, mask_paths, ignore_path, mask_root, settings)``
    -> :class:`eval.evaluator.ImageScore` of one image (GT boxes rescaled to the map's size)."""
    image_id, path, boxes, orig_size, mask_paths, ignore_path, mask_root, st = job
    smap = load_scoremap(path, image_id)
    where = f"score map of {image_id!r} ({path})"
    if np.ndim(smap) != 2:
        raise InputError(f"{where}: must be 2-D [H, W], got shape {np.shape(smap)}")
    h, w = smap.shape
    gt = None if boxes is None else rescale_boxes_wsolevaluation(boxes, orig_size, (w, h))
    mask = None if mask_paths is None else load_gt_mask(mask_root, mask_paths, ignore_path, (w, h), image_id)
    return score_image(st, smap, gt, mask, where=where)


def read_predictions(path: str | os.PathLike, image_ids: Sequence[str]) -> dict[str, list[int]]:
    """Read ``image_id,pred1[,pred2,...]`` (best first, 0-based; an optional header line starting
    with ``image_id`` is skipped). Every id of ``image_ids`` must be present with the same number of
    predictions; extra ids are ignored. Errors name ``file:line``."""
    p = Path(path)
    try:
        text = read_text_file(p)  # a folder or non-UTF-8 file: one line naming it
    except FileNotFoundError:
        raise FileNotFoundError(f"predictions file not found: {p}") from None
    preds: dict[str, list[int]] = {}
    width = None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = [c.strip() for c in line.split(",")]
        if lineno == 1 and parts[0] == "image_id":
            continue
        if len(parts) < 2 or not parts[0]:
            raise InputError(f"{p}:{lineno}: expected image_id,pred1[,pred2,...], got {line[:120]!r}")
        try:
            vals = [int(c) for c in parts[1:]]
        except ValueError:
            raise InputError(f"{p}:{lineno}: predictions must be integer class indices, got {line[:120]!r}") from None
        if min(vals) < 0:
            raise InputError(f"{p}:{lineno}: class indices are 0-based, got {min(vals)} in {line[:120]!r}")
        if width is None:
            width = len(vals)
        elif len(vals) != width:
            raise InputError(f"{p}:{lineno}: {len(vals)} predictions, earlier lines have {width}")
        if parts[0] in preds:
            raise InputError(f"{p}:{lineno}: image id {parts[0]!r} appears twice")
        preds[parts[0]] = vals
    missing = [i for i in image_ids if i not in preds]
    if missing:
        raise InputError(
            f"{p}: no predictions for {len(missing)} of {len(image_ids)} images, e.g. "
            + ", ".join(repr(m) for m in missing[:MISSING_SHOWN])
        )
    return preds


def _check_files(scoremap_dir: Path, image_ids: Sequence[str]) -> list[Path]:
    paths = [scoremap_path(scoremap_dir, i) for i in image_ids]
    missing = [i for i, p in zip(image_ids, paths) if not p.is_file()]
    if missing:
        shown = "\n  ".join(str(scoremap_path(scoremap_dir, i)) for i in missing[:MISSING_SHOWN])
        more = f"\n  ... and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        raise InputError(
            f"{len(missing)} of {len(image_ids)} score maps are missing in {scoremap_dir}:\n  {shown}{more}"
        )
    return paths


# A split whose maps times distinct threshold levels stay below this is swept with OpenCV in this
# process (the exact reference path, ~0.1 ms per level): that is done before numba would have
# imported and loaded its kernel (~0.5-1 s), so small splits answer at once. Same numbers.
SMALL_SPLIT_LEVELS = 3000


def _small_split(n_images: int, st: MetricSettings) -> bool:
    from eval import sweep as sweep_module

    return (
        st.method == "auto"
        and sweep_module._kernel is None
        and n_images * min(len(st.thresholds), 255) <= SMALL_SPLIT_LEVELS
    )


_ADD_BLOCK = 256  # images accumulated per LocalizationEvaluator.add_many call


def _chunksize(n_images: int, workers: int) -> int:
    """Images per task sent to a worker: enough to make the messages cheap, small enough that the
    workers finish together (about 16 tasks per worker)."""
    return max(1, min(16, n_images // (16 * max(1, workers))))


def evaluate_scoremaps(
    metadata_dir: str | os.PathLike,
    scoremap_dir: str | os.PathLike,
    settings: MetricSettings | None = None,
    *,
    mask_root: str | os.PathLike | None = None,
    predictions: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **setting_changes,
) -> tuple[dict, dict]:
    """Evaluate saved score maps against a wsolevaluation split.

    Returns ``(result, per_image)``: ``result`` is the JSON-ready dict (see :mod:`eval.results`),
    ``per_image`` the per-image columns (``image_id``, ``hit@<delta>`` at the selected thresholds,
    ``gt_known_loc``, ``best_iou`` of the old protocol, and with predictions ``label``,
    ``pred_top1``, ``top1_cls``, ``top5_cls``, ``top1_loc``, ``top5_loc``). ``workers`` defaults to
    the number of cores; ``progress(done, total)`` is called after each image. ``settings``
    (default :class:`~eval.settings.MetricSettings`), with ``setting_changes`` (its field names,
    e.g. ``multi_contour=False``) applied on top.
    """
    t0 = time.perf_counter()
    meta = read_split(metadata_dir, strict=True)
    ids = list(meta.image_ids)
    if not ids:
        raise InputError(f"{metadata_dir}: image_ids.txt lists no image")
    if meta.kind == "none":
        raise InputError(f"{metadata_dir}: localization.txt is empty or missing: nothing to evaluate")
    if meta.kind == "masks" and mask_root is None:
        raise InputError(
            f"{metadata_dir} holds masks (OpenImages layout): pass --mask-root, the folder "
            "the mask paths of localization.txt are relative to"
        )
    if mask_root is not None and meta.kind == "boxes":
        raise InputError(
            f"{metadata_dir} holds boxes (localization.txt lists boxes): the mask root {mask_root} "
            "would not be read; drop --mask-root"
        )
    if mask_root is not None and not Path(mask_root).is_dir():
        raise InputError(f"mask root {mask_root} is not a folder")
    sdir = Path(scoremap_dir)
    if not sdir.is_dir():
        raise InputError(f"score map folder {sdir} does not exist")
    paths = _check_files(sdir, ids)
    preds = read_predictions(predictions, ids) if predictions is not None else None
    if preds is not None and meta.kind != "boxes":
        raise InputError("--predictions (top-1/top-5 localization) needs box annotations")

    boxes_mode = meta.kind == "boxes"
    ks = tuple(k for k in (1, 5) if preds is not None and len(next(iter(preds.values()))) >= k)
    st = settings if settings is not None else MetricSettings()
    if setting_changes:
        st = st.replace(**setting_changes)
    ev = LocalizationEvaluator(st, boxes=boxes_mode, masks=not boxes_mode, ks=ks)
    root = None if mask_root is None else str(mask_root)
    small = boxes_mode and _small_split(len(ids), st)
    job_st = st.replace(method="opencv") if small else st
    jobs = (
        (
            iid,
            p,
            meta.boxes[iid] if boxes_mode else None,
            meta.sizes.get(iid) if boxes_mode else None,
            None if boxes_mode else meta.masks.get(iid),
            None if boxes_mode else meta.ignore.get(iid),
            root,
            job_st,
        )
        for iid, p in zip(ids, paths)
    )
    n_workers = default_workers() if workers is None else max(1, int(workers))
    if small:
        n_workers = 1
    with SweepPool(n_workers, chunksize=_chunksize(len(ids), n_workers), kernel=boxes_mode and not small) as pool:
        done = 0
        scores: list = []
        for k, score in enumerate(pool.imap(_score_one, jobs)):
            scores.append(score)
            if len(scores) == _ADD_BLOCK or k + 1 == len(ids):  # accumulated a block at a time
                block = ids[done : done + len(scores)]
                labels = [meta.labels.get(i) for i in block]
                ev.add_many(block, scores, labels, [preds[i] for i in block] if preds is not None else None)
                done += len(scores)
                scores = []
            if progress is not None:
                progress(k + 1, len(ids))

    result, per_image = ev.compute()
    if small:
        result["sweep_method"] = "opencv"
    if boxes_mode:
        result["protocol"] += " (old protocol computed on the saved score maps)"
    if preds is not None:
        result["predictions"] = str(predictions)
    curve = result.pop("BoxAcc_curve", None)
    result["settings"] = {
        "metadata_dir": str(metadata_dir),
        "scoremap_dir": str(scoremap_dir),
        "mask_root": root,
        "workers": n_workers,
        "versions": {"numpy": np.__version__, "opencv": cv2.__version__},
    }
    if curve is not None:
        result["BoxAcc_curve"] = curve  # long lists last
    result["elapsed_seconds"] = round(time.perf_counter() - t0, 3)
    return result, per_image
