"""``chainrule.accelerator``: PyTorch's ``torch.accelerator`` queries (no accelerator here).

Programs written as ``torch.accelerator.current_accelerator().type if
torch.accelerator.is_available() else "cpu"`` choose the CPU.
"""

from __future__ import annotations

from chainrule.tensor.device import device


def is_available() -> bool:
    """False: chainrule computes with NumPy on the CPU."""
    return False


def current_accelerator() -> device | None:
    """None: there is no accelerator."""
    return None


def device_count() -> int:
    return 0
