"""The library function behind ``wsol robustness``: checkpoints x (FGSM | occlusion) -> JSON + figure."""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from wsol import defaults
from wsol.errors import UserError

#: Defaults of the two options that apply to one kind of run only (the command's defaults too):
#: ``eps`` to ``attack="fgsm"``, ``steps`` to an occlusion sweep.
DEFAULT_EPS = 8 / 255
DEFAULT_STEPS = 8


@dataclass
class RobustnessConfig:
    """What ``wsol robustness`` runs: every checkpoint under ``attack="fgsm"`` (step ``eps``, in
    [0, 1] pixel units) or the ``occlusion`` sweep (``"center"`` / ``"boundary"``, ``steps`` + 1
    hole sides); exactly one of ``attack`` and ``occlusion``. ``label_subset``: accept a dataset
    with fewer classes than a checkpoint's outputs whose labels index the same classes."""

    checkpoints: list[str]
    dataset: str
    data_root: str
    out: str
    names: list[str] | None = None
    arch: str | None = None
    arch_options: dict = field(default_factory=dict)
    attack: str | None = "fgsm"
    eps: float = DEFAULT_EPS
    occlusion: str | None = None
    steps: int = DEFAULT_STEPS
    metadata_dir: str | None = None
    split: str = defaults.SPLIT
    preset: str = defaults.PRESET
    label_subset: bool = False
    batch_size: int = defaults.BATCH_SIZE
    device: str | None = None
    workers: int | None = None
    overwrite: bool = False


def _check_options(cfg: RobustnessConfig) -> None:
    """Refuse, naming the flag, a configuration that cannot run or an option that would be ignored
    (``eps`` of an occlusion sweep, ``steps`` of an attack, when not left at their defaults)."""
    if (cfg.attack is None) == (cfg.occlusion is None):
        raise UserError("choose exactly one of --attack and --occlusion")
    if cfg.attack is not None:
        if cfg.attack != "fgsm":
            raise UserError(f"unknown --attack {cfg.attack!r}; choose from: fgsm")
        if not (math.isfinite(cfg.eps) and 0.0 <= cfg.eps <= 1.0):
            raise UserError(f"--eps must be in [0, 1] pixel units (e.g. 8/255), got {cfg.eps}")
        if cfg.steps != DEFAULT_STEPS:
            raise UserError(
                f"--steps {cfg.steps} has no effect with --attack {cfg.attack}: it sets the hole sides "
                "of --occlusion; drop it"
            )
    else:
        if cfg.occlusion not in ("center", "boundary"):
            raise UserError(f"unknown --occlusion {cfg.occlusion!r}; choose from: center, boundary")
        if isinstance(cfg.steps, bool) or not isinstance(cfg.steps, int) or cfg.steps < 1:
            raise UserError(f"--steps must be a whole number of at least 1, got {cfg.steps!r}")
        if cfg.eps != DEFAULT_EPS:
            raise UserError(
                f"--eps {cfg.eps:.6g} has no effect with --occlusion {cfg.occlusion}: it is the step of "
                "--attack fgsm; drop it"
            )


def _names(cfg: RobustnessConfig) -> list[str]:
    """Display names: ``cfg.names``, else each file's stem (its folder's name for last/best.pt);
    one per checkpoint and all different (the figure and the result key rows by name)."""
    names = cfg.names or [
        Path(c).stem if Path(c).stem not in ("last", "best") else Path(c).parent.name for c in cfg.checkpoints
    ]
    if len(names) != len(cfg.checkpoints):
        raise UserError(f"--names gives {len(names)} names for {len(cfg.checkpoints)} checkpoints")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(
            f"two checkpoints would have the same name {repeated[0]!r}: give one distinct name per "
            "checkpoint with --names"
        )
    return names


def run_robustness(cfg: RobustnessConfig) -> dict:
    """Evaluate every checkpoint of ``cfg``; write ``robustness.json`` (+ ``config.json`` and, for
    occlusion, ``occlusion_<mode>.png/.pdf``) in ``cfg.out``; return the result dict.

    Everything that can be refused is refused before the first pass: the options, the output
    folder (created and test-written), the dataset, and every checkpoint's class count against
    the dataset (read on the meta device: names and shapes, no weights)."""
    from eval.io import atomic_write_json, ensure_output_dir, refuse_overwrite
    from wsol.checkpoints import load_checkpoint
    from wsol.data import build_dataset
    from wsol.model_info import class_count_problem, describe_model, model_line
    from wsol.robustness import FGSM_NOTE, OCCLUSION_NOTE, default_sides, fgsm_accuracy, make_loader, occlusion_accuracy
    from wsol.runtime import resolve_device, sweep_workers

    _check_options(cfg)
    names = _names(cfg)
    out = Path(cfg.out)
    refuse_overwrite(out / "robustness.json", cfg.overwrite)
    ensure_output_dir(out / "robustness.json")  # a file in the way fails now, not after the passes
    device = resolve_device(cfg.device)
    dataset = build_dataset(cfg.dataset, cfg.data_root, cfg.split, metadata_dir=cfg.metadata_dir, preset=cfg.preset)
    where = f"the {cfg.dataset} {cfg.split!r} split at {cfg.data_root}"
    if len(dataset) == 0:
        raise UserError(f"{where} has no images")
    for path in cfg.checkpoints:
        shapes = load_checkpoint(path, arch=cfg.arch, map_location="meta", **cfg.arch_options)
        problem = class_count_problem(dataset, shapes, checkpoint=str(path), where=where, label_subset=cfg.label_subset)
        if problem:
            raise UserError(problem)
    if cfg.workers is not None:  # given: used as is
        workers = cfg.workers
    else:  # on a CPU the main process's model needs the cores; on a GPU decode in every core
        workers = sweep_workers(None) if device.type == "cuda" else 0
    loader = make_loader(dataset, cfg.batch_size, num_workers=workers)
    side = int(dataset[0]["image"].shape[-1])
    rows = []
    for name, path in zip(names, cfg.checkpoints):
        model = load_checkpoint(path, arch=cfg.arch, map_location=device, **cfg.arch_options).to(device).eval()
        minfo = describe_model(model, (side, side))
        print(model_line(name, minfo), flush=True)
        if cfg.attack == "fgsm":
            row = fgsm_accuracy(model, loader, cfg.eps, device=device, progress=sys.stderr.isatty())
        else:
            row = occlusion_accuracy(
                model,
                loader,
                default_sides(side, cfg.steps),
                cfg.occlusion,
                device=device,
                progress=sys.stderr.isatty(),
            )
        rows.append({"name": name, "checkpoint": str(path), "model": minfo, **row})
    result = {
        "kind": "fgsm" if cfg.attack else f"occlusion_{cfg.occlusion}",
        "note": FGSM_NOTE if cfg.attack else OCCLUSION_NOTE,
        "dataset": cfg.dataset,
        "split": cfg.split,
        "preset": cfg.preset,
        "device": str(device),
        "models": rows,
    }
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    if cfg.occlusion:
        from eval.figures import plot_occlusion

        plot_occlusion(
            {r["name"]: (r["sides"], r["top1"]) for r in rows}, cfg.occlusion, out / f"occlusion_{cfg.occlusion}.png"
        )
    atomic_write_json(out / "robustness.json", result)
    return result
