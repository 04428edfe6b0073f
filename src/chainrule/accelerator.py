"""``chainrule.accelerator``: PyTorch's ``torch.accelerator`` queries (an NVIDIA GPU
through CuPy when ``chainrule.cuda.is_available()``; none otherwise).

Programs written as ``torch.accelerator.current_accelerator().type if
torch.accelerator.is_available() else "cpu"`` choose the GPU when there is one.
"""

from __future__ import annotations

from chainrule import cuda
from chainrule.tensor.device import device


def is_available() -> bool:
    """True when a GPU can be used (``chainrule.cuda.is_available()``)."""
    return cuda.is_available()


def current_accelerator() -> device | None:
    """``device(type='cuda')`` when a GPU can be used, else None."""
    return device("cuda") if cuda.is_available() else None


def device_count() -> int:
    return cuda.device_count()
