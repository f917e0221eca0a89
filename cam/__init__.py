"""Class activation maps on any device: vanilla CAM and the grad-cam package's methods.

Usable alone (model in, CAMs out): never imports ``wsol`` or ``eval``.

- :func:`compute_cams` / :func:`cams_and_logits`: ``[B, H, W]`` float32 maps in [0, 1] on the
  images' device (bicubic to the input size, then per-image ``minmax`` or ``max``), and the
  logits of the same forward pass;
- :func:`layer_cams`: the layer-resolution maps before upsampling/normalisation;
- ``CAM_METHODS``: ``cam`` (vanilla, one forward, no backward) and the grad-cam methods
  ``gradcam``, ``gradcam++``, ``xgradcam``, ``hirescam``, ``layercam``, ``gradcamelementwise``,
  ``eigencam``, ``eigengradcam``, ``scorecam``, ``ablationcam`` (see :mod:`cam.gradcam`).
"""

from cam.api import cams_and_logits, compute_cams, layer_cams
from cam.errors import CAMInputError
from cam.postprocess import normalize, postprocess, postprocess_many, upsample
from cam.registry import CAM_METHODS, CAMMethod

# Registration order is the order the CLI lists the methods.
from cam import vanilla  # noqa: E402,F401  isort: skip
from cam import gradcam  # noqa: E402,F401  isort: skip

__all__ = [
    "CAM_METHODS",
    "CAMInputError",
    "CAMMethod",
    "cams_and_logits",
    "compute_cams",
    "layer_cams",
    "normalize",
    "postprocess",
    "postprocess_many",
    "upsample",
]
