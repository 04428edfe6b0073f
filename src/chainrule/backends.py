"""``chainrule.backends``: PyTorch's ``torch.backends.mps/cuda.is_available()`` (both False)."""

from __future__ import annotations

from types import SimpleNamespace


def _false() -> bool:
    return False


mps = SimpleNamespace(is_available=_false, is_built=_false)
cuda = SimpleNamespace(is_built=_false)
