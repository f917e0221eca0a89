"""The job behind ``wsol zoo study``: published weights -> evaluations -> the comparison.

For every entry of a :class:`~wsol.zoo.catalog.Study` (in order; the first is the reference of the
paired tests) the weights are made available (:func:`wsol.zoo.resolve.ensure_entry`: cache,
mirror, checks) and evaluated by the evaluate job into ``<out>/<name>/result.json`` with
``resume=True``: a finished result with the same configuration is returned unchanged, an
interrupted one continues from its per-image log. Then, from the result files:

* ``comparison.md`` / ``comparison.csv``: every metric with its 95 % interval and the paired test
  against the reference (what ``wsol compare`` writes);
* ``published.md``: the published numbers (catalog) beside the measured ones;
* ``boxacc_curves.png/.pdf`` and ``cam_grid.png/.pdf`` (what ``wsol figure curves`` / ``grid`` draw);
* ``study.md`` (all of it in one page) and ``study.json`` (paths and the configuration).

Data: ``--data-root`` an ImageNet tree read by the ``imagenet`` format (split ``val``), or with
``metadata_dir`` the ``wsolevaluation`` format (split ``test`` = ILSVRC2012 val). ``images=N``
evaluates N images spread evenly over the split (their annotations written as wsolevaluation
metadata under ``<out>/subset-N/``; ``label_subset`` on): a quick look, not the published protocol.

:func:`plan_study` says what would be downloaded (sizes where known) and run, doing nothing.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.settings import MetricSettings
from wsol import defaults
from wsol.errors import UserError

__all__ = [
    "StudyConfig",
    "StudyPlan",
    "StudyStep",
    "DataSource",
    "plan_study",
    "format_plan",
    "run_study",
    "published_markdown",
]


@dataclass
class StudyConfig:
    """Options of one study run (see the module docstring)."""

    study: str
    data_root: str
    out: str
    metadata_dir: str | None = None
    split: str | None = None  # default: "val" (imagenet format), "test" (wsolevaluation)
    images: int | None = None  # a quick evenly spread subset of N images
    mirror: str | None = None
    metrics: MetricSettings = field(default_factory=MetricSettings)
    batch_size: int = defaults.BATCH_SIZE
    device: str | None = None
    workers: int | None = None
    grid_images: int = 6
    overwrite: bool = False  # evaluate every model again (default: finished ones are kept)
    progress: bool = True


@dataclass(frozen=True)
class DataSource:
    """What the evaluations read (after choosing a subset)."""

    dataset: str
    data_root: str
    split: str
    metadata_dir: str | None
    label_subset: bool
    num_images: int
    num_classes: int
    subset_of: int | None = None  # images in the full split when a subset is used


@dataclass(frozen=True)
class StudyStep:
    name: str
    result: Path
    state: str  # "finished", "interrupted" (resumes), "to run"
    cached: bool
    download: str  # what would be fetched (or "cached: <path>")
    download_bytes: int | None  # None: cached or size unknown
    size_known: bool
    command: str


@dataclass(frozen=True)
class StudyPlan:
    study: Any
    source: DataSource
    steps: list[StudyStep]
    outputs: list[Path]
    problems: list[str]
    overwrite: bool = False


# ------------------------------------------------------------------------------------- data


def _input(cfg: StudyConfig) -> tuple[str, str, str | None]:
    if cfg.metadata_dir:
        return "wsolevaluation", cfg.split or "test", cfg.metadata_dir
    return "imagenet", cfg.split or "val", None


def _subset_indices(n: int, k: int) -> list[int]:
    if k >= n:
        return list(range(n))
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _subset_dir(cfg: StudyConfig) -> Path:
    return Path(cfg.out) / f"subset-{cfg.images}"


def _subset_files(records: list) -> dict[str, str]:
    ids = [r.image_id for r in records]
    files = {
        "image_ids.txt": "\n".join(ids),
        "class_labels.txt": "\n".join(f"{r.image_id},{r.label}" for r in records),
        "localization.txt": "\n".join(
            f"{r.image_id},{','.join(str(int(v)) for v in box)}" for r in records for box in r.boxes
        ),
    }
    if all(r.size is not None for r in records):
        files["image_sizes.txt"] = "\n".join(f"{r.image_id},{r.size[0]},{r.size[1]}" for r in records)
    return files


def _scan(cfg: StudyConfig):
    from wsol.data import scan_dataset

    dataset, split, metadata_dir = _input(cfg)
    scan = scan_dataset(dataset, cfg.data_root, split, metadata_dir=metadata_dir)
    return scan, dataset, split, metadata_dir


def data_source(cfg: StudyConfig, *, write: bool) -> tuple[DataSource, list[str]]:
    """The data the evaluations read, and the problems found in it (annotation level, no image
    opened). ``write``: create the subset metadata (``images``); otherwise only describe it."""
    scan, dataset, split, metadata_dir = _scan(cfg)
    problems = [f"{p.file}{':' + str(p.line) if p.line else ''}: {p.message}" for p in scan.problems]
    n = len(scan.records)
    if not cfg.images:
        return DataSource(dataset, str(cfg.data_root), split, metadata_dir, False, n, scan.num_classes), problems
    if cfg.images < 1:
        raise UserError(f"--images must be >= 1, got {cfg.images}")
    if cfg.images > n:
        raise UserError(
            f"--images {cfg.images} is more than the {n} images of the {dataset} {split!r} split at "
            f"{cfg.data_root}; leave --images out to evaluate all of them"
        )
    chosen = [scan.records[i] for i in _subset_indices(n, cfg.images)]
    folder = _subset_dir(cfg)
    if write and chosen:
        from eval.io import atomic_write_many

        files = {folder / name: text for name, text in _subset_files(chosen).items()}
        stale = [p for p in folder.glob("*.txt") if p not in files]
        for p in stale:
            p.unlink()
        atomic_write_many({p: t for p, t in files.items() if not (p.is_file() and p.read_text(encoding="utf-8") == t)})
    src = DataSource(
        "wsolevaluation", str(scan.root), "test", str(folder), True, len(chosen), scan.num_classes, subset_of=n
    )
    return src, problems


# ------------------------------------------------------------------------------------- plan


def _result_state(result: Path) -> str:
    from wsol.jobs.evaluate import result_paths

    paths = result_paths(str(result))
    if paths["log"].exists():
        return "interrupted"
    return "finished" if paths["json"].exists() else "to run"


def _evaluate_command(name: str, src: DataSource, cfg: StudyConfig, study: Any, output: Path) -> str:
    argv = [
        "wsol",
        "evaluate",
        "--checkpoint",
        f"zoo:{name}",
        "--dataset",
        src.dataset,
        "--data-root",
        src.data_root,
        "--split",
        src.split,
    ]
    if src.metadata_dir:
        argv += ["--metadata-dir", src.metadata_dir]
    argv += ["--preset", study.preset, "--cam-method", study.cam_method]
    if src.label_subset:
        argv.append("--label-subset")
    argv += ["--batch-size", str(cfg.batch_size)]
    if cfg.device:
        argv += ["--device", cfg.device]
    if cfg.workers is not None:
        argv += ["--workers", str(cfg.workers)]
    argv += ["--output", str(output), "--overwrite" if cfg.overwrite else "--resume"]
    return shlex.join(argv)


def _download_text(entry: Any, mirror: str | None) -> tuple[bool, str, int | None, bool]:
    from wsol.zoo.resolve import checkpoint_path, download_path, is_complete, remote_of

    if is_complete(entry):
        return True, f"cached: {checkpoint_path(entry)}", None, True
    remote = remote_of(entry)
    size = f"{entry.size_mb:.1f} MB" if entry.size_mb else "size unknown"
    via = f" via mirror {remote.location(mirror)}" if mirror else f" from {remote.url}"
    how = " (torchvision weights API)" if entry.kind == "torchvision" else ""
    inside = f", extract {entry.member}" if entry.member else ""
    text = f"download {remote.filename} ({size}){via}{how} -> {download_path(entry)}{inside}"
    return False, text, int(entry.size_mb * 1e6) if entry.size_mb else None, bool(entry.size_mb)


def _outputs(out: Path) -> list[Path]:
    return [
        out / "comparison.md",
        out / "comparison.csv",
        out / "published.md",
        out / "boxacc_curves.png",
        out / "cam_grid.png",
        out / "study.md",
        out / "study.json",
    ]


def plan_study(cfg: StudyConfig) -> StudyPlan:
    """What :func:`run_study` would download and run; reads annotations only, writes nothing."""
    from eval.io import nearest_existing
    from wsol.zoo.catalog import get_entry, get_study
    from wsol.zoo.download import mirror_location

    study = get_study(cfg.study)
    src, problems = data_source(cfg, write=False)
    if src.num_images == 0:
        problems.append(f"the {src.dataset} {src.split!r} split at {cfg.data_root} has no images")
    if src.num_classes != study.num_classes and not src.label_subset:
        problems.append(
            f"the models have {study.num_classes} classes but the {src.dataset} {src.split!r} split at "
            f"{cfg.data_root} has {src.num_classes}: give the full class list (train/<wnid>/ folders or "
            "LOC_synset_mapping.txt), or --images N for a subset"
        )
    mirror = mirror_location(cfg.mirror)
    out = Path(cfg.out)
    blocked = nearest_existing(out)
    if blocked is not None and not blocked.is_dir():
        problems.append(f"--out {out}: {blocked} is a file, not a folder")
    steps = []
    for name in study.entries:
        entry = get_entry(name)
        result = out / name / "result.json"
        cached, text, size, known = _download_text(entry, mirror)
        steps.append(
            StudyStep(
                name,
                result,
                _result_state(result),
                cached,
                text,
                size,
                known or cached,
                _evaluate_command(name, src, cfg, study, result),
            )
        )
    return StudyPlan(study, src, steps, _outputs(out), problems, cfg.overwrite)


def format_plan(plan: StudyPlan) -> str:
    """The plan as text (what ``wsol zoo study --plan`` prints)."""
    s, src = plan.study, plan.source
    lines = [f"study {s.name}: {len(plan.steps)} models, {s.description}"]
    what = f"{src.num_images} images" + (
        f" (an evenly spread subset of {src.subset_of}, annotations written to {src.metadata_dir})"
        if src.subset_of is not None
        else ""
    )
    lines.append(f"data: {src.dataset} split {src.split!r} at {src.data_root}: {what}, {src.num_classes} classes")
    geometry = " (resize 256, centre crop 224)" if s.preset == "cutmix" else ""
    lines.append(
        f"protocol: preset {s.preset}{geometry}, CAM {s.cam_method!r}; reference of the paired tests: {s.reference}"
    )
    for i, st in enumerate(plan.steps, 1):
        lines.append(f"{i}. {st.name} [{st.state}]")
        lines.append(f"   weights: {st.download}")
        action = (
            {
                "finished": "finished; checked, not redone",
                "interrupted": "resumes from its per-image log",
                "to run": "evaluate",
            }[st.state]
            if not plan.overwrite
            else "evaluate again (--overwrite)"
        )
        lines.append(f"   {action}: {st.command}")
    todo = [st for st in plan.steps if not st.cached]
    known = sum(st.download_bytes or 0 for st in todo)
    unknown = sum(1 for st in todo if not st.size_known)
    total = f"{len(todo)} download(s)"
    if todo:
        total += f": {known / 1e6:.1f} MB of known size" + (f" + {unknown} of unknown size" if unknown else "")
    lines.append(f"to download: {total}")
    lines.append("then writes: " + ", ".join(str(p) for p in plan.outputs))
    for p in plan.problems[:10]:
        lines.append(f"problem: {p}")
    if len(plan.problems) > 10:
        lines.append(f"... and {len(plan.problems) - 10} more problem(s)")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- run


def _percent(v: Any) -> str:
    return "—" if v is None else f"{float(v):.2f}"


def _with_ci(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _diff(measured: float | None, published: float | None) -> str:
    return "—" if measured is None or published is None else f"{measured - published:+.2f}"


def published_markdown(names: list[str], results: list[dict]) -> str:
    """Published (catalog) beside measured numbers, one row per entry (percent)."""
    from wsol.zoo.catalog import get_entry

    head = (
        "| model | training | top-1 err published | top-1 err measured [95% CI] | Δ | "
        "top-1 loc published | top-1 loc measured [95% CI] | Δ | GT-known loc | MaxBoxAccV2 [95% CI] |"
    )
    rows = [head, "|" + "---|" * 10]
    for name, res in zip(names, results):
        entry = get_entry(name)
        ci = res.get("ci95") or {}
        cls = res.get("top1_cls")
        err = None if cls is None else 100.0 - float(cls)
        err_ci = tuple(sorted((100.0 - ci["top1_cls"][1], 100.0 - ci["top1_cls"][0]))) if ci.get("top1_cls") else None
        loc = res.get("top1_loc")
        loc = None if loc is None else float(loc)
        v2 = res.get("MaxBoxAccV2")
        rows.append(
            "| "
            + " | ".join(
                [
                    name,
                    entry.augmentation,
                    _percent(entry.published.top1_err),
                    _with_ci(err, err_ci),
                    _diff(err, entry.published.top1_err),
                    _percent(entry.published.top1_loc),
                    _with_ci(loc, tuple(ci["top1_loc"]) if ci.get("top1_loc") else None),
                    _diff(loc, entry.published.top1_loc),
                    _percent(res.get("gt_known_loc")),
                    _with_ci(
                        None if v2 is None else float(v2), tuple(ci["MaxBoxAccV2"]) if ci.get("MaxBoxAccV2") else None
                    ),
                ]
            )
            + " |"
        )
    notes = [
        "",
        "Published: top-1 error from each source (CutMix-PyTorch README; torchvision acc@1); top-1 loc "
        "from the CutMix paper, Table 9 (old protocol, ImageNet val, sigma 0.15). '—': not published / "
        "not measured.",
    ]
    for name in names:
        note = get_entry(name).published.note
        if note:
            notes.append(f"- {name}: {note}")
    return "\n".join(rows + notes) + "\n"


def _compare_api():
    from eval.compare import compare_results, comparison_markdown, write_comparison

    return compare_results, comparison_markdown, write_comparison


def run_study(cfg: StudyConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the study (see the module docstring); returns ``{"results": [...], "outputs": [...]}``."""
    import json

    from eval.io import atomic_write_json, atomic_write_text
    from wsol.jobs.evaluate import EvaluateConfig, run_evaluate
    from wsol.zoo.catalog import get_study
    from wsol.zoo.resolve import ensure_entry

    study = get_study(cfg.study)
    src, problems = data_source(cfg, write=True)
    if problems:
        raise UserError(
            f"the data at {cfg.data_root} has {len(problems)} problem(s); first: {problems[0]} (see `wsol data check`)"
        )
    out = Path(cfg.out)
    result_paths: list[Path] = []
    results: list[dict] = []
    for i, name in enumerate(study.entries, 1):
        log(f"[{i}/{len(study.entries)}] {name}")
        ensure_entry(name, mirror=cfg.mirror, progress=cfg.progress)
        output = out / name / "result.json"
        res = run_evaluate(
            EvaluateConfig(
                checkpoint=f"zoo:{name}",
                dataset=src.dataset,
                data_root=src.data_root,
                output=str(output),
                metadata_dir=src.metadata_dir,
                split=src.split,
                preset=study.preset,
                cam_method=study.cam_method,
                metrics=cfg.metrics,
                batch_size=cfg.batch_size,
                device=cfg.device,
                workers=cfg.workers,
                label_subset=src.label_subset,
                resume=not cfg.overwrite,
                overwrite=cfg.overwrite,
                progress=cfg.progress,
            )
        )
        if res is None:  # other ranks under torchrun
            return {"results": [], "outputs": []}
        result_paths.append(output)
        results.append(res)

    compare_results, comparison_markdown, write_comparison = _compare_api()
    names = list(study.entries)
    comp = compare_results([str(p) for p in result_paths], names=names)
    written = write_comparison(comp, out / "comparison.md", out / "comparison.csv")
    published = published_markdown(names, results)
    written.append(atomic_write_text(out / "published.md", published))

    from wsol.jobs import figure as figure_job

    written += figure_job.render_curves([str(p) for p in result_paths], out / "boxacc_curves.png", names=names)
    written += figure_job.render_cam_grid(
        figure_job.GridConfig(
            checkpoints=[f"zoo:{n}" for n in names],
            names=names,
            dataset=src.dataset,
            data_root=src.data_root,
            metadata_dir=src.metadata_dir,
            split=src.split,
            preset=study.preset,
            images=cfg.grid_images,
            results=[str(p) for p in result_paths],
            select="disagree",
            cam_methods=[study.cam_method],
            device=cfg.device,
            out=str(out / "cam_grid.png"),
            workers=cfg.workers,
        )
    )

    subset = (
        f" (an evenly spread subset of {src.num_images} of {src.subset_of} images: a quick look, not the "
        "published protocol)"
        if src.subset_of is not None
        else ""
    )
    page = [
        f"# Study {study.name}",
        "",
        study.description + ".",
        "",
        f"Data: {src.dataset} split {src.split!r} at {src.data_root}, {src.num_images} images{subset}.",
        "",
        "## Published beside measured",
        "",
        published,
        f"## Comparison (95% intervals; paired tests against {study.reference})",
        "",
        comparison_markdown(comp, 2),
        "## Figures",
        "",
        "![BoxAcc against the CAM threshold](boxacc_curves.png)",
        "",
        "![CAM grid](cam_grid.png)",
        "",
    ]
    written.append(atomic_write_text(out / "study.md", "\n".join(page)))
    summary = {
        "study": study.name,
        "entries": names,
        "reference": study.reference,
        "data": {
            "dataset": src.dataset,
            "data_root": src.data_root,
            "split": src.split,
            "metadata_dir": src.metadata_dir,
            "num_images": src.num_images,
            "subset_of": src.subset_of,
        },
        "preset": study.preset,
        "cam_method": study.cam_method,
        "metrics": cfg.metrics.to_dict(),
        "results": {n: str(p) for n, p in zip(names, result_paths)},
        "outputs": [str(p) for p in written],
    }
    written.append(atomic_write_json(out / "study.json", json.loads(json.dumps(summary, default=str))))
    return {"results": [str(p) for p in result_paths], "outputs": [str(p) for p in written]}
