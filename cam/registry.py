"""``CAM_METHODS``: a small name -> :class:`CAMMethod` registry (cam/ never imports wsol)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cam.errors import CAMInputError


@dataclass(frozen=True)
class CAMMethod:
    """One way of turning (model, images, targets) into layer-resolution maps.

    ``layer_maps(run, targets, options) -> Tensor [B, h, w]`` gets a
    :class:`cam.runner.FeatureRun` (features and logits of one forward pass) and one target
    per image. ``convention`` says, in words, where the map comes from and which conventions
    (ReLU, sign, resampling) apply before our bicubic upsampling + normalisation.
    """

    name: str
    layer_maps: Callable[..., Any]
    description: str
    convention: str
    uses_gradients: bool = False
    heavy: bool = False  # one image at a time; batch_size = perturbed copies per forward
    needs_head: bool = False  # needs forward_features/forward_head (a WSOL model)
    needs_class_maps: bool = False
    class_specific: bool = True
    options: tuple[str, ...] = ()  # method options accepted through **method_options


class MethodRegistry:
    """Dict-like registry of :class:`CAMMethod` with a clear error for unknown names."""

    def __init__(self) -> None:
        self._items: dict[str, CAMMethod] = {}

    def add(self, method: CAMMethod) -> CAMMethod:
        if method.name in self._items:
            raise ValueError(f"CAM method {method.name!r} is registered twice")
        self._items[method.name] = method
        return method

    def get(self, name: str) -> CAMMethod:
        try:
            return self._items[name]
        except KeyError:
            raise CAMInputError(f"unknown CAM method {name!r}; choose from: {', '.join(self)}") from None

    def __getitem__(self, name: str) -> CAMMethod:
        return self.get(name)

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, CAMMethod]]:
        return list(self._items.items())


CAM_METHODS = MethodRegistry()
