"""Containers: ``ModuleList`` (a list of modules) and ``Sequential`` (a chain of them)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Self, overload

from chainrule.nn.module import Module


def _checked(modules: Iterable[Any], op: str) -> list[Module]:
    items = list(modules)
    for i, m in enumerate(items):
        if not isinstance(m, Module):
            raise TypeError(
                f"{op}: item {i} is a {type(m).__name__}, not a Module; wrap functions in a "
                "Module (e.g. nn.ReLU() rather than ops.relu)."
            )
    return items


class ModuleList(Module):
    """A list of modules whose parameters the parent finds (names ``0``, ``1``, ...)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        self._items = _checked(modules, type(self).__name__)

    def _members(self) -> Iterator[tuple[str, Any]]:
        return ((str(i), m) for i, m in enumerate(self._items))

    def append(self, module: Module) -> Self:
        self._items.extend(_checked([module], f"{type(self).__name__}.append"))
        return self

    def extend(self, modules: Iterable[Module]) -> Self:
        self._items.extend(_checked(modules, f"{type(self).__name__}.extend"))
        return self

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)

    @overload
    def __getitem__(self, index: int) -> Module: ...
    @overload
    def __getitem__(self, index: slice) -> ModuleList: ...
    def __getitem__(self, index: int | slice) -> Module | ModuleList:
        if isinstance(index, slice):
            return type(self)(self._items[index])
        return self._items[index]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "ModuleList.forward: a ModuleList only holds modules; loop over it in your own "
            "forward(), or use Sequential to chain them."
        )


class Sequential(ModuleList):
    """Modules applied one after the other: ``Sequential(a, b, c)(x) = c(b(a(x)))``.

    Example:
        >>> import numpy as np
        >>> from chainrule import Tensor, nn
        >>> net = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1))
        >>> net(Tensor(np.ones((4, 2), dtype=np.float32))).shape
        (4, 1)
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def forward(self, x: Any) -> Any:
        for module in self._items:
            x = module(x)
        return x

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(*self._items[index])
        return self._items[index]
