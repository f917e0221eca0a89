"""The library function behind ``wsol robustness``: checkpoints x (FGSM | occlusion) -> JSON + figure."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from wsol import defaults
from wsol.errors import UserError


@dataclass
class RobustnessConfig:
    checkpoints: list[str]
    dataset: str
    data_root: str
    out: str
    names: list[str] | None = None
    arch: str | None = None
    arch_options: dict = field(default_factory=dict)
    attack: str | None = "fgsm"
    eps: float = 8 / 255
    occlusion: str | None = None
    steps: int = 8
    metadata_dir: str | None = None
    split: str = defaults.SPLIT
    preset: str = defaults.PRESET
    batch_size: int = defaults.BATCH_SIZE
    device: str | None = None
    workers: int | None = None
    overwrite: bool = False


def run_robustness(cfg: RobustnessConfig) -> dict:
    """Evaluate every checkpoint of ``cfg``; write ``robustness.json`` (+ ``config.json`` and, for
    occlusion, ``occlusion_<mode>.png/.pdf``) in ``cfg.out``; return the result dict."""
    from eval.io import atomic_write_json, refuse_overwrite
    from wsol.checkpoints import load_checkpoint
    from wsol.data import build_dataset
    from wsol.model_info import describe_model, model_line
    from wsol.robustness import FGSM_NOTE, OCCLUSION_NOTE, default_sides, fgsm_accuracy, make_loader, occlusion_accuracy
    from wsol.runtime import resolve_device, sweep_workers

    if (cfg.attack is None) == (cfg.occlusion is None):
        raise UserError("choose exactly one of --attack and --occlusion")
    names = cfg.names or [
        Path(c).stem if Path(c).stem not in ("last", "best") else Path(c).parent.name for c in cfg.checkpoints
    ]
    if len(names) != len(cfg.checkpoints):
        raise UserError(f"--names gives {len(names)} names for {len(cfg.checkpoints)} checkpoints")
    out = Path(cfg.out)
    refuse_overwrite(out / "robustness.json", cfg.overwrite)
    device = resolve_device(cfg.device)
    dataset = build_dataset(cfg.dataset, cfg.data_root, cfg.split, metadata_dir=cfg.metadata_dir, preset=cfg.preset)
    workers = sweep_workers(cfg.workers) if device.type == "cuda" else 0
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
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", dataclasses.asdict(cfg))
    if cfg.occlusion:
        from eval.figures import plot_occlusion

        plot_occlusion(
            {r["name"]: (r["sides"], r["top1"]) for r in rows}, cfg.occlusion, out / f"occlusion_{cfg.occlusion}.png"
        )
    atomic_write_json(out / "robustness.json", result)
    return result
