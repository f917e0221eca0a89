"""The library behind ``wsol figure``: CAM comparison grids (models, data, CAMs), BoxAcc-versus-
threshold curves and per-class accuracy (from result files).

The drawing itself is :mod:`eval.figures` (arrays in, figure out); this module gathers the arrays.
Torch, the models, data and CAM code are imported only by :func:`render_cam_grid`, so the curve and
per-class figures start fast.

CAM grid conventions:

* the CAM of each cell is computed for the ground-truth class (``cam_class="gt"``, as
  wsolevaluation's MaxBoxAcc) or for the predicted top-1 class (``"predicted"``, as the old top-1
  localization protocol); the cell's caption shows the predicted class either way;
* the predicted box is the box of the **largest contour** (``eval.sweep.boxes_at_threshold`` with
  ``multi_contour=False``) at the column's threshold τ: the ``best_threshold["50"]`` of the result
  file given for that model (``results[i]`` belongs to ``checkpoints[i]``; used when its
  ``cam_method`` is the column's or is not recorded), else ``threshold`` when given, else
  :data:`DEFAULT_TAU` = 0.15 (the CutMix paper's σ; note that σ there is a fraction of the map's
  max while τ here applies to min-max normalized CAMs in [0, 1]);
* the IoU shown is that box's best IoU over the image's GT boxes (inclusive +1 convention). The
  MaxBoxAccV2 metric takes the best box of *all* contours instead, so it can count a cell whose
  drawn box misses;
* images are chosen by id, by seed (uniform without replacement, shown in dataset order) or where
  the models disagree most (:func:`disagreement_order` on the per-image CSVs of ``results``).

Before any image is read, the grid refuses what would draw wrong cells: a checkpoint whose class
count does not match the dataset (:func:`wsol.model_info.class_count_problem`, as ``wsol
evaluate``; ``label_subset`` as its ``--label-subset``) and a result file that was computed on
another checkpoint or other data than its column's (:func:`result_problem`).

Every figure is written as PNG and PDF beside each other (:func:`output_problem`: ``out`` ends in
``.png``, ``.pdf`` or nothing) and refused when its PNG would be larger than image readers open
(:data:`MAX_PIXELS`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.compare import align_per_image, load_results, per_class_matrix
from eval.figures import GridCell, GridRow, boxacc_curves_figure, cam_grid_figure, per_class_figure, save_figure
from eval.results import PerImage, Result, boxacc_curve_of, per_image_of
from wsol import defaults
from wsol.errors import UserError
from wsol.jobs.evaluate import file_sha256

__all__ = [
    "DEFAULT_TAU",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_PIXELS",
    "PER_CLASS_METRICS",
    "GridConfig",
    "output_problem",
    "result_problem",
    "denormalize_image",
    "select_by_seed",
    "disagreement_order",
    "column_names",
    "render_cam_grid",
    "render_curves",
    "render_per_class",
]

DEFAULT_TAU = 0.15
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PER_CLASS_METRICS = {
    "top1_loc": "Top-1 Loc (%)",
    "gt_known_loc": "GT-known Loc (%)",
    "MaxBoxAccV2_hits": "MaxBoxAccV2 (%)",
    "top1_cls": "Top-1 Cls (%)",
}
OUT_SUFFIXES = (".png", ".pdf")  # what `out` may end in: eval.figures.save_figure writes both
PNG_DPI = 300  # the PNG resolution of eval.figures.save_figure
# PIL's default Image.MAX_IMAGE_PIXELS: it warns about a larger image and refuses one twice as large
MAX_PIXELS = 89_478_485


# --------------------------------------------------------------------------- pure helpers (numpy)


def denormalize_image(
    image: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> np.ndarray:
    """ImageNet-normalized float ``[3, H, W]`` (numpy or CPU tensor) -> displayable uint8 ``[H, W, 3]``
    (``x * std + mean``, clipped to [0, 1], times 255, rounded)."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != 3:
        raise UserError(f"expected an image [3, H, W], got shape {tuple(x.shape)}")
    x = x * np.asarray(std).reshape(3, 1, 1) + np.asarray(mean).reshape(3, 1, 1)
    return np.clip(np.rint(np.clip(x, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def select_by_seed(num_items: int, count: int, seed: int) -> list[int]:
    """``count`` distinct indices in ``range(num_items)`` drawn with ``numpy.random.default_rng(seed)``,
    returned sorted (all of them when ``count >= num_items``)."""
    if count <= 0:
        raise UserError(f"--images must be positive, got {count}")
    if count >= num_items:
        return list(range(num_items))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(num_items, size=count, replace=False))


def disagreement_order(
    per_images: Sequence[PerImage], names: Sequence[str] | None = None, delta: str = "50"
) -> list[str]:
    """Image ids sorted from most to least disagreement between models.

    Primary key: how evenly the models split on ``hit@<delta>`` (``min(#hit, #miss)``: 0 when all
    agree, largest when half of them hit); secondary: the spread (max - min) of ``best_iou``;
    ties keep the first table's order. The per-image tables must cover the same images
    (:func:`eval.compare.align_per_image`) and at least one of the two columns must be in all.
    """
    if len(per_images) < 2:
        raise UserError("--select disagree needs the per-image results of at least two models (--results)")
    names = list(names) if names is not None else [str(p.path) for p in per_images]
    ref = per_images[0]
    orders = [np.arange(len(ref))] + [align_per_image(ref, p, names[0], n) for p, n in zip(per_images[1:], names[1:])]
    hit_col, iou_col = f"hit@{delta}", "best_iou"
    has_hits = all(hit_col in p.columns for p in per_images)
    has_iou = all(iou_col in p.columns for p in per_images)
    if not (has_hits or has_iou):
        raise UserError(
            f"--select disagree: the per-image CSVs need a '{hit_col}' or '{iou_col}' column "
            f"({', '.join(str(p.path) for p in per_images)})"
        )
    n = len(ref)
    split = np.zeros(n)
    spread = np.zeros(n)
    if has_hits:
        hits = np.stack([p.columns[hit_col][o] for p, o in zip(per_images, orders)]).astype(np.int64)
        k = hits.sum(axis=0)
        split = np.minimum(k, len(per_images) - k).astype(np.float64)
    if has_iou:
        ious = np.stack([p.columns[iou_col][o] for p, o in zip(per_images, orders)])
        spread = ious.max(axis=0) - ious.min(axis=0)
    order = np.lexsort((np.arange(n), -spread, -split))
    return [ref.image_ids[i] for i in order]


def column_names(model_names: Sequence[str], methods: Sequence[str]) -> list[str]:
    """Titles of the grid's columns (model-major): model names for one CAM method, method names
    for one model, ``"model · method"`` otherwise."""
    if len(methods) == 1:
        return list(model_names)
    if len(model_names) == 1:
        return list(methods)
    return [f"{m} · {c}" for m in model_names for c in methods]


def _default_model_names(paths: Sequence[str]) -> list[str]:
    """``runs/cutmix/last.pt`` -> ``cutmix``; ``resnet50_cutmix.pth`` -> ``resnet50_cutmix``."""
    out = []
    for p in paths:
        path = Path(p)
        generic = path.stem in ("last", "best", "checkpoint", "model", "final")
        out.append(path.parent.name if generic and path.parent.name else path.name.split(".")[0])
    return out


def output_problem(out: str | os.PathLike) -> str | None:
    """Why ``out`` cannot name a figure (None: it can). Every figure is written as PNG and PDF with
    ``out``'s stem; a suffix other than ``.png``, ``.pdf`` (any case) or none would be kept inside the
    names (``e11.jpg`` -> ``e11.jpg.png``), so it is refused, naming the files that are written."""
    path = Path(out)
    if not path.suffix or path.suffix.lower() in OUT_SUFFIXES:
        return None
    stem = path.with_suffix("")
    return (
        f"--out {out}: give a .png, .pdf or no suffix; every figure is written as PNG and PDF "
        f"(here {stem}.png and {stem}.pdf), not as {path.suffix}"
    )


def _check_output(out: str | os.PathLike) -> None:
    from eval.io import check_output_file

    check_output_file(out, "--out", "figure.png")  # "", out/, an existing folder: refused now
    problem = output_problem(out)
    if problem:
        raise UserError(problem)


def _save(fig, out: str | os.PathLike) -> list[Path]:
    """:func:`eval.figures.save_figure`, after refusing a PNG larger than :data:`MAX_PIXELS` (PIL
    refuses to open such an image or warns about it)."""
    w_in, h_in = (float(v) for v in fig.get_size_inches())
    w_px, h_px = round(w_in * PNG_DPI), round(h_in * PNG_DPI)
    if w_px * h_px > MAX_PIXELS:
        raise UserError(
            f"the figure would be {w_in:.3g} x {h_in:.3g} in = {w_px} x {h_px} px at {PNG_DPI} dpi "
            f"({w_px * h_px / 1e6:.0f} megapixels; image readers open at most {MAX_PIXELS / 1e6:.0f}): "
            "give a smaller --width"
        )
    return save_figure(fig, out)


# ------------------------------------------------------------------------------------ CAM grid


@dataclass
class GridConfig:
    """Options of :func:`render_cam_grid` (see the module docstring for the conventions)."""

    checkpoints: list[str]
    dataset: str
    data_root: str
    out: str
    names: list[str] | None = None
    metadata_dir: str | None = None
    split: str = defaults.SPLIT
    preset: str = defaults.PRESET
    images: int = 4
    ids: list[str] | None = None
    select: str = "seed"  # "seed" or "disagree" (ignored when ids are given)
    results: list[str] | None = None  # one result JSON per checkpoint (thresholds, disagree)
    cam_methods: list[str] = field(default_factory=lambda: [defaults.CAM_METHOD])
    cam_class: str = "gt"  # "gt" or "predicted"
    threshold: float | None = None  # τ for columns without a result file (default DEFAULT_TAU)
    seed: int = 0
    arch: str | None = None
    arch_options: dict = field(default_factory=dict)
    workers: int | None = None  # DataLoader processes reading the chosen images
    device: str | None = None
    cmap: str = "inferno"
    width_in: float | None = None
    label_subset: bool = False  # accept fewer dataset classes than model outputs (same indices)


def _first(items: list) -> dict:
    return items[0]


def _read_items(dataset, indices: Sequence[int], workers: int | None) -> list[dict]:
    """``dataset[i]`` for ``indices``, read by DataLoader workers; a worker's user error is raised as itself."""
    from torch.utils.data import DataLoader, Subset

    from wsol.data.loading import CarryErrors, carry_collate, iterate, worker_init
    from wsol.runtime import sweep_workers

    n = min(sweep_workers(workers), 4)
    loader = DataLoader(
        CarryErrors(Subset(dataset, list(indices))),
        batch_size=1,
        num_workers=n,
        collate_fn=carry_collate(_first),
        worker_init_fn=worker_init,
    )
    return list(iterate(loader))


def _choose_images(cfg: GridConfig, dataset, results) -> list[int]:
    records = dataset.records
    index = {r.image_id: i for i, r in enumerate(records)}
    if cfg.ids:
        unknown = [i for i in cfg.ids if i not in index]
        if unknown:
            example = f" (ids look like {records[0].image_id!r})" if records else ""
            raise UserError(
                f"--ids: {len(unknown)} image id(s) not in the {cfg.dataset} {cfg.split} split: "
                f"{', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}{example}"
            )
        return [index[i] for i in cfg.ids]
    if cfg.images > len(records):
        print(
            f"--images {cfg.images}: the {cfg.dataset} {cfg.split} split has {len(records)} images; "
            "showing all of them",
            file=sys.stderr,
        )
    if cfg.select == "seed":
        return select_by_seed(len(records), cfg.images, cfg.seed)
    if cfg.select == "disagree":
        if not results or len(results) < 2:
            raise UserError("--select disagree needs --results with one result file per model (at least two)")
        tables = []
        for r in results:
            pi = per_image_of(r)
            if pi is None:
                raise UserError(
                    f"{r.path}: no 'per_image' key; --select disagree needs the per-image CSVs "
                    "written by `wsol evaluate`"
                )
            tables.append(pi)
        order = disagreement_order(tables, [r.name for r in results])
        missing = [i for i in order if i not in index]
        if missing:
            raise UserError(
                f"{len(missing)} image(s) of the result files are not in the {cfg.dataset} "
                f"{cfg.split} split (e.g. {missing[0]!r}): the results and the data do not match"
            )
        return [index[i] for i in order[: cfg.images]]
    raise UserError(f"--select must be 'seed' or 'disagree', got {cfg.select!r}")


def _config_of(result: Result) -> tuple[Path, dict] | None:
    """``(path, guarded configuration)`` of the config side file a ``wsol evaluate`` result names
    (``config`` key, relative to the JSON's folder), or None when there is none or it cannot be read."""
    name = result.data.get("config")
    if not isinstance(name, str) or not name:
        return None
    path = Path(name) if Path(name).is_absolute() else result.path.parent / name
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    guarded = config.get("guarded") if isinstance(config, dict) else None
    return (path, guarded) if isinstance(guarded, dict) else None


def result_problem(
    result: Result,
    *,
    checkpoint: str,
    checkpoint_file: str | os.PathLike | None,
    dataset: str,
    data_root: str | os.PathLike,
    split: str,
    preset: str | None = None,
    cam_methods: Sequence[str] | None = None,
) -> str | None:
    """Why ``result`` is not the result of ``checkpoint`` on this data (None: nothing says so).

    With the config side file of ``wsol evaluate`` (its ``guarded`` dict) the result must record the
    sha256 of ``checkpoint_file`` (the file ``checkpoint`` loads from, a ``zoo:NAME`` resolved; None:
    not compared), the ``dataset`` and the resolved ``data_root``. Without it (e.g. a result of
    ``evaluate-scoremaps``) the JSON's own ``dataset`` and ``preset.root`` (only when absolute: a
    relative root was relative to a working directory that is not recorded) are compared; the JSON
    records the checkpoint only as the path given, so no checkpoint is compared then. ``split`` (as
    resolved by the dataset) is compared with the JSON's ``split``, else the config's; ``preset``
    (the grid's data preset) with the JSON's ``preset`` name, else the config's; ``cam_methods`` (the
    grid's CAM methods) must hold the result's ``cam_method`` (JSON, else config). Information that
    is not recorded (or a ``None`` argument) is not compared."""
    data = result.data
    config = _config_of(result)
    guarded = config[1] if config is not None else {}
    differences = []
    recorded_sha = guarded.get("checkpoint_sha256")
    if isinstance(recorded_sha, str) and recorded_sha and checkpoint_file is not None:
        sha = file_sha256(checkpoint_file)
        if sha != recorded_sha:
            other = guarded.get("checkpoint_file") or "another file"
            differences.append(
                f"it was computed on checkpoint {other} (sha256 {recorded_sha[:12]}...), "
                f"not on {checkpoint} (sha256 {sha[:12]}...)"
            )
    if config is not None:
        recorded_dataset, recorded_root = guarded.get("dataset"), guarded.get("data_root")
    else:
        preset = data.get("preset")
        root = preset.get("root") if isinstance(preset, dict) else None
        recorded_dataset = data.get("dataset")
        recorded_root = root if isinstance(root, str) and Path(root).is_absolute() else None
    recorded_split = data.get("split") if isinstance(data.get("split"), str) else guarded.get("split")
    if isinstance(recorded_dataset, str) and recorded_dataset != dataset:
        differences.append(f"dataset {recorded_dataset!r}, not {dataset!r}")
    if isinstance(recorded_root, str) and Path(recorded_root).resolve() != Path(data_root).resolve():
        differences.append(f"data root {recorded_root}, not {Path(data_root).resolve()}")
    if isinstance(recorded_split, str) and recorded_split != split:
        differences.append(f"split {recorded_split!r}, not {split!r}")
    json_preset = data.get("preset")
    recorded_preset = json_preset.get("preset") if isinstance(json_preset, dict) else json_preset
    if not isinstance(recorded_preset, str):
        recorded_preset = guarded.get("preset")
    if preset is not None and isinstance(recorded_preset, str) and recorded_preset != preset:
        differences.append(f"preset {recorded_preset!r}, not {preset!r}")
    recorded_method = data.get("cam_method")
    if not isinstance(recorded_method, str):
        recorded_method = guarded.get("cam_method")
    if cam_methods and isinstance(recorded_method, str) and recorded_method not in cam_methods:
        shown = ", ".join(repr(m) for m in cam_methods)
        differences.append(f"cam_method {recorded_method!r}, not {shown}")
    if not differences:
        return None
    source = f" (recorded in {config[0]})" if config is not None else ""
    return (
        f"--results: {result.path} is not a result of --checkpoint {checkpoint} on this data: "
        f"{'; '.join(differences)}{source}; give one result per checkpoint, in the same order, "
        "computed on the data drawn"
    )


def _check_checkpoints(cfg: GridConfig, dataset, results: list[Result] | None) -> None:
    """Refuse, before any image is read, a checkpoint whose class count does not match ``dataset``
    and a result file that is not its checkpoint's on this data (:func:`result_problem`)."""
    from wsol.checkpoints import load_checkpoint
    from wsol.model_info import class_count_problem

    where = f"the {cfg.dataset} {cfg.split!r} split at {cfg.data_root}"
    split = getattr(getattr(dataset, "scan", None), "split", cfg.split)  # as resolved (wsolevaluation)
    for m, ckpt in enumerate(cfg.checkpoints):
        # names and shapes only, no weights read; a zoo:NAME is resolved to its verified local file
        # (load_report.source), the file `wsol evaluate` hashed
        shapes = load_checkpoint(ckpt, arch=cfg.arch, map_location="meta", **cfg.arch_options)
        problem = class_count_problem(dataset, shapes, checkpoint=str(ckpt), where=where, label_subset=cfg.label_subset)
        if problem is None and results is not None:
            report = getattr(shapes, "load_report", None)
            source = report.source if report is not None else None
            if source is None and not str(ckpt).startswith("zoo:"):
                source = str(ckpt)
            problem = result_problem(
                results[m],
                checkpoint=str(ckpt),
                checkpoint_file=source,
                dataset=cfg.dataset,
                data_root=cfg.data_root,
                split=split,
                preset=cfg.preset,
                cam_methods=cfg.cam_methods,
            )
        if problem:
            raise UserError(problem)


def _column_tau(cfg: GridConfig, results, model_idx: int, method: str) -> float:
    if results is not None:
        data = results[model_idx].data
        recorded = data.get("cam_method")
        bt = data.get("best_threshold")
        if (recorded is None or recorded == method) and isinstance(bt, dict) and bt.get("50") is not None:
            return float(bt["50"])
        tau = DEFAULT_TAU if cfg.threshold is None else float(cfg.threshold)
        why = (
            f"it is of CAM method {recorded!r}"
            if recorded is not None and recorded != method
            else "it has no best_threshold at IoU 50"
        )
        source = "--threshold" if cfg.threshold is not None else "the default"
        print(
            f"note: column {method} of {results[model_idx].name}: {results[model_idx].path} gives no threshold "
            f"({why}); using tau = {tau:g} ({source})",
            file=sys.stderr,
        )
        return tau
    return DEFAULT_TAU if cfg.threshold is None else float(cfg.threshold)


def render_cam_grid(cfg: GridConfig) -> list[Path]:
    """Draw the CAM comparison grid of ``cfg`` and write ``cfg.out`` as PNG and PDF.

    Rows are the chosen images; columns are checkpoints x CAM methods. Returns the written paths.
    """
    import torch

    from cam import cams_and_logits
    from eval.boxes import iou_inclusive
    from eval.sweep import boxes_at_threshold
    from wsol.checkpoints import load_checkpoint
    from wsol.data import build_dataset
    from wsol.model_info import describe_model, model_line
    from wsol.runtime import resolve_device

    _check_output(cfg.out)
    if not cfg.checkpoints:
        raise UserError("give at least one --checkpoint")
    names = list(cfg.names) if cfg.names else _default_model_names(cfg.checkpoints)
    if len(names) != len(cfg.checkpoints):
        raise UserError(f"--names: {len(names)} names for {len(cfg.checkpoints)} checkpoints")
    if cfg.cam_class not in ("gt", "predicted"):
        raise UserError(f"cam_class must be 'gt' or 'predicted', got {cfg.cam_class!r}")
    results = None
    if cfg.results:
        if len(cfg.results) != len(cfg.checkpoints):
            raise UserError(
                f"--results: {len(cfg.results)} result files for {len(cfg.checkpoints)} checkpoints "
                "(give one per checkpoint, in the same order)"
            )
        results = load_results(cfg.results, names)
    device = resolve_device(cfg.device)

    dataset = build_dataset(cfg.dataset, cfg.data_root, cfg.split, metadata_dir=cfg.metadata_dir, preset=cfg.preset)
    if len(dataset) == 0:
        raise UserError(f"the {cfg.dataset} {cfg.split!r} split at {cfg.data_root} has no images")
    _check_checkpoints(cfg, dataset, results)
    chosen = _choose_images(cfg, dataset, results)
    items = _read_items(dataset, chosen, cfg.workers)
    images = torch.stack([torch.as_tensor(it["image"]) for it in items]).to(device)
    labels = torch.as_tensor([int(it["label"]) for it in items], device=device)
    class_names = list(getattr(dataset, "class_names", None) or [str(i) for i in range(int(labels.max()) + 1)])

    # cells[r][col]
    cells: list[list[GridCell]] = [[] for _ in items]
    taus: list[float] = []
    for m, ckpt in enumerate(cfg.checkpoints):
        model = load_checkpoint(ckpt, arch=cfg.arch, map_location=device, **cfg.arch_options).to(device).eval()
        print(model_line(names[m], describe_model(model, tuple(images.shape[-2:]))), flush=True)
        for method in cfg.cam_methods:
            tau = _column_tau(cfg, results, m, method)
            taus.append(tau)
            targets = labels if cfg.cam_class == "gt" else None  # None: the predicted top-1 class
            cams, logits = cams_and_logits(model, images, targets, method=method)
            cams_np = cams.detach().float().cpu().numpy()
            preds = logits.detach().argmax(dim=1).cpu().numpy()
            for r, it in enumerate(items):
                cam = cams_np[r]
                gt = np.asarray(it["boxes_eval"], dtype=np.int64).reshape(-1, 4)
                box = np.asarray(boxes_at_threshold(cam, tau, multi_contour=False), dtype=np.int64).reshape(-1, 4)[0]
                iou = float(iou_inclusive(box[None], gt).max()) if len(gt) else None
                pred = int(preds[r])
                cells[r].append(
                    GridCell(
                        cam=cam,
                        pred_box=None if not box.any() else box,
                        iou=iou,
                        pred_name=class_names[pred] if pred < len(class_names) else str(pred),
                        correct=pred == int(it["label"]),
                    )
                )
        del model
    rows = [
        GridRow(
            image=denormalize_image(
                it["image"].detach().cpu().numpy() if hasattr(it["image"], "detach") else it["image"]
            ),
            cells=cells[r],
            gt_boxes=np.asarray(it["boxes_eval"], dtype=np.int64).reshape(-1, 4),
            label=str(it["image_id"]),
            true_name=class_names[int(it["label"])] if int(it["label"]) < len(class_names) else None,
        )
        for r, it in enumerate(items)
    ]
    fig = cam_grid_figure(
        rows,
        column_names(names, cfg.cam_methods),
        cmap=cfg.cmap,
        width_in=cfg.width_in,
        column_notes=[f"τ = {t:.2f}" for t in taus],
    )
    return _save(fig, cfg.out)


# ------------------------------------------------------------------------ curves and per class


def render_curves(
    results: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    deltas: Sequence[str] | None = None,
    width_in: float | None = None,
) -> list[Path]:
    """BoxAcc-versus-threshold curves of the result files (their ``BoxAcc_curve`` key), one panel per
    IoU threshold in ``deltas`` (default: all they share). Writes ``out`` as PNG and PDF."""
    _check_output(out)
    loaded = load_results(results, names)
    curves, thresholds = {}, {}
    for r in loaded:
        got = boxacc_curve_of(r)
        if got is None:
            raise UserError(f"{r.path}: no 'BoxAcc_curve' key (written by `wsol evaluate`); cannot draw its curve")
        thresholds[r.name], curves[r.name] = got
    if deltas is not None:
        deltas = [str(d) for d in deltas]
        for r in loaded:
            missing = [d for d in deltas if d not in curves[r.name]]
            if missing:
                raise UserError(
                    f"{r.path}: BoxAcc_curve has no IoU threshold {', '.join(missing)} "
                    f"(it has {', '.join(curves[r.name])})"
                )
    fig = boxacc_curves_figure(curves, thresholds, deltas=deltas, width_in=width_in)
    return _save(fig, out)


def _check_same_images(results: Sequence[Result]) -> None:
    """Refuse results evaluated on different images (their per-image CSVs, when they all have one):
    bars side by side would compare classes over different images."""
    tables = [per_image_of(r) for r in results]
    if len(results) < 2 or any(t is None for t in tables):
        return
    for r, t in zip(results[1:], tables[1:]):
        align_per_image(
            tables[0],  # type: ignore[arg-type]
            t,  # type: ignore[arg-type]
            results[0].name,
            r.name,
            "Per-class bars side by side need results on identical image sets.",
        )


def render_per_class(
    results: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    metric: str | None = None,
    max_classes: int = 15,
    select: str = "spread",
    width_in: float | None = None,
) -> list[Path]:
    """Per-class accuracy bars of the result files (their per-class CSVs). ``metric`` is a column
    of those CSVs (default: the first of ``top1_loc``, ``MaxBoxAccV2_hits``, ``gt_known_loc``,
    ``top1_cls`` that every file has). Writes ``out`` as PNG and PDF."""
    _check_output(out)
    loaded = load_results(results, names)
    if metric is None:
        from eval.results import per_class_of

        tables = [per_class_of(r) for r in loaded]
        for r, t in zip(loaded, tables):
            if t is None:
                raise UserError(
                    f"{r.path}: no 'per_class' key: per-class figures need the per-class CSV written by `wsol evaluate`"
                )
        common = [m for m in PER_CLASS_METRICS if all(m in t.columns for t in tables)]
        if not common:
            raise UserError("the per-class CSVs share none of the columns " + ", ".join(PER_CLASS_METRICS))
        metric = common[0]
    _check_same_images(loaded)
    class_names, values = per_class_matrix(loaded, metric)
    fig = per_class_figure(
        class_names,
        values,
        metric_label=PER_CLASS_METRICS.get(metric, metric),
        max_classes=max_classes,
        select=select,
        width_in=width_in,
    )
    return _save(fig, out)
