"""A small registry: one per family (models, augmentations, datasets); CLI choices come from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from wsol.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories. ``@REG.register("name")`` adds one; ``REG.get(name)`` finds it."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            self._items[name] = obj
            doc = help or (getattr(obj, "__doc__", "") or "").strip().split("\n")[0]
            self._help[name] = doc
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UserError(f"unknown {self.family} {name!r}; choose from: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return list(self._items)

    def help(self, name: str) -> str:
        return self._help[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
