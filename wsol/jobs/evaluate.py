"""The job behind ``wsol evaluate``: checkpoint + dataset -> result JSON, CSVs and config.

Around the one pass (:func:`wsol.evaluate.run_pass`) this job adds what a run needs to be
trusted and kept:

* the model is stated first (:func:`wsol.model_info.model_line`: architecture, options, CAM size,
  and which options were assumed rather than read from the file);
* the checkpoint's class count must equal the dataset's (``label_subset`` for a dataset whose
  labels are a subset of the model's outputs with the same indices);
* a per-image resume log (``<stem>.log.jsonl``) whose header holds the resolved configuration
  (checkpoint sha256 included): ``resume`` refuses a different configuration, naming the keys,
  and leaves an already finished result untouched;
* under ``torchrun`` rank r scores a contiguous block and rank 0 merges the states in rank order
  (= dataset order), so every number equals the one-process result;
* the result (:func:`eval.results.assemble_result`), ``<stem>.per_class.csv`` and
  ``<stem>.config.json`` written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval.settings import MetricSettings
from wsol import defaults
from wsol.errors import Interrupted, UserError

__all__ = ["EvaluateConfig", "run_evaluate", "result_paths", "software_versions", "guarded_config"]


@dataclass
class EvaluateConfig:
    """Everything ``wsol evaluate`` needs; saved (resolved) beside every result.

    ``scoremap_dtype``: None saves score maps in the dtype they are computed in (float32, lossless);
    ``"float16"`` rounds them and the metrics then use the rounded maps (the result says so).
    ``label_subset``: accept a dataset with fewer classes than the model's outputs whose labels
    index the same classes (e.g. an ImageNet model on an ImageNet subset).
    """

    checkpoint: str
    dataset: str
    data_root: str
    output: str
    arch: str | None = None
    arch_options: dict = field(default_factory=dict)
    metadata_dir: str | None = None
    split: str = defaults.SPLIT
    preset: str = defaults.PRESET
    cam_method: str = defaults.CAM_METHOD
    metrics: MetricSettings = field(default_factory=MetricSettings)
    batch_size: int = defaults.BATCH_SIZE
    device: str | None = None
    workers: int | None = None
    save_scoremaps: str | None = None
    scoremap_dtype: str | None = None
    label_subset: bool = False
    overwrite: bool = False
    resume: bool = False
    skip_bad: bool = False
    progress: bool = True


# keys that cannot change the numbers (left out of the resume guard). The batch size stays guarded:
# a CPU convolution over another batch can move a CAM's last bits (PxAP in the 5th decimal)
# (save_scoremaps is added back by guarded_config, resolved: it does not change the numbers, but
# --resume cannot add, move or drop it, as the maps of the images scored already would be missing)
_UNGUARDED = ("output", "overwrite", "resume", "progress", "workers", "save_scoremaps", "device")


def result_paths(output: str) -> dict[str, Path]:
    """The result JSON and its side files (per-image CSV, per-class CSV, config, resume log), named
    by the one rule of :func:`eval.results.companion_paths`."""
    from eval.results import companion_paths

    out = Path(output)
    return {"json": out, **companion_paths(out)}


# the files of a finished result (the resume log has its own rules)
_RESULT_FILES = ("json", "per_image", "per_class", "config")


def _check_options(cfg: EvaluateConfig) -> None:
    """Refuse, before anything is read or written, options that contradict each other or an output
    that cannot be written (one line each)."""
    from eval.io import check_output_file, nearest_existing

    check_output_file(cfg.output, "--output")
    if cfg.resume and cfg.overwrite:
        raise UserError(
            "--resume and --overwrite contradict each other: --resume keeps what an earlier run "
            "scored, --overwrite starts over; give one"
        )
    if cfg.scoremap_dtype is not None and not cfg.save_scoremaps:
        raise UserError(f"--scoremap-dtype {cfg.scoremap_dtype} has no effect without --save-scoremaps")
    if cfg.save_scoremaps is not None:
        folder = Path(cfg.save_scoremaps)
        if not str(cfg.save_scoremaps).strip():
            raise UserError("--save-scoremaps '': empty path; give a folder")
        existing = nearest_existing(folder)
        if existing is not None and not existing.is_dir():
            what = "is a file" if existing == folder else f"cannot be created: {existing} is a file"
            raise UserError(f"--save-scoremaps {folder}: {what}, not a folder")
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"--save-scoremaps {folder}: {existing} is not writable")


def software_versions() -> dict:
    import cv2
    import torch
    import torchvision

    from wsol import __version__

    versions = {
        "wsol-toolkit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "platform": platform.platform(),
    }
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("grad-cam", "numba"):  # read from the metadata: importing grad-cam is slow
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            pass
    return versions


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def guarded_config(
    cfg: EvaluateConfig, model_info: dict, checkpoint_file: str, sha256: str, device: str
) -> dict[str, Any]:
    """The resolved configuration a result depends on (what ``--resume`` compares)."""
    plain = {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if f.name not in _UNGUARDED and f.name != "metrics"
    }
    plain.pop("checkpoint")  # the file and its hash below say which weights, whatever the path's spelling
    plain.update(cfg.metrics.to_dict())
    plain.update(
        {
            "checkpoint_file": str(Path(checkpoint_file).resolve()),
            "checkpoint_sha256": sha256,
            "data_root": str(Path(cfg.data_root).resolve()),
            "metadata_dir": str(Path(cfg.metadata_dir).resolve()) if cfg.metadata_dir else None,
            "arch": model_info["arch"],
            "arch_options": model_info["arch_options"],
            "device_type": device.split(":")[0],
        }
    )
    if cfg.save_scoremaps:
        # the maps of the images scored before an interruption are in the folder only if the run
        # that scored them saved them there: --resume may not add, move or drop the folder (the key
        # is left out without it, so configurations recorded before it was guarded still compare)
        plain["save_scoremaps"] = str(Path(cfg.save_scoremaps).resolve())
    return json.loads(json.dumps(plain, default=str))


def _warn_unannotated(dataset: Any) -> None:
    """Say so when images of the split's folder are left out for want of a box annotation (an
    ImageNet val tree with a partial LOC_val_solution.csv): the numbers are then a subset's."""
    from wsol.data.check import unannotated_images

    scan = getattr(dataset, "scan", None)
    missing = unannotated_images(scan) if scan is not None else []
    if missing:
        print(
            f"warning: {len(missing)} images under {scan.root / 'val'} have no box annotation and are not "
            f"evaluated (first: {missing[0]}); the result covers the {len(dataset)} annotated images "
            "(`wsol data check` lists them)",
            file=sys.stderr,
        )


def _finished(paths: dict[str, Path], new: dict[str, Any]) -> dict | None:
    """With ``resume`` on a finished result: the result when its configuration equals ``new``."""
    from wsol.resume_log import config_differences

    old = None
    if paths["config"].exists():
        old = json.loads(paths["config"].read_text(encoding="utf-8")).get("guarded")
    if old is None:
        raise UserError(
            f"{paths['json']} is finished but {paths['config']} records no configuration to "
            "compare; pass --overwrite to evaluate again"
        )
    diff = config_differences(old, new)
    if diff:
        raise UserError(
            f"{paths['json']} was computed with another configuration "
            f"({'; '.join(diff)}); pass --overwrite to replace it"
        )
    return json.loads(paths["json"].read_text(encoding="utf-8"))


def run_evaluate(cfg: EvaluateConfig) -> dict | None:
    """Run ``wsol evaluate``; write the result JSON, its per-image / per-class CSVs and config.
    Returns the result dict (``None`` on ranks other than 0 under torchrun)."""
    from eval.io import ensure_output_dir
    from eval.results import assemble_result, per_class_rows, rows_csv_text, to_jsonable, write_result
    from wsol import runtime
    from wsol.checkpoints import load_checkpoint
    from wsol.data import build_dataset
    from wsol.evaluate import BatchStream, make_evaluator, run_pass
    from wsol.model_info import class_count_problem, describe_model, model_line
    from wsol.resume_log import ResumeLog, config_differences, decode_score, read_log

    _check_options(cfg)
    info = runtime.setup(cfg.device)
    paths = result_paths(cfg.output)
    stream: BatchStream | None = None
    try:
        for kind in _RESULT_FILES:  # every file of the result counts, not only the JSON
            p = paths[kind]
            if info.is_main and p.is_dir():
                raise UserError(f"{p} is a folder, not a file: {paths['json']} would write a file there; move it away")
            if info.is_main and p.exists() and not (cfg.overwrite or cfg.resume):
                raise UserError(f"{p} exists; pass --overwrite to replace it (or --resume to check it)")
        ensure_output_dir(paths["json"])  # an unwritable output fails now, not after the pass
        from wsol.data import PRESETS

        if cfg.save_scoremaps and PRESETS.get(cfg.preset).crop:  # maps of the crop, metadata of the image
            raise UserError(
                f"--save-scoremaps with --preset {cfg.preset}: its maps cover the centre crop, while "
                "evaluate-scoremaps (the wsolevaluation contract) places the metadata's boxes on the "
                f"whole image, so it would score them wrongly; save maps with --preset {defaults.PRESET}"
            )
        t0 = time.perf_counter()
        dataset = build_dataset(cfg.dataset, cfg.data_root, cfg.split, metadata_dir=cfg.metadata_dir, preset=cfg.preset)
        if len(dataset) == 0:
            raise UserError(f"the {cfg.dataset} {cfg.split!r} split at {cfg.data_root} has no images")
        log = paths["log"] if info.world_size == 1 else Path(f"{paths['log']}.rank{info.rank}")
        finished = cfg.resume and not cfg.overwrite and paths["json"].exists() and not log.exists()
        header, rows = read_log(log) if cfg.resume and log.exists() else (None, [])
        workers = runtime.sweep_workers(cfg.workers)
        shard = runtime.shard(len(dataset), info.rank, info.world_size)
        if not finished:  # the loader decodes the first batches while the model loads and is checked
            done = {row["index"] for row in rows}
            stream = BatchStream(
                dataset,
                [i for i in shard if i not in done],
                batch_size=cfg.batch_size,
                loader_workers=runtime.loader_workers(workers, info.device),
                skip_bad=cfg.skip_bad,
                pin_memory=info.device.type == "cuda",
            )
        model = (
            load_checkpoint(cfg.checkpoint, arch=cfg.arch, map_location=info.device, **cfg.arch_options)
            .to(info.device)
            .eval()
        )
        side = int(getattr(dataset, "size", 0) or dataset[0]["image"].shape[-1])
        minfo = describe_model(model, (side, side))
        if info.is_main:
            print(model_line(cfg.checkpoint, minfo), flush=True)
            _warn_unannotated(dataset)
        problem = class_count_problem(
            dataset,
            model,
            checkpoint=cfg.checkpoint,
            where=f"the {cfg.dataset} {cfg.split!r} split at {cfg.data_root}",
            label_subset=cfg.label_subset,
        )
        if problem:
            raise UserError(problem)
        report = getattr(model, "load_report", None)
        ckpt_file = report.source if report is not None else cfg.checkpoint
        guard = guarded_config(cfg, minfo, ckpt_file, file_sha256(ckpt_file), str(info.device))
        guard["processes"] = info.world_size

        if finished:
            done_result = _finished(paths, guard)
            if info.is_main:
                print(f"{paths['json']} is already finished with this configuration: nothing to do", file=sys.stderr)
            return done_result
        if log.exists() and not cfg.resume:
            if not cfg.overwrite:
                raise UserError(
                    f"{log} holds an interrupted run: pass --resume to finish it or --overwrite to start over"
                )
            log.unlink()
        if rows or header is not None:
            if header is None:
                raise UserError(
                    f"{log} has no configuration header (written by an older version): pass --overwrite to start over"
                )
            diff = config_differences(header, guard)
            maps = [d for d in diff if d.startswith(("save_scoremaps:", "scoremap_dtype:"))]
            if maps:
                raise UserError(
                    f"--resume: {log} was written with other score-map options ({'; '.join(maps)}); "
                    "--save-scoremaps and --scoremap-dtype cannot be added, changed or dropped on --resume "
                    "(the maps of the images scored already would be missing): rerun with the original "
                    "options or pass --overwrite to start over"
                )
            if diff:
                raise UserError(
                    f"{log} was written with another configuration ({'; '.join(diff)}); "
                    "rerun with the original options or pass --overwrite to start over"
                )
        ev = make_evaluator(dataset, cfg.metrics)
        skipped: list[dict] = []
        done: set[int] = set()
        for row in rows:  # resume: replay what was already scored, in order
            done.add(row["index"])
            if "skipped" in row:
                skipped.append({"index": row["index"], "image_id": row["image_id"], "reason": row["skipped"]})
            else:
                ev.add(row["image_id"], decode_score(row), row["label"], row["topk"])
        if done and info.is_main:
            print(f"resuming: {len(done)} images already scored in {log}", file=sys.stderr)
        todo = [i for i in shard if i not in done]
        try:
            with ResumeLog(log, header=guard) as rlog:
                out = run_pass(
                    model,
                    dataset,
                    ev,
                    device=info.device,
                    batch_size=cfg.batch_size,
                    cam_method=cfg.cam_method,
                    workers=workers,
                    indices=todo,
                    log=rlog,
                    skip_bad=cfg.skip_bad,
                    save_scoremaps=cfg.save_scoremaps,
                    scoremap_dtype=cfg.scoremap_dtype,
                    progress=cfg.progress and info.is_main,
                    batches=stream,
                )
        except KeyboardInterrupt:
            raise Interrupted(
                f"the per-image log {log} keeps the images scored so far; rerun the same "
                "command with --resume to finish (same numbers as an uninterrupted run)"
            ) from None
        skipped += out.skipped
        parts = runtime.gather((ev.state_dict(), skipped, out.num_without_gt), info)
        if not info.is_main:
            log.unlink(missing_ok=True)
            return None
        if info.distributed:
            ev = make_evaluator(dataset, cfg.metrics)
            skipped = []
            for state, sk, _ in parts:  # rank order == dataset order
                part = make_evaluator(dataset, cfg.metrics)
                part.load_state_dict(state)
                ev.merge(part)
                skipped += sk
        without_gt = sum(p[2] for p in parts)
        metrics, per_image = ev.compute()
        elapsed = time.perf_counter() - t0
        saved = None
        if cfg.save_scoremaps:
            rounded = cfg.scoremap_dtype not in (None, "float32", "float64")
            saved = {
                "dir": str(cfg.save_scoremaps),
                "dtype": cfg.scoremap_dtype or "float32",
                "metrics_on": ("the saved maps rounded to " + str(cfg.scoremap_dtype))
                if rounded
                else "the maps as computed (saving is lossless)",
            }
        result = assemble_result(
            metrics,
            checkpoint=str(cfg.checkpoint),
            arch=minfo["arch"],
            arch_options=minfo["arch_options"],
            model=minfo,
            cam_method=cfg.cam_method,
            dataset=cfg.dataset,
            # as resolved (a wsolevaluation split folder given as --metadata-dir names the split)
            split=getattr(getattr(dataset, "scan", None), "split", cfg.split),
            preset=dataset.describe() if hasattr(dataset, "describe") else cfg.preset,
            scoremaps=saved,
            num_skipped=len(skipped),
            skipped=skipped,
            num_without_gt_in_frame=without_gt,
            processes=info.world_size,
            device=str(info.device),
            elapsed_seconds=round(elapsed, 3),
            images_per_second=round(metrics["num_images"] / elapsed, 2) if elapsed > 0 else None,
        )
        if saved is None:
            del result["scoremaps"]
        class_names = list(getattr(dataset, "class_names", None) or range(dataset.num_classes))
        per_class = rows_csv_text(per_class_rows(per_image, [str(c) for c in class_names]))
        config = {
            **dataclasses.asdict(cfg),
            "metrics": cfg.metrics.to_dict(),
            "guarded": guard,
            "resolved": {"device": str(info.device), "workers": workers, "processes": info.world_size},
            "versions": software_versions(),
        }
        result = assemble_result(result, per_class=paths["per_class"].name, config=paths["config"].name)
        # one unit: a failing write leaves no partial result at any final path (the log is kept)
        write_result(
            paths["json"],
            result,
            per_image=per_image,
            overwrite=True,
            side_files={
                paths["per_class"].name: per_class,  # names: beside the JSON
                paths["config"].name: json.dumps(to_jsonable(config), indent=2) + "\n",
            },
        )
        log.unlink(missing_ok=True)
        return result
    finally:
        if stream is not None:
            stream.close()
        runtime.cleanup(info)
