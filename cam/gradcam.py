"""Adapters to the grad-cam package (``pytorch_grad_cam``, pinned ``>=1.5.5,<1.6``).

We use grad-cam for the part that defines each method (its channel weights or its
layer-resolution map) and keep everything else in torch on the images' device:

1. one forward pass gives the feature map ``A`` and the logits (:mod:`cam.runner`); gradient
   methods get ``G = d score / d A`` with ``torch.autograd.grad`` where
   ``score = sum_i ClassifierOutputTarget(t_i)(logits[i])`` -- one target for every image;
2. grad-cam computes, on CPU/numpy, either the channel weights (``get_cam_weights``: GradCAM,
   GradCAM++, XGradCAM, ScoreCAM, AblationCAM), combined with ``A`` on the device as
   ``sum_c w_c A_c``, or the whole layer map (``get_cam_image``: HiResCAM, LayerCAM,
   GradCAMElementWise, EigenCAM, EigenGradCAM), brought back to the device;
3. grad-cam's ReLU is kept (option ``relu``, default True); its per-image min-max and its
   bilinear CPU resize are *not* used: our bicubic upsampling + normalisation follow.

grad-cam objects are built with no target layers, so they register no hooks; the objects'
hook lists are released in ``finally``. (grad-cam's own ``__exit__`` swallows IndexError, and
its ``forward`` zeroes and accumulates parameter ``.grad``: neither is used.)

EigenCAM / EigenGradCAM: the first principal component's sign is arbitrary, so a map can light
up the background. We flip each image's map so that it correlates positively with the channel
mean of the factorised matrix (``A`` for EigenCAM, ``G * A`` for EigenGradCAM).

ScoreCAM masks the *input* with each channel (grad-cam's bilinear upsampling and per-channel
min-max of the masks are part of the method) and runs the whole model on the masked copies,
``batch_size`` copies per forward (default 32), one image at a time. AblationCAM ablates
channels of ``A`` and runs only the classifier head on the ablated copies (a WSOL model's
``forward_head``; grad-cam would re-run the whole network), ``batch_size`` channels per forward,
with a vectorised ablation layer (see :func:`_ablation_layer`).
Both print no progress bars unless ``progress=True``.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cam.errors import CAMInputError
from cam.registry import CAM_METHODS, CAMMethod
from cam.runner import FeatureRun, autocast_ctx
from cam.vanilla import working_dtype

HEAVY_DEFAULT_BATCH = 32


def _np(t: Tensor) -> np.ndarray:
    """float64 stays float64 (exact tests); everything else goes to grad-cam as float32."""
    return t.detach().to(working_dtype(t)).cpu().numpy()


def _targets(targets: Tensor) -> list:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return [ClassifierOutputTarget(int(t)) for t in targets.tolist()]


@contextlib.contextmanager
def _gradcam_object(cls: type, model: nn.Module, **kwargs: Any):
    """A grad-cam CAM object with no target layers (no hooks); its hook list released on exit."""
    obj = cls(model, [], **kwargs)
    try:
        yield obj
    finally:
        obj.activations_and_grads.release()


def _quiet(progress: bool) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO())


class _HeadModel(nn.Module):
    """features -> logits through a WSOL model's head; ``features`` is the layer grad-cam ablates."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.features = nn.Identity()  # registered first: grad-cam's layer search finds it first
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        head: Any = self.net  # a WSOL model (forward_head)
        return head.forward_head(self.features(x))


def _ablation_layer():
    """grad-cam's AblationLayer with its per-row loop vectorised.

    grad-cam recomputes ``min(output)`` over the whole batch for every row (quadratic in the
    batch: ~60 s per ResNet-50 image on a CPU). Here the minimum is taken once per batch. Same
    ablated values when that minimum is 0 (post-ReLU features: every model in this toolkit):
    the channel is zeroed. Otherwise every ablated channel gets ``min - 1e7`` (grad-cam's loop
    would drift by a further 1e7 per row).
    """
    from pytorch_grad_cam.ablation_layer import AblationLayer

    class _BatchAblationLayer(AblationLayer):
        def __call__(self, x: Tensor) -> Tensor:
            out = self.activations
            n = out.shape[0]
            lo = out.min()
            value = torch.zeros((), dtype=out.dtype, device=out.device) if bool(lo == 0) else lo - 1e7
            rows = torch.arange(n, device=out.device)
            cols = torch.as_tensor(np.asarray(self.indices[:n], dtype=np.int64), device=out.device)
            out[rows, cols] = value
            return out

    return _BatchAblationLayer()


def _combine(weights: np.ndarray, feats: Tensor) -> Tensor:
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64), device=feats.device)
    dtype = working_dtype(feats)
    return torch.einsum("bc,bchw->bhw", w.to(dtype), feats.to(dtype))


def _fix_sign(maps: Tensor, reference: Tensor) -> Tensor:
    m = maps - maps.mean(dim=(-2, -1), keepdim=True)
    r = reference - reference.mean(dim=(-2, -1), keepdim=True)
    agree = (m * r).sum(dim=(-2, -1))
    sign = torch.where(agree < 0, -torch.ones_like(agree), torch.ones_like(agree))
    return maps * sign[:, None, None]


def _finish(maps: Tensor, options: dict, dtype: torch.dtype) -> Tensor:
    maps = maps.to(dtype)
    return maps.clamp(min=0) if options.get("relu", True) else maps


def _make(
    name: str,
    cls_name: str,
    kind: str,
    description: str,
    *,
    uses_gradients: bool,
    heavy: bool = False,
    needs_head: bool = False,
    class_specific: bool = True,
) -> CAMMethod:
    def layer_maps(run: FeatureRun, targets: Tensor, options: dict, batch_size: int | None) -> Tensor:
        import pytorch_grad_cam

        cls = getattr(pytorch_grad_cam, cls_name)
        feats = run.features
        dtype = working_dtype(feats)
        objs = _targets(targets)
        if len(objs) != feats.shape[0]:
            raise CAMInputError(f"{len(objs)} targets for {feats.shape[0]} images")
        a_np = _np(feats)
        grads = run.gradients(objs) if uses_gradients else None
        g_np = _np(grads) if grads is not None else None
        images = run.images
        if kind == "weights":
            with _gradcam_object(cls, run.model) as obj:
                w = obj.get_cam_weights(images, None, objs, a_np, g_np)
            return _finish(_combine(w, feats), options, dtype)
        if kind in ("image", "eigen"):
            with _gradcam_object(cls, run.model) as obj:
                img = obj.get_cam_image(images, None, objs, a_np, g_np, False)
            maps = torch.as_tensor(np.asarray(img), device=feats.device).to(dtype)
            if kind == "eigen":
                ref = feats.to(dtype) if grads is None else (grads.to(dtype) * feats.to(dtype))
                maps = _fix_sign(maps, ref.mean(dim=1))
            return _finish(maps, options, dtype)
        bs = int(batch_size or HEAVY_DEFAULT_BATCH)
        amp = autocast_ctx(images.device, run.amp_dtype)
        if kind == "score":
            with _gradcam_object(cls, run.model) as obj, _quiet(options.get("progress", False)), amp:
                obj.batch_size = bs
                w = obj.get_cam_weights(images, None, objs, a_np, None)
            return _finish(_combine(w, feats), options, dtype)
        if kind == "ablation":
            if run.head is None:
                raise CAMInputError("ablationcam needs a model with forward_features/forward_head")
            head = _HeadModel(run.model)
            ratio = float(options.get("ratio_channels_to_ablate", 1.0))
            with (
                _gradcam_object(
                    cls, head, ablation_layer=_ablation_layer(), batch_size=bs, ratio_channels_to_ablate=ratio
                ) as obj,
                _quiet(options.get("progress", False)),
                amp,
            ):
                w = obj.get_cam_weights(feats, head.features, objs, a_np, None)
            return _finish(_combine(w, feats), options, dtype)
        raise AssertionError(kind)

    opts = ("relu",) + (("progress",) if heavy else ()) + (("ratio_channels_to_ablate",) if kind == "ablation" else ())
    how = {
        "weights": f"grad-cam {cls_name}.get_cam_weights, combined with A on the device",
        "image": f"grad-cam {cls_name}.get_cam_image (numpy), moved to the device",
        "eigen": f"grad-cam {cls_name}.get_cam_image (numpy), sign fixed to correlate with the channel mean",
        "score": f"grad-cam {cls_name}.get_cam_weights (full forwards of inputs masked by "
        "bilinear-upsampled, per-channel min-maxed channels, as the method defines)",
        "ablation": f"grad-cam {cls_name}.get_cam_weights on the head only, vectorised "
        "ablation layer (zeroing, as grad-cam, for post-ReLU features)",
    }[kind]
    return CAMMethod(
        name=name,
        layer_maps=layer_maps,
        description=description,
        convention=f"{how}; ReLU as grad-cam (relu=True); no grad-cam min-max/resize: bicubic + normalize on device",
        uses_gradients=uses_gradients,
        heavy=heavy,
        needs_head=needs_head,
        class_specific=class_specific,
        options=opts,
    )


_TABLE: list[tuple[str, str, str, str, dict[str, Any]]] = [
    (
        "gradcam",
        "GradCAM",
        "weights",
        "Grad-CAM: spatially averaged gradients weight the channels",
        {"uses_gradients": True},
    ),
    ("gradcam++", "GradCAMPlusPlus", "weights", "Grad-CAM++: higher-order gradient weights", {"uses_gradients": True}),
    ("xgradcam", "XGradCAM", "weights", "XGrad-CAM: activation-normalised gradient weights", {"uses_gradients": True}),
    ("hirescam", "HiResCAM", "image", "HiResCAM: element-wise gradient x activation, summed", {"uses_gradients": True}),
    ("layercam", "LayerCAM", "image", "LayerCAM: ReLU(gradient) x activation, summed", {"uses_gradients": True}),
    (
        "gradcamelementwise",
        "GradCAMElementWise",
        "image",
        "Grad-CAM element-wise: ReLU(gradient x activation), summed",
        {"uses_gradients": True},
    ),
    (
        "eigencam",
        "EigenCAM",
        "eigen",
        "EigenCAM: first principal component of the activations (class-agnostic)",
        {"uses_gradients": False, "class_specific": False},
    ),
    (
        "eigengradcam",
        "EigenGradCAM",
        "eigen",
        "EigenGradCAM: first principal component of gradient x activation",
        {"uses_gradients": True},
    ),
    (
        "scorecam",
        "ScoreCAM",
        "score",
        "Score-CAM: softmax of the target score of channel-masked inputs",
        {"uses_gradients": False, "heavy": True},
    ),
    (
        "ablationcam",
        "AblationCAM",
        "ablation",
        "Ablation-CAM: relative score drop when a channel is ablated",
        {"uses_gradients": False, "heavy": True, "needs_head": True},
    ),
]

for _name, _cls, _kind, _desc, _kw in _TABLE:
    CAM_METHODS.add(_make(_name, _cls, _kind, _desc, **_kw))

GRADCAM_METHODS: tuple[str, ...] = tuple(row[0] for row in _TABLE)
