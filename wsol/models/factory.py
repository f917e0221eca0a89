"""The model registry ``MODELS`` and the one factory :func:`create_model`."""

from __future__ import annotations

import inspect
from typing import Any

from wsol.errors import UserError
from wsol.registry import Registry

MODELS: Registry = Registry("model")


def create_model(name: str, num_classes: int, **options: Any):
    """Build the registered model ``name`` with ``num_classes`` outputs.

    ``options`` are the architecture's keyword options (e.g. ``large_feature_map``,
    ``layer4_stride``, ``pretrained``); an unknown option is a :class:`UserError` listing the
    accepted ones. ``pretrained=True`` downloads ImageNet weights through torchvision's weights
    API (never recorded in ``arch_options``).
    """
    factory = MODELS.get(name)
    params = inspect.signature(factory).parameters
    accepted = [p for p in params if p != "num_classes"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UserError(
            f"model {name!r} does not take option(s) {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(accepted) or '(none)'}"
        )
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise UserError(f"model {name!r}: num_classes must be a positive integer, got {num_classes!r}")
    return factory(num_classes=num_classes, **options)
