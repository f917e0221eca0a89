"""The training loop: ``train(config, out_dir, resume=False) -> Path`` (of ``last.pt``).

Per epoch: lr from the step schedule, the seeded epoch plan (:mod:`wsol.train.data`), batch
augmentation with a generator seeded by ``(seed, epoch, rank)``, soft-target cross entropy, SGD.
Then (main process) ``last.pt`` is written atomically, ``best.pt`` when validation MaxBoxAccV2
improves, and one line is appended to ``log.jsonl``. Everything an epoch draws depends on
``(seed, epoch, rank)`` and the saved model/optimizer state, so ``resume`` from ``last.pt`` gives
the same weights as an uninterrupted run (bit-exact on CPU).

Distributed (``torchrun``): DDP averages the gradients of the processes' equal shares of each
global batch; batch augmentation mixes within a process's share (partners come from the same
process, so mixed batches differ from a single-process run); BatchNorm statistics are per process
unless ``sync_bn`` (CUDA).

Out dir: ``config.yaml`` / ``config.json`` (resolved config), ``last.pt``, ``best.pt``
(with validation), ``log.jsonl``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wsol import runtime as D
from wsol.errors import Interrupted, UserError
from wsol.train.config import TrainConfig, config_to_dict, validate
from wsol.train.data import LoaderTrainSet, MemoryTrainSet, check_batches, derive_seed, epoch_batches
from wsol.train.optim import build_sgd, lr_factor, set_epoch_lr, soft_cross_entropy

#: config keys that may change between a run and its resume (they do not change the result)
RESUME_MAY_CHANGE = (
    "recipe",
    "epochs",
    "data_root",
    "metadata_dir",
    "device",
    "threads",
    "progress",
    "workers",
    "val_every",
    "val_batch_size",
    "compile",
    "amp",
    "channels_last",
    "sync_bn",
)


class TrainModule(nn.Module):
    """The model as trained: ``forward(x, plan=None)``; with a feature-level CutMix plan the
    model's stages run one by one and ``plan.mix`` is applied before stage ``plan.layer``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, plan: Any = None) -> Tensor:
        if plan is None:
            return self.model(x)
        stages = self.model.stages()
        if not 0 <= plan.layer < len(stages):
            raise UserError(f"feature-level CutMix layer {plan.layer} is outside the model's {len(stages)} stages")
        for i, stage in enumerate(stages):
            if i == plan.layer:
                x = plan.mix(x)
            x = stage(x)
        return self.model.forward_head(x)


def _build_train_set(cfg: TrainConfig, device: torch.device):
    from wsol.data import build_dataset

    ds = build_dataset(
        cfg.dataset, cfg.data_root, cfg.train_split, metadata_dir=cfg.metadata_dir, train=True, size=cfg.image_size
    )
    if cfg.cache_images:
        return MemoryTrainSet(ds)
    return LoaderTrainSet(ds, workers=cfg.workers, pin_memory=device.type == "cuda")


def _build_val_set(cfg: TrainConfig):
    if not cfg.val_every:
        return None
    from wsol.data import build_dataset

    return build_dataset(
        cfg.dataset,
        cfg.data_root,
        cfg.val_split,
        metadata_dir=cfg.metadata_dir,
        preset=cfg.val_preset,
        train=False,
        size=cfg.image_size,
    )


def run_validation(model: nn.Module, dataset, cfg: TrainConfig, device: torch.device) -> dict:
    """MaxBoxAccV2, top-1 loc, ... of ``model`` on the held-out ``dataset`` (eval mode)."""
    from wsol.evaluate import evaluate_model

    was_training = model.training
    model.eval()
    try:
        return evaluate_model(
            model,
            dataset,
            device=device,
            batch_size=cfg.val_batch_size,
            cam_method=cfg.val_cam_method,
            workers=0,
            progress=cfg.progress and sys.stderr.isatty(),
        )
    finally:
        model.train(was_training)


def _save_config(cfg: TrainConfig, out: Path) -> None:
    import yaml

    from wsol.io import atomic_write_json, atomic_write_text

    data = config_to_dict(cfg)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(data, sort_keys=False))
    atomic_write_json(out / "config.json", data)


def _check_resume_config(saved: dict, cfg: TrainConfig, path: Path) -> None:
    now = config_to_dict(cfg)
    diff = [k for k in now if k not in RESUME_MAY_CHANGE and saved.get(k) != now[k]]
    if diff:
        details = "; ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)
        raise UserError(f"cannot resume {path}: the config differs in {details} (use a new --out for a different run)")


def _read_log(path: Path, upto_epoch: int) -> list[str]:
    """The lines of the epoch log ``path`` up to ``upto_epoch`` (UserError naming a broken line)."""
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:  # a folder, unreadable
        raise UserError(f"{path}: cannot read the epoch log: {exc.strerror or exc}") from None
    kept = []
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
            epoch = json.loads(line).get("epoch", 0)
            if not isinstance(epoch, int) or isinstance(epoch, bool):
                raise ValueError(epoch)
        except (ValueError, AttributeError):
            raise UserError(
                f"{path}:{lineno}: not a JSON object of the epoch log ({raw[:60].decode('utf-8', 'replace')!r}); "
                "fix or delete the line (last.pt alone is enough to resume)"
            ) from None
        if epoch <= upto_epoch:
            kept.append(line)
    return kept


def _check_fresh_out(out: Path) -> None:
    """A fresh run (no ``last.pt``) writes into ``out`` only over what a previous start of it left
    (``config.yaml``/``config.json`` of a run stopped in its first epoch): a user's own
    ``config.yaml``, ``config.json`` or ``log.jsonl`` there is refused, not replaced."""
    from wsol.train.config import FIELDS

    if not out.is_dir():
        return
    hint = "choose another --out (or empty it)"
    log = out / "log.jsonl"
    if log.exists() and (not log.is_file() or log.stat().st_size):  # written only after last.pt
        raise UserError(f"{log} exists but {out / 'last.pt'} does not: not a log of `wsol train`; {hint}")
    names = ("config.yaml", "config.json")
    if not any((out / n).exists() for n in names):
        return
    try:
        saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
        ours = isinstance(saved, dict) and set(saved) == set(FIELDS) and (out / "config.yaml").is_file()
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise UserError(f"{out} holds a config.yaml/config.json that `wsol train` did not write; {hint}")


def train(config: TrainConfig, out_dir: str | Path, resume: bool = False) -> Path:
    """Train as ``config`` says, writing into ``out_dir``; return the path of ``last.pt``.

    ``resume``: continue from ``out_dir/last.pt`` if it exists (else start fresh). Without it an
    existing ``last.pt`` is an error. Under ``torchrun`` (``WORLD_SIZE > 1``) every process calls
    this; rank 0 writes the files.
    """
    cfg = validate(config)
    info = D.setup(cfg.device)
    threads = torch.get_num_threads()
    try:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        return _train(cfg, Path(out_dir), resume, info)
    except KeyboardInterrupt:
        raise Interrupted(_kept_after_interrupt(Path(out_dir), cfg.epochs)) from None
    finally:
        torch.set_num_threads(threads)  # a library call leaves the caller's setting alone
        D.cleanup(info)


def _kept_after_interrupt(out: Path, epochs: int) -> str:
    """What a Ctrl-C leaves in ``out`` and how to go on (``last.pt`` is written whole after each
    epoch, so it holds the last finished one)."""
    if not (out / "last.pt").is_file():
        return f"no epoch had finished, so {out} holds nothing to resume; rerun the same command to start again"
    epoch = "the last finished epoch"
    try:
        rows = (out / "log.jsonl").read_text(encoding="utf-8").splitlines()
        epoch = f"epoch {int(json.loads(rows[-1])['epoch'])} of {epochs}"
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    return (
        f"{out / 'last.pt'} holds {epoch}; rerun the same command with --resume to continue "
        "(same final weights as an uninterrupted run)"
    )


def _train(cfg: TrainConfig, out: Path, resume: bool, info: D.DistInfo) -> Path:
    from wsol.augment import build_augmentation
    from wsol.checkpoints import save_checkpoint
    from wsol.models import create_model

    device = info.device
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.jsonl"
    if last_path.exists() and not resume:
        raise UserError(f"{last_path} exists; pass --resume to continue it or choose another --out")
    if info.is_main:  # a file in the way or a read-only folder fails now, not after the data is read
        from eval.io import ensure_output_dir

        ensure_output_dir(out / "config.json")
        if not last_path.exists():
            _check_fresh_out(out)

    train_set = _build_train_set(cfg, device)
    check_batches(len(train_set), cfg.batch_size, info.world_size)  # before anything is written
    val_set = _build_val_set(cfg) if info.is_main else None
    num_classes = train_set.num_classes

    torch.manual_seed(derive_seed(cfg.seed, "init"))
    try:
        model = create_model(cfg.model, num_classes, **cfg.model_options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"model_options {cfg.model_options} of {cfg.model}: {exc}") from None
    if cfg.init_checkpoint and not (resume and last_path.exists()):
        from wsol.checkpoints import init_from_checkpoint

        if not str(cfg.init_checkpoint).startswith("zoo:") and Path(cfg.init_checkpoint).is_dir():
            raise UserError(f"init_checkpoint {cfg.init_checkpoint} is a folder, not a checkpoint file")
        kept = init_from_checkpoint(model, cfg.init_checkpoint)
        if info.is_main and kept:
            print(f"initialized from {cfg.init_checkpoint}; kept new: {', '.join(kept)}", file=sys.stderr)
    optimizer = build_sgd(
        model,
        lr=cfg.lr,
        high_patterns=cfg.lr_high_params,
        high_mult=cfg.lr_high_mult,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )
    start_epoch, best, best_epoch = 0, float("-inf"), None
    if resume and last_path.exists():
        state = _load_resume_state(last_path)
        _check_resume_config(state["config"], cfg, last_path)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"])
        if start_epoch > cfg.epochs:
            raise UserError(
                f"cannot resume {last_path}: it holds epoch {start_epoch}, more than epochs={cfg.epochs}; "
                "give epochs >= the epochs done (or a new --out)"
            )
        best = float(state.get("best_metric") if state.get("best_metric") is not None else "-inf")
        best_epoch = state.get("best_epoch")
        if info.is_main:
            print(f"resuming {last_path} after epoch {start_epoch} of {cfg.epochs}", file=sys.stderr)

    cuda = device.type == "cuda"
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if info.distributed and cfg.sync_bn:
        if not cuda:
            raise UserError("sync_bn needs CUDA (SyncBatchNorm does not run on CPU)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    _move_optimizer_state(optimizer, device)
    module: nn.Module = TrainModule(model)
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(module, device_ids=[device.index] if cuda else None)
    if cfg.compile:
        module = torch.compile(module)

    aug = build_augmentation(cfg.aug, num_classes, **cfg.aug_options.get(cfg.aug, {}))
    if info.is_main:
        log_lines = _read_log(log_path, start_epoch)  # a broken log fails before the config is rewritten
        out.mkdir(parents=True, exist_ok=True)
        _save_config(cfg, out)
        print(
            f"training {cfg.model} on {cfg.dataset} ({len(train_set)} images, {num_classes} "
            f"classes) with aug {cfg.aug}, recipe {cfg.recipe or '(none)'}, {info.world_size} "
            f"process(es) on {device}, epochs {start_epoch + 1}..{cfg.epochs} -> {out}",
            file=sys.stderr,
            flush=True,
        )
    n_steps = len(train_set) // cfg.batch_size
    total_steps = n_steps * cfg.epochs

    for epoch in range(start_epoch, cfg.epochs):
        lrs = set_epoch_lr(optimizer, lr_factor(epoch, cfg.lr_milestones, cfg.lr_gamma))
        batches = epoch_batches(len(train_set), cfg.batch_size, cfg.seed, epoch, info.world_size)
        torch.manual_seed(derive_seed(cfg.seed, "torch", epoch, info.rank))
        data_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "data", epoch))
        aug_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "aug", epoch, info.rank))
        stats = _run_epoch(
            module,
            model,
            optimizer,
            aug,
            train_set,
            batches,
            data_gen,
            aug_gen,
            cfg,
            info,
            progress_at=(epoch * n_steps, total_steps),
            show=cfg.progress and info.is_main and sys.stderr.isatty(),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            epoch_no=epoch + 1,
        )
        loss_sum, correct, seen, seconds = D.all_reduce_sum(
            [stats["loss_sum"], stats["correct"], stats["seen"], stats["seconds"]], info
        )
        seconds /= info.world_size
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": loss_sum / seen,
            "acc": correct / seen,
            "lr": lrs,
            "images_per_s": seen / seconds,
            "seconds": seconds,
            "images": int(seen),
        }
        done = epoch + 1
        validate_now = bool(cfg.val_every) and (done % cfg.val_every == 0 or done == cfg.epochs)
        improved = False
        if info.is_main:
            if validate_now:
                result = run_validation(model, val_set, cfg, device)
                row["val"] = {
                    k: result[k] for k in ("MaxBoxAccV2", "top1_loc", "top1_cls", "gt_known_loc") if k in result
                }
                metric = float(result["MaxBoxAccV2"])
                improved = metric > best
                if improved:
                    best, best_epoch = metric, done
            extra = dict(
                epoch=done,
                recipe=cfg.recipe,
                aug=cfg.aug,
                config=config_to_dict(cfg),
                optimizer=optimizer.state_dict(),
                best_metric=best if best_epoch is not None else None,
                best_epoch=best_epoch,
                seed=cfg.seed,
                world_size=info.world_size,
                metrics=row,
            )
            to_save = _contiguous_copy(model) if cfg.channels_last else model
            save_checkpoint(last_path, to_save, **extra)
            if improved:
                save_checkpoint(best_path, to_save, **extra)
            log_lines.append(json.dumps(row))
            from wsol.io import atomic_write_text

            atomic_write_text(log_path, "\n".join(log_lines) + "\n")
            if not (cfg.progress and sys.stderr.isatty()):
                print(_summary(row), file=sys.stderr, flush=True)
        D.barrier(info)
    return last_path


def _summary(row: dict) -> str:
    text = (
        f"epoch {row['epoch']}: loss {row['loss']:.4f} acc {100 * row['acc']:.1f}% "
        f"lr {row['lr'][0]:.3g} {row['images_per_s']:.0f} img/s"
    )
    if "val" in row:
        text += " | val " + " ".join(f"{k} {v:.2f}" for k, v in row["val"].items())
    return text


def _run_epoch(
    module,
    model,
    optimizer,
    aug,
    train_set,
    batches,
    data_gen,
    aug_gen,
    cfg: TrainConfig,
    info: D.DistInfo,
    progress_at: tuple[int, int],
    show: bool,
    desc: str,
    epoch_no: int = 0,
) -> dict:
    from tqdm import tqdm

    device = info.device
    cuda = device.type == "cuda"
    amp = cfg.amp and cuda
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    step0, total = progress_at
    t0 = time.perf_counter()
    bar = tqdm(total=len(batches), desc=desc, disable=not show, leave=False, dynamic_ncols=True)
    for step, (images, labels) in enumerate(train_set.epoch(batches, data_gen, info.rank, info.world_size)):
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if hasattr(aug, "progress"):
            aug.progress = min(1.0, (step0 + step) / max(1, total))
        plan = None
        if aug.feature_level:
            plan = aug.plan(images, labels, generator=aug_gen)
        else:
            images, soft = aug(images, labels, generator=aug_gen)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            logits = module(images, plan) if plan is not None else module(images)
        if plan is not None:
            soft = plan.targets()
        loss = soft_cross_entropy(logits, soft.to(logits.device), cfg.label_smoothing)
        if not torch.isfinite(loss.detach()).all():  # before the step: last.pt keeps the last good epoch
            bar.close()
            raise UserError(
                f"loss is not finite ({float(loss.detach())}) at epoch {epoch_no} step {step + 1}; nothing saved "
                "for this epoch (lower lr, check the data and aug_options)"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n = labels.shape[0]
        loss_sum += float(loss.detach()) * n
        correct += int((logits.detach().argmax(1) == labels).sum())
        seen += n
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}")
    bar.close()
    return {"loss_sum": loss_sum, "correct": correct, "seen": seen, "seconds": time.perf_counter() - t0}


def _contiguous_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with contiguous (NCHW) weights, so checkpoints load the usual way."""
    import copy

    return copy.deepcopy(model).to(memory_format=torch.contiguous_format)


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, Tensor):
                state[k] = v.to(device)


def _load_resume_state(path: Path) -> dict:
    """The dict stored in ``last.pt`` (model weights, optimizer, epoch, config...)."""
    from wsol.checkpoints import read_checkpoint

    state = read_checkpoint(path, map_location="cpu")
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a training checkpoint of `wsol train`")
    missing = [k for k in ("state_dict", "optimizer", "epoch", "config") if k not in state]
    if missing:
        raise UserError(f"{path} is not a training checkpoint of `wsol train` (missing {missing})")
    return state
