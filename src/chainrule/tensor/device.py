"""Devices as PyTorch spells them, for code written to run on a CPU or a GPU.

chainrule computes with NumPy, so every tensor lives on the CPU: ``device("cpu")`` is the
only device, ``chainrule.cuda.is_available()`` is False, and asking for ``"cuda"`` raises an
error that says so. Programs that pick their device with
``"cuda" if torch.cuda.is_available() else "cpu"`` therefore run unchanged.
"""

from __future__ import annotations

from typing import Any


class device:
    """A place for tensors: ``device("cpu")`` (also ``"cpu:0"``, or another device).

    Example:
        >>> device("cpu")
        device(type='cpu')
    """

    __slots__ = ("index", "type")
    type: str
    index: int | None

    def __init__(self, type: Any, index: int | None = None) -> None:
        name = type
        if isinstance(type, device):
            name = type.type
            index = type.index if index is None else index
        if not isinstance(name, str):
            raise TypeError(f"device: expected a string such as 'cpu', got {name!r}.")
        kind, _, number = name.partition(":")
        if kind != "cpu":
            raise no_device("device", name)
        self.type = kind
        self.index = int(number) if number else index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (TypeError, RuntimeError):
                return False
        return isinstance(other, device) and other.type == self.type

    def __hash__(self) -> int:
        return hash(self.type)

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def no_device(op: str, name: str) -> RuntimeError:
    """The error for a device other than the CPU."""
    return RuntimeError(
        f"{op}: device {name!r} is not available: chainrule computes with NumPy on the CPU "
        "(chainrule.cuda.is_available() is False). Use 'cpu', or pick the device with "
        "'cuda' if chainrule.cuda.is_available() else 'cpu'."
    )


CPU = device("cpu")


def set_default_device(dev: Any) -> None:
    """Set where new tensors are made; only the CPU exists here (others raise)."""
    if dev is not None:
        device(dev)


def get_default_device() -> device:
    return CPU
