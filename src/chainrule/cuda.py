"""``chainrule.cuda``: PyTorch's ``torch.cuda`` queries for code that picks its device.

chainrule computes with NumPy on the CPU, so there is no CUDA device: ``is_available()``
is False and ``device_count()`` is 0. Seeding calls are accepted (there is nothing to seed).
"""

from __future__ import annotations


def is_available() -> bool:
    """False: chainrule has no GPU backend (yet)."""
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    """Accepted and ignored: there is no CUDA generator to seed."""


def manual_seed_all(seed: int) -> None:
    """Accepted and ignored: there is no CUDA generator to seed."""
