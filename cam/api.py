"""``compute_cams`` / ``cams_and_logits`` / ``layer_cams``: model and images in, maps out."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cam.errors import CAMInputError
from cam.postprocess import NORMALIZATIONS, as_size, check_finite, postprocess
from cam.registry import CAM_METHODS, CAMMethod
from cam.runner import FeatureRun, is_wsol_model, model_guard, run_features
from cam.targets import as_targets, check_range, top_k


def _check_call(
    model: nn.Module,
    images: Tensor,
    method: str,
    normalize: str,
    method_options: dict,
    layer: str | None,
    batch_size: int | None,
) -> CAMMethod:
    m = CAM_METHODS.get(method)
    if not isinstance(model, nn.Module):
        raise CAMInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise CAMInputError(f"images must be a float tensor [B, C, H, W], got {shape}")
    if normalize not in NORMALIZATIONS:
        raise CAMInputError(f"unknown normalize {normalize!r}; choose from: {', '.join(NORMALIZATIONS)}")
    unknown = sorted(set(method_options) - set(m.options))
    if unknown:
        raise CAMInputError(
            f"method {method!r} takes no option(s) {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(m.options) or '(none)'}"
        )
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise CAMInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    wsol = is_wsol_model(model)
    if (m.needs_head or m.needs_class_maps) and (not wsol or layer is not None):
        raise CAMInputError(
            f"method {method!r} needs a wsol model (forward_features/forward_head"
            f"{'/class_maps' if m.needs_class_maps else ''}) and its own feature map "
            "(no layer option)"
        )
    if m.uses_gradients and torch.is_inference_mode_enabled():
        raise CAMInputError(
            f"method {method!r} needs gradients: do not call it under torch.inference_mode() (torch.no_grad() is fine)"
        )
    return m


def _maps_per_target(m: CAMMethod, run: FeatureRun, targets: Tensor, options: dict, batch_size: int | None) -> Tensor:
    """Layer maps ``[b, k, h, w]``, one column per target column (class-agnostic: computed once)."""
    cols: list[Tensor] = []
    for j in range(targets.shape[1]):
        if j > 0 and not m.class_specific:
            cols.append(cols[0])
        else:
            cols.append(m.layer_maps(run, targets[:, j], options, batch_size))
    return torch.stack(cols, dim=1)


def _run(
    model: nn.Module,
    images: Tensor,
    targets: Any,
    method: str,
    size: Any,
    normalize: str | None,
    batch_size: int | None,
    amp_dtype: torch.dtype | None,
    channels_last: bool,
    layer: str | None,
    method_options: dict,
) -> tuple[Tensor, Tensor]:
    m = _check_call(model, images, method, normalize or "none", method_options, layer, batch_size)
    b = images.shape[0]
    tgt, single = as_targets(targets, b, images.device)
    out_size = as_size(size, (int(images.shape[-2]), int(images.shape[-1])))
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    chunk = 1 if m.heavy else (batch_size or max(b, 1))
    inner_bs = batch_size if m.heavy else None
    cams: list[Tensor] = []
    logits_all: list[Tensor] = []
    with model_guard(model):
        for start in range(0, b, chunk):
            run = run_features(model, images[start : start + chunk], m.uses_gradients, amp_dtype, layer)
            logits = run.logits
            if logits.ndim != 2:
                raise CAMInputError(f"the model returned logits of shape {tuple(logits.shape)}, expected [B, K]")
            t = tgt[start : start + chunk] if tgt is not None else top_k(logits, 1)
            check_range(t, logits.shape[1], start)
            with torch.no_grad():  # maps carry no graph (autograd.grad still works inside)
                maps = _maps_per_target(m, run, t, method_options, inner_bs)  # [b, k, h, w]
                if normalize is None:
                    check_finite(maps, start)
                    cams.append(maps)
                else:
                    cams.append(postprocess(maps, out_size, normalize, offset=start))
            low = logits.dtype in (torch.float16, torch.bfloat16)
            logits_all.append(logits.float() if low else logits)
    if b == 0:
        return images.new_zeros((0, *out_size), dtype=torch.float32), images.new_zeros((0, 0))
    out = torch.cat(cams)
    return (out[:, 0] if single else out), torch.cat(logits_all)


def cams_and_logits(
    model: nn.Module,
    images: Tensor,
    targets: Any = None,
    method: str = "cam",
    size: int | tuple[int, int] | None = None,
    normalize: str = "minmax",
    batch_size: int | None = None,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    layer: str | None = None,
    **method_options: Any,
) -> tuple[Tensor, Tensor]:
    """CAMs and the logits of the same forward pass.

    images: float ``[B, C, H, W]`` on the model's device. targets: class indices ``[B]`` (one
    map per image -> ``[B, H, W]``), ``[B, k]`` (e.g. the top-k -> ``[B, k, H, W]``), or None
    (the predicted top-1). method: a ``CAM_METHODS`` name. size: output ``(H, W)`` or ``S``
    (default: the input size). normalize: ``minmax`` | ``max`` | ``none``. batch_size: images
    per forward (heavy methods: perturbed copies per forward, one image at a time).
    amp_dtype: e.g. ``torch.bfloat16`` for autocast; channels_last: feed channels-last images
    (convert the model yourself: ``model.to(memory_format=torch.channels_last)``).
    layer: a dotted module name for a non-WSOL classifier (grad-cam methods only).
    Returns ``(cams float32 in [0, 1] on images.device, logits [B, K])``; the model runs in eval
    mode and every module's training flag is restored on exit, also on exceptions.
    """
    return _run(
        model, images, targets, method, size, normalize, batch_size, amp_dtype, channels_last, layer, method_options
    )


def compute_cams(
    model: nn.Module,
    images: Tensor,
    targets: Any = None,
    method: str = "cam",
    size: int | tuple[int, int] | None = None,
    normalize: str = "minmax",
    batch_size: int | None = None,
    **options: Any,
) -> Tensor:
    """``cams_and_logits(...)[0]``: float32 ``[B, H, W]`` (or ``[B, k, H, W]``) in [0, 1]."""
    return cams_and_logits(model, images, targets, method, size, normalize, batch_size, **options)[0]


def layer_cams(
    model: nn.Module,
    images: Tensor,
    targets: Any = None,
    method: str = "cam",
    batch_size: int | None = None,
    *,
    amp_dtype: torch.dtype | None = None,
    layer: str | None = None,
    **method_options: Any,
) -> tuple[Tensor, Tensor]:
    """Layer-resolution maps ``[B, (k,) h, w]`` before upsampling/normalisation, and logits.

    float32 (float64 for float64 models). Same method semantics as :func:`cams_and_logits`
    (grad-cam methods include their ReLU unless ``relu=False``); NaN/Inf still raises.
    """
    return _run(model, images, targets, method, None, None, batch_size, amp_dtype, False, layer, method_options)
