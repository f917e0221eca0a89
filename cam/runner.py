"""One forward pass that yields the CAM feature map and the logits, and the model-state guard.

Two paths:

- WSOL models (``forward_features`` + ``forward_head``): features under ``no_grad``; when a
  method needs gradients, the head runs again from a detached leaf copy of the features, so
  ``d logits / d features`` is exact and nothing upstream (nor any parameter's ``.grad``) is
  touched. No hooks are registered.
- Any other classifier: a forward hook on the named layer (``layer=`` option or the model's
  ``cam_layer``) captures its output; the hook is removed on exit, also on exceptions.

:func:`model_guard` puts the model in eval mode for the computation and restores every
sub-module's ``training`` flag afterwards (also on exceptions).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from cam.errors import CAMInputError


@contextlib.contextmanager
def model_guard(model: nn.Module) -> Iterator[None]:
    """Eval mode inside; every module's ``training`` flag restored on exit."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, flag in modes:
            m.training = flag


def is_wsol_model(model: nn.Module) -> bool:
    """Has the split ``forward_features`` / ``forward_head`` of the WSOL model contract."""
    return callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None))


def autocast_ctx(device: torch.device, amp_dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


@dataclass
class FeatureRun:
    """Features ``[B, C, h, w]`` and logits ``[B, K]`` of one forward pass over ``images``."""

    model: nn.Module
    images: Tensor
    features: Tensor  # detached
    logits: Tensor  # detached
    amp_dtype: torch.dtype | None = None
    _leaf: Tensor | None = None
    _graph_logits: Tensor | None = None
    head: Callable[[Tensor], Tensor] | None = None  # features -> logits (WSOL models only)

    def gradients(self, score_fns: list[Callable[[Tensor], Tensor]]) -> Tensor:
        """``d sum_i score_fns[i](logits[i]) / d features`` (one target per image); float32
        (float64 for float64 models)."""
        if self._leaf is None or self._graph_logits is None:
            raise RuntimeError("this FeatureRun was made without gradients")
        if len(score_fns) != self._graph_logits.shape[0]:
            raise CAMInputError(f"{len(score_fns)} targets for {self._graph_logits.shape[0]} images")
        with torch.enable_grad():
            score = torch.stack([fn(out) for fn, out in zip(score_fns, self._graph_logits)]).sum()
            (grad,) = torch.autograd.grad(score, self._leaf, retain_graph=True)
        return grad.to(torch.float64 if grad.dtype == torch.float64 else torch.float32)


def run_features(
    model: nn.Module, images: Tensor, need_grad: bool, amp_dtype: torch.dtype | None = None, layer: str | None = None
) -> FeatureRun:
    """Forward ``images`` once; see the module docstring for the two paths."""
    amp = autocast_ctx(images.device, amp_dtype)
    if is_wsol_model(model) and layer is None:
        wsol_model: Any = model  # forward_features / forward_head: the WSOL model contract
        with amp:
            with torch.no_grad():
                feats = wsol_model.forward_features(images)
            if need_grad:
                leaf = feats.detach().requires_grad_(True)
                with torch.enable_grad():
                    graph_logits = wsol_model.forward_head(leaf)
                logits = graph_logits.detach()
            else:
                leaf = graph_logits = None
                with torch.no_grad():
                    logits = wsol_model.forward_head(feats)
        return FeatureRun(
            model, images, feats.detach(), logits, amp_dtype, leaf, graph_logits, head=wsol_model.forward_head
        )
    return _run_hooked(model, images, need_grad, amp, amp_dtype, layer)


def _run_hooked(
    model: nn.Module,
    images: Tensor,
    need_grad: bool,
    amp: contextlib.AbstractContextManager,
    amp_dtype: torch.dtype | None,
    layer: str | None,
) -> FeatureRun:
    name = layer or getattr(model, "cam_layer", None)
    if not name:
        raise CAMInputError(
            "the model has no forward_features/forward_head and no cam_layer: pass "
            "layer='<dotted module name>' (e.g. 'layer4')"
        )
    try:
        module = model.get_submodule(name)
    except AttributeError:
        raise CAMInputError(f"the model has no sub-module named {name!r} (layer option)") from None
    captured: dict[str, Tensor] = {}

    def hook(_mod: nn.Module, _inp: object, out: object) -> Tensor | None:
        if not isinstance(out, Tensor) or out.ndim != 4:
            raise CAMInputError(f"layer {name!r} must output a [B, C, h, w] tensor")
        if need_grad:
            leaf = out.detach().requires_grad_(True)
            captured["leaf"] = leaf
            return leaf.clone()  # later in-place ops touch the clone, not our leaf
        captured["feats"] = out.detach().clone()
        return None

    handle = module.register_forward_hook(hook)
    try:
        with amp, torch.enable_grad() if need_grad else torch.no_grad():
            out = model(images)
    finally:
        handle.remove()
    if not isinstance(out, Tensor) or out.ndim != 2:
        raise CAMInputError("the model must return logits [B, K]")
    if need_grad:
        leaf = captured["leaf"]
        return FeatureRun(model, images, leaf.detach(), out.detach(), amp_dtype, leaf, out)
    return FeatureRun(model, images, captured["feats"], out.detach(), amp_dtype)
